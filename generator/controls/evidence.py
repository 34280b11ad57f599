"""Evidence: deployment records, seven-year object-locked storage, retention limits and the audit log."""

from __future__ import annotations

from generator.controls.base import Control, Severity


class Evidence(Control):
    family = "evidence"


class PP_EVID_01(Evidence):
    """Every production deployment leaves a complete deployment record"""

    id = "PP-EVID-01"
    soc2 = ("CC8.1", "CC7.2")
    iso27001 = ("A.8.15", "A.8.25")
    implemented_by = {"github": (".github/workflows/deploy.yml#deploy-production",)}
    remediation = (
        "Write one JSON record per production deploy with the commit SHA, author, pull-request reviewers and "
        "approvers, approval and deploy timestamps, environment, status, scan links and SBOM digest."
    )
    evidence = "deployment-record.json: workflow artifact ({retention} days) and the evidence store ({store_retention})."


class PP_EVID_02(Evidence):
    """Scan results and deployment evidence are kept for seven years in object-locked storage"""

    id = "PP-EVID-02"
    soc2 = ("CC7.2", "CC8.1")
    iso27001 = ("A.8.15",)
    applies = "evidence_store != 'none'"
    prevents = ("scan-results-not-retained",)
    implemented_by = {
        "github": (".github/actions/ship-evidence/action.yml", ".github/workflows/deploy.yml#deploy-production"),
    }
    remediation = (
        "Ship scan reports and deployment records to a bucket with object lock in compliance mode "
        "(7 years), authenticating through OIDC; platform artifacts expire after 90/400 days."
    )
    evidence = "Objects under <bucket>/<project>/ with a 7-year compliance-mode retention."


class PP_EVID_03(Evidence):
    """Artifact retention stays within the platform's limit"""

    id = "PP-EVID-03"
    soc2 = ("CC7.2",)
    iso27001 = ("A.8.15",)
    severity = Severity.MEDIUM
    implemented_by = {
        "github": (".github/workflows/pr-checks.yml", ".github/workflows/deploy.yml"),
    }
    remediation = (
        "Set retention-days to at most 90 on public and 400 on private repositories: GitHub silently clamps "
        "larger values, so a 2555-day setting only looks like 7-year retention."
    )
    evidence = "retention-days in the workflows under version control."


class PP_EVID_04(Evidence):
    """The platform audit log is exported daily to object-locked storage"""

    id = "PP-EVID-04"
    soc2 = ("CC7.2",)
    iso27001 = ("A.8.15",)
    severity = Severity.MEDIUM
    applies = "evidence_store != 'none'"
    implemented_by = {"github": (".github/workflows/audit-log-export.yml#export",)}
    remediation = (
        "Run a scheduled job that exports the organisation audit log and ships it to the evidence store "
        "through OIDC."
    )
    evidence = "audit-log-<date>.json in the evidence store ({store_retention})."
