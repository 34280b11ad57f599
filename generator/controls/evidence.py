"""Evidence: deployment records, seven-year object-locked storage, retention limits and the audit log."""

from __future__ import annotations

import functools
import re
from typing import Any, ClassVar

from generator.controls.base import Control, Finding, Outcome, Severity, failed, not_applicable, passed, unknown
from generator.controls.judge import each_production_job
from generator.controls.needs import AUDIT_LOG_API, EVIDENCE_STORE, Need
from generator.pipeline.model import Job, Pipeline, Step

# The "what to log" table of the source document, as the data a deployment record must carry (each entry:
# the accepted spellings in the script that writes it).
RECORD_FIELDS = {
    "commit": ("sha", "commit"),
    "environment": ("environment",),
    "status": ("status", "outcome"),
    "approvers": ("approval", "approvers"),
    "pull requests and their reviewers": ("pull_requests", "reviewers", "reviews"),
    "checks": ("checks",),
    "scan results": ("evidence", "scan_results", "scans"),
    "SBOM": ("sbom",),
    "deployer": ("deployed_by", "actor"),
    "time": ("finished_at", "deployed_at"),
}
RETENTION_LIMIT = {"public": 90, "private": 400}  # days; GitHub clamps larger values silently


class Evidence(Control):
    family = "evidence"
    owner = "Security team (control owner); the platform team runs the evidence store"
    frequency = "Every production deploy, every deploy run's scans, daily exports"
    population = {
        "github": "the deployment records and manifests under the evidence store prefix {project_name}/ for the "
        "period (aws s3api list-objects-v2 --bucket {evidence_bucket} --prefix {project_name}/YYYY/, or the "
        "workflow artifacts while they last); sample 25",
        "gitlab": "the deployment records and manifests under the evidence store prefix {project_name}/ for the "
        "period (aws s3api list-objects-v2 --bucket {evidence_bucket} --prefix {project_name}/YYYY/, or the job "
        "artifacts while they last); sample 25",
    }
    needs: ClassVar[tuple[Need, ...]] = (EVIDENCE_STORE,)


class PP_EVID_01(Evidence):
    """Every production deployment leaves a complete deployment record"""

    procedure = (
        "For each sampled production deploy, confirm a deployment record exists, that its SHA-256 matches the "
        "evidence manifest, and that it names the commit, the image digest, the approvals, every pull request "
        "since the previous production SHA with its approvers, the checks and the scan reports."
    )

    id = "PP-EVID-01"
    procedures = {
        "gitlab": (
            "For each sampled production deploy, confirm a deployment record exists, that its SHA-256 matches"
            " the evidence manifest, and that it names the commit, the image digest, the approvals, every "
            "merge request since the previous production SHA with its approvers, the checks and the scan "
            "reports."
        )
    }
    remediations = {
        "gitlab": (
            "Write one JSON deployment record per production deploy from jobs that stand on it (one on "
            "success, one with when: on_failure): commit, environment, status, approvers, merge requests and "
            "their approvers, checks, scan results, SBOM, deployer, time; keep it as an artifact and ship it."
        )
    }
    applies = "deploys"  # a repository that only publishes packages has no production deploy to record
    soc2 = ("CC8.1", "CC7.2")
    iso27001 = ("A.8.15", "A.8.25")
    implemented_by = {
        "github": ("{production_workflow}#deploy-production",),
        "gitlab": (".gitlab-ci.yml#record-production",),
    }
    remediation = (
        "Write one JSON record per production deploy with the commit SHA, author, pull-request reviewers and "
        "approvers, approval and deploy timestamps, environment, status, scan links and SBOM digest."
    )
    evidence = (
        "deployment-record.json: workflow artifact ({retention} days) and the evidence store ({store_retention})."
    )

    platform_notes = {
        "gitlab": "GitLab: the record is written by jobs that stand on the production job, one that runs when it "
        "succeeds and one with `when: on_failure` (or `always`), each keeping it as an artifact or shipping it."
    }

    @classmethod
    def check(cls, pipeline: Pipeline) -> Outcome:
        if pipeline.platform == "gitlab":
            return each_production_job(pipeline, lambda job: _gitlab_record(pipeline, job))

        def judge(job: Job) -> Outcome:
            writer = next((s for s in job.steps if "deployment-record" in s.text), None)
            if writer is None:
                return failed(f"{job.name} writes no deployment record", job.where)
            text = writer.text
            missing = [
                name for name, words in RECORD_FIELDS.items() if not any(re.search(rf"\b{w}\b", text) for w in words)
            ]
            if missing:
                return failed(f"the deployment record lacks {', '.join(missing)}", writer.where)
            if "always()" not in str(writer.data.get("if", "")):
                return failed("the deployment record is not written when the deploy fails (if: always())", writer.where)
            kept = [s for s in job.steps[writer.index + 1 :] if s.action == "actions/upload-artifact" or _ships(s)]
            if not kept:
                return failed("the deployment record is neither uploaded nor shipped", writer.where)
            return passed("every production deploy writes a complete record", writer.where)

        return each_production_job(pipeline, judge)


