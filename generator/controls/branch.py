"""Branch protection and review: changes reach the default branch only through approved pull requests."""

from __future__ import annotations

from generator.controls.base import Control, Severity

_SETTINGS = (".github/settings.yml", ".github/rulesets/default-branch.json")


class Branch(Control):
    family = "branch"
    implemented_by = {"github": _SETTINGS}


class PP_BRANCH_01(Branch):
    """Changes reach the default branch only through approved pull requests"""

    id = "PP-BRANCH-01"
    soc2 = ("CC8.1", "CC6.1")
    iso27001 = ("A.8.4", "A.8.25", "A.8.32")
    severity = Severity.CRITICAL
    remediation = (
        "Protect the default branch: require a pull request with at least the answered number of approving "
        "reviews (settings.yml required_pull_request_reviews.required_approving_review_count; ruleset "
        "pull_request.parameters.required_approving_review_count)."
    )
    evidence = "Branch-protection settings under version control; pull-request review history on the platform."


class PP_BRANCH_02(Branch):
    """Administrators cannot bypass branch protection"""

    id = "PP-BRANCH-02"
    soc2 = ("CC8.1", "CC6.1")
    iso27001 = ("A.8.4", "A.8.25")
    severity = Severity.CRITICAL
    prevents = ("admin-bypass",)
    requires = ("PP-BRANCH-01",)
    remediation = (
        "Set enforce_admins: true in .github/settings.yml and keep the ruleset's bypass_actors empty "
        "(or limited to bypass_mode: pull_request)."
    )
    evidence = "enforce_admins and ruleset bypass list under version control."


class PP_BRANCH_03(Branch):
    """Approvals are fresh and independent of the last pusher"""

    id = "PP-BRANCH-03"
    soc2 = ("CC8.1",)
    iso27001 = ("A.8.25", "A.8.32")
    requires = ("PP-BRANCH-01",)
    remediation = (
        "Dismiss stale reviews on push, require approval of the most recent push, require code-owner review "
        "and resolved conversations (dismiss_stale_reviews, require_last_push_approval, "
        "require_code_owner_reviews, required_conversation_resolution)."
    )
    evidence = "Review settings under version control; review timeline per pull request."


class PP_BRANCH_04(Branch):
    """Required status checks (every scanner) gate the merge on an up-to-date branch"""

    id = "PP-BRANCH-04"
    soc2 = ("CC8.1", "CC7.1")
    iso27001 = ("A.8.25", "A.8.28")
    prevents = ("scans-not-blocking",)
    requires = ("PP-BRANCH-01",)
    remediation = (
        "List every pull-request check job in required_status_checks.contexts with strict: true, and in the "
        "ruleset's required_status_checks rule with strict_required_status_checks_policy: true."
    )
    evidence = "Required-check list under version control; check runs per commit on the platform."


class PP_BRANCH_05(Branch):
    """History on the default branch cannot be rewritten or deleted"""

    id = "PP-BRANCH-05"
    soc2 = ("CC8.1",)
    iso27001 = ("A.8.15", "A.8.32")
    requires = ("PP-BRANCH-01",)
    remediation = (
        "Set allow_force_pushes: false, allow_deletions: false and required_linear_history: true; in the "
        "ruleset keep the deletion and non_fast_forward rules."
    )
    evidence = "Git history of the default branch is the change log."


class PP_BRANCH_06(Branch):
    """Code owners review changes to the pipeline, its settings and the compliance files"""

    id = "PP-BRANCH-06"
    soc2 = ("CC8.1", "CC6.1")
    iso27001 = ("A.8.4", "A.8.9")
    implemented_by = {"github": (".github/CODEOWNERS",)}
    remediation = (
        "Add CODEOWNERS entries owned by the security team for /.github/, /compliance/, /.gitleaks.toml, "
        "/.pre-commit-config.yaml, /.zap/ and /scripts/, and require code-owner review."
    )
    evidence = "CODEOWNERS under version control; code-owner approvals per pull request."
