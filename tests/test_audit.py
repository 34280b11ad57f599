"""`pipeproof audit`: goldens audit clean, each weakening fails the right control, hostile files stay errors."""

from __future__ import annotations

import json
import re
import resource
import shutil
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import jsonschema
import pytest
import yaml

from generator.audit import audit
from generator.cli import main
from generator.controls import all_controls
from generator.report import FORMATS
from tests.helpers import GOLDEN, ROOT, SCENARIOS

SARIF_SCHEMA = json.loads((ROOT / "generator/data/sarif-schema-2.1.0.json").read_text())
SOURCE_DOCUMENT = ROOT / "tests/fixtures/source-document"


def statuses(path: Path) -> dict[str, str]:
    return {r.control.id: r.status for r in audit(path).results}


def copy_golden(name: str, tmp_path: Path) -> Path:
    dest = tmp_path / name
    shutil.copytree(GOLDEN / name, dest)
    return dest


def edit(path: Path, old: str, new: str, count: int = 1) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, count))


def edit_yaml(path: Path, change: Callable[[dict], None]) -> None:  # type: ignore[type-arg]
    data = yaml.safe_load(path.read_text())
    change(data)
    path.write_text(yaml.safe_dump(data, sort_keys=False))


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_every_golden_audits_clean(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["audit", str(GOLDEN / name)]) == 0, capsys.readouterr().out
    assert not {i: s for i, s in statuses(GOLDEN / name).items() if s not in {"pass", "not-applicable"}}


PR = ".github/workflows/pr-checks.yml"
DEPLOY = ".github/workflows/deploy.yml"
SETTINGS = ".github/settings.yml"


def _drop_job(job: str) -> Callable[[Path], None]:
    def mutate(tree: Path) -> None:
        edit_yaml(tree / PR, lambda d: d["jobs"].pop(job))

    return mutate


def _drop_step(workflow: str, job: str, name: str) -> Callable[[Path], None]:
    def mutate(tree: Path) -> None:
        def change(d: dict) -> None:  # type: ignore[type-arg]
            steps = d["jobs"][job]["steps"]
            before = len(steps)
            d["jobs"][job]["steps"] = [s for s in steps if s.get("name") != name]
            assert len(d["jobs"][job]["steps"]) == before - 1

        edit_yaml(tree / workflow, change)

    return mutate


def _set_job(workflow: str, job: str, key: str, value: object) -> Callable[[Path], None]:
    def mutate(tree: Path) -> None:
        edit_yaml(tree / workflow, lambda d: d["jobs"][job].__setitem__(key, value))

    return mutate


def _unset_job(workflow: str, job: str, key: str) -> Callable[[Path], None]:
    def mutate(tree: Path) -> None:
        edit_yaml(tree / workflow, lambda d: d["jobs"][job].pop(key))

    return mutate


def _text(rel: str, old: str, new: str) -> Callable[[Path], None]:
    return lambda tree: edit(tree / rel, old, new)


def _delete(rel: str) -> Callable[[Path], None]:
    return lambda tree: (tree / rel).unlink()


