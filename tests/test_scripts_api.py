"""The rendered GitHub-API gates run against a stand-in API on 127.0.0.1, and fail closed (issue 7).

api.sh (pagination, retries, errors, where the token goes), check-gate.sh and approval-check.sh.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fakes import github_api as gh
from tests.fakes.github_api import FakeGitHub, Page, Request, Response
from tests.script_runner import REPO, TOKEN, Result, Runner, fake_github

SHA = "3f786850e387550fdab836ed7e6dc881de23001b"
RUN_ID = 30433642
SUITE = 42
PULLS = f"/repos/{REPO}/commits/{SHA}/pulls"


@pytest.fixture(scope="module")
def runner(tmp_path_factory: pytest.TempPathFactory) -> Runner:
    return Runner.render(tmp_path_factory)


@pytest.fixture
def api() -> Iterator[FakeGitHub]:
    yield from fake_github()


def authorised(req: Request) -> bool:
    return req.headers.get("authorization") == f"Bearer {TOKEN}"


# --- api.sh ------------------------------------------------------------------------------------------------


def paginate(runner: Runner, api: FakeGitHub, path: str, *key: str, **env: str | None) -> Result:
    return runner.library("api_paginate", path, *key, GITHUB_API_URL=api.url, **env)


def test_paginate_follows_next_links_to_the_last_page(runner: Runner, api: FakeGitHub) -> None:
    api.commit_pulls[SHA] = [
        gh.simple_pull(gh.pull(n, author="a", head_sha=SHA, merge_commit_sha=SHA)) for n in range(5)
    ]
    result = paginate(runner, api, f"repos/{REPO}/commits/{SHA}/pulls")
    assert result.returncode == 0, result
    assert [p["number"] for p in json.loads(result.stdout)] == [0, 1, 2, 3, 4]
    calls = api.calls(PULLS)
    assert [c.arg("page", "1") for c in calls] == ["1", "2", "3"]
    assert all(authorised(c) and c.arg("per_page") == "100" for c in calls)
    assert all(c.headers["x-github-api-version"] == "2022-11-28" for c in calls)
    assert runner.curl_log.read_text().count("--config -") == 3, "the token reaches curl on stdin, not in argv"


def test_paginate_joins_the_arrays_under_a_key(runner: Runner, api: FakeGitHub) -> None:
    api.check_runs[SHA] = [gh.check_run(i, f"check {i}", SHA, SUITE) for i in range(1, 6)]
    result = paginate(runner, api, f"repos/{REPO}/commits/{SHA}/check-runs?filter=all", "check_runs")
    assert result.returncode == 0, result
    assert sorted(c["id"] for c in json.loads(result.stdout)) == [1, 2, 3, 4, 5]
    assert len(api.requests) == 3


def test_paginate_an_empty_list_is_an_empty_array(runner: Runner, api: FakeGitHub) -> None:
    result = paginate(runner, api, f"repos/{REPO}/commits/{SHA}/pulls")
    assert result.returncode == 0, result
    assert json.loads(result.stdout) == []


def test_paginate_refuses_a_page_of_the_wrong_shape(runner: Runner, api: FakeGitHub) -> None:
    api.check_runs[SHA] = [gh.check_run(1, "x", SHA, SUITE)]
    result = paginate(runner, api, f"repos/{REPO}/commits/{SHA}/check-runs")
    assert result.returncode == 1, result
    assert any("is not a JSON array" in e for e in result.errors), result


def test_ghes_api_prefix(runner: Runner) -> None:
    with FakeGitHub(repo=REPO, page_size=2, token=TOKEN, prefix="/api/v3") as ghes:
        ghes.commit_pulls[SHA] = [
            gh.simple_pull(gh.pull(n, author="a", head_sha=SHA, merge_commit_sha=SHA)) for n in range(3)
        ]
        result = paginate(runner, ghes, f"repos/{REPO}/commits/{SHA}/pulls")
    assert result.returncode == 0, result
    assert len(json.loads(result.stdout)) == 3
    assert all(r.target.startswith("/api/v3/repos/") for r in ghes.requests)


def test_not_found_fails_at_once_naming_method_path_status_and_message(runner: Runner, api: FakeGitHub) -> None:
    result = runner.library("api_get", f"repos/{REPO}/actions/runs/1", GITHUB_API_URL=api.url)
    assert result.returncode == 1, result
    assert result.stdout == ""
    assert result.errors == [f"GitHub API GET /repos/{REPO}/actions/runs/1 failed: HTTP 404: Not Found"]
    assert len(api.requests) == 1


def test_a_server_error_is_retried(runner: Runner, api: FakeGitHub) -> None:
    api.runs[RUN_ID] = gh.workflow_run(RUN_ID, SHA, SUITE)
    api.fail(rf"/repos/{REPO}/actions/runs/\d+", 502)
    result = runner.library("api_get", f"repos/{REPO}/actions/runs/{RUN_ID}", GITHUB_API_URL=api.url)
    assert result.returncode == 0, result
    assert json.loads(result.stdout)["check_suite_id"] == SUITE
    assert len(api.requests) == 2
    assert "HTTP 502: Server Error; retrying" in result.stderr


def test_a_server_error_every_time_fails_after_bounded_attempts(runner: Runner, api: FakeGitHub) -> None:
    api.runs[RUN_ID] = gh.workflow_run(RUN_ID, SHA, SUITE)
    api.fail(rf"/repos/{REPO}/actions/runs/\d+", 500, times=None)
    result = runner.library(
        "api_get", f"repos/{REPO}/actions/runs/{RUN_ID}", GITHUB_API_URL=api.url, PIPEPROOF_API_ATTEMPTS="3"
    )
    assert result.returncode == 1, result
    assert result.errors == [
        f"GitHub API GET /repos/{REPO}/actions/runs/{RUN_ID} failed after 3 attempts: HTTP 500: Server Error"
    ]
    assert len(api.requests) == 3


def test_429_waits_as_long_as_retry_after_says(runner: Runner, api: FakeGitHub) -> None:
    api.commit_pulls[SHA] = []
    api.fail(PULLS, 429, "You have exceeded a secondary rate limit.", headers={"retry-after": "1"})
    result = paginate(runner, api, f"repos/{REPO}/commits/{SHA}/pulls")
    assert result.returncode == 0, result
    first, second = api.requests
    assert second.at - first.at >= 0.9, "retry-after: 1 was not honoured"


def test_a_rate_limited_403_waits_for_the_reset(runner: Runner, api: FakeGitHub) -> None:
    headers = {"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(int(time.time()))}
    api.fail(PULLS, 403, "API rate limit exceeded for installation ID 1.", headers=headers)
    result = paginate(runner, api, f"repos/{REPO}/commits/{SHA}/pulls")
    assert result.returncode == 0, result
    assert len(api.requests) == 2


def test_a_permission_403_is_not_retried(runner: Runner, api: FakeGitHub) -> None:
    api.fail(PULLS, 403, "Resource not accessible by integration", times=None)
    result = paginate(runner, api, f"repos/{REPO}/commits/{SHA}/pulls")
    assert result.returncode == 1, result
    assert result.errors == [f"GitHub API GET {PULLS} failed: HTTP 403: Resource not accessible by integration"]
    assert len(api.requests) == 1


def test_a_wait_beyond_the_budget_fails_without_waiting(runner: Runner, api: FakeGitHub) -> None:
    api.fail(PULLS, 429, headers={"retry-after": "120"}, times=None)
    started = time.monotonic()
    result = paginate(runner, api, f"repos/{REPO}/commits/{SHA}/pulls", PIPEPROOF_API_MAX_WAIT="60")
    assert result.returncode == 1, result
    assert time.monotonic() - started < 5
    assert "would have to wait 120 s, more than the 60 s left" in result.errors[0], result
    assert len(api.requests) == 1


def test_a_next_link_off_the_api_does_not_get_the_token(runner: Runner, api: FakeGitHub) -> None:
    @api.route("GET", r"/evil")
    def evil(req: Request, m: re.Match[str]) -> Response | Page:
        return Response(200, [1], {"link": '<http://127.0.0.2:9/steal?page=2>; rel="next"'})

    result = paginate(runner, api, "evil")
    assert result.returncode == 1, result
    assert "refusing to send the token to http://127.0.0.2:9/steal" in result.errors[0]
    assert len(api.requests) == 1


@pytest.mark.parametrize("body", [b"<html>unicorn</html>", b""], ids=["html", "empty"])
def test_a_success_that_is_not_json_fails(runner: Runner, api: FakeGitHub, body: bytes) -> None:
    @api.route("GET", r"/html")
    def html(req: Request, m: re.Match[str]) -> Response | Page:
        return Response(200, body)

    result = runner.library("api_get", "html", GITHUB_API_URL=api.url)
    assert result.returncode == 1, result
    assert result.errors == ["GitHub API GET /html failed: HTTP 200 with a body that is not the JSON expected"]


def test_an_unreachable_api_fails_after_the_attempts(runner: Runner) -> None:
    result = runner.library("api_get", "rate_limit", GITHUB_API_URL="http://127.0.0.1:9", PIPEPROOF_API_ATTEMPTS="2")
    assert result.returncode == 1, result
    assert result.errors[0].startswith("GitHub API GET /rate_limit failed after 2 attempts: no response: curl: (7)")


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"GITHUB_TOKEN": None}, "GITHUB_TOKEN is missing or is not a token"),
        ({"GITHUB_TOKEN": 'ghs_x"\nheader = "X-Evil: 1'}, "GITHUB_TOKEN is missing or is not a token"),
        ({"GITHUB_API_URL": None}, "GITHUB_API_URL must be the API's URL"),
    ],
    ids=["no-token", "token-injecting-curl-config", "no-api-url"],
)
def test_bad_setup_fails_before_any_request(
    runner: Runner, api: FakeGitHub, env: dict[str, str | None], message: str
) -> None:
    result = runner.library("api_get", "rate_limit", **{"GITHUB_API_URL": api.url, **env})
    assert result.returncode == 1, result
    assert message in result.errors[0]
    assert api.requests == []


def test_a_wrong_token_fails_with_the_api_message(runner: Runner, api: FakeGitHub) -> None:
    result = runner.library("api_get", "rate_limit", GITHUB_API_URL=api.url, GITHUB_TOKEN="ghs_other")
    assert result.returncode == 1, result
    assert result.errors == ["GitHub API GET /rate_limit failed: HTTP 401: Bad credentials"]


# --- check-gate.sh -----------------------------------------------------------------------------------------

REQUIRED = ["checks / sast", "checks / sca", "checks / unit-tests"]


def seed_checks(api: FakeGitHub, overrides: dict[str, tuple[str, str | None]] | None = None) -> None:
    """This run's required checks (success unless overridden), plus look-alikes that must not count."""
    api.runs[RUN_ID] = gh.workflow_run(RUN_ID, SHA, SUITE)
    runs = []
    for i, name in enumerate(REQUIRED):
        status, conclusion = (overrides or {}).get(name, ("completed", "success"))
        if status != "absent":
            runs.append(gh.check_run(100 + i, name, SHA, SUITE, status=status, conclusion=conclusion))
        # An older run of the same workflow failed; another app posts a failing check with the same name.
        runs.append(gh.check_run(10 + i, name, SHA, SUITE - 1, conclusion="failure"))
        runs.append(gh.check_run(200 + i, name, SHA, 77, conclusion="failure", app_slug="ci-bot"))
    runs.append(gh.check_run(300, "checks / sbom", SHA, SUITE, conclusion="skipped"))
    api.check_runs[SHA] = runs


