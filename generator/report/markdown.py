"""Markdown for a pull-request comment or an auditor pack."""

from __future__ import annotations

from generator.audit import Report
from generator.report.text import summary_line

_ICON = {
    "pass": "pass",
    "fail": "**FAIL**",
    "error": "**ERROR**",
    "waived": "waived",
    "skipped": "skipped",
    "not-applicable": "n/a",
}


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render(report: Report) -> str:
    out = ["# pipeproof audit", "", summary_line(report), ""]
    problems = [r for r in report.results if r.status in {"fail", "error"}]
    if problems or report.errors:
        out += ["## Needs attention", ""]
        out += [f"- `{e.path}`: could not be read: {_cell(e.message)}" for e in report.errors]
        for r in problems:
            where = f" (`{r.evidence[0]}`)" if r.evidence else ""
            out.append(
                f"- **{r.control.id}** {r.control.title}: {_cell(r.reason)}{where}. Fix: {r.control.remediation}"
            )
        out.append("")
    out += [
        "## All controls",
        "",
        "| Status | Control | Severity | SOC 2 | ISO 27001:2022 | Reason | Evidence |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in report.results:
        c = r.control
        evidence = "<br>".join(f"`{e}`" for e in r.evidence[:3])
        out.append(
            f"| {_ICON[r.status]} | {c.id} {_cell(c.title)} | {c.severity} | {', '.join(c.soc2)} | "
            f"{', '.join(c.iso27001)} | {_cell(r.reason)} | {evidence} |"
        )
    return "\n".join(out) + "\n"
