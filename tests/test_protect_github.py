"""`pipeproof protect` against a real, stateful HTTP server on 127.0.0.1 playing the GitHub REST API.

The repository is a rendered golden tree (GitHub Enterprise, private: reviewers and rulesets available).
"""

from __future__ import annotations

import copy
import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from generator.cli import main
from tests.fakes.github_settings import FakeGitHubSettings

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "ghp_pipeproofTestToken0123456789abcdef"
REPO = "bigcorp/shop"
TEAM = "release-approvers"  # the golden's security_team is @bigcorp/release-approvers


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    dest = tmp_path / "repo"
    shutil.copytree(ROOT / "golden" / "enterprise-private", dest)
    return dest


@pytest.fixture
def fake() -> Any:
    server = FakeGitHubSettings(repo=REPO, token=TOKEN, page_size=2)  # small pages: pagination is exercised
    server.add_team(TEAM, "push")
    server.add_team("developers", "push")
    server.add_collaborator("alice", "admin")
    server.add_collaborator("bob", "write")
    server.add_collaborator("carol", "read")
    with server:
        yield server


class Run:
    """Runs the CLI in-process and keeps every byte it printed (for the token grep)."""

    def __init__(self, fake: FakeGitHubSettings, tree: Path, capsys: pytest.CaptureFixture[str]) -> None:
        self.fake, self.tree, self.capsys = fake, tree, capsys
        self.all_output: list[str] = []

    def __call__(self, *args: str, api: str | None = None) -> tuple[int, str, str]:
        argv = [*args[:2], str(self.tree), "--repo", REPO, "--api-url", api or self.fake.url, *args[2:]]
        if args[0] == "audit":
            argv = ["audit", str(self.tree), "--live", "--repo", REPO, "--api-url", api or self.fake.url, *args[1:]]
        code = main(argv)
        out, err = self.capsys.readouterr()
        self.all_output += [out, err]
        return code, out, err


