"""CIFAR-10/100 through torchvision's own classes, on tiny datasets in the real on-disk format."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from cifar_files import TEST, TRAIN, images_and_labels, write_cifar10
from mila_bench.data.augment import ShiftFlip
from mila_bench.data.cifar import UNVERIFIED_CACHE_NAME, torchvision_class
from mila_bench.config import compose
from mila_bench.data.load import load_dataset
from mila_bench.data.cache import CACHE_NAME
from mila_bench.errors import UsageError


def cifar_cfg(name: str, root: Path, *overrides: str):
    return compose([f"dataset={name}", f"dataset.root={root}", "dataset.verify=false", *overrides]).dataset


@pytest.mark.parametrize(("name", "classes", "seed"), [("cifar10", 10, 0), ("cifar100", 100, 2)])
def test_loads_through_torchvision_as_mean_subtracted_tensors(cifar_root: Path, name: str, classes: int, seed: int) -> None:
    data = load_dataset(cifar_cfg(name, cifar_root))
    assert data.name == name and data.num_classes == classes
    assert data.train.images.shape == (TRAIN, 3, 32, 32) and data.test.images.shape == (TEST, 3, 32, 32)
    raw, labels = images_and_labels(TRAIN, classes, seed)
    assert data.train.labels.tolist() == labels
    # In memory: the written pixels as they are (uint8); the model sees them scaled and centred.
    assert data.train.images.dtype == torch.uint8
    assert torch.equal(data.train.images, torch.from_numpy(raw.reshape(TRAIN, 3, 32, 32)))
    # Adding the per-pixel training mean back gives the written pixels, scaled to [0, 1].
    written = torch.from_numpy(raw.reshape(TRAIN, 3, 32, 32)).float() / 255
    mean = written.mean(dim=0, keepdim=True)
    torch.testing.assert_close(data.train.mean, mean)
    torch.testing.assert_close(data.train.float_images() + mean, written)
    torch.testing.assert_close(data.train.float_images().mean(dim=0), torch.zeros(3, 32, 32), atol=1e-5, rtol=0)
    [(batch, _)] = list(data.train.batches(TRAIN))
    assert batch.dtype == torch.float32 and torch.equal(batch, data.train.float_images())
    test_raw, _ = images_and_labels(TEST, classes, seed + 1)
    torch.testing.assert_close(data.test.float_images() + mean, torch.from_numpy(test_raw.reshape(TEST, 3, 32, 32)).float() / 255)
    assert data.info["md5_check"] == "skipped (dataset.verify=false)"
    assert isinstance(data.augment, ShiftFlip) and data.augment.shift == 3 and data.augment.flip


def test_same_pixels_as_torchvision_reads_them(cifar_root: Path) -> None:
    """Our tensors hold what torchvision's CIFAR10 parses (HWC uint8), in CHW order, minus the train mean."""
    cls = torchvision_class("cifar10", verify=False)
    train_ref, test_ref = cls(str(cifar_root), train=True), cls(str(cifar_root), train=False)
    chw = lambda a: torch.from_numpy(np.asarray(a)).permute(0, 3, 1, 2).float() / 255  # noqa: E731
    data = load_dataset(cifar_cfg("cifar10", cifar_root, "dataset.shift=0", "dataset.flip=false"))
    assert data.augment is None
    torch.testing.assert_close(data.test.float_images() + chw(train_ref.data).mean(0), chw(test_ref.data))
    assert data.test.labels.tolist() == list(test_ref.targets)


def test_md5_check_is_on_by_default_and_names_the_way_out(cifar_root: Path) -> None:
    with pytest.raises(UsageError) as err:
        load_dataset(compose(["dataset=cifar10", f"dataset.root={cifar_root}"]).dataset)
    message = str(err.value)
    assert "MD5" in message and "dataset.verify=false" in message and "\n" not in message


def test_cache_is_written_and_reused_separately_for_unverified_copies(tmp_path: Path) -> None:
    write_cifar10(tmp_path)
    folder = tmp_path / "cifar-10-batches-py"
    first = load_dataset(cifar_cfg("cifar10", tmp_path))
    cache = folder / UNVERIFIED_CACHE_NAME
    assert cache.is_file() and not (folder / CACHE_NAME).exists()  # a verified load never reads this cache
    (folder / "test_batch").write_bytes(b"not a pickle")
    older = cache.stat().st_mtime - 10
    os.utime(folder / "test_batch", (older, older))  # the cache is newer than every file: it serves the load
    again = load_dataset(cifar_cfg("cifar10", tmp_path))
    assert torch.equal(again.test.images, first.test.images)
    os.utime(folder / "test_batch")  # a newer file makes the cache stale: torchvision re-reads the files
    with pytest.raises(UsageError, match="could not read the CIFAR-10 files"):
        load_dataset(cifar_cfg("cifar10", tmp_path))


