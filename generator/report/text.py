"""A readable report: what was read, one group per control, the first few instances and how many more."""

from __future__ import annotations

from generator.audit import Report

_MARK = {
    "pass": "PASS",
    "fail": "FAIL",
    "error": "ERROR",
    "unknown": "UNKNOWN",
    "waived": "WAIVED",
    "skipped": "SKIP",
    "not-applicable": "N/A",
}
SHOWN = 3  # instances shown per control; JSON and SARIF carry all of them


def read_line(report: Report) -> str:
    parts = [f"{n} {what}" for what, n in report.read.items()]
    return "read " + (", ".join(parts) if parts else "nothing") + (f"; {report.profile}" if report.profile else "")


def summary_line(report: Report) -> str:
    s = report.summary()
    return (
        f"{len(report.results)} controls: {s['pass']} pass, {s['fail']} fail, {s['unknown']} unknown, "
        f"{s['waived']} waived, {s['not-applicable']} not applicable, {s['skipped']} skipped, {s['error']} errors; "
        f"{s['file-errors']} unreadable files"
    )


def render(report: Report) -> str:
    lines = [read_line(report)]
    if report.empty:
        lines.append(
            "NOTHING TO AUDIT: no workflow, GitLab pipeline or settings file was found; nothing below is a score"
        )
    for error in report.errors:
        lines.append(f"ERROR   {error.path}:{error.line}: {error.message}")
    for r in report.results:
        lines.append(f"{_MARK[r.status]:<7} {r.control.id:<13} {str(r.control.severity):<8} {r.control.title}")
        if r.status in {"pass", "not-applicable"}:
            if r.evidence:
                lines.append(f"{'':22}{r.reason} ({r.evidence[0]})")
            continue
        count = f" [{len(r.findings)} instances]" if len(r.findings) > 1 else ""
        lines.append(f"{'':22}{r.reason}{count}")
        for finding in r.findings[:SHOWN]:
            message = "" if finding.message == r.reason else f": {finding.message}"
            lines.append(f"{'':22}at {finding.where}{message}")
        if len(r.findings) > SHOWN:
            lines.append(f"{'':22}and {len(r.findings) - SHOWN} more")
        if r.status in {"fail", "error"}:
            lines.append(f"{'':22}fix: {r.control.fix(str(report.answers.get('platform', 'github')))}")
    lines.append(summary_line(report))
    return "\n".join(lines) + "\n"
