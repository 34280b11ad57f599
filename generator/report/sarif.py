"""SARIF 2.1.0 for code scanning: one rule per control (deduplicated by id), a result per finding."""

from __future__ import annotations

import json
from typing import Any

from generator import __version__
from generator.audit import Report, Result
from generator.controls import Control, Severity, all_controls
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
        "help": {"text": c.remediation, "markdown": f"**Remediation:** {c.remediation}\n\n**Evidence:** {c.evidence}"},
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


def _locations(evidence: tuple[str, ...], fallback: str) -> list[dict[str, Any]]:
    places = [location(e) for e in evidence] or [{"path": fallback, "line": 1}]
    return [
        {"physicalLocation": {"artifactLocation": {"uri": p["path"]}, "region": {"startLine": p["line"] or 1}}}
        for p in places[:10]
    ]


def _result(r: Result, index: int, platform: str) -> dict[str, Any]:
    files = [f.split("#")[0] for f in r.control.implemented_by.get(platform, ())] or ["."]
    out: dict[str, Any] = {
        "ruleId": r.control.id,
        "ruleIndex": index,
        "level": LEVEL[r.control.severity],
        "message": {"text": f"{r.control.title}: {r.reason}"},
        "locations": _locations(r.evidence, files[0]),
    }
    if r.status == "waived" and r.waiver is not None:
        out["suppressions"] = [
            {
                "kind": "external",
                "status": "accepted",
                "justification": f"{r.waiver.justification} (approved by {r.waiver.approver}, "
                f"expires {r.waiver.expires})",
            }
        ]
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
    platform = str(report.answers.get("platform", "github"))
    results = [
        _result(r, index[r.control.id], platform) for r in report.results if r.status in {"fail", "error", "waived"}
    ]
    results += [
        {
            "ruleId": FILE_ERROR,
            "ruleIndex": len(rules) - 1,
            "level": "error",
            "message": {"text": e.message},
            "locations": _locations((f"{e.path}:1",), e.path),
        }
        for e in report.errors
    ]
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