def test_missing_offline_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(UsageError) as err:
        load_dataset(cifar_cfg("cifar100", tmp_path / "none", "dataset.download=false"))
    message = str(err.value)
    assert "CIFAR-100 not found" in message and "cifar-100-python" in message and "dataset.root=DIR" in message
    assert "\n" not in message


def test_train_subset_applies_to_cifar(cifar_root: Path) -> None:
    data = load_dataset(cifar_cfg("cifar10", cifar_root, "dataset.train_subset=40"))
    assert len(data.train) == 40 and len(data.test) == TEST and data.augment is not None
    with pytest.raises(UsageError, match=f"1..{TRAIN}"):
        load_dataset(cifar_cfg("cifar10", cifar_root, f"dataset.train_subset={TRAIN + 1}"))


# --------------------------------------------------------------------------- augmentation


def find_transform(original: torch.Tensor, augmented: torch.Tensor, shift: int) -> tuple[int, int, bool] | None:
    """Brute force: the (dy, dx, flipped) that turns ``original`` into ``augmented``, with edge fill."""
    padded = torch.nn.functional.pad(original[None], (shift,) * 4, mode="replicate")[0]
    h, w = original.shape[1:]
    for dy in range(2 * shift + 1):
        for dx in range(2 * shift + 1):
            crop = padded[:, dy : dy + h, dx : dx + w]
            for flipped in (False, True):
                if torch.equal(crop.flip(2) if flipped else crop, augmented):
                    return dy - shift, dx - shift, flipped
    return None


def test_shift_flip_moves_every_image_by_at_most_the_shift_and_is_seeded() -> None:
    images = torch.rand(48, 3, 12, 12, generator=torch.Generator().manual_seed(0))
    out = ShiftFlip(shift=2)(images, torch.Generator().manual_seed(5))
    found = [find_transform(images[i], out[i], 2) for i in range(len(images))]
    assert all(f is not None for f in found)
    assert {f[2] for f in found} == {False, True}  # both flipped and unflipped images occur
    assert len({(f[0], f[1]) for f in found}) > 5  # many different shifts, not one for the batch
    assert torch.equal(out, ShiftFlip(shift=2)(images, torch.Generator().manual_seed(5)))
    assert not torch.equal(out, ShiftFlip(shift=2)(images, torch.Generator().manual_seed(6)))
    assert torch.equal(ShiftFlip(shift=0, flip=False)(images, torch.Generator()), images)


