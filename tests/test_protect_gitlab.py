"""`pipeproof protect` on GitLab: the `.gitlab/settings/` payloads against a stateful GitLab REST v4 on 127.0.0.1."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from generator.cli import main
from tests.fakes.gitlab_settings import FakeGitLab

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "gitlab-settings"
TOKEN = "glpat-protectTestToken0123456789"
PROJECT = "acme/platform/shop"


@pytest.fixture
def fake() -> Any:
    server = FakeGitLab(project=PROJECT, token=TOKEN)
    server.page_size = 1
    server.add_group("acme/security")
    server.add_member("root-admin", 50)
    server.add_member("maria", 40)
    server.add_member("dev", 30)
    with server:
        yield server


@pytest.fixture
def run(fake: FakeGitLab, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("GITLAB_TOKEN", TOKEN)
    monkeypatch.setattr("generator.protect.client.time.sleep", lambda s: None)
    outputs: list[str] = []

    def go(action: str, *extra: str, tier: str = "premium") -> tuple[int, str, str]:
        tree = tmp_path / tier
        if not tree.exists():
            shutil.copytree(FIXTURES / tier, tree)
        code = main(["protect", action, str(tree), "--repo", PROJECT, "--api-url", fake.url, *extra])
        out, err = capsys.readouterr()
        outputs.extend([out, err])
        return code, out, err

    go.outputs = outputs  # type: ignore[attr-defined]
    return go


def failing(out: str) -> set[str]:
    return {r["id"] for r in json.loads(out)["results"] if r["status"] == "fail"}


def test_apply_then_check_is_clean_and_idempotent(run: Any, fake: FakeGitLab) -> None:
    code, out, err = run("apply")
    assert code == 0, err
    branch = fake.protected["main"]
    assert [lv["access_level"] for lv in branch["push_access_levels"]] == [0]
    assert branch["code_owner_approval_required"] is True
    assert fake.settings["merge_method"] == "ff" and fake.approvals["merge_requests_author_approval"] is False
    assert fake.environments["production"]["approval_rules"][0]["group_id"] == fake.groups["acme/security"]["id"]
    assert [r["approvals_required"] for r in fake.rules.values()] == [2]
    code, out, err = run("check", "--format", "json")
    assert code == 0, out + err
    writes = len(fake.writes())
    code, out, err = run("apply")
    assert code == 0 and "no changes" in out and len(fake.writes()) == writes


def test_changed_levels_unprotect_and_protect_again(run: Any, fake: FakeGitLab) -> None:
    assert run("apply")[0] == 0
    fake.protected["main"]["push_access_levels"][0]["access_level"] = 30  # developers may push directly
    code, out, err = run("check", "--format", "json")
    assert code == 1 and failing(out) == {"PP-BRANCH-01"}
    fake.requests.clear()
    code, out, err = run("apply")
    assert code == 0, err
    writes = [(r.method, r.path) for r in fake.writes()]
    assert writes == [
        ("DELETE", "/projects/acme%2Fplatform%2Fshop/protected_branches/main"),
        ("POST", "/projects/acme%2Fplatform%2Fshop/protected_branches"),
    ]
    assert not [r for r in fake.writes() if r.method == "PATCH"]  # PATCH cannot change the levels
    assert run("check")[0] == 0


@pytest.mark.parametrize(
    ("weaken", "control"),
    [
        pytest.param(lambda f: f.protected["main"].update(allow_force_push=True), "PP-BRANCH-05", id="force-push"),
        pytest.param(lambda f: f.approvals.update(reset_approvals_on_push=False), "PP-BRANCH-03", id="stale-approvals"),
        pytest.param(
            lambda f: next(iter(f.rules.values())).update(approvals_required=1), "PP-BRANCH-01", id="approvals-lowered"
        ),
        pytest.param(
            lambda f: f.environments["production"].update(approval_rules=[]), "PP-DEPLOY-01", id="env-without-approvers"
        ),
        pytest.param(
            lambda f: f.settings.update(allow_merge_on_skipped_pipeline=True),
            "PP-BRANCH-04",
            id="skipped-pipeline-merges",
        ),
    ],
)
def test_manual_weakening_is_drift_on_the_right_control(run: Any, fake: FakeGitLab, weaken: Any, control: str) -> None:
    assert run("apply")[0] == 0
    weaken(fake)
    code, out, err = run("check", "--format", "json")
    assert code == 1 and failing(out) == {control}
    assert run("apply")[0] == 0 and run("check")[0] == 0


def test_dry_run_sends_nothing(run: Any, fake: FakeGitLab) -> None:
    code, out, err = run("apply", "--dry-run")
    assert code == 0, err
    assert fake.requests == []
    assert (
        "POST /projects/acme%2Fplatform%2Fshop/protected_environments "
        '{"approval_rules": [{"group_id": "<id of group acme/security>"' in out
    )
    assert "PUT /projects/acme%2Fplatform%2Fshop {" in out


def test_unresolvable_placeholder_applies_nothing_more(run: Any, fake: FakeGitLab) -> None:
    fake.groups.clear()
    code, out, err = run("apply")
    assert code == 1 and "group 'acme/security' does not exist" in err
    assert fake.writes() == []


def test_403_mid_apply_partial_report(run: Any, fake: FakeGitLab) -> None:
    fake.fail(r"/projects/[^/]+/approvals", 403, "403 Forbidden", method="POST")
    code, out, err = run("apply")
    assert code == 1
    assert (
        "applied 2 of 6 changes, then stopped" in err
        and "FAILED:      POST /projects/acme%2Fplatform%2Fshop/approvals" in err
    )
    assert "not applied: POST /projects/acme%2Fplatform%2Fshop/approval_rules" in err


def test_premium_payloads_on_a_free_namespace_say_so(run: Any, fake: FakeGitLab) -> None:
    fake.tier = "free"
    code, out, err = run("check")
    assert code == 1 and "not available on this plan" in err


def test_free_payloads_apply_on_free(run: Any, fake: FakeGitLab) -> None:
    fake.tier = "free"
    code, out, err = run("apply", tier="free")
    assert code == 0, err
    assert run("check", tier="free")[0] == 0


def test_429_is_retried_and_export_has_the_access_review(run: Any, fake: FakeGitLab, tmp_path: Path) -> None:
    fake.fail(r"/projects/[^/]+", 429, "Retry later", headers={"Retry-After": "2"}, times=1)
    assert run("apply")[0] == 0
    assert len(fake.calls(r"/projects/acme%2Fplatform%2Fshop")) >= 3  # GET retried, then PUT
    code, out, err = run("export", "--output", str(tmp_path / "ev"))
    assert code == 0, err
    [path] = (tmp_path / "ev" / "protect" / "gitlab" / "acme" / "platform").rglob("protect-*.json")
    snapshot = json.loads(path.read_text())
    assert snapshot["account"] == "protect-bot" and snapshot["diff"]["drift"] == {}
    review = snapshot["access_review"]
    assert review["admins"] == ["root-admin"] and review["maintainers"] == ["maria"]
    assert {m["username"] for m in review["members"]} == {"root-admin", "maria", "dev"}  # over 3 pages
    assert review["bypass_actors"] == [
        {
            "branch": "main",
            "right": "unprotect_access_levels",
            "access_level": 40,
            "access_level_description": "Maintainers",
        }
    ]


def test_token_never_printed(run: Any, fake: FakeGitLab, tmp_path: Path) -> None:
    fake.fail(r"/projects/[^/]+/approval_rules", 400, f"token {TOKEN} rejected", method="POST")
    run("apply", "--dry-run")
    run("apply")
    run("check", "--format", "sarif")
    run("export", "--output", str(tmp_path / "ev"))
    fake.fail(r"/projects/[^/]+", 401, "401 Unauthorized")
    run("check")
    everything = "".join(run.outputs) + "".join(p.read_text() for p in (tmp_path / "ev").rglob("*") if p.is_file())
    assert "***" in everything and TOKEN not in everything


def test_a_rejected_request_shows_gitlabs_message(run: Any, fake: FakeGitLab) -> None:
    fake.rules[5] = {"id": 5, "name": "legacy", "approvals_required": 0}
    fake.fail(r"/projects/[^/]+/approval_rules", 400, "name has already been taken", method="POST")
    code, out, err = run("apply")
    assert code == 1 and "answered 400: name has already been taken" in err


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: d.update(method="PATCH"), "method 'PATCH' is not allowed: POST or PUT"),
        (lambda d: d.pop("body"), "`body` is missing"),
        (lambda d: d["upsert"].update(kind="merge"), "upsert.kind 'merge' is not allowed: update, replace, by-name"),
        (lambda d: d.update(path="/groups/1"), "path '/groups/1' is not allowed: it starts with /projects/:id"),
    ],
)
def test_a_bad_payload_is_a_usage_error_naming_file_and_key(
    run: Any, fake: FakeGitLab, tmp_path: Path, edit: Any, message: str
) -> None:
    tree = tmp_path / "premium"
    shutil.copytree(FIXTURES / "premium", tree)
    path = tree / ".gitlab/settings/protected-branch.json"
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))
    code, out, err = run("apply")
    assert code == 2 and f".gitlab/settings/protected-branch.json: {message}" in err
    assert fake.requests == []


PIPELINE = """\
# A pipeline in the shape pipeproof renders: scheduled jobs keyed on PIPEPROOF_SCHEDULE.
stages: [evidence]
audit-export:
  stage: evidence
  rules:
    - if: $CI_PIPELINE_SOURCE == "schedule" && $PIPEPROOF_SCHEDULE == "audit-export"
  script: [./.gitlab/scripts/audit-export.sh]
