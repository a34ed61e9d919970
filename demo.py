"""The original Mila demo's front door, onto mila-bench's core.

    python demo.py --activation mila --model_initialization class

Trains the demo MLP on Fashion-MNIST and prints ``Training loss: <summed loss>`` per epoch
as the original did, then (new) the test accuracy; the run is recorded like
``mila-bench train`` records it. Extra KEY=VALUE arguments are passed on as Hydra overrides.
"""

from __future__ import annotations

import argparse
import shlex
import sys

from mila_bench.config import group_options
from mila_bench.errors import RunInterrupted, UsageError


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (no usage dump)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"demo.py: error: {message}\n")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = OneLineParser(description="Train the Mila demo MLP on Fashion-MNIST (mila-bench front door).")
    parser.add_argument("--activation", default="mila", choices=group_options("activation"))
    parser.add_argument("--model_initialization", default="class", choices=["class", "sequential"])
    parser.add_argument("--beta", type=float, default=None, help="Mila's beta (default -0.25)")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    parser.add_argument("--data-dir", default=None, help="Fashion-MNIST root (default: see docs/getting-started.md)")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks")
    parser.add_argument("overrides", nargs="*", help="extra Hydra overrides, KEY=VALUE")
    return parser.parse_args(argv)


def overrides_from(args: argparse.Namespace) -> list[str]:
    """The demo's flags as Hydra overrides."""
    overrides = [
        f"activation={args.activation}",
        f"model.initialization={args.model_initialization}",
        f"trainer.epochs={args.epochs}",
        f"seed={args.seed}",
        f"device={args.device}",
    ]
    if args.beta is not None:
        overrides.append(f"+activation.beta={args.beta}" if args.activation != "mila" else f"activation.beta={args.beta}")
    if args.data_dir is not None:
        overrides.append(f"dataset.root={args.data_dir}")
    return overrides + list(args.overrides)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        from mila_bench.config import compose
        from mila_bench.pipeline import train

        cfg = compose(overrides_from(args))
        result = train(cfg, on_epoch=lambda m: print(f"Training loss: {m.train_loss_sum}", flush=True))
    except UsageError as err:
        if args.debug:
            raise
        print(f"demo.py: error: {err}", file=sys.stderr)
        return err.exit_code
    except RunInterrupted as err:  # the run's folder and last checkpoint are kept: say how to continue
        err.resume_command = shlex.join([sys.executable, *sys.argv, "trainer.resume=true"])
        print(f"demo.py: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print("demo.py: interrupted", file=sys.stderr)
        return 130
    print(f"Test accuracy (top-1): {100 * result.history[-1].top1:.2f}%  (run: {result.run_dir})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
