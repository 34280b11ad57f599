"""Every repository script a rendered workflow, action or GitLab job runs is in the tree (generator/script_refs.py,
the `pipeproof script references` check of `pipeproof validate`). A missing one fails only at run time, on the
platform: no linter reads `run:` for it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from generator import script_refs, validate

GOLDEN = Path(__file__).parent.parent / "golden"
TREES = sorted(p.name for p in GOLDEN.iterdir() if p.is_dir())


@pytest.mark.parametrize("scenario", TREES)
def test_every_script_a_golden_pipeline_runs_exists(scenario: str) -> None:
    assert script_refs.check(GOLDEN / scenario) == []


@pytest.mark.parametrize(
    ("scenario", "script", "caller"),
    [
        ("python-defaults", "scripts/healthcheck.sh", ".github/workflows/deploy.yml"),
        ("argocd-team-private", "scripts/evidence-manifest.sh", ".github/workflows/argocd-sync.yml"),
        ("gitlab-premium-python", ".gitlab/scripts/review-gate.sh", ".gitlab-ci.yml"),
        ("gitlab-argocd-premium", ".gitlab/scripts/promotion-check.sh", ".gitlab-ci.yml"),
        ("python-defaults", ".github/actions/ship-evidence/action.yml", ".github/workflows/deploy.yml"),
        ("python-defaults", ".github/workflows/pr-checks.yml", ".github/workflows/deploy.yml"),
    ],
)
def test_a_missing_script_is_reported_where_it_is_called(
    scenario: str, script: str, caller: str, tmp_path: Path
) -> None:
    tree = tmp_path / scenario
    shutil.copytree(GOLDEN / scenario, tree)
    (tree / script).unlink()
    called = script.removesuffix("/action.yml")  # a local action is called by its folder
    found = script_refs.check(tree)
    assert [m for m in found if m.script == called and m.path == caller], found
    line = (tree / caller).read_text().splitlines()[found[0].line - 1]
    assert called in line


def test_a_path_outside_the_repository_or_a_word_is_not_a_call(tmp_path: Path) -> None:
    (tmp_path / ".github/workflows").mkdir(parents=True)
    (tmp_path / ".github/workflows/ci.yml").write_text(
        "on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n"
        "      - run: echo see scripts/notes.sh for details\n"
        "      - run: bash ../other/scripts/x.sh\n"
        "      - run: KEY=1 scripts/real.sh && ./scripts/gone.sh\n"
    )
    (tmp_path / "scripts").mkdir()
    (tmp_path / "scripts/real.sh").write_text("#!/bin/sh\n")
    assert [m.script for m in script_refs.check(tmp_path)] == ["scripts/gone.sh"]


def test_validate_names_the_check() -> None:
    assert "pipeproof script references" in validate.tools(GOLDEN / "python-defaults")


def test_gitlab_reference_tags_and_local_includes_are_read(tmp_path: Path) -> None:
    (tmp_path / "ci").mkdir()
    (tmp_path / ".gitlab-ci.yml").write_text(
        "include:\n  - local: ci/jobs.yml\n"
        ".base:\n  script:\n    - .gitlab/scripts/gone.sh\n"
        "a:\n  script: !reference [.base, script]\n"
    )
    (tmp_path / "ci/jobs.yml").write_text("b:\n  script:\n    - bash scripts/also-gone.sh\n")
    found = {(m.path, m.script) for m in script_refs.check(tmp_path)}
    assert found == {(".gitlab-ci.yml", ".gitlab/scripts/gone.sh"), ("ci/jobs.yml", "scripts/also-gone.sh")}
