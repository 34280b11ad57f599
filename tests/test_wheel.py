"""The built wheel carries the template: `pipeproof new` works from an installed, non-editable wheel."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

from tests.helpers import ROOT


def test_wheel_renders_offline_without_the_source_checkout(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "--quiet",
            "-w",
            str(dist),
            str(ROOT),
        ],
        check=True,
        timeout=300,
    )
    (wheel,) = dist.glob("pipeproof-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "generator/_template/copier.yml" in names
    assert "generator/_template/generator/data/pins.yml" in names
    assert any(n.startswith("generator/_template/templates/") for n in names)

    site = tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-deps",
            "--no-index",
            "--quiet",
            "--target",
            str(site),
            str(wheel),
        ],
        check=True,
        timeout=300,
    )
    env = {**os.environ, "PYTHONPATH": str(site)}
    workdir = tmp_path / "elsewhere"
    workdir.mkdir()
    where = subprocess.run(
        [sys.executable, "-c", "from generator import render; print(render.template_root())"],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert where == str(site / "generator" / "_template")
    proc = subprocess.run(
        [sys.executable, "-m", "generator", "new", "demo", "--defaults"],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert (workdir / "demo/.github/workflows/deploy.yml").is_file()
    assert "_commit" not in (workdir / "demo/.copier-answers.yml").read_text()
