"""Mila's Triton kernels (activations/kernels/triton_mila.py) without a GPU: the checks of
tests/triton_mila_checks.py run by Triton's interpreter on the CPU, in a child process started with
``TRITON_INTERPRET=1`` (Triton reads it when first imported, so it cannot be switched on here)."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from conftest import ROOT

pytest.importorskip("triton")  # ships with torch's Linux builds (the ones this project installs)


def test_the_triton_kernels_under_the_interpreter() -> None:
    checks = ROOT / "tests" / "triton_mila_checks.py"
    env = {**os.environ, "TRITON_INTERPRET": "1"}
    proc = subprocess.run([sys.executable, "-m", "pytest", str(checks), "-q", "-p", "no:cacheprovider"],
                          env=env, capture_output=True, text=True, timeout=600, cwd=ROOT)  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    passed = re.search(r"(\d+) passed", proc.stdout)
    assert passed and int(passed.group(1)) >= 20 and "skipped" not in proc.stdout, proc.stdout[-2000:]
