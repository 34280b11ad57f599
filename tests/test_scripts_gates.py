"""The rendered gate scripts of the plans without GitHub Code Security or environment reviewers (issue 7), run
the way a runner runs them: osv-gate.sh (dependency and licence gate), sarif-summary.sh (findings without code
scanning), candidate.sh (the promotion's candidate, against the stand-in API and a real git history) and
rollback-drill.sh (real hooks contract, real health check against a real HTTP service). Each fails closed.

osv-scanner is a Go binary this machine cannot install, so a stand-in on PATH writes a report in the shape of
osv-scanner 2's JSON (the field names of its pkg/models/results.go) and exits as osv-scanner does: 0 clean,
1 findings, 127 error, 128 no packages.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fakes import github_api as gh
from tests.fakes.github_api import FakeGitHub
from tests.fakes.service import Answer, FakeService
from tests.script_runner import REPO, GitRepo, Result, Runner, fake_github

SHA = "3f786850e387550fdab836ed7e6dc881de23001b"
PREVIOUS = "a84d88e7554fc1fa21bcbc4efae3c782a70d2b9d"


@pytest.fixture(scope="module")
def runner(tmp_path_factory: pytest.TempPathFactory) -> Runner:
    """GitHub Free, private: no Code Security, no environment reviewers, so every script here ships."""
    return Runner.render(tmp_path_factory, "free-private")


@pytest.fixture
def api() -> Iterator[FakeGitHub]:
    yield from fake_github()


def test_the_scripts_ship_only_with_the_workflows_that_call_them(runner: Runner, tmp_path_factory: Any) -> None:
    public = Runner.render(tmp_path_factory, "node-terraform-public")
    scripts = {p.name for p in (public.tree / ".github/scripts").iterdir()}
    assert not scripts & {"osv-gate.sh", "sarif-summary.sh", "candidate.sh", "audit-log-export.sh"}, scripts
    workflows = "".join(p.read_text() for p in (public.tree / ".github").rglob("*.yml"))
    for name in scripts - {"api.sh"}:  # api.sh is sourced by the others
        assert f"scripts/{name}" in workflows, f"{name} ships but nothing calls it"
    private = "".join(p.read_text() for p in (runner.tree / ".github").rglob("*.yml"))
    for name in ("osv-gate.sh", "sarif-summary.sh", "candidate.sh"):
        assert f".github/scripts/{name}" in private


# --- osv-gate.sh -------------------------------------------------------------------------------------------


def osv_package(name: str, version: str, **fields: Any) -> dict[str, Any]:
    return {"package": {"name": name, "version": version, "ecosystem": "PyPI"}, **fields}


def group(*ids: str, severity: str) -> dict[str, Any]:
    return {"ids": list(ids), "aliases": list(ids), "max_severity": severity}


def osv_report(*packages: dict[str, Any]) -> dict[str, Any]:
    return {
        "results": [{"source": {"path": "/src/requirements.txt", "type": "lockfile"}, "packages": list(packages)}],
        "experimental_config": {"licenses": {"summary": False, "allowlist": []}},
    }


def osv_gate(runner: Runner, tmp_path: Path, report: Any, exit_code: int, **env: str) -> Result:
    """Run the gate with a stand-in osv-scanner that writes REPORT (a dict, or raw text) and exits EXIT_CODE."""
    body = report if isinstance(report, str) else json.dumps(report)
    (tmp_path / "report.in").write_text(body)
    args_log = tmp_path / "osv-args"
    stand_in = tmp_path / "osv-scanner"
    stand_in.write_text(
        "#!/usr/bin/env bash\n"
        f'printf "%s\\n" "$@" > {shlex.quote(str(args_log))}\n'
        'while [ $# -gt 0 ]; do [ "$1" = --output ] && out=$2; shift; done\n'
        f'cp {shlex.quote(str(tmp_path / "report.in"))} "$out"\n'
        f"exit {exit_code}\n"
    )
    stand_in.chmod(0o755)
    return runner.run(
        ".github/scripts/osv-gate.sh",
        cwd=tmp_path,
        **{"OSV_SCANNER": str(stand_in), "ALLOWED_LICENSES": "MIT, Apache-2.0", **env},
    )


def test_osv_gate_passes_a_clean_report_and_hands_the_allow_list_to_osv_scanner(runner: Runner, tmp_path: Path) -> None:
    medium = osv_package("requests", "2.30.0", groups=[group("GHSA-aaaa", severity="5.3")], licenses=["Apache-2.0"])
    result = osv_gate(runner, tmp_path, osv_report(medium, osv_package("idna", "3.7")), 1)
    assert result.returncode == 0, result
    args = (tmp_path / "osv-args").read_text().split("\n")
    assert "--licenses=MIT,Apache-2.0" in args and "--recursive" in args, args


@pytest.mark.parametrize(
    ("package", "error"),
    [
        (
            osv_package("jinja2", "2.4.1", groups=[group("GHSA-bbbb", "PYSEC-1", severity="7.5")]),
            "vulnerability: jinja2@2.4.1 GHSA-bbbb,PYSEC-1 (CVSS 7.5)",
        ),
        (
            osv_package("django", "1.2", groups=[group("GHSA-cccc", severity="9.8")]),
            "vulnerability: django@1.2 GHSA-cccc (CVSS 9.8)",
        ),
        (
            osv_package("golang.org/x/net", "0.1.0", groups=[group("GO-2024-0001", severity="")]),
            "vulnerability: golang.org/x/net@0.1.0 GO-2024-0001 (CVSS unscored)",
        ),
        (
            osv_package("left-pad", "1.0", licenses=["GPL-3.0-only"], license_violations=["GPL-3.0-only"]),
            "licence: left-pad@1.0 GPL-3.0-only (not in the allow-list)",
        ),
    ],
    ids=["high", "critical", "unscored", "licence"],
)
def test_osv_gate_fails_on_a_blocking_finding(
    runner: Runner, tmp_path: Path, package: dict[str, Any], error: str
) -> None:
    low = osv_package("urllib3", "2.0", groups=[group("GHSA-low", severity="3.1")])
    result = osv_gate(runner, tmp_path, osv_report(low, package), 1)
    assert result.returncode == 1, result
    assert result.lines("error file=/src/requirements.txt") == [error]
    assert "1 blocking finding(s)" in result.stdout


@pytest.mark.parametrize(
    ("exit_code", "report", "error"),
    [
        (128, {"results": []}, "osv-scanner found no dependency manifest or lock file to check (exit 128)"),
        (127, {"results": []}, "osv-scanner failed (exit 127); the dependency gate cannot decide"),
        (0, "not json", "report.json is not an osv-scanner JSON report"),
        (0, {"packages": []}, "report.json is not an osv-scanner JSON report"),
    ],
    ids=["no-packages", "scanner-error", "garbage", "wrong-shape"],
)
def test_osv_gate_fails_closed_when_it_cannot_decide(
    runner: Runner, tmp_path: Path, exit_code: int, report: Any, error: str
) -> None:
    result = osv_gate(runner, tmp_path, report, exit_code, REPORT="report.json")
    assert result.returncode == 1, result
    assert result.errors == [error]


def test_osv_gate_fails_when_the_scanner_is_missing(runner: Runner, tmp_path: Path) -> None:
    result = runner.run(
        ".github/scripts/osv-gate.sh", cwd=tmp_path, OSV_SCANNER=str(tmp_path / "absent"), ALLOWED_LICENSES="MIT"
    )
    assert result.returncode == 1 and result.errors == [
        "osv-scanner failed (exit 127); the dependency gate cannot decide"
    ], result


def test_osv_gate_refuses_to_run_without_an_allow_list(runner: Runner, tmp_path: Path) -> None:
    result = osv_gate(runner, tmp_path, osv_report(), 0, ALLOWED_LICENSES="")
    assert result.returncode != 0 and "ALLOWED_LICENSES must list" in result.stderr, result
    assert not (tmp_path / "osv-args").exists(), "the scanner never ran"


# --- sarif-summary.sh --------------------------------------------------------------------------------------


def sarif(*results: dict[str, Any]) -> dict[str, Any]:
    return {"version": "2.1.0", "runs": [{"tool": {"driver": {"name": "Semgrep"}}, "results": list(results)}]}


def finding(rule: str, uri: str, line: int, message: str, level: str | None = "error") -> dict[str, Any]:
    location = {"physicalLocation": {"artifactLocation": {"uri": uri}, "region": {"startLine": line}}}
    return {
        "ruleId": rule,
        "message": {"text": message},
        "locations": [location],
        **({"level": level} if level else {}),
    }


def test_sarif_summary_lists_every_finding_in_the_job_summary(runner: Runner, tmp_path: Path) -> None:
    report = tmp_path / "semgrep.sarif"
    report.write_text(
        json.dumps(
            sarif(
                finding("python.sqli", "app/db.py", 12, "SQL built from | user input\nhere"),
                finding("python.eval", "app/run.py", 3, "eval of a request value", level=None),
            )
        )
    )
    summary = tmp_path / "summary.md"
    result = runner.run(".github/scripts/sarif-summary.sh", str(report), "Semgrep", GITHUB_STEP_SUMMARY=str(summary))
    assert result.returncode == 0, result
    text = summary.read_text()
    assert "### Semgrep: 2 finding(s)" in text
    assert "| python.sqli | error | app/db.py:12 | SQL built from   user input here |" in text, text
    assert "| python.eval | warning | app/run.py:3 | eval of a request value |" in text  # SARIF's default level


def test_sarif_summary_of_a_clean_report(runner: Runner, tmp_path: Path) -> None:
    report = tmp_path / "clean.sarif"
    report.write_text(json.dumps(sarif()))
    result = runner.run(".github/scripts/sarif-summary.sh", str(report), "Checkov")
    assert result.returncode == 0 and "### Checkov: 0 finding(s)" in result.stdout and "| Rule" not in result.stdout


@pytest.mark.parametrize("content", [None, "{broken"], ids=["missing", "not-json"])
def test_sarif_summary_fails_without_a_readable_report(runner: Runner, tmp_path: Path, content: str | None) -> None:
    report = tmp_path / "report.sarif"
    if content is not None:
        report.write_text(content)
    result = runner.run(".github/scripts/sarif-summary.sh", str(report), "Semgrep")
    assert result.returncode != 0, result
    assert "finding(s)" not in result.stdout, "no count may be printed for a report that was not read"


# --- candidate.sh ------------------------------------------------------------------------------------------


class Promotion:
    """main: c1 -> c2 (the candidate, deployed by run 77) -> c3; a feature branch commit f1 never merged."""

    def __init__(self, root: Path) -> None:
        self.repo = GitRepo(root / "repo")
        self.c1 = self.repo.commit()
        self.candidate = self.repo.commit()
        self.repo.git("checkout", "--quiet", "-b", "feature")
        self.unmerged = self.repo.commit()
        self.repo.git("checkout", "--quiet", "main")
        self.head = self.repo.commit()

    def name(self, sha: str, run_id: object = 77) -> None:
        (self.repo.path / "deploy").mkdir(exist_ok=True)
        (self.repo.path / "deploy/production.json").write_text(json.dumps({"sha": sha, "run_id": run_id}))


def deploy_run(run_id: int, sha: str, **fields: Any) -> dict[str, Any]:
    run = gh.workflow_run(run_id, sha, 900 + run_id)
    run.update(
        head_branch="main",
        event="push",
        status="completed",
        conclusion="success",
        path=".github/workflows/deploy.yml",
        repository={"full_name": REPO},
    )
    run.update(fields)
    return run


@pytest.fixture
def promotion(tmp_path: Path) -> Promotion:
    return Promotion(tmp_path)


def promote(runner: Runner, api: FakeGitHub, promotion: Promotion, tmp_path: Path, sha: str, **fields: Any) -> Result:
    """Deploy run 77 of SHA (with FIELDS changed), named by the promotion file; candidate.sh's verdict."""
    api.runs[77] = deploy_run(77, sha, **fields)
    promotion.name(sha)
    return candidate(runner, api, promotion, tmp_path)