def gate(runner: Runner, api: FakeGitHub, tmp_path: Path, **env: str | None) -> Result:
    return runner.run(
        ".github/scripts/check-gate.sh",
        **{
            "GITHUB_API_URL": api.url,
            "REPO": REPO,
            "SHA": SHA,
            "RUN_ID": str(RUN_ID),
            "REQUIRED_CHECKS": "\n".join(REQUIRED) + "\n",
            "CHECKS_OUT": str(tmp_path / "checks.json"),
            **env,
        },
    )


def test_check_gate_passes_when_every_required_check_succeeded_in_this_run(
    runner: Runner, api: FakeGitHub, tmp_path: Path
) -> None:
    seed_checks(api)
    result = gate(runner, api, tmp_path)
    assert result.returncode == 0, result
    assert json.loads((tmp_path / "checks.json").read_text()) == [
        {
            "name": name,
            "status": "completed",
            "conclusion": "success",
            "id": 100 + i,
            "completed_at": "2020-01-22T19:35:00Z",
        }
        for i, name in enumerate(REQUIRED)
    ]
    calls = api.calls(f"/repos/{REPO}/commits/{SHA}/check-runs")
    assert len(calls) > 1, "the check runs should span several pages"
    assert all(c.arg("filter") == "all" for c in calls)


