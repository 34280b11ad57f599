"""`pipeproof audit --format json` matches its published schema (generator/data/audit-v1.schema.json) on every
kind of repository the tests know: generated trees, the source document, each real-world fixture (the empty
repository and merge-conflict markers included). The schema is the contract for tools that read the report, so
a field added to the report without the schema (or a schema the report no longer meets) fails here."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from generator.cli import main
from tests.helpers import ROOT

SCHEMA = json.loads((ROOT / "generator/data/audit-v1.schema.json").read_text())
TREES = [
    *sorted((ROOT / "golden").glob("*/")),
    ROOT / "tests/fixtures/source-document",
    *sorted((ROOT / "tests/fixtures/real-world").glob("*/")),
]


def test_the_schema_is_a_valid_draft_2020_12_schema() -> None:
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    assert SCHEMA["properties"]["schema"] == {"const": "pipeproof/audit/v1"}


@pytest.mark.parametrize("tree", TREES, ids=lambda p: p.name)
def test_every_report_meets_the_schema(tree: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "report.json"
    code = main(["audit", str(tree), "--format", "json", "--output", str(out), "--strict"])
    capsys.readouterr()
    assert code in (0, 1)
    report = json.loads(out.read_text())
    jsonschema.Draft202012Validator(SCHEMA, format_checker=jsonschema.FormatChecker()).validate(report)
    summary = report["summary"]
    blocking = summary["fail"] + summary["error"] + summary["unknown"] > 0  # --strict: unknown fails too
    assert code == (1 if blocking or report["empty"] else 0), summary