rollback-drill:
  stage: evidence
  rules:
    - if: $CI_PIPELINE_SOURCE == "schedule" && ${PIPEPROOF_SCHEDULE} == 'rollback-drill'
  script: [./scripts/rollback.sh]
"""


def test_the_schedules_the_pipeline_expects_are_created_once(run: Any, fake: FakeGitLab, tmp_path: Path) -> None:
    tree = tmp_path / "premium"
    shutil.copytree(FIXTURES / "premium", tree)
    (tree / ".gitlab-ci.yml").write_text(PIPELINE)
    code, out, err = run("apply", "--dry-run")
    assert code == 0 and fake.requests == []
    assert "POST /projects/acme%2Fplatform%2Fshop/pipeline_schedules/{schedule}/variables" in out
    code, out, err = run("apply")
    assert code == 0, err
    made = {s["description"]: s for s in fake.schedules.values()}
    assert made["pipeproof audit-export"]["cron"] == "17 3 * * *" and made["pipeproof audit-export"]["ref"] == "main"
    assert made["pipeproof rollback-drill"]["variables"][0] == {
        "key": "PIPEPROOF_SCHEDULE",
        "variable_type": "env_var",
        "value": "rollback-drill",
        "raw": False,
    }
    assert run("apply")[1].startswith("no changes")
    made["pipeproof audit-export"]["active"] = False  # someone paused the daily export
    code, out, err = run("check", "--format", "json")
    assert code == 1 and failing(out) == {"PP-EVID-04"}
    assert run("apply")[0] == 0 and made["pipeproof audit-export"]["active"] is True
    assert run("check")[0] == 0


def test_audit_live_judges_the_gitlab_settings_on_what_gitlab_enforces(
    run: Any, fake: FakeGitLab, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A whole rendered project (its settings are the premium fixture's), audited with the live settings.
    tree = tmp_path / "project"
    shutil.copytree(Path(__file__).resolve().parent.parent / "golden" / "gitlab-premium-python", tree)
    shutil.rmtree(tree / ".gitlab" / "settings")
    shutil.copytree(FIXTURES / "premium" / ".gitlab" / "settings", tree / ".gitlab" / "settings")
    live = ["audit", str(tree), "--live", "--repo", PROJECT, "--api-url", fake.url, "--format", "json"]

    def audit_live() -> tuple[int, dict[str, Any]]:
        code = main(live)
        out, err = capsys.readouterr()
        return code, {r["id"]: r for r in json.loads(out)["results"]}

    # Nothing applied yet: every setting the files declare is missing live, so those controls fail.
    code, before = audit_live()
    assert code == 1
    assert before["PP-BRANCH-01"]["status"] == "fail" and "drift from the files" in before["PP-BRANCH-01"]["reason"]
    assert before["PP-SCAN-01"]["status"] == "pass" and "live API" not in before["PP-SCAN-01"]["reason"]
    assert run("apply", tier="premium")[0] == 0
    code, after = audit_live()
    judged = [cid for cid, r in after.items() if "the live settings match the files" in r["reason"]]
    assert {"PP-BRANCH-01", "PP-BRANCH-03", "PP-DEPLOY-01"} <= set(judged)
    assert all(after[c]["status"] == "pass" for c in judged), {c: after[c]["status"] for c in judged}
    # A maintainer lets developers push to main: the live verdict fails though the files did not change.
    for level in fake.protected["main"]["push_access_levels"]:
        level["access_level"] = 30
    code, weakened = audit_live()
    assert code == 1 and weakened["PP-BRANCH-01"]["status"] == "fail"
    assert "(the files alone: pass)" in weakened["PP-BRANCH-01"]["reason"]
    assert TOKEN not in json.dumps(weakened)


def test_audit_live_on_gitlab_without_a_token_keeps_the_files_verdicts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GITLAB_TOKEN", raising=False)
    tree = tmp_path / "project"
    shutil.copytree(Path(__file__).resolve().parent.parent / "golden" / "gitlab-premium-python", tree)
    code = main(["audit", str(tree), "--live", "--repo", PROJECT, "--format", "json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "warning: --live:" in err and "the live settings were not read" in err