FAILING = ["skipped", "neutral", "cancelled", "timed_out", "failure", "action_required", "stale", "startup_failure"]
RUNNING = ["queued", "in_progress", "waiting", "requested", "pending"]


def test_check_gate_accepts_only_success(runner: Runner, api: FakeGitHub, tmp_path: Path) -> None:
    """One required check per conclusion other than success and per unfinished status: each is refused by name."""
    api.runs[RUN_ID] = gh.workflow_run(RUN_ID, SHA, SUITE)
    cases = [("completed", c) for c in FAILING] + [(s, None) for s in RUNNING] + [("completed", "success")]
    api.check_runs[SHA] = [
        gh.check_run(i, f"checks / {conclusion or status}", SHA, SUITE, status=status, conclusion=conclusion)
        for i, (status, conclusion) in enumerate(cases, start=1)
    ]
    required = "\n".join(f"checks / {conclusion or status}" for status, conclusion in cases)
    result = gate(runner, api, tmp_path, REQUIRED_CHECKS=required)
    assert result.returncode == 1, result
    expected = [f"required check 'checks / {c}' concluded '{c}' on {SHA}; only success passes" for c in FAILING]
    expected += [f"required check 'checks / {s}' is {s}, not completed, on {SHA}" for s in RUNNING]
    expected += [f"{len(FAILING) + len(RUNNING)} required check(s) have not passed on {SHA}: production is blocked"]
    assert result.errors == expected
    assert "ok: checks / success (success)" in result.stdout
    recorded = json.loads((tmp_path / "checks.json").read_text())
    assert [(c["status"], c["conclusion"]) for c in recorded] == cases, "the record keeps what GitHub said"