# (scenario, mutation, control that must fail)
MUTATIONS = {
    "enforce-admins-false": (
        "python-defaults",
        _text(SETTINGS, "enforce_admins: true", "enforce_admins: false"),
        "PP-BRANCH-02",
    ),
    "approvals-below-answer": (
        "python-defaults",
        _text(SETTINGS, "required_approving_review_count: 2", "required_approving_review_count: 1"),
        "PP-BRANCH-01",
    ),
    "ruleset-approvals-below-answer": (
        "go-kubernetes-azure",
        _text(
            ".github/rulesets/default-branch.json",
            '"required_approving_review_count": 3',
            '"required_approving_review_count": 2',
        ),
        "PP-BRANCH-01",
    ),
    "ruleset-bypass-actor": (
        "python-defaults",
        _text(
            ".github/rulesets/default-branch.json",
            '"bypass_actors": []',
            '"bypass_actors": [{"actor_id": 5, "actor_type": "RepositoryRole", "bypass_mode": "always"}]',
        ),
        "PP-BRANCH-02",
    ),
    "stale-reviews-kept": (
        "python-defaults",
        _text(SETTINGS, "dismiss_stale_reviews: true", "dismiss_stale_reviews: false"),
        "PP-BRANCH-03",
    ),
    "check-not-required": ("python-defaults", _text(SETTINGS, "          - secrets\n", ""), "PP-BRANCH-04"),
    "force-push-allowed": (
        "python-defaults",
        _text(SETTINGS, "allow_force_pushes: false", "allow_force_pushes: true"),
        "PP-BRANCH-05",
    ),
    "codeowners-deleted": ("python-defaults", _delete(".github/CODEOWNERS"), "PP-BRANCH-06"),
    "secrets-job-deleted": ("python-defaults", _drop_job("secrets"), "PP-SCAN-04"),
    "gitleaks-or-true": (
        "python-defaults",
        _text(PR, "--report-path gitleaks.sarif .", "--report-path gitleaks.sarif . || true"),
        "PP-SCAN-04",
    ),
    "sast-continue-on-error": ("python-defaults", _set_job(PR, "sast", "continue-on-error", True), "PP-SCAN-01"),
    "semgrep-without-error": ("python-defaults", _text(PR, "--metrics=off --error", "--metrics=off"), "PP-SCAN-01"),
    "sast-needs-disabled-job": (
        "python-defaults",
        lambda t: (_set_job(PR, "sca", "if", False)(t), _set_job(PR, "sast", "needs", "sca")(t)),
        "PP-SCAN-01",
    ),
    "dependency-review-warn-only": (
        "python-defaults",
        _text(PR, "fail-on-severity: high", "fail-on-severity: high\n          warn-only: true"),
        "PP-SCAN-02",
    ),
    "checkov-soft-fail": (
        "python-all-iac-no-store",
        _text(PR, "          soft_fail: false", "          soft_fail: true"),
        "PP-SCAN-07",
    ),
    "trivy-exit-code-0": ("python-defaults", _text(PR, 'exit-code: "1"', 'exit-code: "0"'), "PP-SCAN-08"),
    "trivy-step-disabled": (
        "python-defaults",
        _text(PR, "      - name: Trivy image scan\n", "      - name: Trivy image scan\n        if: false\n"),
        "PP-SCAN-08",
    ),
    "grype-fail-build-false": ("python-defaults", _text(PR, "fail-build: true", "fail-build: false"), "PP-SCAN-03"),
    "sbom-step-removed": ("python-defaults", _drop_step(PR, "sbom", "Generate the SBOM (SPDX JSON)"), "PP-SCAN-03"),
    "deploy-sbom-removed": (
        "python-defaults",
        _drop_step(DEPLOY, "build", "Generate the SBOM (SPDX JSON)"),
        "PP-SCAN-03",
    ),
    "gitleaks-allowlist": (
        "python-defaults",
        lambda t: (t / ".gitleaks.toml").write_text(
            (t / ".gitleaks.toml").read_text() + '\n[[allowlists]]\npaths = ["src/"]\n'
        ),
        "PP-SCAN-06",
    ),
    "gitleaksignore": (
        "python-defaults",
        lambda t: (t / ".gitleaksignore").write_text("abc123:src/app.py:aws-access-token:3\n"),
        "PP-SCAN-06",
    ),
    "precommit-hook-removed": ("python-defaults", _delete(".pre-commit-config.yaml"), "PP-SCAN-05"),
    "dast-gate-removed": ("python-defaults", _drop_step(DEPLOY, "dast", "Block on high-risk alerts"), "PP-SCAN-09"),
    "tests-continue-on-error": ("python-defaults", _set_job(PR, "unit-tests", "continue-on-error", True), "PP-SCAN-10"),
    "production-environment-removed": (
        "python-defaults",
        _unset_job(DEPLOY, "deploy-production", "environment"),
        "PP-DEPLOY-01",
    ),
    "production-skips-staging": (
        "python-defaults",
        _set_job(DEPLOY, "deploy-production", "needs", ["build"]),
        "PP-DEPLOY-02",
    ),
    "check-gate-removed": (
        "python-defaults",
        _drop_step(DEPLOY, "deploy-production", "Verify every required check passed on this commit"),
        "PP-DEPLOY-03",
    ),
    "rollback-removed": ("python-defaults", _drop_step(DEPLOY, "deploy-production", "Roll back"), "PP-DEPLOY-04"),
    "rollback-workflow-deleted": ("python-defaults", _delete(".github/workflows/rollback-drill.yml"), "PP-DEPLOY-05"),
    "record-loses-approvers": ("python-defaults", _text(DEPLOY, "approvers: (", "approvals_list: ("), "PP-EVID-01"),
    "record-not-shipped": (
        "python-defaults",
        _drop_step(DEPLOY, "deploy-production", "Ship deployment-record.json to the evidence store (PP-EVID-02)"),
        "PP-EVID-02",
    ),
    "retention-2555-public": (
        "node-terraform-public",
        _text(PR, "retention-days: 90", "retention-days: 2555"),
        "PP-EVID-03",
    ),
    "retention-401-private": ("python-defaults", _text(PR, "retention-days: 400", "retention-days: 401"), "PP-EVID-03"),
    "audit-log-export-deleted": ("python-defaults", _delete(".github/workflows/audit-log-export.yml"), "PP-EVID-04"),
    "action-unpinned": (
        "python-defaults",
        lambda t: (t / PR).write_text(
            re.sub(r"actions/checkout@[0-9a-f]{40}", "actions/checkout@v4", (t / PR).read_text(), count=1)
        ),
        "PP-HARD-01",
    ),
    "permissions-write-all": ("python-defaults", _text(PR, "permissions: {}", "permissions: write-all"), "PP-HARD-02"),
    "job-permissions-write-all": (
        "python-defaults",
        lambda t: edit_yaml(t / PR, lambda d: d["jobs"]["sast"].__setitem__("permissions", "write-all")),
        "PP-HARD-02",
    ),
    "title-in-run": (
        "python-defaults",
        _text(
            PR,
            'pipx run --spec "semgrep',
            'echo "${{ github.event.pull_request.title }}"\n          pipx run --spec "semgrep',
        ),
        "PP-HARD-03",
    ),
    "persisted-credentials": (
        "python-defaults",
        _text(PR, "persist-credentials: false", "persist-credentials: true"),
        "PP-HARD-04",
    ),
    "long-lived-aws-keys": (
        "python-defaults",
        _text(
            PR,
            "          SEMGREP_VERSION:",
            "          AWS_SECRET_ACCESS_KEY: ${{ secrets.AWS_SECRET }}\n          SEMGREP_VERSION:",
        ),
        "PP-HARD-05",
    ),
    "pull-request-target": (
        "python-defaults",
        _text(PR, "  merge_group:\n", "  merge_group:\n  pull_request_target:\n"),
        "PP-HARD-06",
    ),
    "timeout-removed": ("python-defaults", _unset_job(PR, "secrets", "timeout-minutes"), "PP-HARD-07"),
    "dependabot-deleted": ("python-defaults", _delete(".github/dependabot.yml"), "PP-HARD-08"),
    "latest-image": (
        "python-defaults",
        _set_job(PR, "sast", "container", {"image": "semgrep/semgrep:latest"}),
        "PP-HARD-09",
    ),
    "drift-job-removed": ("python-defaults", _drop_job("controls-drift"), "PP-HARD-10"),
}


