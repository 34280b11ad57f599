"""Deployment: separated environments, an approval gate, verified checks, rollback and its drill."""

from __future__ import annotations

from generator.controls.base import Control, Severity

_DEPLOY = ".github/workflows/deploy.yml"


class Deploy(Control):
    family = "deploy"
    implemented_by = {"github": (f"{_DEPLOY}#deploy-production",)}


class PP_DEPLOY_01(Deploy):
    """Production deploys need a separate approval through a protected environment"""

    id = "PP-DEPLOY-01"
    soc2 = ("CC8.1",)
    iso27001 = ("A.8.25", "A.8.31")
    severity = Severity.CRITICAL
    prevents = ("no-separate-approval",)
    implemented_by = {"github": (f"{_DEPLOY}#deploy-production", ".github/settings.yml")}
    remediation = (
        "Deploy production only from a job with `environment: production`, and give that environment required "
        "reviewers from the security team and a deployment-branch policy of protected branches."
    )
    evidence = "Environment approvals in the workflow run; the approvers are copied into the deployment record."


class PP_DEPLOY_02(Deploy):
    """Staging and production are separate environments, and staging comes first"""

    id = "PP-DEPLOY-02"
    implemented_by = {"github": (f"{_DEPLOY}#deploy-staging", ".github/settings.yml")}
    soc2 = ("CC8.1",)
    iso27001 = ("A.8.31",)
    remediation = (
        "Deploy to a `staging` environment first and make the production job depend on it (and on DAST) "
        "through needs:."
    )
    evidence = "Deployment history per environment on the platform."


class PP_DEPLOY_03(Deploy):
    """The production job verifies that every required check passed on the commit it deploys"""

    id = "PP-DEPLOY-03"
    soc2 = ("CC8.1",)
    iso27001 = ("A.8.25",)
    remediation = (
        "Before deploying, query the check runs of the commit and stop unless every required check concluded "
        "with success."
    )
    evidence = "The verification step's log and the checks list in the deployment record."


class PP_DEPLOY_04(Deploy):
    """A failed health check rolls production back automatically and records the rollback"""

    id = "PP-DEPLOY-04"
    soc2 = ("CC8.1",)
    iso27001 = ("A.8.32",)
    remediation = (
        "After the deploy, run a health check; on failure run the rollback step (if: failure()) and write a "
        "rollback record to the evidence store."
    )
    evidence = "rollback-record.json: workflow artifact ({retention} days) and the evidence store ({store_retention})."


class PP_DEPLOY_05(Deploy):
    """Rollback is drilled on a schedule and each drill leaves evidence"""

    id = "PP-DEPLOY-05"
    soc2 = ("CC8.1",)
    iso27001 = ("A.8.32",)
    severity = Severity.MEDIUM
    prevents = ("rollback-never-tested",)
    implemented_by = {"github": (".github/workflows/rollback-drill.yml#drill",)}
    remediation = (
        "Keep a rollback-drill workflow (workflow_dispatch plus a quarterly schedule) that rolls staging back "
        "and forward and uploads a drill record."
    )
    evidence = "rollback-drill-record.json: workflow artifact ({retention} days) and the evidence store ({store_retention})."
