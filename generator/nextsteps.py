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
        "is a guess: answer security_team with the real team (GitHub: @org/team; GitLab: @group/subgroup) that owns "
        "the pipeline and approves production",
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
        lambda v, a: (
            v.endswith(f"/{a.get('project_name')}/{a.get('project_name')}")
            and v.split("/")[0] in {"ghcr.io", "registry.gitlab.com", f"registry.{a.get('gitlab_host')}"}
        ),
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
    gitlab = answers.get("platform") == "gitlab"
    needs: dict[str, tuple[Need, list[str]]] = {}
    for control in controls:
        for need in control.needs:
            if gitlab and need.key in _GITHUB_ONLY:
                continue  # GitHub's plans and settings; GitLab's tiers are listed below
            needs.setdefault(need.key, (need, []))[1].append(control.id)
    relies_on: list[str] = []
    not_met: list[str] = []
    tasks: list[str] = []
    if gitlab:
        relies_on, not_met = _gitlab_tier(answers)
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
    variables = "CI/CD variable" if gitlab else "repository variable"
    if store == "gcp":
        placeholders.append(f"{variables} EVIDENCE_GCP_WORKLOAD_IDENTITY_PROVIDER is not set by pipeproof")
    if store == "azure":
        wanted = "EVIDENCE_AZURE_TENANT_ID" if gitlab else "EVIDENCE_AZURE_TENANT_ID and EVIDENCE_AZURE_SUBSCRIPTION_ID"
        placeholders.append(
            f"{variables}{'s' if not gitlab else ''} {wanted} {'is' if gitlab else 'are'} not set by pipeproof"
        )
    if answers.get("deploy_model") == "argocd":
        placeholders.append(
            "argocd/environments/*/kustomization.yaml deploy no resources yet: list your manifests under resources:"
        )
        if gitlab:
            placeholders += [
                "CI/CD variable PIPEPROOF_GITOPS_TOKEN is not set by pipeproof: a project access token (Developer; "
                "api, write_repository), protected and masked, that opens the promotion and rollback merge requests",
                "Argo CD's argocd-notifications-secret key gitlab-token is not set by pipeproof: a project access "
                "token (Developer; api) that reports each sync as a GitLab deployment (PP-ARGO-04); its bot user's "
                "name goes in the CI/CD variable ARGOCD_REPORTER (sync-record counts only its deployments)",
            ]
        else:
            placeholders.append(
                "repository variable GITOPS_APP_ID and the gitops environment's secret GITOPS_APP_PRIVATE_KEY are "
                "not set by pipeproof (the GitHub App that opens the promotion pull requests)"
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
    if gitlab:
        run[-1] = (
            "push, then have a Maintainer apply .gitlab/settings/ (pipeproof protect, or the REST call each file "
            "names) before the first merge request"
        )
        tasks += [
            "a read-only project access token (read_api) as the masked, protected CI/CD variable "
            "PIPEPROOF_READ_TOKEN, for the daily `pipeproof protect export` and `check` (PP-EVID-07)",
            f"the group {answers.get('security_team')} is a member of the project (Developer or higher), or GitLab "
            "ignores its CODEOWNERS lines and approval rules",
            "GitLab runners with the docker executor (every job names its pinned image; kaniko builds without "
            "privileged mode)",
            f"push access to {answers.get('container_image')}: the job token reaches this project's own registry "
            "only; another registry needs REGISTRY_USER and REGISTRY_PASSWORD (protected, masked CI/CD variables)"
            if answers.get("containers")
            else "",
            "add the CI/CD variable PIPEPROOF_API_TOKEN (protected, masked): a project access token with read_api, "
            "role Reporter (Maintainer for audit events); the production gates and records read GitLab with it",
            "create the pipeline schedule on the default branch with PIPEPROOF_SCHEDULE=audit-export (daily); a "
            "rollback is a pipeline run on it with PIPEPROOF_SCHEDULE=rollback (it proposes the revert)"
            if answers.get("deploy_model") == "argocd"
            else "create the pipeline schedules on the default branch with PIPEPROOF_SCHEDULE=audit-export (daily) "
            "and PIPEPROOF_SCHEDULE=rollback-drill (quarterly)",
        ]
        tasks = [task for task in tasks if task]
    return NextSteps(relies_on, not_met, tasks, placeholders, run)


# Needs about GitHub's plans, settings and runners; on GitLab the tiers below and the GitLab tasks replace them.
_GITHUB_ONLY = frozenset(
    {
        "protection",
        "settings-applied",
        "environment-reviewers",
        "environments",
        "code-security",
        "team",
        "audit-log-api",
        "pipeproof-action",
        "runner-tools",
        "registry",
        "protect-token",
        "gitops-app",
    }
)

# What GitLab's tiers give (compliance/CONTROLS.md renders the same table): (feature, controls, lowest tier,
# what the pipeline does without it).
_GITLAB_TIERS: tuple[tuple[str, str, str, str], ...] = (
    (
        "protected default branch: nobody pushes, Maintainers merge, no force push; merge only when the pipeline "
        "passed (.gitlab/settings/protected-branch.json, project.json)",
        "PP-BRANCH-01, 02, 04, 05",
        "free",
        "",
    ),
    (
        "required merge-request approvals, reset on push, no author or committer approval "
        "(.gitlab/settings/approval-rules/, approval-settings.json)",
        "PP-BRANCH-01, 03",
        "premium",
        "merges are not blocked without approvals; the production job's review gate refuses to deploy any merge "
        "request since the last deploy without fresh approvals by others",
    ),
    (
        "code-owner approval of the pipeline and scanner configuration (.gitlab/CODEOWNERS)",
        "PP-BRANCH-06, PP-SCAN-11",
        "premium",
        "CODEOWNERS only informs; controls-drift (pipeproof audit) fails a merge request that weakens the pipeline",
    ),
    (
        "protected environment production with an approval by {security_team} "
        "(.gitlab/settings/protected-environments/)",
        "PP-DEPLOY-01, 02",
        "premium",
        "the manual production job runs only on the protected branch (Maintainers) and verifies every merge "
        "request's approvals before it deploys",
    ),
    (
        "project audit events API",
        "PP-EVID-04",
        "premium",
        "the daily export takes the project events API instead (pushes, merges, approvals; not settings changes)",
    ),
    (
        "security report widgets in the merge request",
        "PP-SCAN-01, 03",
        "ultimate",
        "the scanners still fail the job; their reports are artifacts and evidence",
    ),
)
_TIER_RANK = {"free": 0, "premium": 1, "ultimate": 2}


# Under Argo CD, CI deploys nothing: production's approval is the code owners' approval of the promotion.
_GITLAB_ARGOCD_PRODUCTION = (
    "code-owner approval of each production promotion (argocd/environments/production/ in .gitlab/CODEOWNERS)",
    "PP-ARGO-03",
    "premium",
    "promotions merge without an enforced approval: verify-production fails and records a promotion merged "
    "without one, and production syncs only by a deployer's hand",
)


def _gitlab_tier(answers: Mapping[str, Any]) -> tuple[list[str], list[str]]:
    tier = str(answers.get("gitlab_tier", "free"))
    relies_on, not_met = [], []
    rows = _GITLAB_TIERS
    if answers.get("deploy_model") == "argocd":
        rows = tuple(
            _GITLAB_ARGOCD_PRODUCTION
            if "PP-DEPLOY-01" in row[1]
            else (
                *row[:3],
                row[3].replace(
                    "the production job's review gate refuses to deploy",
                    "verify-production fails and records a promotion of",
                ),
            )
            for row in rows
        )
    for what, ids, needs, fallback in rows:
        text = what.format_map(dict(answers))
        if _TIER_RANK[tier] >= _TIER_RANK[needs]:
            relies_on.append(f"{text} (GitLab {needs.capitalize()}; {ids})")
        else:
            not_met.append(f"{text} (needs GitLab {needs.capitalize()}; {ids}): {fallback}")
    return relies_on, not_met


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