def test_check_gate_stops_on_a_missing_check_and_names_look_alikes(
    runner: Runner, api: FakeGitHub, tmp_path: Path
) -> None:
    seed_checks(api, {"checks / sast": ("absent", None)})
    result = gate(runner, api, tmp_path)
    assert result.returncode == 1, result
    [missing] = [e for e in result.errors if "'checks / sast'" in e]
    assert "is missing" in missing and "ci-bot in check suite 77" in missing and "does not count" in missing
    recorded = json.loads((tmp_path / "checks.json").read_text())[0]
    assert recorded == {"name": "checks / sast", "status": None, "conclusion": None, "id": None, "completed_at": None}


def test_check_gate_ignores_a_success_posted_by_another_app(runner: Runner, api: FakeGitHub, tmp_path: Path) -> None:
    seed_checks(api, {"checks / sast": ("absent", None)})
    api.check_runs[SHA].append(gh.check_run(500, "checks / sast", SHA, SUITE, app_slug="someones-app"))
    result = gate(runner, api, tmp_path)
    assert result.returncode == 1, result
    assert any("'checks / sast' is missing" in e and "someones-app" in e for e in result.errors), result


def test_check_gate_ignores_a_success_from_an_earlier_run(runner: Runner, api: FakeGitHub, tmp_path: Path) -> None:
    seed_checks(api, {"checks / sca": ("absent", None)})
    api.check_runs[SHA].append(gh.check_run(600, "checks / sca", SHA, SUITE - 5))
    result = gate(runner, api, tmp_path)
    assert result.returncode == 1, result
    assert any("'checks / sca' is missing" in e for e in result.errors), result