_RECORD = re.compile(r"deployment[-_ ]record")


def _gitlab_writers(pipeline: Pipeline, job: Job) -> dict[str, list[Step]]:
    """The steps that write JOB's deployment record, by when they run: 'success' and 'failure'."""
    from generator.controls.deploy import _gitlab_when, followers

    found: dict[str, list[Step]] = {"success": [], "failure": []}
    for step in job.steps:
        if _RECORD.search(step.text):
            found["failure" if step.data.get("section") == "after_script" else "success"].append(step)
            if step.data.get("section") == "after_script":
                found["success"].append(step)
    for other in followers(pipeline, job):
        whens = _gitlab_when(pipeline, other, "push") - {"never"}
        steps = [s for s in other.steps if _RECORD.search(s.text)]
        if not steps:
            continue
        if whens & {"on_success", "always"}:
            found["success"] += steps
        if whens & {"on_failure", "always"}:
            found["failure"] += steps
    return found


def _gitlab_record(pipeline: Pipeline, job: Job) -> Outcome:
    writers = _gitlab_writers(pipeline, job)
    if not writers["success"] and not writers["failure"]:
        return failed(f"{job.name} writes no deployment record", job.where)
    if not writers["failure"]:
        return failed("the deployment record is not written when the deploy fails (when: on_failure)", job.where)
    if not writers["success"]:
        return failed("the deployment record is written only when the deploy fails", writers["failure"][0].where)
    text = "\n".join(s.text for s in writers["success"] + writers["failure"])
    missing = [name for name, words in RECORD_FIELDS.items() if not any(re.search(rf"\b{w}\b", text) for w in words)]
    writer = writers["success"][0]
    if missing:
        return failed(f"the deployment record lacks {', '.join(missing)}", writer.where)
    unkept = [
        w
        for w in writers["success"] + writers["failure"]
        if "artifacts" not in w.job.data and not any(_ships(s) for s in w.job.steps[w.index :])
    ]
    if unkept:
        return failed("the deployment record is neither kept as an artifact nor shipped", unkept[0].where)
    return passed("every production deploy writes a complete record, whatever its outcome", writer.where)


