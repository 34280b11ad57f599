"""Pipeline hardening: the pipeline itself must not be the weak link (the zizmor audits, plus OIDC and pins)."""

from __future__ import annotations

from generator.controls.base import Control, Severity

_WORKFLOWS = (
    ".github/workflows/pr-checks.yml",
    ".github/workflows/deploy.yml",
    ".github/workflows/rollback-drill.yml",
)


class Hardening(Control):
    family = "hardening"
    implemented_by = {"github": _WORKFLOWS}


class PP_HARD_01(Hardening):
    """Actions are pinned to full commit SHAs"""

    id = "PP-HARD-01"
    soc2 = ("CC7.1", "CC8.1")
    iso27001 = ("A.8.25", "A.8.28")
    severity = Severity.CRITICAL
    remediation = (
        "Pin every `uses:` to a 40-hex commit SHA with a `# vX.Y.Z` comment; tags can be force-pushed "
        "(aquasecurity/trivy-action, 2026-03-19)."
    )
    evidence = "Workflows under version control."


class PP_HARD_02(Hardening):
    """Workflow tokens have least privilege"""

    id = "PP-HARD-02"
    soc2 = ("CC6.1",)
    iso27001 = ("A.8.4", "A.8.25")
    remediation = (
        "Set top-level `permissions: {}` (or read-only) and grant each job only what it needs, with a comment "
        "explaining each grant; never write-all."
    )
    evidence = "Workflows under version control."


class PP_HARD_03(Hardening):
    """No untrusted expression is expanded inside a shell script"""

    id = "PP-HARD-03"
    soc2 = ("CC7.1", "CC8.1")
    iso27001 = ("A.8.28",)
    severity = Severity.CRITICAL
    remediation = (
        "Pass values such as github.event.pull_request.title to `run:` through `env:` and quote the variable; "
        "never write ${{ ... }} of untrusted context inside run:."
    )
    evidence = "Workflows under version control."


class PP_HARD_04(Hardening):
    """Checkouts do not persist the token on disk"""

    id = "PP-HARD-04"
    soc2 = ("CC6.1",)
    iso27001 = ("A.8.4",)
    remediation = "Set `persist-credentials: false` on every actions/checkout step."
    evidence = "Workflows under version control."


class PP_HARD_05(Hardening):
    """Cloud access uses short-lived OIDC credentials, never long-lived keys"""

    id = "PP-HARD-05"
    soc2 = ("CC6.1",)
    iso27001 = ("A.8.4", "A.8.25")
    severity = Severity.CRITICAL
    remediation = (
        "Use aws-actions/configure-aws-credentials with role-to-assume, google-github-actions/auth with "
        "workload_identity_provider, or azure/login with client-id, and `id-token: write`; delete "
        "AWS_ACCESS_KEY_ID-style secrets."
    )
    evidence = "Workflows under version control; the cloud's trust policy."


class PP_HARD_06(Hardening):
    """No dangerous workflow triggers"""

    id = "PP-HARD-06"
    soc2 = ("CC6.1", "CC8.1")
    iso27001 = ("A.8.25",)
    remediation = (
        "Do not trigger on pull_request_target or workflow_run: they run with write tokens and secrets on "
        "code an outsider controls."
    )
    evidence = "Workflows under version control."


class PP_HARD_07(Hardening):
    """Every job has a timeout and a concurrency group"""

    id = "PP-HARD-07"
    soc2 = ("CC8.1",)
    iso27001 = ("A.8.25",)
    severity = Severity.MEDIUM
    remediation = "Give every job `timeout-minutes` and a `concurrency` group (workflow- or job-level)."
    evidence = "Workflows under version control."


class PP_HARD_08(Hardening):
    """Dependabot keeps action pins and dependencies fresh"""

    id = "PP-HARD-08"
    soc2 = ("CC7.1",)
    iso27001 = ("A.8.9", "A.8.28")
    severity = Severity.MEDIUM
    implemented_by = {"github": (".github/dependabot.yml",)}
    remediation = "Add a github-actions entry (and one per package ecosystem) to .github/dependabot.yml."
    evidence = "Dependabot pull requests."


class PP_HARD_09(Hardening):
    """Container images and tools are version-pinned, never a mutable tag"""

    id = "PP-HARD-09"
    soc2 = ("CC8.1",)
    iso27001 = ("A.8.9",)
    remediation = (
        "Run tools through SHA-pinned actions or version-pinned packages; never `image: x:latest` or an "
        "untagged image."
    )
    evidence = "Workflows under version control."


class PP_HARD_10(Hardening):
    """Control drift is audited on every change"""

    id = "PP-HARD-10"
    soc2 = ("CC4.1", "CC8.1")
    iso27001 = ("A.5.36", "A.8.25")
    severity = Severity.MEDIUM
    implemented_by = {"github": (".github/workflows/pr-checks.yml#controls-drift",)}
    remediation = (
        "Run `pipeproof audit --format sarif` on every pull request (pinned pipeproof version) and upload "
        "the result to code scanning, so a weakened control shows up in review."
    )
    evidence = "pipeproof.sarif: code scanning and a workflow artifact ({retention} days)."
