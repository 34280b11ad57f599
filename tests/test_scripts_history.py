"""The rendered scripts that read history run against a stand-in API and a real git repository (issue 7).

review-gate.sh (every pull request since the last production commit), last-production.sh (that commit) and
audit-log-export.sh (cursor pagination); each fails closed.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fakes import github_api as gh
from tests.fakes.github_api import FakeGitHub
from tests.script_runner import REPO, GitRepo, Result, Runner, fake_github


@pytest.fixture(scope="module")
def runner(tmp_path_factory: pytest.TempPathFactory) -> Runner:
    return Runner.render(tmp_path_factory)


@pytest.fixture
def api() -> Iterator[FakeGitHub]:
    yield from fake_github()


# --- review-gate.sh ----------------------------------------------------------------------------------------


class History:
    """main: PROD (deployed) -> c1 (PR 11) -> merge of a feature branch (PR 12, two commits) -> c3 (PR 13)."""

    def __init__(self, root: Path) -> None:
        self.repo = GitRepo(root / "repo")
        self.prod = self.repo.commit("what production runs")
        self.c1 = self.repo.commit()
        self.repo.git("checkout", "--quiet", "-b", "feature")
        self.b1 = self.repo.commit()
        self.b2 = self.repo.commit()
        self.repo.git("checkout", "--quiet", "main")
        self.repo.git("merge", "--quiet", "--no-ff", "-m", "Merge pull request #12", "feature")
        self.c2 = self.repo.git("rev-parse", "HEAD")
        self.c3 = self.repo.commit()

    def pulls(self, api: FakeGitHub, approvals: dict[int, list[tuple[str, str]]] | None = None) -> None:
        """PRs 11 to 13 by alice, each approved by carol on its head, unless APPROVALS says otherwise."""
        for number, merge, head, commits in (
            (11, self.c1, self.c1, [self.c1]),
            (12, self.c2, self.b2, [self.b1, self.b2, self.c2]),
            (13, self.c3, self.c3, [self.c3]),
        ):
            pr = gh.pull(number, author="alice", head_sha=head, merge_commit_sha=merge)
            given = (approvals or {}).get(number, [("carol", "APPROVED")])
            reviews = [
                gh.review(number * 10 + i, login, state, head, pr=number) for i, (login, state) in enumerate(given)
            ]
            api.add_pull(pr, commits, reviews)


@pytest.fixture
def history(tmp_path: Path) -> History:
    return History(tmp_path)


def review_gate(runner: Runner, api: FakeGitHub, history: History, tmp_path: Path, **env: str | None) -> Result:
    return runner.run(
        ".github/scripts/review-gate.sh",
        cwd=history.repo.path,
        **{
            "GITHUB_API_URL": api.url,
            "REPO": REPO,
            "SHA": history.c3,
            "PREVIOUS_SHA": history.prod,
            "DEFAULT_BRANCH": "main",
            "MIN_APPROVALS": "1",
            "PRS_OUT": str(tmp_path / "prs.json"),
            "GITHUB_OUTPUT": str(tmp_path / "output"),
            **env,
        },
    )


def prs(tmp_path: Path) -> list[dict[str, object]]:
    return json.loads((tmp_path / "prs.json").read_text())


def test_review_gate_records_every_pull_request_since_production(
    runner: Runner, api: FakeGitHub, history: History, tmp_path: Path
) -> None:
    history.pulls(api)
    result = review_gate(runner, api, history, tmp_path)
    assert result.returncode == 0, result
    records = prs(tmp_path)
    assert [p["number"] for p in records] == [11, 12, 13]
    twelve = records[1]
    assert twelve == {
        "number": 12,
        "title": "Change 12",
        "html_url": "https://github.com/o/r/pull/12",
        "author": "alice",
        "merged_by": "merger",
        "merged_at": "2024-05-01T10:00:00Z",
        "merge_commit_sha": history.c2,
        "head_sha": history.b2,
        "base": "main",
        "commits": [history.c2],
        "reviews": [
            {
                "id": 120,
                "user": "carol",
                "state": "APPROVED",
                "commit_id": history.b2,
                "submitted_at": "2024-05-01T09:00:00Z",
            }
        ],
        "approvers": ["carol"],
    }
    asked = {r.path.split("/")[5] for r in api.calls(rf"/repos/{REPO}/commits/\w+/pulls")}
    assert asked == {history.c1, history.c2, history.c3}, "only first-parent commits are looked up"
    assert (tmp_path / "output").read_text() == "pull_requests=11,12,13\n"


def test_review_gate_fails_on_a_commit_without_pull_request(
    runner: Runner, api: FakeGitHub, history: History, tmp_path: Path
) -> None:
    history.pulls(api)
    pushed = history.repo.commit("pushed straight to main")
    result = review_gate(runner, api, history, tmp_path, SHA=pushed)
    assert result.returncode == 1, result
    assert f"commit {pushed} reached main without a pull request" in result.errors
    assert [p["number"] for p in prs(tmp_path)] == [11, 12, 13], "what was established is still written"


def test_review_gate_ignores_a_pull_request_into_another_branch(
    runner: Runner, api: FakeGitHub, history: History, tmp_path: Path
) -> None:
    history.pulls(api)
    sneaky = history.repo.commit()
    pr = gh.pull(14, author="alice", head_sha=sneaky, merge_commit_sha=sneaky, base="release")
    api.add_pull(pr, [sneaky], [gh.review(140, "carol", "APPROVED", sneaky, pr=14)])
    result = review_gate(runner, api, history, tmp_path, SHA=sneaky)
    assert result.returncode == 1, result
    assert f"commit {sneaky} reached main without a pull request" in result.errors


@pytest.mark.parametrize(
    ("reviews", "count"),
    [
        ([], 0),
        ([("alice", "APPROVED")], 0),
        ([("carol", "APPROVED"), ("carol", "DISMISSED")], 0),
        ([("carol", "APPROVED"), ("dave", "CHANGES_REQUESTED")], 1),
    ],
    ids=["unreviewed", "author-approved", "dismissed", "one-of-two"],
)
def test_review_gate_fails_on_too_few_approvals(
    runner: Runner,
    api: FakeGitHub,
    history: History,
    tmp_path: Path,
    reviews: list[tuple[str, str]],
    count: int,
) -> None:
    history.pulls(api, {12: reviews})
    result = review_gate(runner, api, history, tmp_path, MIN_APPROVALS="2" if count else "1")
    assert result.returncode == 1, result
    assert any(
        e.startswith(f"pull request #12 has {count} approval(s) on its final head commit") for e in result.errors
    )
    assert [p["number"] for p in prs(tmp_path)] == [11, 12, 13]


def test_review_gate_refuses_an_approval_of_an_older_head(
    runner: Runner, api: FakeGitHub, history: History, tmp_path: Path
) -> None:
    history.pulls(api)
    api.reviews[12] = [gh.review(120, "carol", "APPROVED", history.b1, pr=12)]  # b2 was pushed after it
    result = review_gate(runner, api, history, tmp_path, PREVIOUS_SHA=history.c1, SHA=history.c2)
    assert result.returncode == 1, result
    assert f"carol: approved {history.b1}, not the final head {history.b2}" in result.stdout
    assert prs(tmp_path)[0]["approvers"] == []


@pytest.mark.parametrize("rewrite", ["amended", "unknown"])
def test_review_gate_fails_when_history_was_rewritten(
    runner: Runner, api: FakeGitHub, history: History, tmp_path: Path, rewrite: str
) -> None:
    history.pulls(api)
    if rewrite == "amended":
        history.repo.git("checkout", "--quiet", "-b", "old", history.c1)
        previous = history.repo.commit("deployed, then force-pushed away")
        history.repo.git("checkout", "--quiet", "main")
    else:
        previous = "0123456789abcdef0123456789abcdef01234567"
    result = review_gate(runner, api, history, tmp_path, PREVIOUS_SHA=previous)
    assert result.returncode == 1, result
    assert f"the commit production runs, {previous}, is not" in result.errors[0]
    assert "history was rewritten" in result.errors[0]
    assert api.requests == []


def test_review_gate_needs_full_history(runner: Runner, api: FakeGitHub, history: History, tmp_path: Path) -> None:
    shallow = tmp_path / "shallow"
    history.repo.git("clone", "--quiet", "--depth=1", f"file://{history.repo.path}", str(shallow))
    result = runner.run(
        ".github/scripts/review-gate.sh",
        cwd=shallow,
        GITHUB_API_URL=api.url,
        REPO=REPO,
        SHA=history.c3,
        PREVIOUS_SHA=history.prod,
        DEFAULT_BRANCH="main",
        PRS_OUT=str(tmp_path / "prs.json"),
    )
    assert result.returncode == 1, result
    assert "the checkout is shallow" in result.errors[0]


def test_review_gate_without_earlier_deploy_checks_the_commit_itself(
    runner: Runner, api: FakeGitHub, history: History, tmp_path: Path
) -> None:
    history.pulls(api)
    result = review_gate(runner, api, history, tmp_path, PREVIOUS_SHA="")
    assert result.returncode == 0, result
    assert [p["number"] for p in prs(tmp_path)] == [13]


def test_review_gate_redeploying_production_has_nothing_to_check(
    runner: Runner, api: FakeGitHub, history: History, tmp_path: Path
) -> None:
    result = review_gate(runner, api, history, tmp_path, SHA=history.prod)
    assert result.returncode == 0, result
    assert prs(tmp_path) == []
    assert api.requests == []


def test_review_gate_fails_closed_on_an_api_error(
    runner: Runner, api: FakeGitHub, history: History, tmp_path: Path
) -> None:
    history.pulls(api)
    api.fail(rf"/repos/{REPO}/pulls/12/reviews", 503, times=None)
    result = review_gate(runner, api, history, tmp_path, PIPEPROOF_API_ATTEMPTS="2")
    assert result.returncode == 1, result
    assert result.errors == [
        f"GitHub API GET /repos/{REPO}/pulls/12/reviews failed after 2 attempts: HTTP 503: Service Unavailable"
    ]
    assert not (tmp_path / "prs.json").exists(), "a partial list must not pass for the list"


# --- last-production.sh ------------------------------------------------------------------------------------

PRODUCTION = ["a" * 40, "b" * 40, "c" * 40, "d" * 40, "e" * 40]


def last_production(runner: Runner, api: FakeGitHub, tmp_path: Path, **env: str | None) -> Result:
    return runner.run(
        ".github/scripts/last-production.sh",
        **{
            "GITHUB_API_URL": api.url,
            "MODE": "environment",
            "REPO": REPO,
            "GITHUB_OUTPUT": str(tmp_path / "output"),
            **env,
        },
    )


def deploy_history(api: FakeGitHub, newest_states: list[str]) -> None:
    """Deployments 1.. (oldest first) to production, each ending in the given state; staging ones in between."""
    for i, state in enumerate(newest_states, start=1):
        api.deployments.append(gh.deployment(i, PRODUCTION[i - 1]))
        api.deployment_statuses[i] = [
            gh.deployment_status(i * 10, "in_progress"),
            gh.deployment_status(i * 10 + 1, state),
        ]
        api.deployments.append(gh.deployment(100 + i, "f" * 40, "staging"))
        api.deployment_statuses[100 + i] = [gh.deployment_status(1000 + i, "success", "staging")]


def test_last_production_is_the_newest_successful_deployment(runner: Runner, api: FakeGitHub, tmp_path: Path) -> None:
    # Oldest to newest: success, success, failure (rolled back), error, and this run's own, still in progress.
    deploy_history(api, ["success", "success", "failure", "error", "in_progress"])
    result = last_production(runner, api, tmp_path)
    assert result.returncode == 0, result
    assert result.stdout == PRODUCTION[1] + "\n"
    assert (tmp_path / "output").read_text() == f"sha={PRODUCTION[1]}\n"
    assert all(r.arg("environment") == "production" for r in api.calls(rf"/repos/{REPO}/deployments"))
    assert len(api.calls(rf"/repos/{REPO}/deployments")) == 2, "the second page holds the answer; no third"


@pytest.mark.parametrize("states", [[], ["failure", "in_progress"]], ids=["never-deployed", "never-succeeded"])
def test_last_production_none_is_empty(runner: Runner, api: FakeGitHub, tmp_path: Path, states: list[str]) -> None:
    deploy_history(api, states)
    result = last_production(runner, api, tmp_path)
    assert result.returncode == 0, result
    assert result.stdout == "\n"
    assert (tmp_path / "output").read_text() == "sha=\n"


@pytest.mark.parametrize(
    "fault", [rf"/repos/{REPO}/deployments", rf"/repos/{REPO}/deployments/\d+/statuses"], ids=["list", "statuses"]
)
def test_last_production_fails_closed_on_an_api_error(
    runner: Runner, api: FakeGitHub, tmp_path: Path, fault: str
) -> None:
    deploy_history(api, ["success", "in_progress"])
    api.fail(fault, 500, times=None)
    result = last_production(runner, api, tmp_path, PIPEPROOF_API_ATTEMPTS="2")
    assert result.returncode == 1, result
    assert result.stdout == "", "an error must not read as 'never deployed'"
    assert not (tmp_path / "output").exists()


def promotion_repo(tmp_path: Path) -> tuple[GitRepo, str, str]:
    repo = GitRepo(tmp_path / "repo")
    before_file = repo.commit("first")
    with_file = repo.commit("promote", {"deploy/production.json": json.dumps({"sha": PRODUCTION[0]}) + "\n"})
    return repo, before_file, with_file


@pytest.mark.parametrize(
    ("before", "expected"),
    [("with-file", PRODUCTION[0]), ("before-file", ""), ("zeros", ""), ("empty", "")],
)
def test_last_production_from_the_promotion_file(runner: Runner, tmp_path: Path, before: str, expected: str) -> None:
    repo, before_file, with_file = promotion_repo(tmp_path)
    value = {"with-file": with_file, "before-file": before_file, "zeros": "0" * 40, "empty": ""}[before]
    result = runner.run(".github/scripts/last-production.sh", cwd=repo.path, MODE="promotion", BEFORE=value)
    assert result.returncode == 0, result
    assert result.stdout == expected + "\n"


@pytest.mark.parametrize(
    ("content", "message"),
    [("{not json", "is not JSON"), ('{"sha": "main"}', "is not a 40-character commit SHA")],
    ids=["not-json", "not-a-sha"],
)
def test_last_production_refuses_a_malformed_promotion_file(
    runner: Runner, tmp_path: Path, content: str, message: str
) -> None:
    repo = GitRepo(tmp_path / "repo")
    before = repo.commit("promote", {"deploy/production.json": content})
    result = runner.run(".github/scripts/last-production.sh", cwd=repo.path, MODE="promotion", BEFORE=before)
    assert result.returncode == 1, result
    assert message in result.errors[0]


def test_last_production_refuses_a_before_commit_it_does_not_have(runner: Runner, tmp_path: Path) -> None:
    repo, _, _ = promotion_repo(tmp_path)
    result = runner.run(
        ".github/scripts/last-production.sh", cwd=repo.path, MODE="promotion", BEFORE="1234567" * 5 + "12345"
    )
    assert result.returncode == 1, result
    assert "is not in this checkout" in result.errors[0]


# --- audit-log-export.sh -----------------------------------------------------------------------------------

DAY_MS = 86_400_000


@pytest.fixture(scope="module")
def enterprise(tmp_path_factory: pytest.TempPathFactory) -> Runner:
    """The export ships only where the plan has the audit-log API: GitHub Enterprise Cloud."""
    return Runner.render(tmp_path_factory, "enterprise-private")


def export(runner: Runner, api: FakeGitHub, tmp_path: Path, **env: str | None) -> Result:
    """RUNNER is the `enterprise` fixture's."""
    return runner.run(
        ".github/scripts/audit-log-export.sh",
        **{
            "GITHUB_API_URL": api.url,
            "ORG": "acme",
            "SINCE": time.strftime("%Y-%m-%d", time.gmtime(time.time() - 86_400)),
            "OUT": str(tmp_path / "audit.json"),
            "GITHUB_OUTPUT": str(tmp_path / "output"),
            **env,
        },
    )


