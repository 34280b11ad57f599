"""pipeproof's protect action (protect/action.yml), run the way a runner runs it, against the stand-in GitHub API.

Its two `run:` scripts are read out of the action and executed under bash: the first builds a virtualenv from
generator/data/protect-requirements.txt (hashes required, wheels only), the second runs `pipeproof protect
check` or `export` from the action's source with only that virtualenv. So the daily protect-check workflow
needs nothing but those hash-locked packages, and drift fails its job.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.fakes.github_settings import FakeGitHubSettings
from tests.helpers import ROOT

TOKEN = "ghs_protectActionToken0123456789"


@pytest.fixture(scope="module")
def action(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[str], dict[str, str]]:
    spec = yaml.safe_load((ROOT / "protect" / "action.yml").read_text())
    steps = spec["runs"]["steps"]
    assert len(steps) == 2 and all(step["shell"] == "bash" for step in steps)
    assert steps[1]["env"]["GITHUB_TOKEN"] == "${{ inputs.token }}"  # through the environment, never argv
    temp = tmp_path_factory.mktemp("runner-temp")
    source = temp / "action"
    files = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    for rel in filter(None, files.decode().split("\0")):
        if (ROOT / rel).is_file() and not rel.startswith(("golden/", "tests/")):
            (source / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / rel, source / rel)
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(temp),
        "RUNNER_TEMP": str(temp),
        "GITHUB_ACTION_PATH": str(source / "protect"),
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
    }
    install = subprocess.run(["bash", "-c", steps[0]["run"]], env=env, capture_output=True, text=True, timeout=600)
    assert install.returncode == 0, install.stdout + install.stderr
    return [s["run"] for s in steps], env


def protect(
    action: Any, fake: FakeGitHubSettings, repo: Path, command: str, output: str
) -> subprocess.CompletedProcess[str]:
    scripts, env = action
    env = env | {
        "GITHUB_TOKEN": TOKEN,
        "GITHUB_REPOSITORY": fake.repo,
        "GITHUB_API_URL": fake.url,
        "PROTECT_COMMAND": command,
        "PROTECT_PATH": str(repo),
        "PROTECT_OUTPUT": output,
    }
    return subprocess.run(
        ["bash", "-eo", "pipefail", "-c", scripts[1]], env=env, capture_output=True, text=True, timeout=300
    )


def test_the_protect_action_checks_and_exports(action: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from generator.cli import main

    repo = tmp_path / "repo"
    shutil.copytree(ROOT / "golden" / "python-defaults", repo)
    with FakeGitHubSettings(repo="python-defaults/shop", token=TOKEN, plan="team") as fake:
        fake.add_team("security", "push")
        monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
        assert main(["protect", "apply", str(repo), "--repo", fake.repo, "--api-url", fake.url]) == 0
        fake.requests.clear()

        sarif = tmp_path / "drift.sarif"
        result = protect(action, fake, repo, "check", str(sarif))
        assert result.returncode == 0, result.stdout + result.stderr
        assert not fake.writes()  # check only reads
        fake.protection["main"]["allow_force_pushes"] = True
        next(iter(fake.rulesets.values()))["enforcement"] = "evaluate"
        result = protect(action, fake, repo, "check", str(sarif))
        assert result.returncode == 1
        failing = {r["ruleId"] for r in json.loads(sarif.read_text())["runs"][0]["results"] if r["level"] == "error"}
        assert failing == {"PP-BRANCH-01", "PP-BRANCH-05"}

        result = protect(action, fake, repo, "export", str(tmp_path / "records"))
        assert result.returncode == 0, result.stderr
        [snapshot] = (tmp_path / "records").rglob("protect-*.json")
        assert json.loads(snapshot.read_text())["diff"]["drift"].keys() == {"PP-BRANCH-01", "PP-BRANCH-05"}
        assert TOKEN not in result.stdout + result.stderr + snapshot.read_text()

        result = protect(action, fake, repo, "apply", str(tmp_path / "x"))
        assert result.returncode == 2 and "command must be check or export" in result.stdout


def test_the_protect_action_passes_the_action_schema_and_zizmor() -> None:
    action_file = str(ROOT / "protect" / "action.yml")
    schema = subprocess.run(
        ["check-jsonschema", "--builtin-schema", "vendor.github-actions", action_file], capture_output=True, text=True
    )
    assert schema.returncode == 0, schema.stdout + schema.stderr
    audit = subprocess.run(["zizmor", "--offline", "--persona=auditor", action_file], capture_output=True, text=True)
    assert audit.returncode == 0, audit.stdout + audit.stderr