def candidate(runner: Runner, api: FakeGitHub, promotion: Promotion, tmp_path: Path) -> Result:
    return runner.run(
        ".github/scripts/candidate.sh",
        cwd=promotion.repo.path,
        GITHUB_API_URL=api.url,
        REPO=REPO,
        DEFAULT_BRANCH="main",
        GITHUB_OUTPUT=str(tmp_path / "output"),
    )


def test_candidate_passes_a_merged_commit_whose_deploy_run_succeeded(
    runner: Runner, api: FakeGitHub, promotion: Promotion, tmp_path: Path
) -> None:
    result = promote(runner, api, promotion, tmp_path, promotion.candidate)
    assert result.returncode == 0, result
    assert (tmp_path / "output").read_text() == f"sha={promotion.candidate}\nrun_id=77\n"
    assert [r.target for r in api.requests] == [f"/repos/{REPO}/actions/runs/77"]


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"conclusion": "failure"}, "run 77: .conclusion is 'failure', expected 'success'"),
        ({"status": "in_progress", "conclusion": None}, "run 77: .status is 'in_progress', expected 'completed'"),
        ({"head_branch": "feature"}, "run 77: .head_branch is 'feature', expected 'main'"),
        ({"event": "workflow_dispatch"}, "run 77: .event is 'workflow_dispatch', expected 'push'"),
        ({"head_sha": "e" * 40}, f"run 77: .head_sha is '{'e' * 40}', expected '%s'"),
        (
            {"repository": {"full_name": "evil/fork"}},
            f"run 77: .repository.full_name is 'evil/fork', expected '{REPO}'",
        ),
        (
            {"path": ".github/workflows/pr-checks.yml"},
            "run 77 is '.github/workflows/pr-checks.yml', not .github/workflows/deploy.yml",
        ),
    ],
    ids=["failed", "unfinished", "other-branch", "manual-run", "other-commit", "fork", "other-workflow"],
)
def test_candidate_refuses_a_run_that_did_not_prove_it(
    runner: Runner, api: FakeGitHub, promotion: Promotion, tmp_path: Path, fields: dict[str, Any], error: str
) -> None:
    result = promote(runner, api, promotion, tmp_path, promotion.candidate, **fields)
    assert result.returncode == 1, result
    assert result.errors == ["promotion: " + error.replace("%s", promotion.candidate)]
    assert not (tmp_path / "output").exists()