def test_audit_log_export_follows_the_cursor_over_every_page(
    enterprise: Runner, api: FakeGitHub, tmp_path: Path
) -> None:
    now = int(time.time() * 1000)
    recent = [gh.audit_event(now - i * 60_000, "workflows.completed_workflow_run") for i in range(7)]
    api.audit_log["acme"] = [*recent, gh.audit_event(now - 10 * DAY_MS, "repo.create")]
    result = export(enterprise, api, tmp_path)
    assert result.returncode == 0, result
    assert json.loads((tmp_path / "audit.json").read_text()) == recent
    calls = api.calls(r"/orgs/acme/audit-log")
    assert len(calls) == 4
    assert calls[0].arg("after") is None and all(c.arg("after") for c in calls[1:])
    assert all("%3D" in c.target for c in calls[1:]), "the cursor is passed on as GitHub encoded it"
    assert all(c.arg("include") == "all" and c.arg("phrase", "").startswith("created:>=") for c in calls)
    assert (tmp_path / "output").read_text() == "events=7\n"


def test_audit_log_export_refuses_an_empty_export(enterprise: Runner, api: FakeGitHub, tmp_path: Path) -> None:
    api.audit_log["acme"] = [gh.audit_event(int(time.time() * 1000) - 10 * DAY_MS)]
    result = export(enterprise, api, tmp_path)
    assert result.returncode == 1, result
    assert "came back empty" in result.errors[0]
    assert not (tmp_path / "audit.json").exists()


