"""pipeproof's own GitHub Action (the root action.yml), run the way a runner runs it.

Its two `run:` scripts are read out of action.yml and executed under bash: the first builds a virtualenv from
generator/data/action-requirements.txt (hashes required, wheels only, from PyPI), the second runs `pipeproof
audit` from the action's source with only that virtualenv's packages. So the test proves that the audit needs
nothing but PyPI's PyYAML, Jinja2, MarkupSafe and packaging, and that the action fails the job on a failing control.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.helpers import ROOT

GOLDEN = ROOT / "golden"
SOURCE_DOCUMENT = ROOT / "tests/fixtures/source-document"


@pytest.fixture(scope="module")
def action(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[str], dict[str, str]]:
    """The action's run scripts, and the runner environment after its install step ran."""
    spec = yaml.safe_load((ROOT / "action.yml").read_text())
    scripts = [step["run"] for step in spec["runs"]["steps"]]
    assert len(scripts) == 2 and all(step["shell"] == "bash" for step in spec["runs"]["steps"])
    temp = tmp_path_factory.mktemp("runner-temp")
    # The action's checkout as GitHub puts it on the runner: its files, no .git, no installed pipeproof.
    source = temp / "action"
    files = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    for rel in filter(None, files.decode().split("\0")):
        if (ROOT / rel).is_file():
            (source / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / rel, source / rel)
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(temp),
        "RUNNER_TEMP": str(temp),
        "GITHUB_ACTION_PATH": str(source),
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
    }
    install = subprocess.run(["bash", "-c", scripts[0]], env=env, capture_output=True, text=True, timeout=600)
    assert install.returncode == 0, install.stdout + install.stderr
    return scripts, env


def installed(env: dict[str, str]) -> set[str]:
    pip = Path(env["RUNNER_TEMP"]) / "pipeproof-venv/bin/pip"
    listed = subprocess.run([str(pip), "list", "--format", "json"], capture_output=True, text=True, check=True)
    return {p["name"].lower() for p in json.loads(listed.stdout)} - {"pip", "setuptools"}


def audit(
    action: tuple[list[str], dict[str, str]], repo: Path, out: Path, **inputs: str
) -> subprocess.CompletedProcess[str]:
    scripts, env = action
    run_env = {
        **env,
        "AUDIT_PATH": str(repo),
        "AUDIT_FORMAT": inputs.get("format", "sarif"),
        "AUDIT_OUTPUT": str(out),
        "AUDIT_FAIL_ON": inputs.get("fail_on", "low"),
    }
    return subprocess.run(["bash", "-c", scripts[1]], env=run_env, capture_output=True, text=True, timeout=300)


def test_the_action_installs_only_its_hash_locked_dependencies(action: tuple[list[str], dict[str, str]]) -> None:
    assert installed(action[1]) == {"pyyaml", "jinja2", "markupsafe", "packaging", "python-hcl2", "lark", "regex"}


def test_the_action_passes_a_generated_repository(action: tuple[list[str], dict[str, str]], tmp_path: Path) -> None:
    out = tmp_path / "pipeproof.sarif"
    proc = audit(action, GOLDEN / "python-defaults", out)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads(out.read_text())
    assert report["version"] == "2.1.0" and report["runs"][0]["results"] == []


def test_the_action_fails_the_job_on_the_source_documents_pipeline(
    action: tuple[list[str], dict[str, str]], tmp_path: Path
) -> None:
    out = tmp_path / "report.json"
    proc = audit(action, SOURCE_DOCUMENT, out, format="json")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    failing = {r["id"] for r in json.loads(out.read_text())["results"] if r["status"] == "fail"}
    assert {"PP-SCAN-01", "PP-SCAN-04", "PP-BRANCH-01"} <= failing, failing


def test_the_action_refuses_a_bad_input(action: tuple[list[str], dict[str, str]], tmp_path: Path) -> None:
    proc = audit(action, GOLDEN / "python-defaults", tmp_path / "x", fail_on="sometimes")
    assert proc.returncode == 2 and "sometimes" in proc.stderr, proc.stderr
    assert not (tmp_path / "x").exists()
