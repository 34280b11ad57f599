"""Deployment: separated environments, a verified approval, verified checks, rollback and its drill."""

from __future__ import annotations

import re
from typing import Any, ClassVar

from generator.controls.base import Control, Finding, Outcome, Severity, failed, passed, unknown
from generator.controls.branch import verifies_mr_approvals
from generator.controls.judge import command_ignored, deploy_path, each_production_job
from generator.controls.needs import DEPLOY_HOOKS, ENV_REVIEWERS, ENVIRONMENTS, PROTECTION, TEAM, Need
from generator.pipeline.model import PUSH, Job, Pipeline, Step

_PRODUCTION_RUNS = (
    'gh run list --repo "$REPO" --workflow deploy.yml --workflow promote.yml --branch {default_branch} '
    '--created "$FROM..$TO" --limit 1000 --json databaseId,workflowName,headSha,conclusion,url > population.json '
    "(deploy.yml holds production where environments have reviewers, promote.yml where a promotion pull request "
    "approves it); the deployment records in the evidence store are the same population"
)

# What a step does, read from its script and the scripts it runs (words say what it does, the tool registry
# and the shell model say whether it can fail).
_APPROVALS = re.compile(r"actions/runs/[^\s\"']*/approvals|/pulls/[^\s\"']*/reviews|pending_deployments")
_CHECK_RUNS = re.compile(r"check-runs|check-suites|commits/\S+/status\b")
_ACCEPTS_SKIPPED = re.compile(
    r"conclusion\}?[\"']?\s*==?\s*[\"']?(?:skipped|neutral)\b|[\"']?\b(?:skipped|neutral)\b[\"']?\s*\)|"
    r"[\"']?\b(?:skipped|neutral)\b\s*[\"']?\s*\|\s*[\"']?\b(?:success|skipped|neutral)\b"
)
# A gate that knows which checks it needs: an expected list (pipeproof's REQUIRED_CHECKS) or the branch's own
# required checks from the protection or rules API. Without one, a required check that never reported passes.
_NAMES_CHECKS = re.compile(r"required[_ -]?(?:status[_ -])?checks|/protection\b|/rules/branches/", re.IGNORECASE)
_DEPLOY = re.compile(
    r"\bdeploy\.sh\b|kubectl\s+(?:apply|set\s+image|rollout\s+restart)|helm\s+(?:upgrade|install)|"
    r"terraform\s+apply|(?:aws|gcloud|az)\s+\S+\s+(?:deploy|update-service|update)|flyctl\s+deploy|"
    r"argocd\s+app\s+sync"
)
_HEALTH = re.compile(r"health|smoke|rollout\s+status|curl\b", re.IGNORECASE)
_ROLLBACK = re.compile(r"rollback|roll\s+back|rollout\s+undo|revert", re.IGNORECASE)


def deploy_step(job: Job) -> Step | None:
    """The step that deploys (the first whose script deploys and is not a rollback)."""
    for step in job.steps:
        text = step.name + "\n" + step.run
        if _DEPLOY.search(text) and not _ROLLBACK.search(step.name):
            return step
    return None


_GL = ".gitlab-ci.yml"
_GITLAB_DEPLOYMENTS = (
    'curl --header "PRIVATE-TOKEN: $TOKEN" "$GITLAB_API/projects/$PROJECT/deployments?environment=production&'
    'updated_after=$FROM&updated_before=$TO&per_page=100" (every page) > population.json; the deployment records '
    "in the evidence store are the same population"
)
# A GitLab deploy job's approval check: the deployment's or the merge requests' approvals from the API.
_GITLAB_APPROVALS = re.compile(r"deployments/[^\s\"']*/approvals|merge_requests/[^\s\"']*/approv|/approvals\b")


def followers(pipeline: Pipeline, job: Job) -> list[Job]:
    """The jobs of the same pipeline that stand on JOB (GitLab: its needs, or the stage order)."""

    def index() -> dict[int, frozenset[str]]:
        # Each job's needs as a set; the jobs of a GitLab stage share one needs list, so one set.
        shared: dict[int, tuple[list[str], frozenset[str]]] = {}
        found: dict[int, frozenset[str]] = {}
        for other in pipeline.jobs:
            needs = other.needs
            if id(needs) not in shared:
                shared[id(needs)] = (needs, frozenset(needs))
            found[id(other)] = shared[id(needs)][1]
        return found

    sets = pipeline.cached("needs-sets", index)
    return [j for j in pipeline.same_run(job) if j is not job and job.id in sets.get(id(j), frozenset())]


