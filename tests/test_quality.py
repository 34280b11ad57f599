"""The code stays typed and linted: mypy --strict on generator/, ruff on everything."""

from __future__ import annotations

import subprocess
import sys

from tests.helpers import ROOT


def test_mypy_strict() -> None:
    proc = subprocess.run([sys.executable, "-m", "mypy"], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_ruff() -> None:
    for args in (["check", "generator", "tests", "benchmarks"], ["format", "--check", "generator", "tests"]):
        proc = subprocess.run(
            [sys.executable, "-m", "ruff", *args], cwd=ROOT, capture_output=True, text=True, timeout=300
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr
