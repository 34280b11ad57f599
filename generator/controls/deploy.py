"""Deployment: separated environments, an approval gate, verified checks, rollback and its drill."""

from __future__ import annotations

import re

from generator.controls.base import Control, Outcome, Severity, failed, passed
from generator.controls.github import GitHub, Job, each_production_job
from generator.controls.needs import DEPLOY_HOOKS, ENV_REVIEWERS, ENVIRONMENTS, PROTECTION, TEAM

_DEPLOY = ".github/workflows/deploy.yml"


_PRODUCTION_RUNS = (
    'gh run list --repo "$REPO" --workflow deploy.yml --workflow promote.yml --branch {default_branch} '
    '--created "$FROM..$TO" --limit 1000 --json databaseId,workflowName,headSha,conclusion,url > population.json '
    "(deploy.yml holds production where environments have reviewers, promote.yml where a promotion pull request "
    "approves it); the deployment records in the evidence store are the same population"
)


class Deploy(Control):
    family = "deploy"
    implemented_by = {"github": (f"{_DEPLOY}#deploy-production",)}
    owner = "Release manager (control owner); the security team approves production"
    frequency = "Every production deploy"
    population = {"github": _PRODUCTION_RUNS}
    needs = (ENVIRONMENTS, DEPLOY_HOOKS)


_PROD_WORDS = re.compile(r"\b(prod|production)\b", re.IGNORECASE)
_DEPLOY_WORDS = re.compile(r"\b(deploy|release|kubectl\s+(apply|set|rollout)|helm\s+upgrade|terraform\s+apply)\b")
_ROLLBACK_WORDS = re.compile(r"rollback|roll\s+back|rollout\s+undo|revert", re.IGNORECASE)
_CHECK_RUNS = re.compile(r"check-runs|check-suites|commits/\S+/status\b")
_HEALTH_WORDS = re.compile(r"health|smoke|rollout\s+status|curl\b", re.IGNORECASE)


def deploys_to_production(job: Job) -> bool:
    """A job that looks like a production deploy, whether or not it uses an environment."""
    text = " ".join([job.id, job.name, *(s.name + " " + s.run for s in job.steps)])
    return bool(_PROD_WORDS.search(text) and _DEPLOY_WORDS.search(text))


class PP_DEPLOY_01(Deploy):
    """Production deploys need a separate approval through a protected environment"""

    procedure = (
        "For each sampled production deploy, open its deployment record and confirm the approval it holds "
        "(environment approval or promotion pull request review, as returned by GitHub) names an approver "
        "from the security team who is not the person who triggered the deploy, given before the deploy "
        "started."
    )
    needs = (ENV_REVIEWERS, PROTECTION, TEAM, DEPLOY_HOOKS)

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

    @classmethod
    def check(cls, gh: GitHub) -> Outcome:
        ungated = [j for j in gh.jobs() if deploys_to_production(j) and j.environment != "production" and not j.calls]
        if ungated:
            return failed(
                f"job {ungated[0].id} deploys to production without `environment: production`", ungated[0].where
            )
        production = gh.production_jobs()
        if not production:
            return failed("no job deploys through `environment: production` (the approval gate)")
        evidence = [j.doc.at("jobs", j.id, "environment") for j in production]
        settings = gh.repo.settings
        if settings is not None and isinstance(settings.data, dict) and "environments" in settings.data:
            envs = {
                str(e.get("name", "")).lower(): (i, e)
                for i, e in enumerate(settings.data.get("environments") or [])
                if isinstance(e, dict)
            }
            if "production" not in envs:
                return failed("settings.yml configures environments but not production", settings.at("environments"))
            i, env = envs["production"]
            policy = env.get("deployment_branch_policy")
            if not (isinstance(policy, dict) and (policy.get("protected_branches") or policy.get("custom_branches"))):
                return failed(
                    "the production environment accepts deploys from any branch (deployment_branch_policy)",
                    settings.at("environments", i),
                )
            evidence.append(settings.at("environments", i))
        return passed("production deploys only through the protected production environment", *evidence)


class PP_DEPLOY_02(Deploy):
    """Staging and production are separate environments, and staging comes first"""

    procedure = (
        "For each sampled production deploy, confirm the same commit (and image digest) was deployed to "
        "staging first, in the same deploy run or in the candidate run the promotion names."
    )

    id = "PP-DEPLOY-02"
    implemented_by = {"github": (f"{_DEPLOY}#deploy-staging", ".github/settings.yml")}
    soc2 = ("CC8.1",)
    iso27001 = ("A.8.31",)
    remediation = (
        "Deploy to a `staging` environment first and make the production job depend on it (and on DAST) through needs:."
    )
    evidence = "Deployment history per environment on the platform."

    @classmethod
    def check(cls, gh: GitHub) -> Outcome:
        def judge(job: Job) -> Outcome:
            if not [j for j in gh.deploy_path(job) if j.environment and j.environment != "production"]:
                return failed(f"production job {job.id} does not need a staging deploy first (needs:)", job.where)
            return passed("staging deploys first, production needs it", job.where)

        return each_production_job(gh, judge)


