"""The audit on small repositories that reproduce the patterns of well-known public projects (issue 8).

Each `tests/fixtures/real-world/<name>/` is a repository written for pipeproof, never copied from a project,
plus its `expected.yml`: `about:` (the public pattern it reproduces), the expected status of the controls the
fixture is about (control id -> status), and optionally `mentions:` (control id -> text its reason or findings
must contain), `errors:` (unreadable files, as "path:line message") and `empty: true` (nothing to audit).
The test audits a copy without expected.yml, outside any git work tree (so the default branch is `main`).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from generator.audit import STATUSES, Report, Result, audit
from generator.cli import main
from generator.repo import ParseError, load_yaml

FIXTURES = Path(__file__).parent / "fixtures" / "real-world"
NAMES = sorted(p.name for p in FIXTURES.iterdir() if (p / "expected.yml").is_file())
OPTIONS = ("about", "mentions", "errors", "empty")


def expected(name: str) -> dict[str, Any]:
    data = yaml.safe_load((FIXTURES / name / "expected.yml").read_text(encoding="utf-8"))
    assert isinstance(data, dict) and isinstance(data.get("about"), str), f"{name}/expected.yml needs about:"
    return data


def materialise(name: str, dest: Path) -> Path:
    """A copy of the fixture's repository (dotfiles included) without its expected.yml."""
    source = FIXTURES / name
    shutil.copytree(source, dest, ignore=lambda folder, _names: ["expected.yml"] if Path(folder) == source else [])
    return dest


def _describe(result: Result) -> str:
    where = [f"{f.where}: {f.message}" for f in result.findings[:3]] or list(result.evidence[:3])
    return result.reason + "".join(f"\n      at {w}" for w in where)


def mismatches(report: Report, want: dict[str, Any]) -> list[str]:
    """Every way the report differs from the expectation, each naming the control, both statuses and the reason."""
    by_id = {r.control.id: r for r in report.results}
    problems = []
    for control, status in want.items():
        if control in OPTIONS:
            continue
        assert status in STATUSES, f"expected.yml: {control}: {status!r} is not one of {', '.join(STATUSES)}"
        result = by_id.get(control)
        if result is None:
            problems.append(f"{control}: expected {status}, but no such control")
        elif result.status != status:
            problems.append(f"{control}: expected {status}, got {result.status}: {_describe(result)}")
    for control, text in (want.get("mentions") or {}).items():
        result = by_id[control]
        said = "\n".join([result.reason, *(f"{f.where}: {f.message}" for f in result.findings), *result.evidence])
        if text not in said:
            problems.append(f"{control}: expected the report to mention {text!r}; it says: {_describe(result)}")
    # A check that raises is a bug the fixture found, whatever the fixture is about.
    problems += [f"{r.control.id}: error: {r.reason}" for r in report.results if r.status == "error"]
    if report.empty != bool(want.get("empty")):
        problems.append(f"report.empty is {report.empty}, expected {bool(want.get('empty'))}")
    errors = sorted(f"{e.path}:{e.line} {e.message}" for e in report.errors)
    wanted_errors = want.get("errors") or []
    if len(errors) != len(wanted_errors) or not all(
        any(got.startswith(w.split(" ", 1)[0] + " ") and w.split(" ", 1)[1] in got for got in errors)
        for w in wanted_errors
    ):
        problems.append(f"file errors: expected {wanted_errors}, got {errors}")
    return problems


@pytest.mark.parametrize("name", NAMES)
def test_fixture_statuses(name: str, tmp_path: Path) -> None:
    want = expected(name)
    report = audit(materialise(name, tmp_path / name))
    problems = mismatches(report, want)
    assert not problems, f"{name} ({want['about']}):\n  " + "\n  ".join(problems)


def test_every_fixture_is_about_something() -> None:
    assert len(NAMES) >= 20
    for name in NAMES:
        want = expected(name)
        assert "\n" not in want["about"].strip(), f"{name}: about: is one line"
        assert any(key.startswith("PP-") for key in want), f"{name}: expects no control status"


def _yaml_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file() and p.suffix in {".yml", ".yaml"})


