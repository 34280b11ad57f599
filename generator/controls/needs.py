"""What a control needs outside the files pipeproof renders: a plan, a paid feature, an applied setting, a team.

Each need says when the answers meet it (a Jinja expression over the answers and the computed keys, or None
for something only the team can do), and what the rendered pipeline does instead when they do not. The same
declarations fill the prerequisites table of CONTROLS.md and README.md, and the "next steps" that
`pipeproof new` prints.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from jinja2 import Environment

_ENV = Environment(autoescape=False)


@dataclass(frozen=True)
class Need:
    """One prerequisite of a control."""

    key: str
    what: str  # may name answers as {key}
    met: str | None  # Jinja expression; None: a task for the team, never met by the answers alone
    fallback: str = ""  # what the rendered pipeline does when `met` is false

    def is_met(self, answers: Mapping[str, Any]) -> bool | None:
        """True or False for plan-like needs, None for a task the team must do."""
        if self.met is None:
            return None
        return bool(_ENV.compile_expression(self.met)(**answers))

    def text(self, answers: Mapping[str, Any]) -> str:
        return self.what.format_map(_Missing(answers))


class _Missing(dict[str, Any]):
    def __init__(self, answers: Mapping[str, Any]) -> None:
        super().__init__(answers)

    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


PROTECTION = Need(
    "protection",
    "branch protection and rulesets enforced by GitHub: any public repository, or GitHub Team or Enterprise "
    "for a private one",
    "visibility == 'public' or github_plan != 'free'",
    "GitHub Free does not enforce protection on a private repository: every production deploy verifies again "
    "that each commit since the last release came through a pull request with the required approvals "
    "(detective for merges, preventive for production)",
)
SETTINGS_APPLIED = Need(
    "settings-applied",
    "the settings applied to the repository by an admin: `pipeproof protect apply` (classic protection, the "
    "ruleset, environments and reviewers), or the repository-settings app for .github/settings.yml",
    None,
)
ENV_REVIEWERS = Need(
    "environment-reviewers",
    "required reviewers on the production environment: any public repository, or GitHub Enterprise for a "
    "private one; {security_team} set as reviewer (`pipeproof protect apply` sets it, with prevent_self_review "
    "and no admin bypass)",
    "approval_mode == 'environment'",
    "production is promoted by a pull request that changes deploy/production.json, which the code owners "
    "({security_team}) must approve; promote.yml verifies that approval before it deploys",
)
ENVIRONMENTS = Need(
    "environments",
    "deployment environments (staging, production) with a branch policy: any public repository, or GitHub "
    "Team or Enterprise for a private one",
    "environments_available",
    "GitHub Free has no environments for a private repository: the deploy jobs run without them, so nothing "
    "but the workflow itself keeps deploys to {default_branch}",
)
CODE_SECURITY = Need(
    "code-security",
    "GitHub Code Security (code scanning and dependency review) on a private repository; free on public ones",
    "code_security",
    "SARIF reports are kept as workflow artifacts and listed in each job summary, and osv-scanner gates "
    "dependency vulnerabilities and licences instead of dependency review",
)
TEAM = Need(
    "team",
    "the team {security_team} exists and has write access to the repository (GitHub silently ignores code "
    "owners without write access)",
    None,
)
EVIDENCE_STORE = Need(
    "evidence-store",
    "the evidence store applied from infrastructure/evidence-store/ (terraform apply): {evidence_bucket} locked "
    "for the promised retention, and the OIDC identity {evidence_role} that trusts only this repository",
    "evidence_store != 'none'",
    "no evidence store: evidence expires with the workflow artifacts",
)
AUDIT_LOG_API = Need(
    "audit-log-api",
    "GitHub Enterprise Cloud (the organisation audit-log API) and an AUDIT_LOG_TOKEN secret (an organisation "
    "owner's token with read:audit_log) in the audit-export environment",
    "github_plan == 'enterprise' and github_host == 'github.com'",
    "the audit-log API exists only on GitHub Enterprise Cloud: changes to protection and the pipeline are "
    "evidenced by the Git history of .github/ (reviewed by the code owners), the deployment records and the "
    "controls-drift audit of every pull request; export the organisation audit log from its settings page "
    "for each observation period",
)
PROTECT_TOKEN = Need(
    "protect-token",
    "a read-only token for `pipeproof protect check` and `export` (a fine-grained token or GitHub App: "
    "Administration read, Metadata read, Members read) as the PIPEPROOF_READ_TOKEN secret of the settings-check "
    "environment, and the settings applied once by an administrator (`pipeproof protect apply`)",
    None,
)
PIPEPROOF_ACTION = Need(
    "pipeproof-action",
    "the pipeproof audit action (pipeproof/pipeproof at the rendering commit) reachable by the runners",
    "github_host == 'github.com'",
    "GitHub Enterprise Server reaches github.com actions only through GitHub Connect, or a mirror of each "
    "pinned action (pipeproof/pipeproof among them) on the server",
)
RUNNER_TOOLS = Need(
    "runner-tools",
    "runners with go 1.21 or newer, python3, jq, curl, docker and Java 17 (GitHub-hosted ubuntu-24.04 runners "
    "have all of them)",
    "github_host == 'github.com'",
    "self-hosted runners must provide these tools; the pinned versions of the scanners are built from source",
)
DEPLOY_HOOKS = Need(
    "deploy-hooks",
    "scripts/deploy.sh and scripts/rollback.sh filled in, and {health_path} answering the deployed commit SHA "
    "on staging and production",
    None,
)
REGISTRY = Need(
    "registry",
    "push access to {container_image} with the workflow token (ghcr.io: the packages: write grant; another "
    "registry: change the login step of the build job)",
    None,
)