@pytest.mark.parametrize(
    ("older", "newer", "passes"),
    [("failure", "success", True), ("success", "failure", False)],
    ids=["rerun-fixed", "rerun-broke"],
)
def test_check_gate_the_newest_rerun_decides(
    runner: Runner, api: FakeGitHub, tmp_path: Path, older: str, newer: str, passes: bool
) -> None:
    seed_checks(api, {"checks / sca": ("absent", None)})
    api.check_runs[SHA] += [
        gh.check_run(700, "checks / sca", SHA, SUITE, conclusion=older),
        gh.check_run(701, "checks / sca", SHA, SUITE, conclusion=newer),
    ]
    assert (gate(runner, api, tmp_path).returncode == 0) is passes


def test_check_gate_refuses_a_run_of_another_commit(runner: Runner, api: FakeGitHub, tmp_path: Path) -> None:
    seed_checks(api)
    api.runs[RUN_ID]["head_sha"] = "0" * 40
    result = gate(runner, api, tmp_path)
    assert result.returncode == 1, result
    assert f"workflow run {RUN_ID} ran on commit {'0' * 40}, not {SHA}" in result.errors[0]


@pytest.mark.parametrize(
    ("fault", "status"),
    [(rf"/repos/{REPO}/actions/runs/\d+", 404), (rf"/repos/{REPO}/commits/{SHA}/check-runs", 500)],
    ids=["run-not-found", "check-runs-down"],
)
def test_check_gate_fails_closed_on_an_api_error(
    runner: Runner, api: FakeGitHub, tmp_path: Path, fault: str, status: int
) -> None:
    seed_checks(api)
    api.fail(fault, status, times=None, skip=0)
    result = gate(runner, api, tmp_path)
    assert result.returncode == 1, result
    assert f"HTTP {status}" in result.errors[0]
    assert not (tmp_path / "checks.json").exists()


def test_check_gate_with_no_required_check_passes_nothing(runner: Runner, api: FakeGitHub, tmp_path: Path) -> None:
    seed_checks(api)
    assert gate(runner, api, tmp_path, REQUIRED_CHECKS=" \n\n").returncode == 1
    assert gate(runner, api, tmp_path, REQUIRED_CHECKS=None).returncode == 2
    assert api.requests == []


# --- approval-check.sh, environment mode ---------------------------------------------------------------------


def approve_env(runner: Runner, api: FakeGitHub, tmp_path: Path, **env: str | None) -> Result:
    return runner.run(
        ".github/scripts/approval-check.sh",
        **{
            "GITHUB_API_URL": api.url,
            "MODE": "environment",
            "REPO": REPO,
            "RUN_ID": str(RUN_ID),
            "ACTOR": "deployer",
            "APPROVALS_OUT": str(tmp_path / "approvals.json"),
            "GITHUB_OUTPUT": str(tmp_path / "output"),
            **env,
        },
    )


def test_environment_approval_by_someone_else_passes_and_is_recorded_verbatim(
    runner: Runner, api: FakeGitHub, tmp_path: Path
) -> None:
    api.runs[RUN_ID] = gh.workflow_run(RUN_ID, SHA, SUITE)
    production = gh.approval("reviewer", "approved", ("production",))
    api.approvals[RUN_ID] = [gh.approval("someone", "approved", ("staging",)), production]
    result = approve_env(runner, api, tmp_path)
    assert result.returncode == 0, result
    assert json.loads((tmp_path / "approvals.json").read_text()) == [production]
    assert (tmp_path / "output").read_text() == "approved_by=reviewer\n"
    assert set(production) == set(gh.fixture("approvals")[0]), "nothing may be added, such as an approval time"


