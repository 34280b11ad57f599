"""A readable table with a summary line."""

from __future__ import annotations

from generator.audit import Report

_MARK = {
    "pass": "PASS",
    "fail": "FAIL",
    "error": "ERROR",
    "waived": "WAIVED",
    "skipped": "SKIP",
    "not-applicable": "N/A",
}


def summary_line(report: Report) -> str:
    s = report.summary()
    return (
        f"{len(report.results)} controls: {s['pass']} pass, {s['fail']} fail, {s['waived']} waived, "
        f"{s['not-applicable']} not applicable, {s['skipped']} skipped, {s['error']} errors; "
        f"{s['file-errors']} unreadable files"
    )


def render(report: Report) -> str:
    lines = []
    for error in report.errors:
        lines.append(f"ERROR   {error.path}: {error.message}")
    for r in report.results:
        lines.append(f"{_MARK[r.status]:<7} {r.control.id:<13} {str(r.control.severity):<8} {r.control.title}")
        if r.status not in {"pass", "not-applicable"}:
            lines.append(f"{'':22}{r.reason}")
            lines.extend(f"{'':22}at {e}" for e in r.evidence[:3])
            if r.status in {"fail", "error"}:
                lines.append(f"{'':22}fix: {r.control.remediation}")
        elif r.evidence:
            lines.append(f"{'':22}{r.reason} ({r.evidence[0]})")
    lines.append(summary_line(report))
    return "\n".join(lines) + "\n"
