"""`pipeproof audit`: goldens audit clean, each weakening fails the right control, hostile files stay errors."""

from __future__ import annotations

import json
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


# The weakenings of every control are in tests/test_mutations.py.


def test_source_document_examples_fail_what_they_miss_and_pass_what_they_do() -> None:
    """The guide's examples, copied literally: its security-scan workflow needs a job that does not exist, so
    GitHub runs none of it; its settings.yml lacks `restrictions`, so the settings app applies none of it."""
    report = audit(SOURCE_DOCUMENT)
    found = {r.control.id: r.status for r in report.results}
    for control in [
        "PP-BRANCH-01",  # settings.yml without restrictions: nothing applied
        "PP-SCAN-01",  # Semgrep, dependency review and gitleaks live in a workflow GitHub rejects
        "PP-SCAN-02",
        "PP-SCAN-04",
        "PP-SCAN-09",  # ZAP without fail_action
        "PP-HARD-01",
        "PP-EVID-03",
        "PP-HARD-05",
        "PP-HARD-04",
        "PP-HARD-02",
        "PP-HARD-09",
        "PP-DEPLOY-05",
        "PP-EVID-01",
        "PP-DEPLOY-03",  # its check gate lists only failed check runs: a required check that never ran passes
    ]:
        assert found[control] == "fail", control
    rejected = next(r for r in report.results if r.control.id == "PP-SCAN-01")
    assert any("rejected by GitHub" in f.message for f in rejected.findings), rejected.findings
    for control in ["PP-DEPLOY-02", "PP-SCAN-05", "PP-HARD-03", "PP-HARD-06"]:
        assert found[control] == "pass", control
    # Environment reviewers live in the repository's settings, not its files.
    assert found["PP-DEPLOY-01"] == "unknown"


def test_tag_pinned_trivy_of_the_hijacked_action_fails(tmp_path: Path) -> None:
    tree = copy_golden("python-defaults", tmp_path)
    edit(
        tree / PR,
        "      - name: Trivy image scan\n",
        "      - name: Trivy action\n        uses: aquasecurity/trivy-action@0.28.0\n"
        "        with: {image-ref: x, exit-code: '1'}\n      - name: Trivy image scan\n",
    )
    result = next(r for r in audit(tree).results if r.control.id == "PP-HARD-01")
    assert result.status == "fail" and "trivy-action@0.28.0" in result.findings[0].message


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
    _text(PR, "--disable-nosem --error", "--disable-nosem")(tree)
    _waive(tree, "2999-12-31")
    assert statuses(tree)["PP-SCAN-01"] == "waived"
    assert main(["audit", str(tree)]) == 0
    assert "WAIVED" in capsys.readouterr().out


def test_expired_waiver_fails_again(tmp_path: Path) -> None:
    tree = copy_golden("python-defaults", tmp_path)
    _text(PR, "--disable-nosem --error", "--disable-nosem")(tree)
    _waive(tree, "2020-01-31")
    result = next(r for r in audit(tree).results if r.control.id == "PP-SCAN-01")
    assert result.status == "fail" and "expired on 2020-01-31" in result.reason


def test_waiver_for_another_file_does_not_cover(tmp_path: Path) -> None:
    tree = copy_golden("python-defaults", tmp_path)
    _text(PR, "--disable-nosem --error", "--disable-nosem")(tree)
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
    assert by_id["PP-BRANCH-02"]["findings"][0]["path"] == SETTINGS
    assert by_id["PP-BRANCH-02"]["count"] == len(by_id["PP-BRANCH-02"]["findings"]) >= 1
    assert by_id["PP-SCAN-01"]["waivers"][0]["approver"] == "@acme/security"
    assert doc["errors"][0]["path"] == ".github/workflows/broken.yml"


def test_markdown_and_text(weakened: Path) -> None:
    report = audit(weakened)
    md = FORMATS["markdown"](report)
    assert "## Needs attention" in md and "**PP-BRANCH-02**" in md and "| Status | Control |" in md
    text = FORMATS["text"](report)
    assert "FAIL    PP-BRANCH-02" in text and text.rstrip().splitlines()[-1].startswith(
        f"{len(all_controls())} controls:"
    )


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
        # VmHWM is this process image's own peak: ru_maxrss keeps the peak of the forking pytest process too
        # (Linux carries it across exec), which grows with the number of tests run before this one.
        "hwm=[l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM:')][0];"
        "print(time.perf_counter()-t, hwm, rc, file=sys.stderr)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=ROOT)
    seconds, max_rss_kb, rc = proc.stderr.strip().splitlines()[-1].split()
    assert float(seconds) < 5
    assert int(max_rss_kb) < 300 * 1024, f"{max_rss_kb} kB"
    assert rc == "1"
    assert json.loads(proc.stdout)["errors"][0]["path"] == ".github/workflows/bomb.yml"
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss > 0
