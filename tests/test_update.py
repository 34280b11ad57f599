"""`pipeproof update` and `check-update` against throw-away template repositories built from this template.

Each template repository holds this checkout's template tagged v1.0.0 and a changed copy tagged v2.0.0; a
project is rendered at v1.0.0, committed, edited by its "user", then updated with real copier and real git.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from generator.cli import main
from tests.helpers import build_file_tree, edit, git, git_save, render_project, snapshot, template_repo

WORKFLOWS = ".github/workflows"
CHECKOUT_V1 = "actions/checkout@3d3c42e5aac5ba805825da76410c181273ba90b1 # v7.0.1"
CHECKOUT_V2 = "actions/checkout@1111111111111111111111111111111111111111 # v7.0.2"
SEMGREP_CONFIGS = "--config p/owasp-top-ten --config p/cwe-top-25 --config p/java"


def _rename_approvals(tpl: Path, shim: bool) -> None:
    """v2 renames the question required_approvals to min_approvals (with or without a default shim)."""
    default = '"[[ required_approvals | default(2) ]]"' if shim else "2"
    edit(tpl / "copier.yml", "required_approvals:\n  type: int", "min_approvals:\n  type: int")
    edit(
        tpl / "copier.yml",
        "  default: 2\n  validator: >-\n    [% if required_approvals < 1 or required_approvals > 6 %]",
        f"  default: {default}\n  validator: >-\n    [% if min_approvals < 1 or min_approvals > 6 %]",
    )
    for path in (tpl / "templates").rglob("*.jinja"):
        text = path.read_text(encoding="utf-8")
        if "required_approvals" in text:
            path.write_text(text.replace("required_approvals", "min_approvals"), encoding="utf-8")


@pytest.fixture(scope="module")
def templates(template_v2: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Template repositories, each with v1.0.0 (this template) and a different v2.0.0."""
    base = tmp_path_factory.mktemp("templates")
    made = {}

    # v2: a new file, a bumped pin (conftest's template_v2), and a renamed key with a default shim.
    good = made["good"] = base / "good"
    git(base, "clone", "-q", str(template_v2), str(good))
    git(good, "tag", "-d", "v2.0.0")
    _rename_approvals(good, shim=True)
    git_save(good, "v2 with a renamed key", "v2.0.0")

    noshim = made["noshim"] = template_repo(base / "noshim")
    _rename_approvals(noshim, shim=False)
    git_save(noshim, "v2", "v2.0.0")

    nochoice = made["nochoice"] = template_repo(base / "nochoice")  # java is no longer a language choice
    edit(nochoice / "copier.yml", "  choices: [python, node, go, java]", "  choices: [python, node, go]")
    git_save(nochoice, "v2", "v2.0.0")

    weaker = made["weaker"] = template_repo(base / "weaker")  # Semgrep no longer fails the job
    edit(
        next((weaker / "templates").rglob("pr-checks.yml.jinja")),
        "--disable-nosem --error --sarif",
        "--disable-nosem --sarif",
    )
    git_save(weaker, "v2", "v2.0.0")

    moved = made["moved"] = template_repo(base / "moved")  # scripts/deploy.sh moves to deploy/deploy.sh
    shutil.move(
        moved / "templates/scripts/[% if deploy_model != 'argocd' %]deploy.sh[% endif %].jinja",
        moved / "templates/deploy.sh.jinja",
    )
    git_save(moved, "v2", "v2.0.0")
    return made