@pytest.mark.parametrize("mutation", sorted(MUTATIONS))
def test_each_weakening_fails_the_right_control(mutation: str, tmp_path: Path) -> None:
    scenario, mutate, control = MUTATIONS[mutation]
    tree = copy_golden(scenario, tmp_path)
    assert statuses(tree)[control] == "pass"
    mutate(tree)
    report = audit(tree)
    result = next(r for r in report.results if r.control.id == control)
    assert result.status == "fail", f"{mutation}: {control} is {result.status}: {result.reason}"
    assert report.failing(all_controls()[0].severity.LOW)


def test_every_control_has_a_mutation() -> None:
    covered = {control for _, _, control in MUTATIONS.values()}
    assert covered == {c.id for c in all_controls() if "github" in c.platforms}


def test_source_document_examples_fail_what_they_miss_and_pass_what_they_do() -> None:
    found = statuses(SOURCE_DOCUMENT)
    for control in [
        "PP-HARD-01",
        "PP-EVID-03",
        "PP-HARD-05",
        "PP-HARD-03",
        "PP-HARD-04",
        "PP-HARD-02",
        "PP-HARD-09",
        "PP-DEPLOY-05",
        "PP-EVID-01",
    ]:
        assert found[control] == "fail", control
    for control in [
        "PP-BRANCH-01",
        "PP-BRANCH-02",
        "PP-BRANCH-03",
        "PP-BRANCH-05",
        "PP-SCAN-01",
        "PP-SCAN-02",
        "PP-SCAN-04",
        "PP-DEPLOY-01",
        "PP-DEPLOY-02",
        "PP-SCAN-05",
    ]:
        assert found[control] == "pass", control


