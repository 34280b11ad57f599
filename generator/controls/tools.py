"""What a workflow step runs, and whether that tool is configured to fail the job on findings.

Each scanner has its own switch that makes it report and carry on: semgrep without --error, Grype's
fail-build: false, Checkov's soft_fail, Trivy's exit-code 0 (its default), gitleaks --exit-code 0,
dependency review's warn-only, ZAP without fail_action or a gate on its report.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable

from generator.controls.github import Step, first_blocking, truthy

_RUN_PATTERNS = {
    "semgrep": re.compile(r"(?<![\w-])semgrep\s+(?:scan|ci|--config)\b"),
    "sbom": re.compile(r"(?<![\w-])syft\s"),
    "grype": re.compile(r"(?<![\w-])grype\s"),
    "gitleaks": re.compile(r"(?<![\w-])gitleaks\"?\s+(?:git|detect|dir|protect)\b"),
    "checkov": re.compile(r"(?<![\w-])checkov\s"),
    "trivy": re.compile(r"(?<![\w-])trivy\s+(?:image|fs|repo|config|rootfs)\b"),
    "tests": re.compile(
        r"\b(?:pytest|npm\s+(?:run\s+)?test|yarn\s+test|pnpm\s+test|go\s+test|mvn\b.*\b(?:verify|test)|gradle\w*\s+\S*test)\b"
    ),
    "pipeproof": re.compile(r"\bpipeproof\s+audit\b"),
}
_ACTIONS = {
    "semgrep/semgrep-action": "semgrep",
    "returntocorp/semgrep-action": "semgrep",
    "actions/dependency-review-action": "dependency-review",
    "anchore/sbom-action": "sbom",
    "anchore/scan-action": "grype",
    "gitleaks/gitleaks-action": "gitleaks",
    "bridgecrewio/checkov-action": "checkov",
    "aquasecurity/trivy-action": "trivy",
    "zaproxy/action-full-scan": "zap",
    "zaproxy/action-baseline": "zap",
    "zaproxy/action-api-scan": "zap",
}


def kind(step: Step) -> str:
    """The tool a step runs ('semgrep', 'grype', 'tests', ...), or '' for anything else."""
    if step.tool is None:  # several checks ask about every step: work it out once
        step.tool = (
            _ACTIONS.get(step.action, "")
            if step.uses
            else next((name for name, pattern in _RUN_PATTERNS.items() if pattern.search(step.run)), "")
        )
    return step.tool


def _opt(with_: dict[str, object], key: str) -> str:
    value = with_.get(key)
    return "" if value is None else str(value).strip().lower()


def soft(step: Step) -> str | None:
    """Why this tool, as configured, would report findings without failing, or None."""
    w, run = step.with_, step.run
    match kind(step):
        case "semgrep" if run:
            if re.search(r"semgrep\s+ci\b", run) is None and "--error" not in run:
                return f"semgrep scan without --error exits 0 on findings ({step.line_of('run')})"
        case "dependency-review":
            if truthy(w.get("warn-only", False)):
                return f"dependency review has warn-only: true ({step.line_of('with')})"
            if _opt(w, "fail-on-severity") == "critical":
                return f"dependency review fails only on critical ({step.line_of('with')})"
        case "grype" if step.uses:
            if _opt(w, "fail-build") == "false":
                return f"scan-action has fail-build: false ({step.line_of('with')})"
            if _opt(w, "severity-cutoff") == "critical":
                return f"scan-action fails only on critical ({step.line_of('with')})"
        case "grype":
            if "--fail-on" not in run:
                return f"grype without --fail-on exits 0 on findings ({step.line_of('run')})"
        case "gitleaks" if run:
            if re.search(r"--exit-code[= ]\s*0\b", run):
                return f"gitleaks --exit-code 0 never fails ({step.line_of('run')})"
        case "checkov" if step.uses:
            if truthy(w.get("soft_fail", False)) or w.get("soft_fail_on"):
                return f"checkov-action has soft_fail ({step.line_of('with')})"
        case "checkov":
            if "--soft-fail" in run:
                return f"checkov --soft-fail never fails ({step.line_of('run')})"
        case "trivy" if step.uses:
            code = _opt(w, "exit-code")
            if code in {"", "0"}:
                return (
                    f"trivy-action exit-code is {code or 'unset (0)'}, so findings do not fail ({step.line_of('with')})"
                )
        case "trivy":
            if not re.search(r"--exit-code[= ]\s*[1-9]", run):
                return f"trivy without --exit-code 1 exits 0 on findings ({step.line_of('run')})"
        case "zap":
            gated = any(
                "riskcode" in later.run and "exit 1" in later.run
                for later in step.job.steps[step.index + 1 :]
                if later.not_blocking() is None
            )
            if not truthy(w.get("fail_action", False)) and not gated:
                return f"ZAP has no fail_action and no gate on its report ({step.line_of('with')})"
    return None


def blocking(
    steps: Iterable[Step], tool: str, extra: Callable[[Step], str | None] | None = None
) -> tuple[Step | None, str]:
    """The first step running `tool` that would fail its job on findings, or None and why none does."""
    candidates = [s for s in steps if kind(s) == tool]
    if not candidates:
        return None, f"no {tool} step"
    reasons: list[str] = []
    for step in candidates:
        found, why = first_blocking([step])
        if found is None:
            reasons += why
            continue
        problem = soft(step) or (extra(step) if extra else None)
        if problem:
            reasons.append(f"{step.where}: {problem}")
            continue
        return step, ""
    return None, "; ".join(reasons)
