"""`pipeproof retrofit` on three repositories the tests build: a Python service with GitHub CI and pre-commit,
a Node app with a GitLab pipeline, a Go service with Terraform and a Dockerfile and no CI.

Every pre-existing file must stay byte-identical except the merges the plan declares; a merged pre-commit
config must pass `pre-commit validate-config` and keep the team's hooks; --dry-run writes nothing; a failure
injected mid-write leaves no trace; `update` works afterwards.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from generator import answers, detect, render, retrofit, source
from generator.cli import main
from tests.helpers import ROOT, build_file_tree, git, git_save, snapshot

TEAM_PRECOMMIT = """\
# Our hooks: keep them fast.
repos:
  - repo: https://github.com/pre-commit/pre-commit-hooks
    rev: v4.6.0  # pinned by the platform team
    hooks:
      - id: trailing-whitespace
      - id: end-of-file-fixer

  - repo: local
    hooks:
      - id: mypy
        name: mypy
        entry: mypy src
        language: system
        pass_filenames: false
# pre-commit.ci settings
ci:
  autofix_prs: false
"""

PY_CI = """\
name: ci
on: [pull_request]
permissions: {}
jobs:
  test:
    runs-on: ubuntu-24.04
    steps:
      - uses: actions/checkout@v4
      - run: pytest
  lint:
    runs-on: ubuntu-24.04
    steps:
      - uses: actions/checkout@v4
      - run: pipx run semgrep scan --config p/python --error