class PP_DEPLOY_03(Deploy):
    """The production job verifies that every required check passed on the commit it deploys"""

    procedure = (
        "For each sampled production deploy, confirm the deployment record's checks list holds every required "
        "check with conclusion success, from the run that built the deployed image."
    )

    id = "PP-DEPLOY-03"
    soc2 = ("CC8.1",)
    iso27001 = ("A.8.25",)
    remediation = (
        "Before deploying, query the check runs of the commit and stop unless every required check concluded "
        "with success."
    )
    evidence = "The verification step's log and the checks list in the deployment record."

    @classmethod
    def check(cls, gh: GitHub) -> Outcome:
        def judge(job: Job) -> Outcome:
            verify = next((s for s in job.steps if _CHECK_RUNS.search(s.run) and s.not_blocking() is None), None)
            if verify is None:
                return failed(f"production job {job.id} does not verify the commit's check runs", job.where)
            deploy = next(
                (s for s in job.steps if _DEPLOY_WORDS.search(s.name + " " + s.run) and s is not verify), None
            )
            if deploy is not None and deploy.index < verify.index:
                return failed("the check-run verification comes after the deploy step", verify.where)
            return passed("production verifies every required check on the commit first", verify.where)

        return each_production_job(gh, judge)


class PP_DEPLOY_04(Deploy):
    """A failed health check rolls production back automatically and records the rollback"""

    procedure = (
        "For each sampled failed or cancelled production deploy, confirm the rollback step ran and the "
        "deployment record says rolled_back (or rollback_failed, with the incident that followed)."
    )

    id = "PP-DEPLOY-04"
    soc2 = ("CC8.1",)
    iso27001 = ("A.8.32",)
    remediation = (
        "After the deploy, run a health check; on failure run the rollback step (if: failure()) and write a "
        "rollback record to the evidence store."
    )
    evidence = "rollback-record.json: workflow artifact ({retention} days) and the evidence store ({store_retention})."

    @classmethod
    def check(cls, gh: GitHub) -> Outcome:
        def judge(job: Job) -> Outcome:
            health = next(
                (
                    s
                    for s in job.steps
                    if _HEALTH_WORDS.search(s.name + " " + s.run) and not _ROLLBACK_WORDS.search(s.name)
                ),
                None,
            )
            if health is None:
                return failed(f"production job {job.id} has no health check after the deploy", job.where)
            rollback = next(
                (
                    s
                    for s in job.steps[health.index + 1 :]
                    if _ROLLBACK_WORDS.search(s.name + " " + s.run) and "failure()" in str(s.data.get("if", ""))
                ),
                None,
            )
            if rollback is None:
                return failed(
                    f"production job {job.id} has no rollback step that runs on failure (if: failure())", health.where
                )
            if "rollback-record" not in " ".join(s.run + str(s.with_) for s in job.steps[rollback.index :]):
                return failed("the rollback leaves no record (rollback-record)", rollback.where)
            return passed("a failed health check triggers the rollback step, which leaves a record", rollback.where)

        return each_production_job(gh, judge)


class PP_DEPLOY_05(Deploy):
    """Rollback is drilled on a schedule and each drill leaves evidence"""

    procedure = (
        "Confirm a rollback-drill record exists for every quarter of the period, each with result success, "
        "rolled back to the production version and restored the current one."
    )
    frequency = "Quarterly, and on demand"
    population = {
        "github": 'gh run list --repo "$REPO" --workflow rollback-drill.yml --created "$FROM..$TO" '
        "--json databaseId,conclusion,createdAt,url"
    }

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
    evidence = (
        "rollback-drill-record.json: workflow artifact ({retention} days) and the evidence store ({store_retention})."
    )

    @classmethod
    def check(cls, gh: GitHub) -> Outcome:
        for workflow in gh.workflows:
            if not workflow.triggers & {"workflow_dispatch", "schedule"}:
                continue
            for job in workflow.jobs.values():
                drills = [
                    s for s in job.steps if _ROLLBACK_WORDS.search(s.name + " " + s.run) and s.not_blocking() is None
                ]
                kept = [s for s in job.steps if s.action in {"actions/upload-artifact"} or "ship-evidence" in s.uses]
                if drills and kept:
                    when = "scheduled" if "schedule" in workflow.triggers else "on demand only"
                    return passed(f"rollback drill ({when}) leaves a record", drills[0].where)
        return failed("no scheduled or on-demand workflow drills a rollback and keeps a record of it")
