"""The control catalog is declared once and everything else follows it."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from generator.answers import load_template
from generator.controls import Severity, all_controls, applicable, sync
from generator.render import template_root
from tests.helpers import GOLDEN, SCENARIOS, full_answers, resolve

ID = re.compile(r"\APP-[A-Z]+-\d{2}\Z")


def test_copier_include_is_fresh() -> None:
    assert sync.TARGET.read_text(encoding="utf-8") == sync.render(), (
        "generator/data/controls.yml is stale: run python -m generator.controls.sync"
    )


def test_readme_prerequisites_table_is_fresh() -> None:
    text = sync.README.read_text(encoding="utf-8")
    assert sync.readme(text) == text, "README.md's prerequisites table is stale: run python -m generator.controls.sync"
    for control in all_controls():
        for need in control.needs:
            assert need.what in text and control.id in text


def test_every_control_is_complete() -> None:
    controls = all_controls()
    assert len({c.id for c in controls}) == len(controls)
    for c in controls:
        assert ID.match(c.id), c.id
        assert c.title and c.remediation and c.evidence, c.id
        assert c.soc2 and c.iso27001, c.id
        assert all(ref.startswith("CC") for ref in c.soc2), c.id
        assert all(re.match(r"A\.\d+\.\d+\Z", ref) for ref in c.iso27001), c.id
        assert isinstance(c.severity, Severity)
        assert set(c.implemented_by) == set(c.platforms), c.id


def test_catalog_covers_the_source_documents_table_and_findings() -> None:
    iso = {ref for c in all_controls() for ref in c.iso27001}
    soc2 = {ref for c in all_controls() for ref in c.soc2}
    assert {"A.8.4", "A.8.9", "A.8.15", "A.8.25", "A.8.28", "A.8.29", "A.8.31", "A.8.32"} <= iso
    assert {"CC6.1", "CC7.1", "CC8.1"} <= soc2
    findings = {f for c in all_controls() for f in c.prevents}
    assert findings == {
        "admin-bypass",
        "scan-results-not-retained",
        "scans-not-blocking",
        "no-separate-approval",
        "no-sbom",
        "rollback-never-tested",
    }


def test_typed_view_matches_copier_yml() -> None:
    raw = yaml.safe_load((template_root() / "copier.yml").read_text().split("\n---")[0])
    questions = {k: v for k, v in raw.items() if not k.startswith("_") and v.get("when") is not False}
    template = load_template(template_root())
    assert template.keys == list(questions)
    for q in template.questions:
        assert q.type == questions[q.key].get("type", "str")
        assert q.help == questions[q.key]["help"]
    assert {"pins", "catalog", "controls"} <= set(template.computed)
    for key in [
        "project_name",
        "platform",
        "language",
        "iac",
        "containers",
        "deploy_model",
        "default_branch",
        "required_approvals",
    ]:
        assert key in template.keys, f"stable answer key {key} is gone"


def test_every_action_pin_is_a_full_sha_with_a_version() -> None:
    pins = load_template(template_root()).computed["pins"]
    for name, pin in pins["actions"].items():
        assert re.fullmatch(r"[0-9a-f]{40}", pin["sha"]), name
        assert re.fullmatch(r"v\d+\.\d+\.\d+", pin["version"]), name


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_python_and_copier_agree_on_applicable_controls(name: str) -> None:
    answers = full_answers(SCENARIOS[name]["answers"], Path(name))
    rendered = json.loads((GOLDEN / name / "compliance/controls.json").read_text())
    ids = [c["id"] for c in rendered["controls"]]
    assert ids == [c.id for c in applicable(answers)]


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_each_applicable_control_is_named_where_it_is_implemented(name: str) -> None:
    """The file (and job) a control claims names the control's id in a comment."""
    tree = GOLDEN / name
    answers = full_answers(SCENARIOS[name]["answers"], Path(name))
    for control in applicable(answers):
        for target in control.implemented_by[answers["platform"]]:
            path, _, job = target.format_map(answers).partition("#")
            text = (tree / path).read_text()
            if path.endswith(".json"):
                continue  # JSON has no comments; the settings.yml beside it names the ids
            if job:
                gitlab = answers["platform"] == "gitlab"  # GitLab jobs are top-level keys
                jobs = yaml.safe_load(text) if gitlab else yaml.safe_load(text)["jobs"]
                assert job in jobs, f"{control.id}: {path} has no job {job}"
                block = _job_text(text, job, indent="" if gitlab else "  ")
                assert control.id in block, f"{control.id} is not named in {path} job {job}"
            else:
                assert control.id in text, f"{control.id} is not named in {path}"


def _job_text(text: str, job: str, indent: str = "  ") -> str:
    lines = text.splitlines()
    start = lines.index(f"{indent}{job}:")
    end = next((i for i in range(start + 1, len(lines)) if re.match(rf"{indent}\S", lines[i])), len(lines))
    return "\n".join(lines[start:end])


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_controls_md_lists_every_applicable_control(name: str) -> None:
    text = (GOLDEN / name / "compliance/CONTROLS.md").read_text()
    answers = resolve(SCENARIOS[name]["answers"], Path(name))
    for control in applicable(answers):
        assert f"| {control.id} |" in text
    assert "```mermaid" in text