def test_shift_flip_moves_uint8_pixels_like_float_ones() -> None:
    """The augmentation only moves pixels, so it works on the native uint8 images as well."""
    images = torch.randint(0, 256, (16, 3, 10, 10), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
    on_bytes = ShiftFlip(shift=3)(images, torch.Generator().manual_seed(2))
    on_floats = ShiftFlip(shift=3)(images.float() / 255, torch.Generator().manual_seed(2))
    assert on_bytes.dtype == torch.uint8 and torch.equal(on_bytes.float() / 255, on_floats)
    found = [find_transform(images[i], on_bytes[i], 3) for i in range(len(images))]
    assert all(f is not None for f in found)


@pytest.mark.slow
def test_uint8_training_matches_the_float_path(cifar_root: Path) -> None:
    """Training from uint8 images normalised per batch gives the metrics of training from the
    whole split converted to float up front (the former representation), within float rounding."""
    from mila_bench.data.splits import Split
    from mila_bench.pipeline import fit_model

    cfg = compose(["experiment=cifar10_resnet20_v1", "trainer.epochs=2", f"dataset.root={cifar_root}",
                   "dataset.verify=false", "device=cpu", "trainer.progress=false"])  # fmt: skip
    data = load_dataset(cfg.dataset)
    old_mean = (data.train.images.float() / 255).mean(dim=0, keepdim=True)  # as the float path computed it
    as_float = load_dataset(cfg.dataset)
    as_float.train = Split(data.train.images.float().div_(255).sub_(old_mean), data.train.labels)
    as_float.test = Split(data.test.images.float().div_(255).sub_(old_mean), data.test.labels)
    _, ours = fit_model(cfg, data, torch.device("cpu"), seed=0)
    _, theirs = fit_model(cfg, as_float, torch.device("cpu"), seed=0)
    for a, b in zip(ours, theirs):
        for key in ("train_loss_sum", "test_loss"):
            assert getattr(a, key) == pytest.approx(getattr(b, key), rel=1e-4), key
        for key in ("top1", "top3", "top5"):  # a near-tie among the 32 test images may flip: one at most
            assert abs(getattr(a, key) - getattr(b, key)) <= 1 / TEST + 1e-9, key
    assert ours[-1].train_loss < ours[0].train_loss  # and it learns


@pytest.mark.slow
def test_fit_augments_training_batches_only(cifar_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every training image passes through the augmentation once per epoch; test images never do."""
    from mila_bench.pipeline import train

    calls: list[int] = []
    original = ShiftFlip.__call__

    def counting(self: ShiftFlip, images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        calls.append(len(images))
        return original(self, images, generator)

    monkeypatch.setattr(ShiftFlip, "__call__", counting)
    result = train(compose([
        "experiment=cifar10_resnet20_v1", "trainer.epochs=2", f"dataset.root={cifar_root}", "dataset.verify=false",
        "device=cpu", "trainer.progress=false", f"results.dir={tmp_path / 'r'}", f"results.markdown={tmp_path / 'R.md'}",
    ]))  # fmt: skip
    assert sum(calls) == 2 * TRAIN and all(n == 32 for n in calls)
    assert [m.lr for m in result.history] == [0.001, 0.001]


# ------------------------------------------------------------------------------- the CLI


@pytest.mark.slow
def test_one_epoch_cli_run_records_like_fashion_mnist(tmp_path: Path, cifar_root: Path) -> None:
    from conftest import run_cli

    proc = run_cli(
        ["train", "experiment=cifar100_resnet20_v2", "trainer.epochs=1", f"dataset.root={cifar_root}",
         "dataset.verify=false", "device=cpu", "activation=mila", "activation.beta=0.5"],
        tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "epoch 1/1" in proc.stdout
    [run_dir] = list((tmp_path / "results").iterdir())
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["dataset"] == "cifar100" and summary["model_config"]["depth"] == 20
    assert summary["model_config"]["version"] == 2 and summary["scheduler"]["name"] == "recipe"
    assert summary["data"]["md5_check"] == "skipped (dataset.verify=false)"
    assert summary["activation_params"] == {"beta": 0.5}
    assert 0.0 <= summary["final"]["top1"] <= summary["final"]["top5"] <= 1.0
    metrics = (run_dir / "metrics.csv").read_text().splitlines()
    assert metrics[0] == "epoch,train_loss_sum,train_loss,test_loss,top1,top3,top5,seconds,lr,keras_val_loss"
    assert len(metrics) == 2
    # Keras' val_loss: clipped cross-entropy (≤ the plain one) + the kernel penalty (> 0)
    assert summary["final"]["keras_val_loss"] > 0 and math.isfinite(summary["final"]["keras_val_loss"])
    text = (tmp_path / "Results.md").read_text()
    assert "## cifar100 · resnet · depth 20 · v2" in text
    row = next(l for l in text.splitlines() if l.startswith("| mila"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[:5] == ["mila", "0.5", "—", "0", "1"] and cells[-1] == run_dir.name


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (["dataset.download=false"], "CIFAR-10 not found in"),
        (["dataset.verify=false", "model.depth=44", "model.version=2"], "allowed for v2: 20, 56, 110, 164"),
    ],
)
@pytest.mark.slow
def test_bad_cifar_input_is_one_line_and_writes_nothing(tmp_path: Path, overrides: list[str], expected: str) -> None:
    from conftest import run_cli

    proc = run_cli(["train", "experiment=cifar10_resnet20_v1", f"dataset.root={tmp_path / 'nodata'}", *overrides], tmp_path)
    assert proc.returncode == 2
    [line] = [l for l in proc.stderr.splitlines() if l.strip()]
    assert expected in line and "Traceback" not in proc.stderr
    assert not (tmp_path / "results").exists() and not (tmp_path / "Results.md").exists()


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (["dataset.verify=maybe"], "dataset.verify='maybe' is not allowed; expected true or false"),
        (["dataset.shift=-1"], "dataset.shift=-1 is not allowed; expected an integer >= 0"),
        (["trainer.amp=yes"], "trainer.amp='yes' is not allowed; expected true or false"),
        (["model.kernel_l2=-1"], "model.kernel_l2=-1"),
    ],
)
def test_bad_cifar_values_are_caught_when_composing(overrides: list[str], expected: str) -> None:
    with pytest.raises(UsageError) as err:
        compose(["experiment=cifar10_resnet20_v1", *overrides])
    assert expected in str(err.value)