@pytest.fixture
def run(
    fake: FakeGitHubSettings, tree: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> Run:
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    monkeypatch.setattr("generator.protect.client.time.sleep", _sleep)
    return Run(fake, tree, capsys)


SLEPT: list[float] = []


def _sleep(seconds: float) -> None:
    SLEPT.append(seconds)


def _failing(out: str) -> set[str]:
    return {r["id"] for r in json.loads(out)["results"] if r["status"] == "fail"}


def test_apply_then_check_is_clean_and_apply_is_idempotent(run: Run, fake: FakeGitHubSettings) -> None:
    code, out, err = run("protect", "apply")
    assert code == 0, err
    assert "applied 11 change(s)" in out
    team_id = fake.org_teams[TEAM]["id"]
    production = fake.env_view("production")
    reviewers = next(r for r in production["protection_rules"] if r["type"] == "required_reviewers")
    assert reviewers["reviewers"][0]["reviewer"]["id"] == team_id and reviewers["prevent_self_review"] is True
    assert production["can_admins_bypass"] is False
    assert [p["name"] for p in fake.branch_policies["production"]] == ["main"]
    assert fake.protection["main"]["required_status_checks"]["checks"][0]["app_id"] == 15368
    assert fake.security["secret_scanning_push_protection"] == "enabled"
    assert len(fake.rulesets) == 1

    code, out, err = run("protect", "check", "--format", "json")
    assert code == 0, out + err
    statuses = {r["id"]: r["status"] for r in json.loads(out)["results"]}
    assert set(statuses.values()) == {"pass"} and "PP-DEPLOY-01" in statuses

    writes = len(fake.writes())
    code, out, err = run("protect", "apply")
    assert code == 0 and "no changes" in out
    assert len(fake.writes()) == writes  # the second apply wrote nothing


def test_dry_run_sends_nothing_and_prints_every_request(run: Run, fake: FakeGitHubSettings) -> None:
    code, out, err = run("protect", "apply", "--dry-run")
    assert code == 0, err
    assert fake.requests == []
    assert "none sent" in out
    for line in (
        "PUT /repos/bigcorp/shop/branches/main/protection {",
        "POST /repos/bigcorp/shop/rulesets {",
        "PUT /repos/bigcorp/shop/environments/production {",
        '"prevent_self_review": true',
        "POST /repos/bigcorp/shop/environments/production/deployment-branch-policies",
        "PATCH /repos/bigcorp/shop {",
    ):
        assert line in out


def _weaken_approvals(fake: FakeGitHubSettings) -> None:
    fake.protection["main"]["required_pull_request_reviews"]["required_approving_review_count"] = 1
    rules = next(iter(fake.rulesets.values()))["rules"]
    next(r for r in rules if r["type"] == "pull_request")["parameters"]["required_approving_review_count"] = 1


def _evaluate_mode(fake: FakeGitHubSettings) -> None:
    next(iter(fake.rulesets.values()))["enforcement"] = "evaluate"


def _stale_reviews(fake: FakeGitHubSettings) -> None:
    fake.protection["main"]["required_pull_request_reviews"]["dismiss_stale_reviews"] = False
    rules = next(iter(fake.rulesets.values()))["rules"]
    next(r for r in rules if r["type"] == "pull_request")["parameters"]["dismiss_stale_reviews_on_push"] = False


def _force_push(fake: FakeGitHubSettings) -> None:
    fake.protection["main"]["allow_force_pushes"] = True
    ruleset = next(iter(fake.rulesets.values()))
    ruleset["rules"] = [r for r in ruleset["rules"] if r["type"] != "non_fast_forward"]


def _no_reviewers(fake: FakeGitHubSettings) -> None:
    fake.environments["production"]["reviewers"] = []


def _self_review(fake: FakeGitHubSettings) -> None:
    fake.environments["production"]["prevent_self_review"] = False


def _unpinned_check(fake: FakeGitHubSettings) -> None:
    for check in fake.protection["main"]["required_status_checks"]["checks"]:
        check["app_id"] = None
    rules = next(iter(fake.rulesets.values()))["rules"]
    for check in next(r for r in rules if r["type"] == "required_status_checks")["parameters"][
        "required_status_checks"
    ]:
        check.pop("integration_id")


def _push_protection_off(fake: FakeGitHubSettings) -> None:
    fake.security["secret_scanning_push_protection"] = "disabled"


def _bypass_actor(fake: FakeGitHubSettings) -> None:
    fake.protection["main"]["enforce_admins"] = False
    next(iter(fake.rulesets.values()))["bypass_actors"] = [
        {"actor_id": 5, "actor_type": "RepositoryRole", "bypass_mode": "always"}
    ]


def _team_without_write(fake: FakeGitHubSettings) -> None:
    fake.repo_teams[TEAM] = "pull"


def _codeowners_error(fake: FakeGitHubSettings) -> None:
    # What GitHub answers for an owner it cannot resolve (the line is then ignored without a word).
    fake.codeowners_errors = [
        {
            "line": 6,
            "column": 12,
            "kind": "Unknown owner",
            "source": "/.github/ @bigcorp/release-approvers\n",
            "suggestion": "make sure @bigcorp/release-approvers exists and has write access to the repository",
            "message": "Unknown owner on line 6: make sure @bigcorp/release-approvers exists and has write access "
            "to the repository\n\n  /.github/ @bigcorp/release-approvers\n           ^",
            "path": ".github/CODEOWNERS",
        }
    ]


@pytest.mark.parametrize(
    ("weaken", "control"),
    [
        pytest.param(_weaken_approvals, "PP-BRANCH-01", id="approvals-lowered"),
        pytest.param(_evaluate_mode, "PP-BRANCH-01", id="ruleset-evaluate-mode"),
        pytest.param(_bypass_actor, "PP-BRANCH-02", id="admin-bypass"),
        pytest.param(_stale_reviews, "PP-BRANCH-03", id="stale-review-dismissal-off"),
        pytest.param(_unpinned_check, "PP-BRANCH-04", id="checks-not-pinned-to-actions"),
        pytest.param(_force_push, "PP-BRANCH-05", id="force-push-allowed"),
        pytest.param(_team_without_write, "PP-BRANCH-06", id="codeowners-team-read-only"),
        pytest.param(_codeowners_error, "PP-BRANCH-06", id="codeowners-error"),
        pytest.param(_no_reviewers, "PP-DEPLOY-01", id="environment-without-reviewers"),
        pytest.param(_self_review, "PP-DEPLOY-01", id="self-review-allowed"),
        pytest.param(_push_protection_off, "PP-SCAN-04", id="push-protection-off"),
    ],
)
def test_manual_weakening_is_drift_on_the_right_control(
    run: Run, fake: FakeGitHubSettings, weaken: Any, control: str
) -> None:
    assert run("protect", "apply")[0] == 0
    weaken(fake)
    code, out, err = run("protect", "check", "--format", "json")
    assert code == 1, out + err
    assert _failing(out) == {control}
    code, sarif, _ = run("protect", "check", "--format", "sarif")
    results = json.loads(sarif)["runs"][0]["results"]
    assert code == 1 and {r["ruleId"] for r in results if r["level"] != "note"} == {control}
    code, text, _ = run("protect", "check")
    assert code == 1 and f"FAIL    {control}" in text and "live API at " in text
    # apply repairs it (except what protect cannot do: giving a team write access)
    code, out, err = run("protect", "apply")
    if control == "PP-BRANCH-06":
        assert code == 1 and (
            "has pull access" in err or "CODEOWNERS error at .github/CODEOWNERS:6: Unknown owner" in err
        )
    else:
        assert code == 0, err
        assert run("protect", "check")[0] == 0


def test_enforce_admins_off_is_drift_when_only_classic_protection_is_declared(
    run: Run, fake: FakeGitHubSettings, tree: Path
) -> None:
    shutil.rmtree(tree / ".github" / "rulesets")
    assert run("protect", "apply")[0] == 0
    assert fake.rulesets == {}
    fake.protection["main"]["enforce_admins"] = False
    code, out, _ = run("protect", "check", "--format", "json")
    assert code == 1 and _failing(out) == {"PP-BRANCH-02"}


@pytest.mark.parametrize("layer", ["rulesets-only", "classic-only"])
def test_one_layer_enforcing_everything_is_not_drift(run: Run, fake: FakeGitHubSettings, layer: str) -> None:
    assert run("protect", "apply")[0] == 0
    if layer == "rulesets-only":
        del fake.protection["main"]  # the repository is protected by its ruleset alone (Allstar got this wrong)
    else:
        fake.rulesets.clear()
    code, out, err = run("protect", "check")
    assert code == 0, out + err
    assert "covered by the other layer" in err
    code, out, err = run("audit", "--format", "json")
    branch = {r["id"]: r for r in json.loads(out)["results"] if r["id"].startswith("PP-BRANCH-0")}
    assert {r["status"] for r in branch.values()} == {"pass"}, {k: v["reason"] for k, v in branch.items()}


def test_403_mid_apply_reports_what_was_and_was_not_applied(run: Run, fake: FakeGitHubSettings) -> None:
    fake.fail(
        r"/repos/bigcorp/shop/environments/production",
        403,
        "Resource not accessible by personal access token",
        method="PUT",
        headers={"X-Accepted-GitHub-Permissions": "administration=write"},
    )
    code, out, err = run("protect", "apply")
    assert code == 1
    assert "applied 4 of 11 changes, then stopped" in err
    assert "applied:     PUT /repos/bigcorp/shop/branches/main/protection" in err
    assert "FAILED:      PUT /repos/bigcorp/shop/environments/production" in err
    assert "administration=write" in err
    assert "not applied: PATCH /repos/bigcorp/shop" in err
    assert "production" not in fake.environments and "main" in fake.protection
    # the next run applies only what is still missing
    code, out, err = run("protect", "apply")
    assert code == 0 and "applied 7 change(s)" in out


def test_429_with_retry_after_is_retried(run: Run, fake: FakeGitHubSettings) -> None:
    SLEPT.clear()
    fake.fail(r"/repos/bigcorp/shop", 429, "API rate limit exceeded", headers={"Retry-After": "7"}, times=2)
    code, out, err = run("protect", "apply")
    assert code == 0, err
    assert len(fake.calls(r"/repos/bigcorp/shop")) >= 3
    assert SLEPT[:2] == [7.0, 7.0]


def test_primary_rate_limit_waits_for_the_reset(run: Run, fake: FakeGitHubSettings) -> None:
    import time

    SLEPT.clear()
    reset = int(time.time()) + 30
    fake.fail(
        r"/repos/bigcorp/shop/teams",
        403,
        "API rate limit exceeded for user ID 1.",
        headers={"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(reset)},
    )
    code, out, err = run("protect", "check")
    assert code == 1  # nothing applied yet: drift, but the read succeeded after the wait
    assert 25 <= SLEPT[0] <= 32


def test_rate_limit_that_never_lifts_stops_with_a_clear_error(run: Run, fake: FakeGitHubSettings) -> None:
    fake.fail(r"/repos/bigcorp/shop", 429, "API rate limit exceeded", headers={"Retry-After": "1"}, times=None)
    code, out, err = run("protect", "apply")
    assert code == 1 and "still rate limited after 3 retries" in err


@pytest.mark.parametrize(
    ("status", "message", "expected"),
    [
        (401, "Bad credentials", "the token is missing, invalid or expired; set GITHUB_TOKEN or --token-file"),
        (404, "Not Found", "does not exist, or the token cannot see it"),
        (403, "Must have admin rights to Repository.", "needs administration (admin) access"),
    ],
)
def test_api_errors_say_what_to_do(
    run: Run, fake: FakeGitHubSettings, status: int, message: str, expected: str
) -> None:
    fake.fail(r"/repos/bigcorp/shop", status, message)
    code, out, err = run("protect", "check")
    assert code == 1 and expected in err and f"answered {status}" in err


def test_422_shows_the_api_message(run: Run, fake: FakeGitHubSettings, tree: Path) -> None:
    settings = tree / ".github" / "settings.yml"
    settings.write_text(settings.read_text().replace("      restrictions: null\n", ""))
    code, out, err = run("protect", "apply")
    assert code == 1
    assert 'the API rejected the request: Invalid request.\n\n"restrictions" wasn\'t supplied.' in err


def test_rulesets_unavailable_on_the_plan(run: Run, fake: FakeGitHubSettings) -> None:
    fake.plan = "free"
    code, out, err = run("protect", "apply")
    assert code == 1
    assert "not available on this plan (Upgrade to GitHub Pro or make this repository public" in err
    assert "ruleset pipeproof-default-branch not applied" in err


def test_network_error_is_clear(run: Run, fake: FakeGitHubSettings) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    code, out, err = run("protect", "check", api=f"http://127.0.0.1:{port}")
    assert code == 1 and "cannot reach http://127.0.0.1:" in err and "check the network and --api-url" in err


def test_export_writes_a_timestamped_snapshot_with_the_access_review(
    run: Run, fake: FakeGitHubSettings, tmp_path: Path
) -> None:
    assert run("protect", "apply")[0] == 0
    next(iter(fake.rulesets.values()))["bypass_actors"] = [
        {"actor_id": 1, "actor_type": "OrganizationAdmin", "bypass_mode": "pull_request"}
    ]
    code, out, err = run("protect", "export", "--output", str(tmp_path / "evidence"))
    assert code == 0, err
    [path] = (tmp_path / "evidence" / "protect" / "github" / "bigcorp" / "shop").rglob("protect-*.json")
    assert path.name.startswith("protect-20") and path.name.endswith("Z.json")
    snapshot = json.loads(path.read_text())
    claimed = snapshot.pop("sha256")
    assert hashlib.sha256(json.dumps(snapshot, sort_keys=True, separators=(",", ":")).encode()).hexdigest() == claimed
    sidecar = path.with_name(path.name + ".sha256").read_text().split()
    assert sidecar == [hashlib.sha256(path.read_bytes()).hexdigest(), path.name]
    assert snapshot["api"] == fake.url and snapshot["account"] == "release-bot" and snapshot["repository"] == REPO
    assert snapshot["live"]["branch_protection"]["enforce_admins"]["enabled"] is True
    assert snapshot["desired"]["rulesets"][0]["name"] == "pipeproof-default-branch"
    assert snapshot["diff"]["drift"] == {} and snapshot["diff"]["changes_apply_would_make"] == [
        {
            "what": "ruleset pipeproof-default-branch (.github/rulesets/default-branch.json:1): update",
            "method": "PUT",
            "path": f"/repos/{REPO}/rulesets/{next(iter(fake.rulesets))}",
            "body": snapshot["desired"]["rulesets"][0],
        }
    ]
    review = snapshot["access_review"]
    assert {c["login"] for c in review["collaborators"]} == {"alice", "bob", "carol"}  # across 2 pages
    assert review["admins"] == ["alice"]
    assert {(t["slug"], t["permission"]) for t in review["teams"]} == {(TEAM, "push"), ("developers", "push")}
    assert review["bypass_actors"] == [
        {
            "ruleset": "pipeproof-default-branch",
            "actor_type": "OrganizationAdmin",
            "actor_id": 1,
            "bypass_mode": "pull_request",
        }
    ]


def test_audit_live_turns_unknown_into_live_verdicts(
    run: Run, fake: FakeGitHubSettings, tree: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert run("protect", "apply")[0] == 0
    # Protection configured in the UI only: the files no longer declare it.
    (tree / ".github" / "settings.yml").unlink()
    shutil.rmtree(tree / ".github" / "rulesets")
    code = main(["audit", str(tree), "--format", "json"])
    files_only = {r["id"]: r for r in json.loads(run.capsys.readouterr().out)["results"]}
    assert files_only["PP-BRANCH-01"]["status"] == "unknown"
    code, out, err = run("audit", "--format", "json")
    live = {r["id"]: r for r in json.loads(out)["results"]}
    assert live["PP-BRANCH-01"]["status"] == "pass" and live["PP-BRANCH-01"]["reason"].startswith("live API at 20")
    fake.protection["main"]["required_pull_request_reviews"]["required_approving_review_count"] = 1
    next(iter(fake.rulesets.values()))["enforcement"] = "disabled"
    code, out, err = run("audit", "--format", "json")
    live = {r["id"]: r for r in json.loads(out)["results"]}
    assert code == 1 and live["PP-BRANCH-01"]["status"] == "fail" and "at least 2" in live["PP-BRANCH-01"]["reason"]
    # Without a token it says so and keeps `unknown`.
    monkeypatch.delenv("GITHUB_TOKEN")
    code, out, err = run("audit", "--format", "json")
    assert "--live: no token: set GITHUB_TOKEN or pass --token-file" in err
    assert {r["id"]: r for r in json.loads(out)["results"]}["PP-BRANCH-01"]["status"] == "unknown"


def test_the_token_never_appears_in_any_output(run: Run, fake: FakeGitHubSettings, tmp_path: Path) -> None:
    # A server that echoes the token in an error message must not make pipeproof print it.
    fake.fail(r"/repos/bigcorp/shop/environments/staging", 422, f"bad header Bearer {TOKEN}", method="PUT")
    run("protect", "apply", "--dry-run")
    run("protect", "apply")
    run("protect", "apply")
    run("protect", "check")
    run("protect", "check", "--format", "sarif")
    fake.add_collaborator(f"echo-{TOKEN}", "read")  # an API answer that carries the token into the snapshot
    run("protect", "export", "--output", str(tmp_path / "ev"))
    run("audit")
    fake.fail(r"/repos/bigcorp/shop", 401, f"token {TOKEN} is revoked")
    run("protect", "check")
    everything = "".join(run.all_output) + "".join(p.read_text() for p in (tmp_path / "ev").rglob("*") if p.is_file())
    assert "bigcorp/shop" in everything and "***" in everything
    assert TOKEN not in everything and TOKEN[4:20] not in everything


def test_github_enterprise_server_api_base(
    tree: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # GHES serves the REST API under /api/v3; pagination links carry the prefix and must stay on it.
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    with FakeGitHubSettings(repo=REPO, token=TOKEN, prefix="/api/v3", page_size=1) as ghes:
        ghes.add_team(TEAM, "push")
        ghes.add_collaborator("alice", "admin")
        ghes.add_collaborator("bob", "write")
        assert main(["protect", "apply", str(tree), "--repo", REPO, "--api-url", ghes.url]) == 0
        assert main(["protect", "check", str(tree), "--repo", REPO, "--api-url", ghes.url]) == 0
        assert all(r.target.startswith("/api/v3/") for r in ghes.requests)
        assert len(ghes.calls(r"/repos/bigcorp/shop/environments")) >= 2  # three environments, one per page


def test_audit_live_judges_environment_reviewers_and_push_protection(run: Run, fake: FakeGitHubSettings) -> None:
    assert run("protect", "apply")[0] == 0
    fake.environments["production"]["reviewers"] = []
    fake.security["secret_scanning_push_protection"] = "disabled"
    code, out, err = run("audit", "--format", "json")
    live = {r["id"]: r for r in json.loads(out)["results"]}
    assert live["PP-DEPLOY-01"]["status"] == "fail" and "no required reviewers" in live["PP-DEPLOY-01"]["reason"]
    assert live["PP-DEPLOY-01"]["reason"].startswith("live API at ")
    # gitleaks in CI still meets PP-SCAN-04: the live setting adds to it, it does not replace it
    assert live["PP-SCAN-04"]["status"] == "pass"


def test_check_reports_meet_the_audit_schemas(run: Run, fake: FakeGitHubSettings) -> None:
    import jsonschema

    assert run("protect", "apply")[0] == 0
    _weaken_approvals(fake)
    code, out, _ = run("protect", "check", "--format", "json")
    schema = json.loads((ROOT / "generator/data/audit-v1.schema.json").read_text())
    jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker()).validate(json.loads(out))
    code, out, _ = run("protect", "check", "--format", "sarif")
    sarif = json.loads((ROOT / "generator/data/sarif-schema-2.1.0.json").read_text())
    jsonschema.Draft7Validator(sarif).validate(json.loads(out))


def test_an_organisation_ruleset_alone_protects_the_branch(run: Run, fake: FakeGitHubSettings, tree: Path) -> None:
    assert run("protect", "apply")[0] == 0
    ruleset = next(iter(fake.rulesets.values()))
    fake.org_rulesets[77] = copy.deepcopy(ruleset) | {"name": "org-wide default branch"}
    fake.rulesets.clear()
    del fake.protection["main"]
    code, out, err = run("protect", "check", "--format", "json")
    assert code == 0, out + err
    assert "ruleset pipeproof-default-branch" in err and "does not exist live" in err  # covered, not drift
    fake.org_rulesets[77]["enforcement"] = "evaluate"  # GitHub no longer enforces it: now it is drift
    code, out, err = run("protect", "check", "--format", "json")
    assert code == 1 and "PP-BRANCH-01" in _failing(out)


def test_a_request_that_gets_no_answer_times_out(run: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    import socket
    import threading

    import httpx

    monkeypatch.setattr("generator.protect.client.TIMEOUT", httpx.Timeout(0.5))
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    held: list[socket.socket] = []
    threading.Thread(target=lambda: [held.append(server.accept()[0]) for _ in range(8)], daemon=True).start()
    try:
        code, out, err = run("protect", "check", api=f"http://127.0.0.1:{server.getsockname()[1]}")
    finally:
        server.close()
    assert code == 1 and "no answer from http://127.0.0.1:" in err and "within the timeout (ReadTimeout)" in err


def test_the_client_repr_and_redaction_hide_the_token() -> None:
    from urllib.parse import quote

    from generator.protect.client import Client

    client = Client("http://127.0.0.1:9", "ghp_a/b+c=d_0123456789", "github", dry_run=True)
    assert "ghp_a" not in repr(client)
    assert client.redact(f"x {quote('ghp_a/b+c=d_0123456789', safe='')} y ghp_a/b+c=d_0123456789") == "x *** y ***"


def test_checks_pinned_to_another_servers_actions_app_are_reported(run: Run, fake: FakeGitHubSettings) -> None:
    # A GitHub Enterprise Server has its own GitHub Actions app id: checks pinned to github.com's never pass.
    fake.actions_app_id = 31
    code, out, err = run("protect", "apply")
    assert code == 1 and "pinned to app 15368, but the GitHub Actions app here is 31" in err
    code, out, _ = run("protect", "check", "--format", "json")
    assert code == 1 and _failing(out) == {"PP-BRANCH-04"}
