"""SARIF 2.1.0 for code scanning: one rule per control (deduplicated by id), a result per finding."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from generator import __version__
from generator.audit import Report, Result
from generator.controls import Control, Severity, all_controls
from generator.controls.base import Finding, generic_evidence
from generator.project import repository
from generator.report.json_format import location

SCHEMA_URI = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
LEVEL = {Severity.CRITICAL: "error", Severity.HIGH: "error", Severity.MEDIUM: "warning", Severity.LOW: "note"}
FILE_ERROR = "PP-FILE-ERROR"


def rule(c: type[Control]) -> dict[str, Any]:
    refs = [f"SOC 2 {r}" for r in c.soc2] + [f"ISO 27001:2022 {r}" for r in c.iso27001]
    return {
        "id": c.id,
        "name": c.__name__,
        "shortDescription": {"text": c.title},
        "fullDescription": {"text": f"{c.title}. Maps to {', '.join(refs)}."},
        "help": {
            "text": c.remediation,
            "markdown": f"**Remediation:** {c.remediation}\n\n**Evidence:** {generic_evidence(c.evidence)}",
        },
        "helpUri": f"{repository()}#controls",
        "defaultConfiguration": {"level": LEVEL[c.severity]},
        "properties": {
            "soc2": list(c.soc2),
            "iso27001": list(c.iso27001),
            "severity": str(c.severity),
            "family": c.family,
            "tags": ["compliance", c.family, *refs],
            "security-severity": {"critical": "9.5", "high": "8.0", "medium": "5.5", "low": "2.0"}[str(c.severity)],
        },
    }


def _locations(wheres: list[str], root: Path) -> list[dict[str, Any]]:
    """SARIF locations for the places that are files of the repository (never a path that does not exist)."""
    out = []
    for where in wheres:
        place = location(where)
        path = place["path"]
        if not path or path.startswith("/") or ".." in path.split("/") or not (root / path).is_file():
            continue
        out.append(
            {"physicalLocation": {"artifactLocation": {"uri": path}, "region": {"startLine": place["line"] or 1}}}
        )
    return out


def _fallback(r: Result, report: Report) -> list[str]:
    """Where to show a finding that has no file of its own: the files that implement the control, if present."""
    platform = str(report.answers.get("platform", "github"))
    return [f.split("#")[0] + ":1" for f in r.control.implemented_by.get(platform, ())]


def _results(r: Result, index: int, report: Report) -> list[dict[str, Any]]:
    instances = r.findings or (Finding("", r.reason),)
    out = []
    for finding in instances:
        message = r.reason if finding.message == r.reason else f"{r.reason}: {finding.message}"
        result: dict[str, Any] = {
            "ruleId": r.control.id,
            "ruleIndex": index,
            "level": "note" if r.status == "unknown" else LEVEL[r.control.severity],
            "message": {"text": f"{r.control.title}: {message}"},
        }
        locations = _locations([finding.where] if finding.where else [], report.root) or _locations(
            _fallback(r, report), report.root
        )
        if locations:
            result["locations"] = locations[:1]
        if r.status == "waived" and r.waiver is not None:
            result["suppressions"] = [
                {
                    "kind": "external",
                    "status": "accepted",
                    "justification": f"{r.waiver.justification} (approved by {r.waiver.approver}, "
                    f"expires {r.waiver.expires})",
                }
            ]
        if r.status == "unknown":
            result["properties"] = {"status": "unknown"}
        out.append(result)
    return out


def render(report: Report) -> str:
    controls = all_controls()
    index = {c.id: i for i, c in enumerate(controls)}
    rules = [rule(c) for c in controls]
    rules.append(
        {
            "id": FILE_ERROR,
            "name": "FileError",
            "shortDescription": {"text": "A configuration file could not be read"},
            "defaultConfiguration": {"level": "error"},
            "properties": {"severity": "high"},
        }
    )
    results = [
        item
        for r in report.results
        if r.status in {"fail", "error", "waived", "unknown"}
        for item in _results(r, index[r.control.id], report)
    ]
    for e in report.errors:
        item: dict[str, Any] = {
            "ruleId": FILE_ERROR,
            "ruleIndex": len(rules) - 1,
            "level": "error",
            "message": {"text": e.message},
        }
        if where := _locations([f"{e.path}:{e.line}"], report.root):
            item["locations"] = where
        results.append(item)
    log = {
        "$schema": SCHEMA_URI,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "pipeproof",
                        "version": __version__,
                        "informationUri": repository(),
                        "rules": rules,
                    }
                },
                "results": results,
                "properties": {"summary": report.summary()},
            }
        ],
    }
    return json.dumps(log, indent=2) + "\n"