def test_candidate_refuses_a_commit_that_was_never_merged(
    runner: Runner, api: FakeGitHub, promotion: Promotion, tmp_path: Path
) -> None:
    result = promote(runner, api, promotion, tmp_path, promotion.unmerged)
    assert result.returncode == 1 and "is not in the history of main" in result.errors[0], result
    assert api.requests == [], "refused before asking the API"


@pytest.mark.parametrize(
    ("content", "error"),
    [
        (None, "deploy/production.json does not exist"),
        ('{"run_id": 77}', 'deploy/production.json has no "sha" string'),
        ('{"sha": "abc1234", "run_id": 77}', "sha 'abc1234' in deploy/production.json is not a full commit SHA"),
        ('{"sha": "%s"}', 'deploy/production.json has no "run_id"'),
        (
            '{"sha": "%s", "run_id": "77; rm -rf /"}',
            "run_id '77; rm -rf /' in deploy/production.json is not a workflow run id",
        ),
        (
            '{"sha": "%s", "run_id": "../../pulls/1"}',
            "run_id '../../pulls/1' in deploy/production.json is not a workflow run id",
        ),
        ("not json", 'deploy/production.json has no "sha" string'),
    ],
    ids=["missing", "no-sha", "short-sha", "no-run", "injection", "path-traversal", "not-json"],
)
def test_candidate_refuses_a_malformed_promotion_file(
    runner: Runner, api: FakeGitHub, promotion: Promotion, tmp_path: Path, content: str | None, error: str
) -> None:
    if content is not None:
        (promotion.repo.path / "deploy").mkdir()
        (promotion.repo.path / "deploy/production.json").write_text(content.replace("%s", promotion.candidate))
    result = candidate(runner, api, promotion, tmp_path)
    assert result.returncode == 1, result
    assert result.errors == [f"promotion: {error}"]
    assert api.requests == []