def test_tag_pinned_trivy_of_the_hijacked_action_fails(tmp_path: Path) -> None:
    tree = copy_golden("python-defaults", tmp_path)
    text = (tree / PR).read_text()
    (tree / PR).write_text(re.sub(r"aquasecurity/trivy-action@[0-9a-f]{40}", "aquasecurity/trivy-action@0.28.0", text))
    report = audit(tree)
    result = next(r for r in report.results if r.control.id == "PP-HARD-01")
    assert result.status == "fail" and "trivy-action@0.28.0" in result.reason


# --- waivers -----------------------------------------------------------------------------------------


def _waive(tree: Path, expires: str, scope: str = PR, control: str = "PP-SCAN-01") -> None:
    (tree / "compliance/risk-acceptance.yml").write_text(
        textwrap.dedent(f"""\
        waivers:
          - control: {control}
            scope: {scope}
            justification: Semgrep registry outage, tracked in SEC-42
            approver: "@acme/security"
            expires: {expires}
        """)
    )


def test_unexpired_waiver_reports_waived_and_exits_0(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tree = copy_golden("python-defaults", tmp_path)
    _set_job(PR, "sast", "continue-on-error", True)(tree)
    _waive(tree, "2999-12-31")
    assert statuses(tree)["PP-SCAN-01"] == "waived"
    assert main(["audit", str(tree)]) == 0
    assert "WAIVED" in capsys.readouterr().out


def test_expired_waiver_fails_again(tmp_path: Path) -> None:
    tree = copy_golden("python-defaults", tmp_path)
    _set_job(PR, "sast", "continue-on-error", True)(tree)
    _waive(tree, "2020-01-31")
    result = next(r for r in audit(tree).results if r.control.id == "PP-SCAN-01")
    assert result.status == "fail" and "expired on 2020-01-31" in result.reason


def test_waiver_for_another_file_does_not_cover(tmp_path: Path) -> None:
    tree = copy_golden("python-defaults", tmp_path)
    _set_job(PR, "sast", "continue-on-error", True)(tree)
    _waive(tree, "2999-12-31", scope=DEPLOY)
    assert statuses(tree)["PP-SCAN-01"] == "fail"


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        (
            "waivers:\n  - control: PP-SCAN-01\n    scope: x\n",
            "risk-acceptance.yml:2: waiver lacks justification, approver, expires",
        ),
        (
            "waivers:\n  - control: PP-NOPE-99\n    scope: x\n    justification: j\n"
            "    approver: a\n    expires: 2030-01-01\n",
            ":2: unknown control 'PP-NOPE-99'",
        ),
        (
            "waivers:\n  - control: PP-SCAN-01\n    scope: x\n    justification: j\n"
            "    approver: a\n    expires: soon\n",
            ":6: expires must be a date",
        ),
        (
            "waivers:\n  - control: PP-SCAN-01\n    scope: x\n    justification: j\n"
            "    approver: a\n    expires: 2030-01-01\n    colour: red\n",
            ":7: unknown waiver key 'colour'",
        ),
        ("waivers: [unclosed\n", "invalid YAML"),
        ("- just a list\n", "must be a mapping with a `waivers:` list"),
    ],
)
def test_malformed_waiver_file_is_an_error_naming_the_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str, needle: str
) -> None:
    tree = copy_golden("python-defaults", tmp_path)
    (tree / "compliance/risk-acceptance.yml").write_text(content)
    assert main(["audit", str(tree)]) == 2
    err = capsys.readouterr().err
    assert needle in err and "Traceback" not in err