class PP_EVID_02(Evidence):
    """Scan results and deployment evidence are kept for seven years in object-locked storage"""

    procedure = (
        "For a sample of records and scan reports, confirm the object exists under its content-addressed key, "
        "is locked in compliance mode until seven years after it was written, and that its SHA-256 matches "
        "the manifest."
    )

    id = "PP-EVID-02"
    remediations = {
        "gitlab": (
            "Ship scan reports and deployment records to a bucket with object lock in compliance mode (7 "
            "years) from the jobs that write them, authenticating with id_tokens (OIDC); job artifacts "
            "expire."
        )
    }
    soc2 = ("CC7.2", "CC8.1")
    iso27001 = ("A.8.15",)
    applies = "evidence_store != 'none'"
    prevents = ("scan-results-not-retained",)
    implemented_by = {
        "github": (".github/actions/ship-evidence/action.yml", "{production_workflow}#deploy-production"),
        "gitlab": (".gitlab-ci.yml#evidence",),
    }
    remediation = (
        "Ship scan reports and deployment records to a bucket with object lock in compliance mode "
        "(7 years), authenticating through OIDC; platform artifacts expire after 90/400 days."
    )
    evidence = "Objects under <bucket>/<project>/ with a 7-year compliance-mode retention."

    @classmethod
    def check(cls, pipeline: Pipeline) -> Outcome:
        def judge(job: Job) -> Outcome:
            if pipeline.platform == "gitlab":
                writers = _gitlab_writers(pipeline, job)
                # The record is shipped by the writing step or a later one of the same job.
                shipped_gl = [
                    s for w in writers["success"] + writers["failure"] for s in w.job.steps[w.index :] if _ships(s)
                ]
                if not shipped_gl:
                    return failed(f"{job.name} does not ship its deployment record to the evidence store", job.where)
                return passed("deployment records go to the evidence store", shipped_gl[0].where)
            writer = next((s for s in job.steps if "deployment-record" in s.text), None)
            after = job.steps[writer.index + 1 :] if writer is not None else job.steps
            shipped = [s for s in after if _ships(s)]
            if not shipped:
                return failed(f"{job.name} does not ship its deployment record to the evidence store", job.where)
            return passed("deployment records go to the evidence store", shipped[0].where)

        outcome = each_production_job(pipeline, judge)
        if outcome.status == "pass":
            scans = [
                s
                for s in pipeline.steps()
                if _ships(s)
                and re.search(r"scan|manifest|evidence", s.name + s.text)
                and s.job not in pipeline.production_jobs()
            ]
            if not scans:
                return failed("scan results are not shipped to the evidence store (only artifacts, which expire)")
            return passed(outcome.reason + "; so do the scan results", *outcome.evidence, scans[0].where)
        return outcome


class PP_EVID_03(Evidence):
    """Artifact retention stays within the platform's limit"""

    procedure = (
        "Confirm every upload-artifact step keeps at most 90 days (public) or 400 days (private): larger "
        "values are silently shortened, so no control may rely on them."
    )
    needs = ()

    id = "PP-EVID-03"
    evidences = {"gitlab": ("artifacts:expire_in of every job in .gitlab-ci.yml under version control.")}
    remediations = {
        "gitlab": (
            "Set artifacts:expire_in on every job that keeps artifacts (or in default:): GitLab has no cap, "
            "only an instance default an admin may change."
        )
    }
    soc2 = ("CC7.2",)
    iso27001 = ("A.8.15",)
    severity = Severity.MEDIUM
    implemented_by = {
        "github": (".github/workflows/pr-checks.yml", ".github/workflows/deploy.yml"),
        "gitlab": (".gitlab-ci.yml",),
    }
    remediation = (
        "Set retention-days to at most 90 on public and 400 on private repositories: GitHub silently clamps "
        "larger values, so a 2555-day setting only looks like 7-year retention."
    )
    evidence = "retention-days in the workflows under version control."

    platform_notes = {
        "gitlab": "GitLab has no cap on `artifacts:expire_in`, only an instance default an admin may change: "
        "every job that keeps artifacts sets expire_in itself (or through default:), so retention is deliberate."
    }

    @classmethod
    def check(cls, pipeline: Pipeline, answers: dict[str, Any]) -> Outcome:
        if pipeline.platform == "gitlab":
            return _gitlab_expiry(pipeline)
        visibility = str(answers.get("visibility"))
        known = visibility in RETENTION_LIMIT
        limit = RETENTION_LIMIT[visibility] if known else RETENTION_LIMIT["public"]
        evidence: list[str] = []
        over: list[Finding] = []
        unsure: list[Finding] = []
        seen: set[str] = set()
        for step in pipeline.steps():
            if step.action != "actions/upload-artifact" or "retention-days" not in step.with_:
                continue
            where = step.line_of("with")
            if where in seen:
                continue
            seen.add(where)
            try:
                days = int(str(step.with_["retention-days"]))
            except ValueError:
                continue  # an expression: judged where it is set
            if days > RETENTION_LIMIT["private"] or (known and days > limit):
                over.append(Finding(where, f"retention-days: {days}"))
            elif days > limit:
                unsure.append(Finding(where, f"retention-days: {days}"))
            else:
                evidence.append(where)
        if not evidence and not over and not unsure:
            return not_applicable("no artifact sets retention-days")
        if over:
            kind = f"{limit}-day limit of a {visibility}" if known else "400-day limit of any"
            return failed(
                f"{len(over)} artifact(s) exceed the {kind} repository; GitHub silently clamps them, so the "
                "evidence expires early",
                *over,
            )
        if unsure:
            return unknown(
                f"{len(unsure)} artifact(s) keep more than 90 days, which GitHub clamps to 90 on a public repository; "
                "the repository's visibility decides (declare it in .github/settings.yml repository.private)",
                *unsure,
            )
        return passed(f"every artifact retention is within {limit} days", *evidence[:5])


