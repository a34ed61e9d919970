"""The committed timm names (what a misspelt ``model.arch`` is answered from, without timm) are timm's."""

from __future__ import annotations

import json
import subprocess
import sys

import timm

from mila_bench.models.timm_names import installed_version, listed, names


def test_the_committed_list_is_the_installed_timms() -> None:
    version, known = listed()
    hint = "rewrite it: python -m mila_bench.models.timm_names"
    assert version == timm.__version__ == installed_version(), hint
    # timm's own list, from a fresh process: tests here register models of their own in this one
    fresh = subprocess.run([sys.executable, "-c", "import json, timm; print(json.dumps(timm.list_models()))"],
                           capture_output=True, text=True, check=True)  # fmt: skip
    assert known == json.loads(fresh.stdout), hint


def test_once_timm_is_imported_its_registry_is_asked() -> None:
    """A model registered in this process (timm is imported here) is a name too."""
    from timm.models import register_model

    if "mila_bench_test_named" not in timm.list_models():

        @register_model
        def mila_bench_test_named(pretrained: bool = False, **kwargs: object):
            raise NotImplementedError

    assert "mila_bench_test_named" in names() and "mila_bench_test_named" not in listed()[1]