"""


def python_service(root: Path) -> Path:
    build_file_tree(
        root,
        {
            "pyproject.toml": '[project]\nname = "billing"\nversion = "1.0"\n',
            "src/billing/__init__.py": "",
            "src/billing/api.py": "def charge():\n    return 42\n",
            "tests/test_api.py": "from billing.api import charge\n\ndef test():\n    assert charge() == 42\n",
            ".github/workflows/ci.yml": PY_CI,
            ".pre-commit-config.yaml": TEAM_PRECOMMIT,
            "CODEOWNERS": "* @acme/billing\n/src/billing/api.py @acme/payments  # money\n",
            "scripts/deploy.sh": "#!/bin/sh\nset -e\nkubectl --context prod apply -f k8s/\n",
            ".gitignore": "__pycache__/\n.venv/\n",
            "README.md": "# billing\n",
        },
    )
    (root / "scripts/deploy.sh").chmod(0o755)
    return _commit(root, "https://github.com/acme/billing.git")


def node_gitlab(root: Path) -> Path:
    build_file_tree(
        root,
        {
            "package.json": '{"name": "storefront", "scripts": {"test": "node --test"}}\n',
            "index.js": "console.log('storefront')\n",
            "lib/cart.js": "module.exports = {}\n",
            ".gitlab-ci.yml": "stages: [test]\ntest:\n  stage: test\n  image: node:22\n  script:\n    - npm test\n",
            "README.md": "# storefront\n",
        },
    )
    return _commit(root, "https://gitlab.com/acme/storefront.git")


def go_terraform(root: Path) -> Path:
    build_file_tree(
        root,
        {
            "go.mod": "module example.com/ledger\n\ngo 1.23\n",
            "main.go": "package main\n\nfunc main() {}\n",
            "infra/main.tf": 'resource "aws_s3_bucket" "ledger" {\n  bucket = "ledger"\n}\n',
            "Dockerfile": "FROM golang:1.23 AS build\nCOPY . .\nRUN go build -o /ledger\n",
            # Another copier template rendered this repository first: its answers must survive.
            ".copier-answers.yml": "_commit: v3.1.0\n_src_path: gh:acme/go-service-template\nmodule: ledger\n",
        },
    )
    return _commit(root, None)


FIXTURES: dict[str, Callable[[Path], Path]] = {
    "python-github": python_service,
    "node-gitlab": node_gitlab,
    "go-terraform": go_terraform,
}
# node-gitlab: GitLab is detected; here the team asks for GitHub Actions beside it (GitLab itself: below).
EXTRA = {"node-gitlab": ["--data", "platform=github"]}


def _commit(root: Path, remote: str | None) -> Path:
    git_save(root, "the team's repository")
    if remote:
        git(root, "remote", "add", "origin", remote)
    return root


def run_retrofit(repo: Path, *args: str) -> int:
    return main(["retrofit", str(repo), "--defaults", *args])


@pytest.fixture(params=sorted(FIXTURES))
def fixture(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, Path]:
    name = request.param
    return name, FIXTURES[name](tmp_path / name)


def test_dry_run_writes_nothing_then_retrofit_keeps_every_byte_except_declared_merges(
    fixture: tuple[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    name, repo = fixture
    before = snapshot(repo)
    assert run_retrofit(repo, "--dry-run", *EXTRA.get(name, [])) == 0
    planned = capsys.readouterr().out
    assert "dry run" in planned and "add      .github/workflows/pr-checks.yml" in planned
    assert snapshot(repo) == before and not git(repo, "status", "--porcelain")

    assert run_retrofit(repo, *EXTRA.get(name, [])) == 0
    out = capsys.readouterr().out
    assert out.split("\n", 1)[1].startswith(planned.split("\n", 1)[1]), "the plan shown is the plan applied"
    merged = {line.split()[1] for line in out.splitlines() if line.startswith("  merge ")}
    after = snapshot(repo)
    for rel, (data, mode) in before.items():
        if rel in merged:
            assert after[rel][0].startswith(data) or _keeps_lines(data, after[rel][0]), rel
            assert after[rel][1] == mode
        else:
            assert after[rel] == (data, mode), f"{rel} changed but is not a declared merge"
    assert (repo / ".github/workflows/pr-checks.yml").is_file() and "controls passing:" in out
    if name == "python-github":
        assert merged == {".pre-commit-config.yaml", "CODEOWNERS"}
        assert not (repo / ".github/CODEOWNERS").exists(), "the CODEOWNERS GitHub reads gains the rules instead"
        assert "@python-github/security" in (repo / "CODEOWNERS").read_text()
        assert (repo / "scripts/deploy.sh.pipeproof-proposal").is_file()  # the team's deploy.sh is untouched
        assert "job `lint`: PP-SCAN-01" in out and "job `test`: PP-SCAN-10" in out
        _check_precommit(repo)
    if name == "node-gitlab":
        assert ".gitlab-ci.yml: GitLab CI keeps running" in out
    if name == "go-terraform":
        text = (repo / ".pipeproof-answers.yml").read_text()
        assert "language: go" in text and "- terraform" in text and "containers: true" in text
        assert "/.pipeproof-answers.yml @go-terraform/security" in (repo / ".github/CODEOWNERS").read_text()


def test_a_gitlab_repository_is_retrofitted_as_gitlab(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    repo = node_gitlab(tmp_path / "node-gitlab")
    before = snapshot(repo)
    assert run_retrofit(repo) == 0
    out = capsys.readouterr().out
    assert "platform        gitlab         .gitlab-ci.yml" in out
    assert "propose  .gitlab-ci.yml.pipeproof-proposal" in out and "add      .gitlab/CODEOWNERS" in out
    assert not (repo / ".github").exists()
    # The team's pipeline is kept byte for byte; pipeproof's is beside it to merge, and nothing runs twice.
    assert snapshot(repo)[".gitlab-ci.yml"] == before[".gitlab-ci.yml"]
    proposal = yaml.safe_load((repo / ".gitlab-ci.yml.pipeproof-proposal").read_text())
    assert {"sast", "secrets", "controls-drift"} <= set(proposal)
    assert "keeps running its own pipeline" not in out
    assert "platform: gitlab" in (repo / ".copier-answers.yml").read_text()


def _keeps_lines(old: bytes, new: bytes) -> bool:
    """Every line of old is in new, in the same order (a merge that inserted lines)."""
    remaining = iter(new.splitlines())
    return all(any(line == candidate for candidate in remaining) for line in old.splitlines())


def _check_precommit(repo: Path) -> None:
    config = repo / ".pre-commit-config.yaml"
    proc = subprocess.run(
        [sys.executable, "-m", "pre_commit", "validate-config", str(config)], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    ids = [h["id"] for r in yaml.safe_load(config.read_text())["repos"] for h in r["hooks"]]
    assert ids == ["trailing-whitespace", "end-of-file-fixer", "mypy", "gitleaks"]
    text = config.read_text()
    assert text.startswith(TEAM_PRECOMMIT.split("# pre-commit.ci settings")[0].rstrip("\n"))
    assert text.endswith("# pre-commit.ci settings\nci:\n  autofix_prs: false\n")


def test_a_failure_mid_write_leaves_no_trace(fixture: tuple[str, Path]) -> None:
    name, repo = fixture
    root, answers_name = retrofit.repository(repo)
    found = detect.suggest(root)
    given = {"platform": "github"} if name == "node-gitlab" else {}
    chosen = answers.resolve(answers.load_template(render.template_root()), given, root, suggested=found.answers)
    before = snapshot(repo)
    with retrofit.workspace() as work, source.for_new() as src:
        plan = retrofit.plan(root, chosen, answers_name, src, work)
    for failure in (RuntimeError, KeyboardInterrupt):  # an error, and Ctrl-C
        moved: list[str] = []

        def step(path: str, moved: list[str] = moved, failure: type[BaseException] = failure) -> None:
            moved.append(path)
            if len(moved) == len(plan.writes) // 2:
                raise failure("injected")

        with pytest.raises(failure):
            retrofit.apply(plan, step=step)
        assert len(moved) >= 3
        assert snapshot(repo) == before  # folders and staging files included
        assert not git(repo, "status", "--porcelain", "--ignored")


def test_update_works_afterwards(
    fixture: tuple[str, Path], template_v2: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    name, repo = fixture
    args = [*EXTRA.get(name, []), "--src", str(template_v2), "--to", "v1.0.0"]
    assert run_retrofit(repo, *args) == 0
    git_save(repo, "pipeproof retrofit")
    state = snapshot(repo)
    assert main(["update", str(repo)]) == 0, capsys.readouterr()
    assert (repo / "SECURITY.md").is_file()
    assert "1111111111111111111111111111111111111111 # v7.0.2" in (repo / ".github/workflows/pr-checks.yml").read_text()
    answers_name = ".pipeproof-answers.yml" if name == "go-terraform" else ".copier-answers.yml"
    pipeproof_workflows = {
        f".github/workflows/{w}.yml"
        for w in (
            "pr-checks",
            "deploy",
            "promote",
            "rollback-drill",
            "audit-log-export",
            "protect-check",
            "evidence-verify",
        )
    }
    after = snapshot(repo)
    changed = {rel for rel in state if after.get(rel) != state[rel]}
    assert changed <= {answers_name, *pipeproof_workflows}, changed  # the team's files, CI and answers untouched


def test_detection_reports_every_language_and_kind_of_iac(tmp_path: Path) -> None:
    repo = tmp_path / "mono"
    build_file_tree(
        repo,
        {
            "requirements-dev.txt": "pytest\n",
            "tools/gen.py": "",
            "web/package.json": "{}\n",
            **{f"web/src/c{i}.ts": "" for i in range(3)},
            "charts/web/Chart.yaml": "apiVersion: v2\nname: web\n",
            "cfn/stack.yaml": "AWSTemplateFormatVersion: '2010-09-09'\nResources: {}\n",
            "ops/Containerfile": "FROM scratch\n",
            "node_modules/x/go.mod": "module x\n",  # dependency folders are not the project
        },
    )
    git_save(repo, "mono")
    found = detect.suggest(repo)
    assert found.languages == [("node", "web/package.json"), ("python", "requirements-dev.txt")]
    assert found.answers["language"] == "node"
    assert found.answers["iac"] == ["kubernetes", "cloudformation"]
    assert found.answers["containers"] is True and found.why["containers"] == "ops/Containerfile"
    assert found.answers["default_branch"] == "main" and "platform" not in found.answers
    git(repo, "remote", "add", "origin", "git@gitlab.com:acme/mono.git")
    git(repo, "checkout", "-q", "-b", "trunk")
    found = detect.suggest(repo)
    assert found.answers["platform"] == "gitlab" and found.why["platform"] == "git remote git@gitlab.com:acme/mono.git"
    assert found.answers["default_branch"] == "trunk"


BAD = {
    "not-a-git-repo": "not in a git repository",
    "bare-repo": "bare git repository",
    "unreadable-file": ".pre-commit-config.yaml: cannot read it",
    "invalid-precommit-yaml": ".pre-commit-config.yaml:4: not valid YAML",
    "symlink-outside": "outside the repository",
    "symlinked-folder-outside": "outside the repository",
    "newer-answers": "upgrade pipeproof to 99.0.0",
    "gitlab-bad-tier": "'gitlab_tier'",
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input_exits_2_and_changes_nothing(case: str, tmp_path: Path) -> None:
    repo = (node_gitlab if case.startswith("gitlab") else python_service)(tmp_path / "repo")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "hooks.yaml").write_text("repos: []\n")
    target, env = repo, dict(os.environ)
    if case == "not-a-git-repo":
        shutil.rmtree(repo / ".git")
    elif case == "bare-repo":
        target = tmp_path / "repo.git"
        git(tmp_path, "clone", "-q", "--bare", str(repo), str(target))
    elif case == "unreadable-file":
        (repo / ".pre-commit-config.yaml").chmod(0)
    elif case == "invalid-precommit-yaml":
        build_file_tree(repo, {".pre-commit-config.yaml": "repos:\n  - repo: x\n    hooks: [unclosed\n"})
    elif case == "symlink-outside":
        (repo / ".pre-commit-config.yaml").unlink()
        (repo / ".pre-commit-config.yaml").symlink_to(outside / "hooks.yaml")
    elif case == "symlinked-folder-outside":
        shutil.rmtree(repo / ".github")
        (repo / ".github").symlink_to(outside)
    elif case == "newer-answers":
        build_file_tree(
            repo, {".copier-answers.yml": "_commit: v99.0.0\n_src_path: https://github.com/pipeproof/pipeproof\n"}
        )
    state, outside_state = snapshot(target), snapshot(outside)
    argv = [sys.executable, "-m", "generator", "retrofit", str(target), "--defaults"]
    if case == "gitlab-bad-tier":
        argv += ["--data", "gitlab_tier=gold"]
    if case == "unreadable-file" and os.geteuid() == 0:
        # root reads any file: drop the capabilities that let it, so the permission bits count.
        argv = ["setpriv", "--inh-caps=-all", "--bounding-set=-dac_override,-dac_read_search", *argv]
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=ROOT, timeout=300)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert BAD[case] in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    assert snapshot(target) == state and snapshot(outside) == outside_state


def test_without_a_terminal_or_defaults_it_names_the_questions_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = go_terraform(tmp_path / "ledger")
    state = snapshot(repo)
    assert main(["retrofit", str(repo), "--data", "required_approvals=3"]) == 2
    err = capsys.readouterr().err
    assert "no terminal" in err and "project_name" in err and "required_approvals," not in err
    assert snapshot(repo) == state


def test_interactively_the_detected_answers_are_the_defaults_and_the_user_confirms(tmp_path: Path) -> None:
    from tests.test_new import _drive

    repo = go_terraform(tmp_path / "ledger")
    code, out = _drive(repo, [b"\r"] * 30, ("retrofit",))  # Enter: every default, then yes to writing
    assert code == 0, out[-2000:]
    assert "Main language" in out and "Write these changes?" in out
    answers_text = (repo / ".pipeproof-answers.yml").read_text()
    assert "language: go" in answers_text and "- terraform" in answers_text and "project_name: ledger" in answers_text
