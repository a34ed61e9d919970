"""The committed timm names (what a misspelt ``model.arch`` is answered from, without timm) are timm's."""

from __future__ import annotations

import timm

from mila_bench.models.timm_names import installed_version, listed, names


def test_the_committed_list_is_the_installed_timms() -> None:
    version, known = listed()
    hint = "rewrite it: python -m mila_bench.models.timm_names"
    assert version == timm.__version__ == installed_version(), hint
    assert known == timm.list_models(), hint
    assert names() == known