# --- formats -----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def weakened(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tree = copy_golden("python-defaults", tmp_path_factory.mktemp("weak"))
    _set_job(PR, "sast", "continue-on-error", True)(tree)
    _text(SETTINGS, "enforce_admins: true", "enforce_admins: false")(tree)
    _waive(tree, "2999-12-31", control="PP-SCAN-01")
    (tree / ".github/workflows/broken.yml").write_text("jobs: [unclosed\n")
    return tree


def test_sarif_validates_against_the_shipped_schema(weakened: Path) -> None:
    log = json.loads(FORMATS["sarif"](audit(weakened)))
    jsonschema.Draft4Validator(SARIF_SCHEMA).validate(log)
    run = log["runs"][0]
    rules = {r["id"]: r for r in run["tool"]["driver"]["rules"]}
    assert {c.id for c in all_controls()} <= set(rules)
    assert rules["PP-BRANCH-02"]["properties"]["soc2"] == ["CC8.1", "CC6.1"]
    assert rules["PP-BRANCH-02"]["defaultConfiguration"]["level"] == "error"
    by_rule = {r["ruleId"]: r for r in run["results"]}
    assert by_rule["PP-BRANCH-02"]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == SETTINGS
    assert by_rule["PP-SCAN-01"]["suppressions"][0]["kind"] == "external"
    assert (
        by_rule["PP-FILE-ERROR"]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
        == ".github/workflows/broken.yml"
    )


def test_clean_sarif_validates_and_has_no_results() -> None:
    log = json.loads(FORMATS["sarif"](audit(GOLDEN / "python-defaults")))
    jsonschema.Draft4Validator(SARIF_SCHEMA).validate(log)
    assert log["runs"][0]["results"] == []


def test_json_is_versioned_and_complete(weakened: Path) -> None:
    doc = json.loads(FORMATS["json"](audit(weakened)))
    assert doc["schema"] == "pipeproof/audit/v1"
    by_id = {r["id"]: r for r in doc["results"]}
    assert by_id["PP-BRANCH-02"]["status"] == "fail"
    assert by_id["PP-BRANCH-02"]["evidence"][0] == {"path": SETTINGS, "line": 35}
    assert by_id["PP-SCAN-01"]["waiver"]["approver"] == "@acme/security"
    assert doc["errors"][0]["path"] == ".github/workflows/broken.yml"


def test_markdown_and_text(weakened: Path) -> None:
    report = audit(weakened)
    md = FORMATS["markdown"](report)
    assert "## Needs attention" in md and "**PP-BRANCH-02**" in md and "| Status | Control |" in md
    text = FORMATS["text"](report)
    assert "FAIL    PP-BRANCH-02" in text and text.rstrip().splitlines()[-1].startswith("35 controls:")