def test_candidate_fails_closed_on_an_api_error(
    runner: Runner, api: FakeGitHub, promotion: Promotion, tmp_path: Path
) -> None:
    promotion.name(promotion.candidate)  # run 77 does not exist: 404
    result = candidate(runner, api, promotion, tmp_path)
    assert result.returncode == 1, result
    assert result.errors == [f"GitHub API GET /repos/{REPO}/actions/runs/77 failed: HTTP 404: Not Found"]
    assert not (tmp_path / "output").exists()


# --- rollback-drill.sh -------------------------------------------------------------------------------------


def hooks(tmp_path: Path, runner: Runner, *, rollback_fails_for: str = "") -> Path:
    """scripts/ as a team fills it in: rollback.sh logs its arguments (and fails for one target, if asked);
    healthcheck.sh is the rendered one, unchanged."""
    folder = tmp_path / "scripts"
    folder.mkdir()
    log = tmp_path / "rollback.log"
    (folder / "rollback.sh").write_text(
        "#!/usr/bin/env bash\nset -euo pipefail\n"
        f'echo "$1 $2" >> {shlex.quote(str(log))}\n'
        f'[ "$2" != {shlex.quote(rollback_fails_for) if rollback_fails_for else "__never__"} ]\n'
    )
    (folder / "rollback.sh").chmod(0o755)
    health = folder / "healthcheck.sh"
    health.write_bytes(runner.script("scripts/healthcheck.sh").read_bytes())
    health.chmod(0o755)
    return folder


