"""GitLab answers: what `pipeproof new` accepts and refuses for platform=gitlab (exit 2, nothing written), and
that each tier renders a working alternative rather than a silently weaker pipeline."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from generator.cli import main
from tests.helpers import full_answers, render_scenario
from tests.test_new import assert_refused

GITLAB = ["--defaults", "--data", "platform=gitlab"]


def run_new(dest: Path, *data: str) -> int:
    args = list(GITLAB)
    for item in data:
        args += ["--data", item]
    return main(["new", str(dest), *args])


@pytest.mark.parametrize(
    "handle",
    [
        "acme/security",  # no @
        "@acme security",  # a space
        "@-acme/security",  # starts with a dash
        "@acme//security",  # an empty segment
        "@acme/security.git",  # GitLab reserves .git
        "@acme/security.atom",
        "@acme/security-",  # ends with a dash
        "@acme/sec..team",  # consecutive specials
        "@acme/$(id)",
        "@acme/security\n- injected",
    ],
)
def test_an_invalid_gitlab_group_handle_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], handle: str
) -> None:
    dest = tmp_path / "app"
    code = run_new(dest, f"security_team={handle}")
    assert_refused(capsys, code, dest, "'security_team'", "GitLab group handle")


@pytest.mark.parametrize("handle", ["@acme", "@acme/platform/security", "@my_group.x/sec-team", "@Acme-Corp/Sec"])
def test_gitlab_group_handles_with_subgroups_are_accepted(tmp_path: Path, handle: str) -> None:
    answers = full_answers({"platform": "gitlab", "security_team": handle}, tmp_path / "app")
    assert answers["security_team"] == handle


def test_a_github_team_handle_rule_does_not_apply_on_gitlab(tmp_path: Path) -> None:
    # GitHub team slugs cannot have subgroups; GitLab groups can.
    with pytest.raises(Exception, match="GitHub team handle"):
        full_answers({"platform": "github", "security_team": "@acme/platform/security"}, tmp_path / "app")


def test_automated_production_sync_is_refused_on_gitlab_free(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Free enforces no approval of the promotion merge request: only a deployer's manual sync may take production.
    dest = tmp_path / "app"
    code = run_new(dest, "deploy_model=argocd", "gitlab_tier=free", "argocd_production_automated=true")
    assert_refused(capsys, code, dest, "'argocd_production_automated'", "GitLab Free does not enforce")


@pytest.mark.parametrize(
    ("data", "needles"),
    [
        (["argocd_deployers_group=release managers"], ["'argocd_deployers_group'"]),
        (["argocd_developers_group=dev,ops"], ["'argocd_developers_group'"]),
        (["argocd_repo_url=http://gitlab.com/acme/app.git"], ["'argocd_repo_url'", "https:// or ssh"]),
        (["argocd_sync_timezone=Mars/Olympus"], ["'argocd_sync_timezone'"]),
        (["argocd_deny_schedule=61 * * * *"], ["'argocd_deny_schedule'"]),
        (["containers=false"], ["'deploy_model'", "containers"]),
    ],
)
def test_bad_argocd_answers_are_refused_on_gitlab(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], data: list[str], needles: list[str]
) -> None:
    dest = tmp_path / "app"
    assert_refused(capsys, run_new(dest, "deploy_model=argocd", *data), dest, *needles)


def test_argocd_on_gitlab_premium_may_sync_production_automatically(tmp_path: Path) -> None:
    dest = tmp_path / "app"
    assert run_new(dest, "deploy_model=argocd", "gitlab_tier=premium", "argocd_production_automated=true") == 0
    app = yaml.safe_load((dest / "argocd/applications/production.yaml").read_text())
    assert app["spec"]["syncPolicy"]["automated"] == {"prune": False, "selfHeal": True}
    owners = (dest / ".gitlab/CODEOWNERS").read_text()
    assert "/argocd/environments/production/ @" in owners
    assert not (dest / ".gitlab/settings/protected-environments").exists()  # CI deploys nothing


@pytest.mark.parametrize(
    ("data", "needles"),
    [
        (["gitlab_tier=gold"], ["'gitlab_tier'", "free, premium, ultimate"]),
        (["gitlab_host=https://gitlab.example.com"], ["'gitlab_host'", "lowercase host name"]),
        (["gitlab_host=gitlab.example.com/x"], ["'gitlab_host'"]),
        (["gitlab_host=GitLab.Example.com"], ["'gitlab_host'"]),
    ],
)
def test_bad_gitlab_answers_exit_2_and_write_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], data: list[str], needles: list[str]
) -> None:
    dest = tmp_path / "app"
    assert_refused(capsys, run_new(dest, *data), dest, *needles)


def test_the_self_managed_host_is_used_by_the_config_and_the_api_calls(tmp_path: Path) -> None:
    tree = tmp_path / "gitlab-ultimate-node-selfmanaged"
    render_scenario("gitlab-ultimate-node-selfmanaged", tree)
    ci = yaml.safe_load((tree / ".gitlab-ci.yml").read_text())
    assert ci["variables"]["GITLAB_API_URL"] == "https://gitlab.example.com/api/v4"
    for path in (tree / ".gitlab/settings").rglob("*.json"):
        assert json.loads(path.read_text())["api"] == "https://gitlab.example.com/api/v4", path
    assert "gitlab.com" not in (tree / ".gitlab-ci.yml").read_text().replace("gitlab.example.com", "")
    # The OIDC token's audience is the instance the evidence store trusts.
    assert ci["evidence"]["id_tokens"]["EVIDENCE_ID_TOKEN"]["aud"] == "https://gitlab.example.com"


@pytest.mark.parametrize("tier", ["free", "premium", "ultimate"])
def test_each_tier_renders_a_working_alternative(tmp_path: Path, tier: str) -> None:
    from generator import render

    dest = tmp_path / "app"
    answers = full_answers({"platform": "gitlab", "gitlab_tier": tier, "security_team": "@acme/security"}, dest)
    render.copy(dest, answers)
    settings = {
        p.relative_to(dest / ".gitlab/settings").as_posix() for p in (dest / ".gitlab/settings").rglob("*.json")
    }
    ci = yaml.safe_load((dest / ".gitlab-ci.yml").read_text())
    production = ci["deploy-production"]
    script = "\n".join(production["script"])
    controls = (dest / "compliance/CONTROLS.md").read_text()
    branch = json.loads((dest / ".gitlab/settings/protected-branch.json").read_text())["body"]
    # On every tier: a manual job on the protected default branch, serialised, that verifies every merge
    # request's approvals since the last deploy.
    assert production["rules"] == [
        {
            "if": '$CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH && $CI_PIPELINE_SOURCE == "push"',
            "when": "manual",
            "allow_failure": False,
        }
    ]
    assert production["resource_group"] == "production"
    assert production["environment"]["deployment_tier"] == "production"
    assert "review-gate.sh" in script
    assert branch["push_access_level"] == 0 and branch["allow_force_push"] is False
    if tier == "free":
        # Premium-only payloads are not rendered (GitLab Free would reject them), and the files say what
        # replaces them.
        assert settings == {"project.json", "protected-branch.json"}
        assert "code_owner_approval_required" not in branch
        assert "approval-check.sh" not in script
        assert "**not on GitLab Free**" in controls
        assert ci["audit-export"]["variables"]["EXPORT_KIND"] == "events"
    else:
        assert settings == {
            "project.json",
            "protected-branch.json",
            "approval-settings.json",
            "approval-rules/default.json",
            "protected-environments/production.json",
            "protected-environments/staging.json",
        }
        assert branch["code_owner_approval_required"] is True
        assert "approval-check.sh" in script
        assert ci["audit-export"]["variables"]["EXPORT_KIND"] == "audit_events"
        env = json.loads((dest / ".gitlab/settings/protected-environments/production.json").read_text())["body"]
        assert env["approval_rules"] == [{"group_id": {"$group": "acme/security"}, "required_approvals": 1}]
        assert ("**not on GitLab Premium**" in controls) == (tier == "premium")


@pytest.mark.parametrize("tier", ["free", "ultimate"])
def test_next_steps_on_gitlab_speak_gitlab(tmp_path: Path, capsys: pytest.CaptureFixture[str], tier: str) -> None:
    dest = tmp_path / "app"
    assert run_new(dest, f"gitlab_tier={tier}") == 0
    out = capsys.readouterr()
    text = out.out + out.err
    steps = text[text.index("Next steps:") :]
    assert "GitHub" not in steps.replace("GitHub: @org/team", ""), steps
    assert ".github/" not in steps
    assert "PIPEPROOF_API_TOKEN" in steps and "PIPEPROOF_SCHEDULE=audit-export" in steps
    assert ".gitlab/settings/" in steps
    if tier == "free":
        assert "needs GitLab Premium; PP-DEPLOY-01, 02" in steps
    else:
        assert "needs GitLab" not in steps