@pytest.fixture(scope="module")
def rendered(templates: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One committed v1.0.0 render per template, answered with 3 approvals and java (copied per test)."""
    base = tmp_path_factory.mktemp("rendered")
    given = {"required_approvals": 3, "language": "java"}
    return {name: render_project(tpl, base / name / "shop", given) for name, tpl in templates.items()}


@pytest.fixture
def project(rendered: dict[str, Path], tmp_path: Path, request: pytest.FixtureRequest) -> Path:
    name = getattr(request, "param", "good")
    dest = tmp_path / "shop"
    shutil.copytree(rendered[name], dest, symlinks=True)
    return dest


def update(project: Path, *args: str) -> int:
    return main(["update", str(project), *args])


def answers(project: Path) -> str:
    return (project / ".copier-answers.yml").read_text(encoding="utf-8")


def user_edit(project: Path) -> None:
    """The team adds a Semgrep ruleset in pr-checks.yml, far from the pinned actions, and commits."""
    edit(project / WORKFLOWS / "pr-checks.yml", SEMGREP_CONFIGS, SEMGREP_CONFIGS + " --config p/secrets")
    git_save(project, "our ruleset")


def test_update_pulls_new_file_and_pin_keeps_edits_answers_and_renamed_key(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    user_edit(project)
    before = answers(project)
    assert update(project) == 0
    out = capsys.readouterr().out

    assert (project / "SECURITY.md").read_text() == "Report vulnerabilities of shop privately.\n"  # new file
    workflows = {p.name: p.read_text() for p in (project / WORKFLOWS).glob("*.yml")}
    assert all(CHECKOUT_V1 not in text for text in workflows.values())  # the pin reached every workflow
    assert sum(CHECKOUT_V2 in text for text in workflows.values()) == len(workflows) >= 3
    assert "--config p/secrets" in workflows["pr-checks.yml"]  # the user's edit in the same file survives
    after = answers(project)
    assert "min_approvals: 3" in after and "required_approvals" not in after  # renamed, custom value kept
    assert "required_approving_review_count: 3" in (project / ".github/settings.yml").read_text()
    assert "_commit: v2.0.0" in after
    unchanged = [line for line in before.splitlines() if not line.startswith(("_commit", "required_approvals"))]
    assert all(line in after.splitlines() for line in unchanged)  # every other answer kept
    assert "added     SECURITY.md" in out and "actions/checkout v7.0.1 -> v7.0.2" in out
    assert "required_approvals -> min_approvals: 3 kept" in out

    git_save(project, "update to v2")
    state = snapshot(project)
    assert update(project) == 0  # a second update is a no-op
    assert "Already up to date" in capsys.readouterr().out
    assert snapshot(project) == state and not git(project, "status", "--porcelain")


def test_conflicting_edit_exits_1_lists_the_file_and_blocks_the_commit(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = project / WORKFLOWS / "pr-checks.yml"
    text = path.read_text()
    path.write_text(text.replace(CHECKOUT_V1, CHECKOUT_V1 + " reviewed by us", 1))
    git_save(project, "our note on the checkout pin")
    assert update(project) == 1
    out = capsys.readouterr().out
    assert f"{WORKFLOWS}/pr-checks.yml (" in out and "<<<<<<<" in out and "git add" in out
    merged = path.read_text()
    assert "<<<<<<< before updating" in merged and ">>>>>>> after updating" in merged
    assert "reviewed by us" in merged and CHECKOUT_V2 in merged
    assert (project / "SECURITY.md").is_file()  # the rest of the update is there
    assert "UU .github/workflows/pr-checks.yml" in git(project, "status", "--porcelain")
    # The conflict is in git's index as well: a plain `git commit` refuses until it is resolved.
    proc = subprocess.run(["git", "commit", "-qm", "x"], cwd=project, capture_output=True, text=True)
    assert proc.returncode != 0 and "unmerged" in proc.stderr.lower()


def test_new_template_file_clashing_with_yours_is_a_conflict(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    build_file_tree(project, {"SECURITY.md": "# Our policy\nWrite to security@acme.example\n"})
    git_save(project, "our security policy")
    assert update(project) == 1
    assert "SECURITY.md (unmerged)" in capsys.readouterr().out
    text = (project / "SECURITY.md").read_text()
    assert "security@acme.example" in text and "Report vulnerabilities of shop" in text and "<<<<<<<" in text


def test_audit_refuses_answers_from_a_newer_template(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = re.sub(r"_commit: .*", "_commit: v99.0.0", answers(project))
    build_file_tree(
        project, {".copier-answers.yml": text.replace(str(_src(project)), "https://github.com/pipeproof/pipeproof")}
    )
    assert main(["audit", str(project)]) == 2
    err = capsys.readouterr().err
    assert "rendered by pipeproof template v99.0.0" in err and "upgrade pipeproof to 99.0.0" in err


def _src(project: Path) -> str:
    return re.search(r"_src_path: (.*)", answers(project))[1]  # type: ignore[index]


def test_dirty_tree_is_refused_and_untouched(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (project / "notes.txt").write_text("wip\n")
    state = snapshot(project)
    assert update(project) == 2
    err = capsys.readouterr().err
    assert "uncommitted changes" in err and "notes.txt" in err
    assert snapshot(project) == state


def test_dry_run_prints_the_diff_and_writes_nothing(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    state = snapshot(project)
    assert update(project, "--dry-run") == 0
    captured = capsys.readouterr()
    assert "+Report vulnerabilities of shop privately." in captured.out
    assert f"-        uses: {CHECKOUT_V1}" in captured.out and "nothing written" in captured.err
    assert snapshot(project) == state and not git(project, "status", "--porcelain")


@pytest.mark.parametrize(
    ("project", "message", "accepted"),
    [
        pytest.param("noshim", "required_approvals: 3 is no longer recorded", "min_approvals: 2", id="renamed-key"),
        pytest.param("nochoice", "language: 'java' -> 'python'", "language: python", id="removed-choice"),
    ],
    indirect=["project"],
)
def test_silent_answer_change_is_refused_unless_accepted(
    project: Path, capsys: pytest.CaptureFixture[str], message: str, accepted: str
) -> None:
    state = snapshot(project)
    assert update(project) == 1
    err = capsys.readouterr().err
    assert message in err and "without being asked" in err and "--accept-weakening" in err
    assert snapshot(project) == state
    assert update(project, "--accept-weakening") == 0
    assert accepted in answers(project)


@pytest.mark.parametrize("project", ["weaker"], indirect=True)
def test_control_that_would_fail_is_refused_unless_accepted(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    state = snapshot(project)
    assert update(project) == 1
    err = capsys.readouterr().err
    assert "PP-SCAN-01 passes now and would fail" in err and "nothing written" in err
    assert snapshot(project) == state
    assert update(project, "--accept-weakening") == 0
    assert "--disable-nosem --sarif" in (project / WORKFLOWS / "pr-checks.yml").read_text()


@pytest.mark.parametrize("project", ["moved"], indirect=True)
def test_moved_file_with_user_edits_is_kept_and_reported(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    edit(project / "scripts/deploy.sh", "exit 1", "kubectl apply -f k8s/  # ours\nexit 0", count=0)
    git_save(project, "our deploy")
    assert update(project) == 1
    out = capsys.readouterr().out
    assert "scripts/deploy.sh (removed-edited)" in out and "deploy.sh" in out
    assert "# ours" in (project / "scripts/deploy.sh").read_text()  # copier alone would delete it
    assert (project / "deploy.sh").is_file()


def test_unedited_removed_file_is_removed(rendered: dict[str, Path], tmp_path: Path) -> None:
    project = tmp_path / "shop"
    shutil.copytree(rendered["moved"], project, symlinks=True)
    assert update(project) == 0
    assert not (project / "scripts/deploy.sh").exists() and (project / "deploy.sh").is_file()


def test_check_update_exits_2_then_0(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check-update", str(project)]) == 2
    assert "v1.0.0 -> v2.0.0" in capsys.readouterr().out
    assert update(project) == 0
    git_save(project, "updated")
    assert main(["check-update", str(project)]) == 0
    assert "up to date" in capsys.readouterr().out


def test_to_picks_a_version_and_unknown_versions_are_refused(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    state = snapshot(project)
    assert update(project, "--to", "9.9.9") == 2
    err = capsys.readouterr().err
    assert "'9.9.9' is not a version" in err and "available: v1.0.0, v2.0.0" in err
    assert snapshot(project) == state
    assert update(project, "--to", "v1.0.0") == 0
    assert "Already up to date" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("setup", "needle"),
    [
        pytest.param("plain-folder", "not in a git repository", id="not-a-git-repo"),
        pytest.param("bare", "bare git repository", id="bare-repo"),
        pytest.param("no-answers", "no pipeproof answers file", id="no-answers-file"),
        pytest.param("newer", "upgrade pipeproof to 99.0.0", id="answers-from-newer-template"),
        pytest.param("bad-yaml", ".copier-answers.yml:", id="malformed-answers"),
    ],
)
def test_bad_input_exits_2_and_changes_nothing(
    project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], setup: str, needle: str
) -> None:
    target = project
    if setup == "plain-folder":
        target = tmp_path / "plain"
        shutil.copytree(project, target, ignore=shutil.ignore_patterns(".git"))
    elif setup == "bare":
        target = tmp_path / "bare.git"
        git(tmp_path, "clone", "-q", "--bare", str(project), str(target))
    elif setup == "no-answers":
        git(project, "rm", "-q", ".copier-answers.yml")
        git_save(project, "drop answers")
    elif setup == "newer":
        text = re.sub(r"_commit: .*", "_commit: v99.0.0", answers(project))
        text = re.sub(r"_src_path: .*", "_src_path: https://github.com/pipeproof/pipeproof", text)
        build_file_tree(project, {".copier-answers.yml": text})
        git_save(project, "from the future")
    elif setup == "bad-yaml":
        build_file_tree(project, {".copier-answers.yml": "_commit: [unclosed\n"})
        git_save(project, "broken")
    state = snapshot(target)
    for command in ("update", "check-update"):
        assert main([command, str(target)]) == 2
        err = capsys.readouterr().err
        assert needle in err and "Traceback" not in err, err
    assert snapshot(target) == state