def _gitlab_when(pipeline: Pipeline, job: Job, event: str) -> set[str]:
    when = getattr(pipeline.adapter, "when", None)
    return set(when(job, event)) if when is not None else set()


class Deploy(Control):
    family = "deploy"
    implemented_by = {"github": ("{production_workflow}#deploy-production",), "gitlab": (f"{_GL}#deploy-production",)}
    owner = "Release manager (control owner); the security team approves production"
    frequency = "Every production deploy"
    population = {"github": _PRODUCTION_RUNS, "gitlab": _GITLAB_DEPLOYMENTS}
    needs: ClassVar[tuple[Need, ...]] = (ENVIRONMENTS, DEPLOY_HOOKS)
    # Only a repository that deploys has these controls; a library's releases are judged as releases. Under
    # Argo CD the pipeline deploys nothing: PP-ARGO-01..04 judge the GitOps promotion instead.
    applies = "deploys and deploy_model != 'argocd'"


class PP_DEPLOY_01(Deploy):
    """Production deploys need a separate, verified approval"""

    id = "PP-DEPLOY-01"
    evidences = {"gitlab": ("The approvals GitLab returned, copied into the deployment record.")}
    procedures = {
        "gitlab": (
            "For each sampled production deploy, open its deployment record and confirm the approval it holds"
            " (the protected environment's deployment approval, or on Free the merge requests' approvals, as "
            "returned by GitLab) names an approver from the security group who is not the person who ran the "
            "deploy, given before the deploy started."
        )
    }
    remediations = {
        "gitlab": (
            "Deploy production from a job with `environment: {name: production, deployment_tier: "
            "production}`, a rule that adds it only on the default branch with `when: manual`, a protected "
            "environment with approval rules for the security group (Premium) or, on Free, a step that "
            "verifies the merge requests' approvals (not the deployer's) before deploying."
        )
    }
    soc2 = ("CC8.1",)
    iso27001 = ("A.8.25", "A.8.31")
    severity = Severity.CRITICAL
    prevents = ("no-separate-approval",)
    implemented_by = {
        "github": ("{production_workflow}#deploy-production", ".github/settings.yml"),
        "gitlab": (f"{_GL}#deploy-production",),
    }
    needs = (ENV_REVIEWERS, PROTECTION, TEAM, DEPLOY_HOOKS)
    remediation = (
        "Deploy production only from a job whose approval GitHub enforces and the job verifies: an environment "
        "with required reviewers from the security team (GitHub Enterprise, or a public repository), or a "
        "promotion pull request the code owners approve; restrict the environment to the default branch, and "
        "fail the job unless the approval came from someone other than who triggered it."
    )
    evidence = "The approvals GitHub returned, copied into the deployment record."
    procedure = (
        "For each sampled production deploy, open its deployment record and confirm the approval it holds "
        "(environment approval or promotion pull request review, as returned by GitHub) names an approver from "
        "the security team who is not the person who triggered the deploy, given before the deploy started."
    )

    platform_notes = {
        "gitlab": "GitLab: the production job is `when: manual`, never added to merge-request pipelines, deploys "
        "through the `production` environment, and its approval is the protected environment's approval rules "
        "(.gitlab/settings/protected-environments/production.json, Premium) or, on Free, a step that verifies "
        "the merge requests' approvals through the API before it deploys."
    }

    @classmethod
    def check(cls, pipeline: Pipeline, answers: dict[str, Any]) -> Outcome:
        if pipeline.platform == "gitlab":
            return each_production_job(pipeline, lambda job: _gitlab_approval(pipeline, job, answers))
        findings: list[Finding] = []
        branch = pipeline.default_branch
        production = pipeline.environments.get("production")
        if pipeline.environments and production is None:
            findings.append(
                Finding(
                    next(iter(pipeline.environments.values())).where,
                    "the settings declare environments but not production",
                )
            )
        elif production is not None and production.branches != (branch,):
            allowed = "any branch" if production.branches is None else ", ".join(production.branches)
            findings.append(Finding(production.where, f"production accepts deploys from {allowed}, not only {branch}"))

        def judge(job: Job) -> Outcome:
            # An approval check compares the approvals with who triggered the deploy (no self-approval); a
            # review of every pull request since the last release is a different control.
            verify = [
                s
                for s in job.steps
                if _APPROVALS.search(s.text)
                and re.search(r"github\.(?:triggering_)?actor\b", str(s.env))
                and s.not_blocking(PUSH, in_job=True) is None
            ]
            deploy = deploy_step(job)
            wanted = str(verify[0].env.get("ENVIRONMENT", "")).lower() if verify else ""
            if verify and wanted and str(verify[0].env.get("MODE", "")) == "environment" and wanted != job.environment:
                return failed(
                    f"{job.name} verifies the approval of environment {wanted!r}, which it does not "
                    "deploy through: nothing can approve it",
                    verify[0].where,
                )
            if verify and (deploy is None or verify[0].index < deploy.index):
                note = ""
                if answers.get("visibility") == "private" and answers.get("github_plan") == "free":
                    note = " (GitHub Free does not enforce it on a private repository: the workflow does)"
                return passed(
                    f"{job.name} verifies the approval GitHub returns before it deploys{note}", verify[0].where
                )
            if job.environment:
                env = pipeline.environments.get(job.environment)
                if env is not None and env.reviewers:
                    return passed(f"the {job.environment} environment declares required reviewers", env.where)
                if answers.get("visibility") == "private" and answers.get("github_plan") in {"free", "team"}:
                    return failed(
                        f"GitHub {str(answers.get('github_plan')).capitalize()} has no required reviewers on "
                        f"environments of a private repository, and {job.name} verifies no approval",
                        job.where,
                    )
                return unknown(
                    f"{job.name} deploys through the {job.environment} environment, whose required reviewers are "
                    "set outside the files (the live environment settings decide: `pipeproof audit --live` reads "
                    "them); the job does not verify an approval",
                    job.where,
                )
            return failed(f"{job.name} deploys to production with no approval that GitHub enforces", job.where)

        outcome = each_production_job(pipeline, judge)
        if findings and outcome.status != "fail":
            return failed(findings[0].message, *findings)
        if findings:
            return failed(outcome.reason, *outcome.findings, *findings)
        return outcome


def _reads_approvals(text: str) -> bool:
    return bool(_GITLAB_APPROVALS.search(text)) or verifies_mr_approvals(text)


def _gitlab_approval(pipeline: Pipeline, job: Job, answers: dict[str, Any]) -> Outcome:
    from generator.pipeline.model import CHANGE_EVENTS

    if job.runs_on(*CHANGE_EVENTS):
        return failed(f"{job.name} can run in a merge-request pipeline: production takes unmerged code", job.where)
    branches = getattr(pipeline.adapter, "other_branches", None)
    if branches is not None and (where := branches(job)) is not None:
        return failed(
            f"{job.name} is added to pipelines of branches other than {pipeline.default_branch}: anyone who can "
            "push a branch can deploy unreviewed code to production",
            where,
        )
    whens = _gitlab_when(pipeline, job, PUSH) - {"never"}
    if whens and whens != {"manual"}:
        return failed(
            f"{job.name} is not when: manual on {pipeline.default_branch}: production deploys without anyone "
            "starting it",
            job.at("rules") if "rules" in job.data else job.where,
        )
    if not job.environment:
        return failed(f"{job.name} deploys without an environment, so GitLab cannot protect it", job.where)
    deploy = deploy_step(job)
    # An approval check compares the approvers with who runs the deploy (no self-approval).
    verify = [
        s
        for s in job.steps
        if (_GITLAB_APPROVALS.search(s.text) or verifies_mr_approvals(s.text))
        and re.search(r"GITLAB_USER_(?:LOGIN|ID|NAME)\b", s.text)
        and s.not_blocking(PUSH, in_job=True) is None
        and command_ignored(s, _reads_approvals) is None
    ]
    if verify:
        return passed(
            f"{job.name} is manual and verifies the approvals GitLab returns before it deploys", verify[0].where
        )
    env = pipeline.environments.get(job.environment)
    if env is not None and env.reviewers:
        return passed(f"the protected {job.environment} environment requires {env.reviewers} approval(s)", env.where)
    if answers.get("gitlab_tier") == "free":
        return failed(
            f"GitLab Free has no approvals on protected environments, and {job.name} verifies no approval",
            job.where,
        )
    if deploy is not None and env is None:
        return unknown(
            f"{job.name} deploys through {job.environment}, whose protection is not declared in "
            ".gitlab/settings/protected-environments/ (the live settings decide); the job verifies no approval",
            job.where,
        )
    return failed(f"{job.name} deploys to production with no approval that GitLab enforces", job.where)


class PP_DEPLOY_02(Deploy):
    """Staging and production are separate environments, and staging comes first"""

    id = "PP-DEPLOY-02"
    procedures = {
        "gitlab": (
            "For each sampled production deploy, confirm the same commit (and image digest) was deployed to "
            "staging first, in the same pipeline."
        )
    }
    remediations = {
        "gitlab": (
            "Deploy to a staging environment first and make the production job need it (needs: or a later "
            "stage), together with the DAST job."
        )
    }
    implemented_by = {
        "github": (".github/workflows/deploy.yml#deploy-staging", ".github/settings.yml"),
        "gitlab": (f"{_GL}#deploy-staging",),
    }
    soc2 = ("CC8.1",)
    iso27001 = ("A.8.31",)
    remediation = (
        "Deploy to a `staging` environment first and make production depend on it (and on DAST): through "
        "needs:, or by verifying the checks of the run that deployed the candidate to staging."
    )
    evidence = "Deployment history per environment on the platform."
    procedure = (
        "For each sampled production deploy, confirm the same commit (and image digest) was deployed to staging "
        "first, in the same deploy run or in the candidate run the promotion names."
    )

    @classmethod
    def check(cls, pipeline: Pipeline) -> Outcome:
        def judge(job: Job) -> Outcome:
            staging = [
                j
                for j in deploy_path(pipeline, job)
                if (j.environment and not pipeline.adapter.deploys_to_production(j)) or "staging" in j.name.lower()
            ]
            if not staging:
                return failed(
                    f"{job.name} does not stand on a staging deploy (needs:, or the candidate's checks)", job.where
                )
            return passed("staging deploys first; production stands on it", staging[0].where)

        return each_production_job(pipeline, judge)


class PP_DEPLOY_03(Deploy):
    """The production job verifies that every required check passed on what it deploys"""

    id = "PP-DEPLOY-03"
    procedures = {
        "gitlab": (
            "For each sampled production deploy, confirm the deployment record's checks list holds every job "
            "of its pipeline with status success (none allowed to fail), from the pipeline that built the "
            "deployed image."
        )
    }
    remediations = {
        "gitlab": (
            "Make the production job stand (needs: or stage order) on every scanner and test job of its "
            "pipeline, none of them allow_failure."
        )
    }
    soc2 = ("CC8.1",)
    iso27001 = ("A.8.25",)
    remediation = (
        "Before deploying, query the check runs of the commit (of the run that built it) and stop unless every "
        "required check concluded with success: a skipped, neutral, pending or missing check stops the deploy."
    )
    evidence = "The verification step's log and the checks list in the deployment record."
    procedure = (
        "For each sampled production deploy, confirm the deployment record's checks list holds every required "
        "check with conclusion success, from the run that built the deployed image."
    )

    platform_notes = {
        "gitlab": "GitLab: the production job runs in the pipeline that checked the commit, so it must stand "
        "(needs:, or the stage order) on every job of that pipeline that runs a scanner or the tests, none of "
        "them allowed to fail."
    }

    @classmethod
    def check(cls, pipeline: Pipeline) -> Outcome:
        if pipeline.platform == "gitlab":
            return each_production_job(pipeline, lambda job: _gitlab_checks(pipeline, job))

        def judge(job: Job) -> Outcome:
            gates = [s for s in job.steps if _CHECK_RUNS.search(s.text)]
            if not gates:
                return failed(f"{job.name} does not verify the check runs of what it deploys", job.where)
            gate = gates[0]
            if (why := gate.not_blocking(PUSH, in_job=True)) is not None:
                return failed(f"the check gate cannot stop the deploy: {why}", gate.where)
            code = "\n".join(line for line in gate.text.splitlines() if not line.lstrip().startswith("#"))
            if m := _ACCEPTS_SKIPPED.search(code):
                return failed(
                    f"the check gate accepts a check that did not pass ({m[0].strip()}): GitHub reports "
                    "a job skipped by its if: as skipped",
                    gate.where,
                )
            if not _NAMES_CHECKS.search(code):
                return failed(
                    "the check gate judges only the check runs that exist: it names no required checks, so one "
                    "that never reported (or was renamed) passes it",
                    gate.where,
                )
            deploy = deploy_step(job)
            if deploy is not None and deploy.index < gate.index:
                return failed("the check gate comes after the deploy step", gate.where)
            return passed(f"{job.name} verifies every required check run before it deploys", gate.where)

        return each_production_job(pipeline, judge)


def _gitlab_checks(pipeline: Pipeline, job: Job) -> Outcome:
    path = {id(j) for j in deploy_path(pipeline, job)}
    checks = [
        j
        for j in pipeline.jobs
        if j is not job
        and j.runs_on(PUSH)
        and any(not inv.tool.reports_only and inv.tool.category != "drift" for inv in j.invocations())
    ]
    if not checks:
        return failed(f"no job checks what {job.name} deploys in its pipeline", job.where)
    findings = [
        Finding(j.where, f"{job.name} does not stand on {j.name} (needs: or an earlier stage)")
        for j in checks
        if id(j) not in path
    ]
    findings += [
        Finding(j.where, f"{j.name} cannot stop {job.name}: {why}") for j in checks if (why := j.not_blocking(PUSH))
    ]
    if findings:
        return failed(findings[0].message, *findings)
    return passed(f"{job.name} runs only when every check of its pipeline passed", *(j.where for j in checks[:3]))


class PP_DEPLOY_04(Deploy):
    """A failed, cancelled or timed-out deploy rolls production back automatically and leaves a record"""

    id = "PP-DEPLOY-04"
    remediations = {
        "gitlab": (
            "Health-check the deployed version in the production job, and add a job with `when: on_failure` "
            "that needs it, rolls production back and writes the deployment record."
        )
    }
    implemented_by = {"github": ("{production_workflow}#deploy-production",), "gitlab": (f"{_GL}#rollback-production",)}
    soc2 = ("CC8.1",)
    iso27001 = ("A.8.32",)
    remediation = (
        "After the deploy, run a health check that verifies the deployed version; on failure or cancellation "
        "run the rollback step (if: failure() || cancelled()), give the deploy step its own timeout-minutes so "
        "the job has time left, and record the outcome (if: always())."
    )
    evidence = (
        "deployment-record.json (status rolled_back): workflow artifact ({retention} days) and the evidence "
        "store ({store_retention})."
    )
    procedure = (
        "For each sampled failed or cancelled production deploy, confirm the rollback step ran and the "
        "deployment record says rolled_back (or rollback_failed, with the incident that followed)."
    )

    platform_notes = {
        "gitlab": "GitLab: a job with `when: on_failure` that stands on the production job rolls it back (a "
        "failed health check fails the production job) and writes the record; a timed-out job fails too."
    }

    @classmethod
    def check(cls, pipeline: Pipeline) -> Outcome:
        if pipeline.platform == "gitlab":
            return each_production_job(pipeline, lambda job: _gitlab_rollback(pipeline, job))

        def judge(job: Job) -> Outcome:
            deploy = deploy_step(job)
            if deploy is None:
                return failed(f"{job.name}: no deploy step found", job.where)
            later = job.steps[deploy.index + 1 :]
            health = next(
                (s for s in later if _HEALTH.search(s.name + " " + s.run) and not _ROLLBACK.search(s.name)), None
            )
            if health is None:
                return failed(f"{job.name} has no health check after the deploy", deploy.where)
            rollback = next((s for s in later if _ROLLBACK.search(s.name + " " + s.run)), None)
            condition = str(rollback.data.get("if", "")) if rollback is not None else ""
            if rollback is None or "failure()" not in condition:
                return failed(f"{job.name} has no rollback step that runs on failure (if: failure())", health.where)
            findings = []
            if "cancelled()" not in condition and "always()" not in condition:
                findings.append(
                    Finding(rollback.line_of("if"), "a cancelled deploy is not rolled back (no cancelled())")
                )
            if "timeout-minutes" not in deploy.data:
                findings.append(
                    Finding(
                        deploy.where,
                        "the deploy step has no timeout-minutes: a hung deploy runs into "
                        "the job timeout, which cancels the job before the rollback",
                    )
                )
            record = [
                s
                for s in job.steps[rollback.index + 1 :]
                if "always()" in str(s.data.get("if", "")) and re.search(r"record", s.name + s.text, re.IGNORECASE)
            ]
            if not record:
                findings.append(
                    Finding(rollback.where, "the rollback leaves no record (no always() record step after it)")
                )
            if findings:
                return failed(findings[0].message, *findings)
            return passed("a failed or cancelled deploy rolls back and the record says so", rollback.where)

        return each_production_job(pipeline, judge)


def _gitlab_rollback(pipeline: Pipeline, job: Job) -> Outcome:
    deploy = deploy_step(job)
    if deploy is None:
        return failed(f"{job.name}: no deploy step found", job.where)
    script = deploy.run
    after = script[script.find("deploy") :] if "deploy" in script else script
    health = _HEALTH.search(after) or any(_HEALTH.search(s.run) for s in job.steps[deploy.index + 1 :])
    if not health:
        return failed(f"{job.name} has no health check after the deploy", deploy.where)
    rollbacks = [
        j
        for j in followers(pipeline, job)
        if _gitlab_when(pipeline, j, PUSH) - {"never"} == {"on_failure"}
        and any(_ROLLBACK.search(s.text) for s in j.steps)
    ]
    if not rollbacks:
        return failed(f"no job with when: on_failure rolls {job.name} back", deploy.where)
    rollback = rollbacks[0]
    if rollback.invalid or rollback.reached.get(PUSH) == "never":
        return failed(f"the rollback job cannot run: {rollback.not_blocking(PUSH)}", rollback.where)
    if not any(re.search(r"record", s.text, re.IGNORECASE) for s in rollback.steps):
        return failed("the rollback leaves no record", rollback.where)
    return passed("a failed production deploy rolls back and the record says so", rollback.where)


class PP_DEPLOY_05(Deploy):
    """Rollback is drilled on a schedule and each drill leaves evidence"""

    id = "PP-DEPLOY-05"
    remediations = {
        "gitlab": (
            "Keep a rollback-drill job run by a pipeline schedule (and by hand) that rolls staging back and "
            "forward and keeps its record as an artifact and in the evidence store."
        )
    }
    soc2 = ("CC8.1",)
    iso27001 = ("A.8.32",)
    severity = Severity.MEDIUM
    prevents = ("rollback-never-tested",)
    implemented_by = {"github": (".github/workflows/rollback-drill.yml#drill",), "gitlab": (f"{_GL}#rollback-drill",)}
    remediation = (
        "Keep a rollback-drill workflow (workflow_dispatch plus a quarterly schedule) that rolls staging back "
        "and forward and uploads a drill record."
    )
    evidence = (
        "rollback-drill-record.json: workflow artifact ({retention} days) and the evidence store ({store_retention})."
    )
    procedure = (
        "Confirm a rollback-drill record exists for every quarter of the period, each with result success, "
        "rolled back to the production version and restored the current one."
    )
    frequency = "Quarterly, and on demand"
    population = {
        "github": 'gh run list --repo "$REPO" --workflow rollback-drill.yml --created "$FROM..$TO" '
        "--json databaseId,conclusion,createdAt,url",
        "gitlab": 'curl --header "PRIVATE-TOKEN: $TOKEN" "$GITLAB_API/projects/$PROJECT/pipelines?source=schedule&'
        'updated_after=$FROM&updated_before=$TO&per_page=100" (every page); the rollback-drill job of each '
        "(GET /projects/$PROJECT/pipelines/:id/jobs)",
    }

    @classmethod
    def check(cls, pipeline: Pipeline) -> Outcome:
        for job in pipeline.jobs:
            if not job.runs_on("schedule", "manual"):
                continue
            # A GitLab schedule picks its jobs by a variable the schedule sets: the job runs when it fires.
            in_job = pipeline.platform == "gitlab"
            drills = [
                s
                for s in job.steps
                if _ROLLBACK.search(s.name + " " + s.text)
                and s.not_blocking("schedule" if job.runs_on("schedule") else "manual", in_job=in_job) is None
            ]
            kept = [s for s in job.steps if s.action == "actions/upload-artifact" or "evidence" in s.uses]
            if pipeline.platform == "gitlab" and "artifacts" in job.data:
                kept = job.steps[:1]  # GitLab keeps the job's artifacts: paths
            if drills and kept:
                when = "scheduled" if job.runs_on("schedule") else "on demand only"
                return passed(f"rollback drill ({when}) leaves a record", drills[0].where)
        return failed("no scheduled or on-demand workflow drills a rollback and keeps a record of it")


