"""What a team must still do after `pipeproof new`: prerequisites, placeholders still in use, commands to run."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from generator.controls import Control
from generator.controls.needs import Need

# Answers whose default is an example, not a fact about the team: (key, test, what to do).
_PLACEHOLDERS: tuple[tuple[str, Any, str], ...] = (
    (
        "security_team",
        lambda v, a: v == f"@{a.get('project_name')}/security",
        "is a guess: answer security_team with the real team (@org/team) that owns the pipeline and approves "
        "production",
    ),
    (
        "evidence_role",
        lambda v, a: (
            isinstance(v, str)
            and ("123456789012" in v or v.startswith("00000000-") or v.startswith("evidence-writer@"))
        ),
        "is an example identity: answer evidence_role with the role the evidence store trusts",
    ),
    ("staging_url", lambda v, a: isinstance(v, str) and "example." in v, "is an example URL"),
    ("production_url", lambda v, a: isinstance(v, str) and "example." in v, "is an example URL"),
    (
        "container_image",
        lambda v, a: v == f"ghcr.io/{a.get('project_name')}/{a.get('project_name')}",
        "is derived from the guessed team's organisation: answer container_image with your image repository",
    ),
)


@dataclass(frozen=True)
class NextSteps:
    relies_on: list[str]  # needs met by the answers that the team must still make true
    not_met: list[str]  # needs the answers do not meet, with what the pipeline does instead
    tasks: list[str]  # things only the team can do
    placeholders: list[str]  # answers still at an example value
    run: list[str]  # commands to run next


def next_steps(controls: list[type[Control]], answers: Mapping[str, Any], dest: str) -> NextSteps:
    needs: dict[str, tuple[Need, list[str]]] = {}
    for control in controls:
        for need in control.needs:
            needs.setdefault(need.key, (need, []))[1].append(control.id)
    relies_on, not_met, tasks = [], [], []
    for need, ids in needs.values():
        met = need.is_met(answers)
        line = f"{need.text(answers)} ({compact(ids)})"
        if met is None:
            tasks.append(line)
        elif met:
            relies_on.append(line)
        else:
            not_met.append(f"{line}: {Need(need.key, need.fallback, None).text(answers)}")
    placeholders = [
        f"{key} = {answers[key]!r} {advice}"
        for key, test, advice in _PLACEHOLDERS
        if key in answers and test(answers[key], answers)
    ]
    store = answers.get("evidence_store")
    if store in ("aws", "gcp", "azure"):
        placeholders.append(
            "infrastructure/evidence-store/ is not applied by pipeproof: review it, then terraform apply it once "
            "as an administrator (its lock cannot be undone); until then every evidence upload fails closed"
        )
    if store == "gcp":
        placeholders.append("repository variable EVIDENCE_GCP_WORKLOAD_IDENTITY_PROVIDER is not set by pipeproof")
    if store == "azure":
        placeholders.append(
            "repository variables EVIDENCE_AZURE_TENANT_ID and EVIDENCE_AZURE_SUBSCRIPTION_ID are not set by pipeproof"
        )
    if answers.get("deploy_model") == "argocd":
        placeholders.append(
            "argocd/environments/*/kustomization.yaml deploy no resources yet: list your manifests under resources:"
        )
        placeholders.append(
            "repository variable GITOPS_APP_ID and the gitops environment's secret GITOPS_APP_PRIVATE_KEY are not "
            "set by pipeproof (the GitHub App that opens the promotion pull requests)"
        )
    else:
        placeholders.append("scripts/deploy.sh and scripts/rollback.sh fail until you fill them in (no fake evidence)")
    branch = str(answers.get("default_branch", "main"))
    run = [
        f"pipeproof validate {dest}   # the linters the pipeline itself is held to",
        f"pipeproof audit {dest}      # the control catalog, as the controls-drift job runs it",
        f"cd {dest} && git init -b {branch} && git add -A && git commit -m 'pipeproof pipeline'",
        "push, then have an admin run `pipeproof protect apply` (GITHUB_TOKEN with admin access; --dry-run "
        "first shows every request) before the first pull request: it applies .github/settings.yml, the ruleset "
        "in .github/rulesets/, the environments and their reviewers; `pipeproof protect check` shows drift",
    ]
    return NextSteps(relies_on, not_met, tasks, placeholders, run)


def render(steps: NextSteps) -> str:
    out = ["", "Next steps:"]
    sections = (
        ("This pipeline relies on", steps.relies_on),
        ("Not available with these answers (what the pipeline does instead)", steps.not_met),
        ("Before the first deploy", steps.tasks),
        ("Still placeholders", steps.placeholders),
        ("Run", steps.run),
    )
    for title, items in sections:
        if items:
            out.append(f"  {title}:")
            out += [f"    - {_wrap(item)}" for item in items]
    return "\n".join(out) + "\n"


def _wrap(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def compact(ids: list[str]) -> str:
    """PP-HARD-01, PP-HARD-02, PP-HARD-03, PP-HARD-05 -> PP-HARD-01..03, 05 (one group per family)."""
    groups: dict[str, list[int]] = {}
    for control_id in ids:
        family, _, number = control_id.rpartition("-")
        groups.setdefault(family, []).append(int(number))
    parts = []
    for family, numbers in groups.items():
        numbers.sort()
        runs: list[str] = []
        start = prev = numbers[0]
        for n in [*numbers[1:], None]:
            if n is not None and n == prev + 1:
                prev = n
                continue
            runs.append(f"{start:02d}" if start == prev else f"{start:02d}..{prev:02d}")
            if n is not None:
                start = prev = n
        parts.append(f"{family}-{', '.join(runs)}")
    return "; ".join(parts)