def _gitlab_expiry(pipeline: Pipeline) -> Outcome:
    findings: list[Finding] = []
    evidence: list[str] = []
    for job in pipeline.jobs:
        artifacts = job.data.get("artifacts")
        if not isinstance(artifacts, dict):
            continue
        if not artifacts.get("expire_in"):
            findings.append(
                Finding(
                    job.at("artifacts"),
                    f"job {job.id} keeps artifacts without expire_in: the instance default decides how long",
                )
            )
        else:
            evidence.append(job.at("artifacts", "expire_in"))
    if findings:
        return failed(findings[0].message, *findings)
    if not evidence:
        return not_applicable("no job keeps artifacts")
    return passed("every job that keeps artifacts sets expire_in", *evidence[:5])


class PP_EVID_04(Evidence):
    """The platform audit log is exported daily to object-locked storage"""

    procedure = (
        "Confirm an audit-log export exists in the evidence store for every day of the period and that each "
        "holds events; sample days and compare with the organisation audit log."
    )
    frequency = "Daily"
    needs = (AUDIT_LOG_API, EVIDENCE_STORE)

    id = "PP-EVID-04"
    remediations = {
        "gitlab": (
            "Run a scheduled job that exports the project's audit events (Premium/Ultimate; project events on"
            " Free) and ships them to the evidence store through id_tokens (OIDC)."
        )
    }
    soc2 = ("CC7.2",)
    iso27001 = ("A.8.15",)
    severity = Severity.MEDIUM
    # The organisation audit-log REST API exists on GitHub Enterprise Cloud only.
    applies = (
        "evidence_store != 'none' and (platform == 'gitlab' or (github_plan == 'enterprise' and "
        "github_host == 'github.com'))"
    )
    platform_notes = {
        "github": "GitHub: only Enterprise Cloud has the organisation audit-log API, so elsewhere the control does "
        "not apply and the Git history of .github/ with the deployment records stands in (see its need).",
        "gitlab": "GitLab: the project audit events API (Premium and Ultimate) or, on Free, the project events "
        "API, exported by a scheduled job; on every tier, unlike GitHub where only Enterprise Cloud has the API.",
    }
    implemented_by = {
        "github": (".github/workflows/audit-log-export.yml#export",),
        "gitlab": (".gitlab-ci.yml#audit-export",),
    }
    remediation = (
        "Run a scheduled job that exports the organisation audit log and ships it to the evidence store through OIDC."
    )
    evidence = "audit-log-<date>.json in the evidence store ({store_retention})."

    @classmethod
    def check(cls, pipeline: Pipeline) -> Outcome:
        for job in pipeline.jobs:
            if not job.runs_on("schedule"):
                continue
            # A GitLab schedule picks its jobs by a variable the schedule sets: the job runs when it fires.
            in_job = pipeline.platform == "gitlab"
            export = next(
                (
                    s
                    for s in job.steps
                    if _AUDIT_LOG.search(s.text) and s.not_blocking("schedule", in_job=in_job) is None
                ),
                None,
            )
            if export and any(_ships(s) for s in job.steps):
                return passed("the audit log is exported on a schedule and shipped", export.where)
        return failed("no scheduled job exports the audit log to the evidence store")


_AUDIT_LOG = re.compile(r"audit-log|audit[-_]events")
_UPLOAD = re.compile(
    r"aws\s+s3\s+cp|aws\s+s3api\s+put-object|gcloud\s+storage\s+cp|gsutil\s+cp|az\s+storage\s+blob\s+upload"
)


def _ships(step: Step) -> bool:
    """A step that uploads to an evidence store: a cloud CLI upload, directly or in the local action it uses."""
    return _uploads(step.text)


@functools.lru_cache(maxsize=4096)  # the same scripts are followed in many steps and asked about per deploy
def _uploads(text: str) -> bool:
    return bool(_UPLOAD.search(text))