_PUBLISH_SECRETS = re.compile(
    r"secrets\.(?:PYPI|TWINE|NPM|NODE_AUTH|CARGO_REGISTRY|CRATES_IO|RUBYGEMS|GEM_HOST|NUGET|SONATYPE|OSSRH|"
    r"MAVEN|GRADLE_PUBLISH)\w*",
    re.IGNORECASE,
)


class PP_DEPLOY_06(Deploy):
    """Releases are published by CI from protected refs, through an environment, with short-lived credentials"""

    id = "PP-DEPLOY-06"
    procedures = {
        "gitlab": (
            "For each sampled release, confirm it was published by a pipeline job from a tag or the default "
            "branch, through the release environment, with id_tokens (the registry shows the pipeline as "
            "publisher)."
        )
    }
    remediations = {
        "gitlab": (
            "Publish only from a job added on tags or the default branch (never in merge-request pipelines), "
            "through an environment, with id_tokens (OIDC) instead of a registry token variable."
        )
    }
    soc2 = ("CC8.1", "CC6.1")
    iso27001 = ("A.8.32", "A.8.4")
    severity = Severity.HIGH
    applies = "publishes"
    implemented_by = {"github": (".github/workflows",), "gitlab": (_GL,)}
    needs: ClassVar[tuple[Need, ...]] = ()
    remediation = (
        "Publish only from a job that runs on a tag, a release or the default branch (never on pull requests), "
        "through an environment (e.g. `pypi`, `release`) that only maintainers can approve or that only accepts "
        "release tags, with OIDC trusted publishing (`id-token: write`, no registry token secret)."
    )
    evidence = "The release run, its environment approval, and the registry's provenance or attestation."
    procedure = (
        "For each sampled release, confirm it was published by the release workflow from a tag or the default "
        "branch, through the release environment, with trusted publishing (the registry shows the workflow as "
        "publisher)."
    )
    owner = "Maintainers (control owner)"
    frequency = "Every release"
    population = {
        "github": 'gh release list --repo "$REPO" --limit 1000; gh run list --repo "$REPO" --event release',
        "gitlab": 'curl --header "PRIVATE-TOKEN: $TOKEN" "$GITLAB_API/projects/$PROJECT/releases?per_page=100" '
        "(every page); each release's tag pipeline: GET /projects/$PROJECT/pipelines?ref=TAG",
    }

    @classmethod
    def check(cls, pipeline: Pipeline) -> Outcome:
        from generator.detect import PUBLISH_ACTIONS, PUBLISH_COMMANDS

        publishers = [
            step
            for job in pipeline.jobs
            if job.called_by is None
            for step in job.steps
            if step.action in PUBLISH_ACTIONS or PUBLISH_COMMANDS.search(step.run)
        ]
        if not publishers:
            return failed("nothing here publishes a release")
        findings: list[Finding] = []
        for step in publishers:
            job = step.job
            if job.runs_on("pull_request", "merge_group"):
                findings.append(Finding(step.where, f"job {job.id} publishes and runs on pull requests"))
            if not job.environment:
                findings.append(
                    Finding(
                        job.where,
                        f"job {job.id} publishes without an environment (no approval, "
                        "no ref restriction, secrets open to every job)",
                    )
                )
            token = _PUBLISH_SECRETS.search(str(step.data)) or _PUBLISH_SECRETS.search(str(job.data.get("env", "")))
            if token:
                findings.append(
                    Finding(
                        step.where,
                        f"publishes with a long-lived registry token ({token[0]}); use OIDC trusted publishing",
                    )
                )
        if findings:
            return failed(findings[0].message, *findings)
        return passed(
            "releases are published from protected refs through an environment with OIDC",
            *(s.where for s in publishers),
        )
