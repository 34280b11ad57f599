"""Markdown for a pull-request comment or an auditor pack."""

from __future__ import annotations

from generator.audit import Report
from generator.report.text import SHOWN, read_line, summary_line

_ICON = {
    "pass": "pass",
    "fail": "**FAIL**",
    "error": "**ERROR**",
    "unknown": "unknown",
    "waived": "waived",
    "skipped": "skipped",
    "not-applicable": "n/a",
}


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render(report: Report) -> str:
    out = ["# pipeproof audit", "", read_line(report), "", summary_line(report), ""]
    if report.empty:
        out += ["> **Nothing to audit:** no workflow, GitLab pipeline or settings file was found.", ""]
    problems = [r for r in report.results if r.status in {"fail", "error"}]
    if problems or report.errors:
        out += ["## Needs attention", ""]
        out += [f"- `{e.path}:{e.line}`: {_cell(e.message)}" for e in report.errors]
        for r in problems:
            fix = r.control.fix(str(report.answers.get("platform", "github")))
            out.append(f"- **{r.control.id}** {r.control.title}: {_cell(r.reason)}. Fix: {fix}")
            out += [f"  - `{f.where}`: {_cell(f.message)}" for f in r.findings[:SHOWN]]
            if len(r.findings) > SHOWN:
                out.append(f"  - and {len(r.findings) - SHOWN} more")
        out.append("")
    unknowns = [r for r in report.results if r.status == "unknown"]
    if unknowns:
        out += ["## Cannot be decided from the files", ""]
        out += [f"- **{r.control.id}** {r.control.title}: {_cell(r.reason)}" for r in unknowns]
        out.append("")
    out += [
        "## All controls",
        "",
        "| Status | Control | Severity | SOC 2 | ISO 27001:2022 | Reason | Evidence |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in report.results:
        c = r.control
        evidence = "<br>".join(f"`{e}`" for e in (r.findings and [f.where for f in r.findings] or r.evidence)[:3])
        out.append(
            f"| {_ICON[r.status]} | {c.id} {_cell(c.title)} | {c.severity} | {', '.join(c.soc2)} | "
            f"{', '.join(c.iso27001)} | {_cell(r.reason)} | {evidence} |"
        )
    return "\n".join(out) + "\n"