@pytest.mark.parametrize(
    ("approvals", "message"),
    [
        ([], "holds no approval for production"),
        ([("staging-lead", "approved", ("staging",))], "holds no approval for production"),
        ([("Deployer", "approved", ("production",))], "approved only by deployer, who triggered it"),
        (
            [("reviewer", "approved", ("production",)), ("security", "rejected", ("production",))],
            "was rejected by security",
        ),
    ],
    ids=["none", "other-environment", "self-approval", "rejected"],
)
def test_environment_approval_fails_closed(
    runner: Runner, api: FakeGitHub, tmp_path: Path, approvals: list[tuple[Any, ...]], message: str
) -> None:
    api.runs[RUN_ID] = gh.workflow_run(RUN_ID, SHA, SUITE)
    api.approvals[RUN_ID] = [gh.approval(*a) for a in approvals]
    result = approve_env(runner, api, tmp_path)
    assert result.returncode == 1, result
    assert any(message in e for e in result.errors), result
    assert (tmp_path / "approvals.json").exists(), "what was established is kept for the record"


def test_environment_approval_fails_closed_on_an_api_error(runner: Runner, api: FakeGitHub, tmp_path: Path) -> None:
    result = approve_env(runner, api, tmp_path)  # no such run: 404
    assert result.returncode == 1, result
    assert result.errors == [
        f"GitHub API GET /repos/{REPO}/actions/runs/{RUN_ID}/approvals failed: HTTP 404: Not Found"
    ]
    assert not (tmp_path / "approvals.json").exists()


# --- approval-check.sh, promotion mode -----------------------------------------------------------------------

MERGE = "9c1185a5c5e9fc54612808977ee8f548b2258d31"
HEAD = "6dcb09b5b57875f334f61aebed695e2e4193db5e"
OLD_HEAD = "553c2077f0edc3d5dc5d17262f6aa498e69d6f8e"


def promote(
    runner: Runner, api: FakeGitHub, tmp_path: Path, reviews: list[tuple[str, str, str]], **env: str | None
) -> Result:
    """Promotion pull request #7 by alice, merged by bob as MERGE, with REVIEWS (login, state, commit)."""
    pr = gh.pull(7, author="alice", head_sha=HEAD, merge_commit_sha=MERGE, merged_by="bob")
    api.add_pull(
        pr, [MERGE], [gh.review(i + 1, login, state, commit, pr=7) for i, (login, state, commit) in enumerate(reviews)]
    )
    return runner.run(
        ".github/scripts/approval-check.sh",
        **{
            "GITHUB_API_URL": api.url,
            "MODE": "promotion",
            "REPO": REPO,
            "SHA": MERGE,
            "DEFAULT_BRANCH": "main",
            "ACTOR": "bob",
            "MIN_APPROVALS": "1",
            "APPROVALS_OUT": str(tmp_path / "approvals.json"),
            **env,
        },
    )


def test_promotion_passes_with_approvals_on_the_final_head(runner: Runner, api: FakeGitHub, tmp_path: Path) -> None:
    reviews = [
        ("eve", "COMMENTED", HEAD),
        ("carol", "APPROVED", HEAD),
        ("frank", "COMMENTED", OLD_HEAD),
        ("dave", "APPROVED", HEAD),
    ]
    result = promote(runner, api, tmp_path, reviews, MIN_APPROVALS="2")
    assert result.returncode == 0, result
    assert json.loads((tmp_path / "approvals.json").read_text()) == {
        "pull_request": 7,
        "author": "alice",
        "merged_by": "bob",
        "head_sha": HEAD,
        "approvals": [
            {"user": "carol", "state": "APPROVED", "commit_id": HEAD, "submitted_at": "2024-05-01T09:02:00Z"},
            {"user": "dave", "state": "APPROVED", "commit_id": HEAD, "submitted_at": "2024-05-01T09:04:00Z"},
        ],
    }
    assert len(api.calls(f"/repos/{REPO}/pulls/7/reviews")) == 2, "the reviews span two pages"