def test_audit_log_export_fails_where_the_api_does_not_exist(
    enterprise: Runner, api: FakeGitHub, tmp_path: Path
) -> None:
    result = export(enterprise, api, tmp_path)  # not Enterprise Cloud: 404
    assert result.returncode == 1, result
    assert result.errors == ["GitHub API GET /orgs/acme/audit-log failed: HTTP 404: Not Found"]
    assert not (tmp_path / "audit.json").exists()


def test_audit_log_export_fails_on_an_error_mid_export(enterprise: Runner, api: FakeGitHub, tmp_path: Path) -> None:
    now = int(time.time() * 1000)
    api.audit_log["acme"] = [gh.audit_event(now - i * 1000) for i in range(6)]
    api.fail(r"/orgs/acme/audit-log", 502, times=None, skip=1)
    result = export(enterprise, api, tmp_path, PIPEPROOF_API_ATTEMPTS="3")
    assert result.returncode == 1, result
    assert "failed after 3 attempts: HTTP 502" in result.errors[0]
    assert not (tmp_path / "audit.json").exists(), "half an export must not ship"


def test_audit_log_export_refuses_a_bad_date(enterprise: Runner, api: FakeGitHub, tmp_path: Path) -> None:
    assert export(enterprise, api, tmp_path, SINCE="yesterday").returncode == 2
    assert api.requests == []