def test_output_file_and_fail_on(weakened: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "report.sarif"
    assert main(["audit", str(weakened), "--format", "sarif", "--output", str(out)]) == 1
    assert json.loads(out.read_text())["version"] == "2.1.0"
    assert "controls:" in capsys.readouterr().err


def test_fail_on_threshold(tmp_path: Path) -> None:
    tree = copy_golden("python-defaults", tmp_path)
    _unset_job(PR, "secrets", "timeout-minutes")(tree)  # PP-HARD-07 is medium
    assert main(["audit", str(tree), "--fail-on", "high"]) == 0
    assert main(["audit", str(tree), "--fail-on", "medium"]) == 1


def test_bad_usage_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["audit", str(tmp_path / "missing")]) == 2
    with pytest.raises(SystemExit) as exit_info:
        main(["audit", ".", "--format", "xml"])
    assert exit_info.value.code == 2


def test_controls_command_formats(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["controls", "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert len(doc["controls"]) == len(all_controls())
    assert main(["controls"]) == 0
    assert "PP-SCAN-01" in capsys.readouterr().out
    assert main(["controls", "--format", "markdown"]) == 0
    assert "| PP-HARD-03 |" in capsys.readouterr().out


# --- hostile files -----------------------------------------------------------------------------------

BOMB = (
    "a: &a [x, x, x, x, x, x, x, x, x]\n"
    + "".join(f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 9)}]\n" for i in range(8))
    + "jobs:\n  boom:\n    steps: *i\n"
)


def _hostile(tree: Path) -> dict[str, float]:
    wf = tree / ".github/workflows"
    (wf / "malformed.yml").write_text("on: [push\njobs: {\n")
    (wf / "not-utf8.yml").write_bytes(b"name: \xff\xfe\nrun: \xc3\x28\n")
    (wf / "alias-bomb.yml").write_text(BOMB)
    (wf / "deep.yml").write_text("jobs: " + "[" * 10_000 + "]" * 10_000 + "\n")
    (wf / "deep-block.yml").write_text("".join("  " * i + f"k{i}:\n" for i in range(3000)) + "  " * 3000 + "v: 1\n")
    with (wf / "huge.yml").open("wb") as fh:
        fh.write(b"name: x\n" + b"# padding\n" * (5 * 1024 * 1024 + 1))  # ~50 MB
    return {}


def test_hostile_files_are_per_file_errors_and_the_audit_goes_on(tmp_path: Path) -> None:
    tree = copy_golden("python-defaults", tmp_path)
    _hostile(tree)
    started = time.perf_counter()
    report = audit(tree)
    elapsed = time.perf_counter() - started
    errors = {e.path.rsplit("/", 1)[-1]: e.message for e in report.errors}
    assert set(errors) == {"malformed.yml", "not-utf8.yml", "alias-bomb.yml", "deep.yml", "deep-block.yml", "huge.yml"}
    assert "invalid YAML" in errors["malformed.yml"]
    assert "not UTF-8" in errors["not-utf8.yml"]
    assert "alias bomb" in errors["alias-bomb.yml"]
    assert "larger than" in errors["huge.yml"]
    assert elapsed < 10
    assert all(r.status in {"pass", "not-applicable"} for r in report.results), "healthy files are still audited"


def test_alias_bomb_alone_is_fast_and_memory_bounded(tmp_path: Path) -> None:
    tree = tmp_path / "bomb"
    (tree / ".github/workflows").mkdir(parents=True)
    (tree / ".github/workflows/bomb.yml").write_text(BOMB)
    code = (
        "import resource, sys, time; from generator.cli import main; t=time.perf_counter();"
        f"rc=main(['audit', {str(tree)!r}, '--format', 'json']);"
        "print(time.perf_counter()-t, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, rc, file=sys.stderr)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=ROOT)
    seconds, max_rss_kb, rc = proc.stderr.strip().splitlines()[-1].split()
    assert float(seconds) < 5
    assert int(max_rss_kb) < 300 * 1024, f"{max_rss_kb} kB"
    assert rc == "1"
    assert json.loads(proc.stdout)["errors"][0]["path"] == ".github/workflows/bomb.yml"
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss > 0