def drill(runner: Runner, tmp_path: Path, service: FakeService, folder: Path, **env: str) -> tuple[Result, Any]:
    record = tmp_path / "drill.json"
    result = runner.run(
        ".github/scripts/rollback-drill.sh",
        cwd=tmp_path,
        **{
            "SHA": SHA,
            "PREVIOUS_SHA": PREVIOUS,
            "URL": service.url,
            "RECORD_OUT": str(record),
            "HOOKS": str(folder),
            "OPERATOR": "carol",
            "TRIGGER": "schedule",
            "HEALTH_ATTEMPTS": "1",
            "HEALTH_DELAY": "0",
            "HEALTH_TIMEOUT": "5",
            **env,
        },
    )
    return result, json.loads(record.read_text()) if record.exists() else None


def version(sha: str) -> Answer:
    return Answer(200, json.dumps({"status": "ok", "version": sha}))


def rollbacks(tmp_path: Path) -> list[str]:
    return (tmp_path / "rollback.log").read_text().splitlines()


def test_rollback_drill_rolls_back_verifies_restores_and_records(runner: Runner, tmp_path: Path) -> None:
    folder = hooks(tmp_path, runner)
    with FakeService(version(PREVIOUS), version(SHA)) as service:
        result, record = drill(runner, tmp_path, service, folder)
    assert result.returncode == 0, result
    assert rollbacks(tmp_path) == [f"staging {PREVIOUS}", f"staging {SHA}"]
    assert service.hits == 2
    assert record["schema"] == "pipeproof/rollback-drill/v2" and record["result"] == "success"
    assert (record["sha"], record["rolled_back_to"], record["operator"]) == (SHA, PREVIOUS, "carol")
    assert [(s["step"], s["outcome"]) for s in record["steps"]] == [
        ("rollback", "success"),
        ("verify-rollback", "success"),
        ("restore", "success"),
        ("verify-restore", "success"),
    ]
    assert all(s["started_at"] <= s["finished_at"] for s in record["steps"])


def test_rollback_drill_fails_when_staging_does_not_serve_the_old_version(runner: Runner, tmp_path: Path) -> None:
    folder = hooks(tmp_path, runner)  # the rollback "succeeds" but staging still serves the current version
    with FakeService(version(SHA)) as service:
        result, record = drill(runner, tmp_path, service, folder)
    assert result.returncode == 1, result
    assert record["result"] == "failure"
    assert [(s["step"], s["outcome"]) for s in record["steps"]] == [
        ("rollback", "success"),
        ("verify-rollback", "failure"),
        ("restore", "success"),  # staging is put back whatever happened
    ]
    assert rollbacks(tmp_path) == [f"staging {PREVIOUS}", f"staging {SHA}"]


def test_rollback_drill_restores_even_when_the_rollback_fails(runner: Runner, tmp_path: Path) -> None:
    folder = hooks(tmp_path, runner, rollback_fails_for=PREVIOUS)
    with FakeService(version(SHA)) as service:
        result, record = drill(runner, tmp_path, service, folder)
    assert result.returncode == 1 and record["result"] == "failure", result
    assert [(s["step"], s["outcome"]) for s in record["steps"]] == [("rollback", "failure"), ("restore", "success")]
    assert service.hits == 0


def test_rollback_drill_fails_with_the_rendered_hook_that_was_never_filled_in(runner: Runner, tmp_path: Path) -> None:
    with FakeService(version(PREVIOUS), version(SHA)) as service:
        result, record = drill(runner, tmp_path, service, runner.tree / "scripts")
    assert result.returncode == 1 and record["result"] == "failure", result
    assert any("scripts/rollback.sh is not configured" in e for e in result.errors)


def test_rollback_drill_without_a_production_version_fails_and_records_it(runner: Runner, tmp_path: Path) -> None:
    folder = hooks(tmp_path, runner)
    with FakeService(version(SHA)) as service:
        result, record = drill(runner, tmp_path, service, folder, PREVIOUS_SHA="")
    assert result.returncode == 1, result
    assert result.errors == ["no production version to roll back to (nothing deployed to production yet)"]
    assert record["rolled_back_to"] is None and record["steps"] == [] and record["result"] == "failure"
    assert not (tmp_path / "rollback.log").exists()
