"""`pipeproof validate`: every linter's findings come back as file:line; a missing linter is exit 2."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from generator.cli import main
from tests.helpers import GOLDEN, ROOT

PR = ".github/workflows/pr-checks.yml"


def test_each_validator_reports_its_own_finding_with_a_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tree = tmp_path / "tree"
    shutil.copytree(GOLDEN / "python-defaults", tree)
    text = (tree / PR).read_text()
    text = re.sub(r"actions/checkout@[0-9a-f]{40}", "actions/checkout@v4", text, count=1)  # zizmor: unpinned-uses
    text = text.replace("name: pr-checks\n", "name: pr-checks   \n", 1)  # yamllint: trailing spaces
    (tree / PR).write_text(text)
    # zizmor skips a workflow its own parser rejects, so the schema break goes into another file.
    deploy = tree / ".github/workflows/rollback-drill.yml"
    deploy.write_text(deploy.read_text().replace("timeout-minutes: 60", "timeout-minutes: sixty", 1))
    assert main(["validate", str(tree)]) == 1
    out = capsys.readouterr().out
    for tool, path in [
        ("yamllint", PR),
        ("zizmor", PR),
        ("actionlint", deploy.name),
        ("check-jsonschema", deploy.name),
    ]:
        assert re.search(rf"^\S*{re.escape(path)}:\d+:\d+: {tool}: ", out, re.M), f"{tool}:\n{out}"
    assert re.search(r"zizmor: \[unpinned-uses\]", out)


def test_missing_validator_is_exit_2_with_an_install_hint(tmp_path: Path) -> None:
    # A Python outside the virtualenv, with no validators on PATH or beside it.
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "python").symlink_to(os.path.realpath(sys.executable))
    site = [p for p in sys.path if p.endswith("site-packages")]
    env = {"PATH": str(bindir), "PYTHONPATH": os.pathsep.join([str(ROOT), *site]), "HOME": str(tmp_path)}
    proc = subprocess.run(
        [str(bindir / "python"), "-m", "generator", "validate", str(GOLDEN / "python-defaults")],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2, proc.stderr
    assert "missing validators: actionlint, check-jsonschema, yamllint, zizmor" in proc.stderr
    assert "pip install 'pipeproof[validators]'" in proc.stderr


def test_not_a_directory_is_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(tmp_path / "nope")]) == 2
    assert "is not a directory" in capsys.readouterr().err