def _resave(root: Path) -> int:
    """Re-serialise every parseable YAML file with yaml.safe_dump (comments, quoting, order and layout lost)."""
    count = 0
    for path in _yaml_files(root):
        try:
            load_yaml(path)  # the audit's own reader decides what is parseable (merge conflicts are not)
        except ParseError:
            continue
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        path.write_text(yaml.safe_dump(data, sort_keys=True, allow_unicode=True), encoding="utf-8")
        count += 1
    return count


RESAVABLE = [n for n in NAMES if any(p.name != "expected.yml" for p in _yaml_files(FIXTURES / n))]


@pytest.mark.parametrize("name", RESAVABLE)
def test_verdicts_survive_reserialising(name: str, tmp_path: Path) -> None:
    before = audit(materialise(name, tmp_path / "as-written"))
    resaved = materialise(name, tmp_path / "resaved")
    assert _resave(resaved) > 0
    after = audit(resaved)
    changed = [
        f"{a.control.id}: {a.status} as written, {b.status} re-serialised: {_describe(b)}"
        for a, b in zip(before.results, after.results, strict=True)
        if a.status != b.status
    ]
    assert not changed, "\n".join(changed)


def _cli_json(args: list[str], out: Path) -> tuple[int, dict[str, Any]]:
    code = main(["audit", *args, "--format", "json", "--output", str(out)])
    return code, json.loads(out.read_text(encoding="utf-8"))


DEPLOYMENT = (
    "PP-DEPLOY-01",
    "PP-DEPLOY-02",
    "PP-DEPLOY-03",
    "PP-DEPLOY-04",
    "PP-DEPLOY-05",
    "PP-EVID-01",
    "PP-SCAN-09",
)


@pytest.mark.parametrize(
    ("name", "profile", "applies"),
    [
        pytest.param("service-go-helm-production", "library", False, id="service-as-library"),
        pytest.param("lib-python-nox-pypi", "service", True, id="library-as-service"),
        pytest.param("service-go-helm-production", "auto", True, id="service-detected"),
        pytest.param("lib-python-nox-pypi", "auto", False, id="library-detected"),
    ],
)
def test_profile_decides_deployment_controls(name: str, profile: str, applies: bool, tmp_path: Path) -> None:
    repo = materialise(name, tmp_path / name)
    _code, doc = _cli_json([str(repo), "--profile", profile], tmp_path / "report.json")
    statuses = {r["id"]: r["status"] for r in doc["results"]}
    for control in DEPLOYMENT:
        assert (statuses[control] != "not-applicable") == applies, (control, statuses[control], doc["profile"])
    if profile != "auto":
        assert doc["profile"] == f"--profile {profile}"


def test_fail_on_critical_passes_a_library_whose_critical_gaps_are_only_unknown(tmp_path: Path) -> None:
    """Issue 8: `--fail-on critical` exited 1 on every repository; what the files cannot decide trips only --strict."""
    repo = materialise("lib-python-nox-pypi", tmp_path / "repo")
    code, doc = _cli_json([str(repo), "--fail-on", "critical"], tmp_path / "report.json")
    critical = {r["id"]: r["status"] for r in doc["results"] if r["severity"] == "critical"}
    assert "fail" not in critical.values() and "unknown" in critical.values(), critical
    assert code == 0
    strict, _doc = _cli_json([str(repo), "--fail-on", "critical", "--strict"], tmp_path / "strict.json")
    assert strict == 1


@pytest.mark.parametrize("name", ["empty-repository", "readme-only"])
def test_nothing_to_audit_is_never_a_score(name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    repo = materialise(name, tmp_path / name)
    assert main(["audit", str(repo)]) == 1
    out, err = capsys.readouterr()
    assert "nothing to audit" in err
    assert "NOTHING TO AUDIT" in out and "nothing below is a score" in out
    code, doc = _cli_json([str(repo)], tmp_path / "report.json")
    assert code == 1 and doc["empty"] is True
    assert doc["summary"]["pass"] == 0, "an empty repository passes nothing"


def test_a_profile_that_is_not_allowed_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    repo = materialise("lib-python-nox-pypi", tmp_path / "repo")
    with pytest.raises(SystemExit) as exit_:
        main(["audit", str(repo), "--profile", "application"])
    assert exit_.value.code == 2
    assert "invalid choice: 'application'" in capsys.readouterr().err
