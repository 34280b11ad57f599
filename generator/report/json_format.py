"""Machine-readable results: the stable `pipeproof/audit/v1` document (generator/data/audit-v1.schema.json)."""

from __future__ import annotations

import json
from typing import Any

from generator import __version__
from generator.audit import Report, Result, Waiver

SCHEMA = "pipeproof/audit/v1"


def location(where: str) -> dict[str, Any]:
    """`path:line` as {path, line}; a bare path has line null."""
    path, _, line = where.rpartition(":")
    if not path or not line.isdigit():
        return {"path": where, "line": None}
    return {"path": path, "line": int(line)}


def _waiver(w: Waiver) -> dict[str, Any]:
    return {
        "scope": w.scope,
        "justification": w.justification,
        "approver": w.approver,
        "expires": w.expires.isoformat(),
        "at": w.where,
    }


def result(r: Result, platform: str = "github") -> dict[str, Any]:
    c = r.control
    out: dict[str, Any] = {
        "id": c.id,
        "title": c.title,
        "family": c.family,
        "severity": str(c.severity),
        "status": r.status,
        "reason": r.reason,
        "count": len(r.findings),
        "findings": [location(f.where) | {"message": f.message} for f in r.findings],
        "evidence": [location(e) for e in r.evidence],
        "soc2": list(c.soc2),
        "iso27001": list(c.iso27001),
        "remediation": c.fix(platform),
        "waivers": [_waiver(w) for w in r.waivers],
    }
    return out


def document(report: Report) -> dict[str, Any]:
    return {
        "schema": SCHEMA,
        "version": 1,
        "pipeproof": __version__,
        "root": str(report.root),
        "profile": report.profile,
        "empty": report.empty,
        "read": dict(report.read),
        "answers": {k: v for k, v in report.answers.items() if isinstance(v, (str, int, bool, list))},
        "summary": report.summary(),
        "results": [result(r, str(report.answers.get("platform", "github"))) for r in report.results],
        "errors": [
            {"path": e.path, "line": e.line, "message": e.message, "kind": "conflict" if e.conflict else "parse"}
            for e in report.errors
        ],
    }


def render(report: Report) -> str:
    return json.dumps(document(report), indent=2) + "\n"
