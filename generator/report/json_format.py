"""Machine-readable results, versioned by `schema`."""

from __future__ import annotations

import json
from typing import Any

from generator import __version__
from generator.audit import Report, Result

SCHEMA = "pipeproof/audit/v1"


def location(evidence: str) -> dict[str, Any]:
    path, _, line = evidence.rpartition(":")
    if not path or not line.isdigit():
        return {"path": evidence, "line": None}
    return {"path": path, "line": int(line)}


def result(r: Result) -> dict[str, Any]:
    c = r.control
    out: dict[str, Any] = {
        "id": c.id,
        "title": c.title,
        "family": c.family,
        "severity": str(c.severity),
        "status": r.status,
        "reason": r.reason,
        "evidence": [location(e) for e in r.evidence],
        "soc2": list(c.soc2),
        "iso27001": list(c.iso27001),
        "remediation": c.remediation,
    }
    if r.waiver is not None:
        w = r.waiver
        out["waiver"] = {
            "scope": w.scope,
            "justification": w.justification,
            "approver": w.approver,
            "expires": w.expires.isoformat(),
            "at": w.where,
        }
    return out


def render(report: Report) -> str:
    doc = {
        "schema": SCHEMA,
        "pipeproof": __version__,
        "root": str(report.root),
        "answers": {k: v for k, v in report.answers.items() if isinstance(v, (str, int, bool, list))},
        "summary": report.summary(),
        "results": [result(r) for r in report.results],
        "errors": [{"path": e.path, "message": e.message} for e in report.errors],
    }
    return json.dumps(doc, indent=2) + "\n"