@pytest.mark.parametrize(
    ("reviews", "why"),
    [
        ([], "has 0 approval(s)"),
        ([("carol", "DISMISSED", HEAD)], "not counted on pull request #7: carol: latest review is DISMISSED"),
        ([("carol", "APPROVED", OLD_HEAD)], f"carol: approved {OLD_HEAD}, not the final head {HEAD}"),
        ([("alice", "APPROVED", HEAD)], "alice: is the author"),
        ([("bob", "APPROVED", HEAD)], "bob: triggered the deploy"),
        (
            [("carol", "APPROVED", HEAD), ("carol", "CHANGES_REQUESTED", HEAD)],
            "carol: latest review is CHANGES_REQUESTED",
        ),
        ([("carol", "APPROVED", OLD_HEAD), ("carol", "COMMENTED", HEAD)], "not the final head"),
    ],
    ids=["no-review", "dismissed", "old-head", "author", "actor", "changes-requested-later", "comment-on-new-head"],
)
def test_promotion_fails_without_a_valid_approval(
    runner: Runner, api: FakeGitHub, tmp_path: Path, reviews: list[tuple[str, str, str]], why: str | None
) -> None:
    result = promote(runner, api, tmp_path, reviews)
    assert result.returncode == 1, result
    assert "promotion pull request #7 has 0 approval(s) on its final head commit" in result.errors[-1]
    assert why in result.stdout + result.stderr
    assert json.loads((tmp_path / "approvals.json").read_text())["approvals"] == []


@pytest.mark.parametrize(
    "reviews",
    [
        [("carol", "APPROVED", HEAD), ("carol", "COMMENTED", HEAD)],
        [("carol", "DISMISSED", OLD_HEAD), ("carol", "APPROVED", HEAD)],
    ],
    ids=["comment-keeps-approval", "approved-again-after-dismissal"],
)
def test_promotion_counts_the_latest_approval(
    runner: Runner, api: FakeGitHub, tmp_path: Path, reviews: list[tuple[str, str, str]]
) -> None:
    assert promote(runner, api, tmp_path, reviews).returncode == 0


def test_promotion_needs_min_approvals(runner: Runner, api: FakeGitHub, tmp_path: Path) -> None:
    result = promote(runner, api, tmp_path, [("carol", "APPROVED", HEAD)], MIN_APPROVALS="2")
    assert result.returncode == 1, result
    assert "has 1 approval(s)" in result.errors[-1] and "2 required" in result.errors[-1]


@pytest.mark.parametrize("base", ["release", None], ids=["merged-elsewhere", "no-pull-request"])
def test_promotion_without_a_pull_request_fails(
    runner: Runner, api: FakeGitHub, tmp_path: Path, base: str | None
) -> None:
    if base:
        pr = gh.pull(8, author="alice", head_sha=HEAD, merge_commit_sha=MERGE, base=base)
        api.add_pull(pr, [MERGE], [gh.review(1, "carol", "APPROVED", HEAD, pr=8)])
    result = runner.run(
        ".github/scripts/approval-check.sh",
        GITHUB_API_URL=api.url,
        MODE="promotion",
        REPO=REPO,
        SHA=MERGE,
        DEFAULT_BRANCH="main",
        ACTOR="bob",
        APPROVALS_OUT=str(tmp_path / "approvals.json"),
    )
    assert result.returncode == 1, result
    assert f"commit {MERGE} reached main without a pull request" in result.errors[0]
    assert json.loads((tmp_path / "approvals.json").read_text())["pull_request"] is None


def test_promotion_fails_closed_on_an_api_error(runner: Runner, api: FakeGitHub, tmp_path: Path) -> None:
    api.fail(rf"/repos/{REPO}/pulls/7/reviews", 500, times=None)
    result = promote(runner, api, tmp_path, [("carol", "APPROVED", HEAD)], PIPEPROOF_API_ATTEMPTS="2")
    assert result.returncode == 1, result
    assert "failed after 2 attempts: HTTP 500" in result.errors[0]
    assert not (tmp_path / "approvals.json").exists()


def test_approval_check_refuses_an_unknown_mode(runner: Runner, api: FakeGitHub, tmp_path: Path) -> None:
    assert approve_env(runner, api, tmp_path, MODE="trust-me").returncode == 2
