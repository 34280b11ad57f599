"""Evidence: deployment records, object-locked storage and its code, retention limits and the audit log."""

from __future__ import annotations

import functools
import re
from typing import Any, ClassVar

from generator.controls import store_iac
from generator.controls.base import Control, Finding, Outcome, Severity, failed, not_applicable, passed, unknown
from generator.controls.judge import commands_only, each_production_job
from generator.controls.needs import AUDIT_LOG_API, EVIDENCE_STORE, PIPEPROOF_ACTION, PROTECT_TOKEN, Need
from generator.pipeline.model import Job, Pipeline, Step
from generator.repo import Repo

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
# Years of evidence each framework's auditors commonly expect (neither standard fixes a number): SOC 2 evidence is
# kept 7 years (the source document's figure, the usual records-retention policy behind a type II report); ISO
# 27001 certification runs in 3-year cycles whose surveillance and recertification audits look back over it.
FRAMEWORK_RETENTION_YEARS = {"soc2": ("SOC 2", 7), "iso27001": ("ISO/IEC 27001:2022", 3)}


def retention_warnings(answers: dict[str, Any]) -> list[str]:
    """A warning per chosen framework whose usual retention is longer than evidence_retention_years."""
    years = answers.get("evidence_retention_years")
    if answers.get("evidence_store") in (None, "none") or not isinstance(years, int):
        return []
    found = []
    for key in answers.get("frameworks") or []:
        name, expected = FRAMEWORK_RETENTION_YEARS.get(str(key), (str(key), 0))
        if years < expected:
            found.append(
                f"evidence_retention_years {years} is shorter than the {expected} years {name} audits commonly "
                f"expect (framework {key}): evidence may expire before an auditor asks for it"
            )
    return found


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
        "github": ("{production_workflow}#{production_job}",),
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
    """Scan results and deployment evidence are kept in object-locked storage for the promised retention"""

    procedure = (
        "For a sample of records and scan reports, confirm the object exists under its content-addressed key, "
        "is locked (S3 COMPLIANCE mode, a locked GCS retention policy or a locked Azure immutability policy) "
        "until the promised retention after it was written, and that its SHA-256 matches the manifest."
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
        "github": (".github/actions/ship-evidence/action.yml", "{production_workflow}#{production_job}"),
        "gitlab": (".gitlab-ci.yml#evidence",),
    }
    remediation = (
        "Ship scan reports and deployment records to a bucket with object lock in compliance mode "
        "for the promised retention (7 years by default), authenticating through OIDC; check the store's lock "
        "before each write and never replace a key; platform artifacts expire after 90/400 days."
    )
    evidence = "Objects under the store's <project>/ prefix: {store_retention}."

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
            for step in shipped:
                if gap := _fails_open(step):
                    return failed(f"{job.name} ships evidence, but {gap}", step.where)
            return passed(
                "deployment records go to the evidence store, checked and never overwritten", shipped[0].where
            )

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


class PP_EVID_05(Evidence):
    """The evidence store is verified daily: yesterday's objects exist and are locked"""

    procedure = (
        "For a sample of days, open the evidence-verification record of that day in the evidence store: it must "
        "show result pass, the store's lock mode, retention and versioning, and every manifest shipped the day "
        "before; follow a failed day to its remediation."
    )
    frequency = "Daily"

    id = "PP-EVID-05"
    soc2 = ("CC7.2",)
    iso27001 = ("A.8.15",)
    severity = Severity.MEDIUM
    applies = "evidence_store != 'none'"
    requires = ("PP-EVID-02",)
    implemented_by = {
        "github": (".github/workflows/evidence-verify.yml#verify",),
        "gitlab": (".gitlab-ci.yml#verify-evidence",),
    }
    remediation = (
        "Run a daily scheduled job that asserts the store's lock mode, retention and versioning, checks that "
        "every object listed in the previous day's manifests exists and is locked for the promised period, "
        "fails on anything else, and ships its result to the evidence store."
    )
    evidence = (
        "evidence-verification.json of each day: a workflow artifact ({retention} days) and the evidence store "
        "({store_retention})."
    )

    @classmethod
    def check(cls, pipeline: Pipeline) -> Outcome:
        seen: list[str] = []
        unshipped: list[str] = []
        for job in pipeline.jobs:
            if not job.runs_on("schedule") or not _daily(job):
                continue
            verify = next(
                (s for s in job.steps if _VERIFY.search(commands_only(s.text)) and _blocks_on_schedule(s)),
                None,
            )
            if verify is None:
                seen.append(f"{job.name} runs daily but verifies no stored object")
                continue
            if not (_ships_later(verify) or any(_ships(s) for s in job.steps[verify.index + 1 :])):
                unshipped.append(verify.where)
                seen.append(f"{job.name} verifies the store but does not ship its result as evidence")
                continue
            return passed("a daily job verifies the stored evidence and ships the result", verify.where)
        return failed(
            "no daily scheduled job verifies that stored evidence exists and is locked and ships the result"
            + (f" ({'; '.join(seen)})" if seen else ""),
            *unshipped,
        )


class PP_EVID_06(Evidence):
    """The evidence store's infrastructure code keeps evidence locked, private and write-only"""

    procedure = (
        "Read the evidence store's Terraform (infrastructure/evidence-store/) and the store's live settings: "
        "lock mode and period, versioning, public access, the OIDC trust (exact subjects of this repository "
        "and its branch or environments) and the writer's permissions (no delete, no overwrite); compare with "
        "the plan of the last apply."
    )
    frequency = "Every change to the store's code; the daily verification (PP-EVID-05) checks the live store"

    id = "PP-EVID-06"
    soc2 = ("CC6.1", "CC7.2")
    iso27001 = ("A.8.15", "A.8.9")
    applies = "evidence_store != 'none'"
    implemented_by = {
        "github": ("infrastructure/evidence-store/main.tf",),
        "gitlab": ("infrastructure/evidence-store/main.tf",),
    }
    remediation = (
        "Keep the store as code: Object Lock COMPLIANCE (S3), a locked retention policy (GCS) or a locked "
        "immutability policy (Azure) for the promised period, versioning, no public access, an OIDC trust "
        "whose subjects are exact strings naming this repository and its branch or environment, and a writer "
        "that can create objects but neither delete nor replace them."
    )
    evidence = "infrastructure/evidence-store/*.tf under version control, and its reviewed plans."

    @classmethod
    def check(cls, repo: Repo, answers: dict[str, Any]) -> Outcome:
        modules = store_iac.modules(repo)
        if not modules:
            return not_applicable(
                "the repository holds no evidence-store infrastructure code (a lockable bucket in Terraform)"
            )
        years = answers.get("evidence_retention_years")
        days = int(years) * 365 if isinstance(years, int) and years > 0 else 7 * 365
        repository = answers.get("repository") if isinstance(answers.get("repository"), str) else None
        bad: list[Finding] = []
        good: list[str] = []
        for module in modules:
            bad += [Finding(module.folder + "/", e) for e in module.errors]
            verdicts = store_iac.judge(module, days, repository)
            seen = {v.aspect for v in verdicts}
            bad += [Finding(module.folder + "/", f"{a}: not declared") for a in store_iac.ASPECTS if a not in seen]
            bad += [Finding(v.where, f"{v.aspect}: {v.message}") for v in verdicts if not v.ok]
            good += [v.where for v in verdicts if v.ok]
        if bad:
            return failed(f"the evidence store's code does not hold what is promised: {bad[0].message}", *bad)
        return passed(
            f"{len(modules)} evidence-store module(s): locked for at least {days} days, versioned, private, "
            "trusted only by this repository's exact subjects, write-only",
            *sorted(set(good))[:5],
        )


# A step that reads back what the store keeps: the generated verifier, or the cloud CLI calls that show a lock.
_VERIFY = re.compile(
    r"verify-evidence|get-object-retention|ObjectLockRetainUntilDate|retention_expiration_time|"
    r"immutability-policy\s+show"
)


def _daily(job: Job) -> bool:
    """Whether the job's schedule fires every day: a GitHub cron with every day, month and weekday. GitLab keeps
    schedules outside the files (pipeline schedules), so a scheduled GitLab job counts."""
    if job.pipeline.platform != "github":
        return True
    doc = job.pipeline.docs.get(job.file)
    on = doc.data.get("on", doc.data.get(True)) if doc is not None and isinstance(doc.data, dict) else None
    crons = [e.get("cron") for e in on.get("schedule") or []] if isinstance(on, dict) else []
    for cron in crons:
        fields = str(cron).split()
        if len(fields) == 5 and fields[2] == "*" and fields[3] == "*" and fields[4] == "*":
            return True
    return False


class PP_EVID_07(Evidence):
    """The live protection settings are checked against the files and exported daily"""

    procedure = (
        "Confirm a protect-check run exists for every day of the period, that each failed run (drift) was "
        "followed by a change that restored the settings, and that each day's snapshot holds the live settings, "
        "the diff and the access review (collaborators, teams, admins, bypass actors) with a matching SHA-256."
    )
    frequency = "Daily; the access review in the snapshots is reviewed quarterly"
    population = {
        "github": "the protect-check workflow runs of the period (gh run list --workflow protect-check.yml) and "
        "the snapshots protect-<time>.json under the evidence store prefix {project_name}/",
        "gitlab": "the protect-check jobs of the period (glab api 'projects/$PROJECT/jobs?scope[]=success"
        "&scope[]=failed', name protect-check) and the snapshots protect-<time>.json under the evidence store "
        "prefix {project_name}/",
    }
    needs = (PROTECT_TOKEN, PIPEPROOF_ACTION)

    id = "PP-EVID-07"
    soc2 = ("CC8.1", "CC6.2", "CC6.3")
    iso27001 = ("A.8.32", "A.5.18", "A.8.15")
    severity = Severity.MEDIUM
    # Protection and environments exist to check only where GitHub offers them.
    applies = "environments_available"
    implemented_by = {
        "github": (".github/workflows/protect-check.yml#check",),
        "gitlab": (".gitlab-ci.yml#protect-check",),
    }
    platform_notes = {
        "github": "Applies where GitHub has environments (public repositories, Team and Enterprise): the read-only "
        "token is a secret of the settings-check environment, restricted to the default branch.",
        "gitlab": "A scheduled job (PIPEPROOF_SCHEDULE=audit-export) runs `protect export` and `protect check` with "
        "a read-only project access token (CI/CD variable PIPEPROOF_READ_TOKEN, read_api).",
    }
    remediation = (
        "Run `pipeproof protect check` and `pipeproof protect export` on a daily schedule with a read-only token, "
        "failing on drift and keeping the snapshot as evidence."
    )
    evidence = (
        "protect-<time>.json snapshots (live and desired settings, diff, access review, SHA-256): a workflow "
        "artifact ({retention} days), and {store_retention}."
    )

    @classmethod
    def check(cls, pipeline: Pipeline) -> Outcome:
        for job in pipeline.jobs:
            if not job.runs_on("schedule"):
                continue
            # The check must be able to fail the run: drift that passes quietly is no detective control.
            check = next(
                (s for s in job.steps if _protect(s, "check") and _blocks_on_schedule(s)),
                None,
            )
            export = next((s for s in job.steps if _protect(s, "export")), None)
            if check is not None and export is not None:
                return passed("a scheduled job checks the live settings for drift and exports them", check.where)
        return failed("no scheduled job runs `pipeproof protect check` and `export` against the live settings")


def _protect(step: Step, command: str) -> bool:
    """A step that runs `pipeproof protect COMMAND` (the CLI, or the protect action with command: COMMAND)."""
    if step.action.endswith("/protect") and step.action.startswith("pipeproof/"):
        return str(step.with_.get("command", "check")) == command
    return re.search(rf"\bprotect\s+{command}\b", step.run) is not None


_AUDIT_LOG = re.compile(r"audit-log|audit[-_]events")
_UPLOAD = re.compile(
    r"aws\s+s3\s+cp|aws\s+s3api\s+put-object|gcloud\s+storage\s+cp|gsutil\s+cp|az\s+storage\s+blob\s+upload"
)


# Per upload command: how it refuses to replace an existing object, and how the store's lock is asserted before
# the first write (issue 13: the ship step fails closed). A plain `aws s3 cp` or `gsutil cp` has neither.
_GUARDS = (
    (
        re.compile(r"aws\s+s3api\s+put-object"),
        re.compile(r"--if-none-match"),
        re.compile(r"get-object-lock-configuration"),
        "S3",
    ),
    (
        re.compile(r"gcloud\s+storage\s+cp"),
        re.compile(r"--if-generation-match[= ]0"),
        re.compile(r"retention_policy\.isLocked|retentionPolicy\.isLocked"),
        "GCS",
    ),
    (
        re.compile(r"az\s+storage\s+blob\s+upload"),
        re.compile(r"--overwrite\s+false"),
        re.compile(r"immutability-policy\s+show"),
        "Azure",
    ),
)


_COMMENT = re.compile(r"(?m)(?:^|(?<=\s))#.*$")


def _fails_open(step: Step) -> str | None:
    """Why a shipping step could replace evidence or write to an unlocked store, or None."""
    text = _COMMENT.sub("", step.text)  # what runs, not what a comment says
    if re.search(r"aws\s+s3\s+cp|gsutil\s+cp", text):
        return "it uploads with aws s3 cp or gsutil cp, which replace an existing object"
    for upload, no_overwrite, lock_check, name in _GUARDS:
        if upload.search(text):
            if not no_overwrite.search(text):
                return f"its {name} upload does not refuse an existing key (conditional write)"
            if not lock_check.search(text):
                return f"it writes to {name} without first asserting the store's lock and retention"
    return None


def _blocks_on_schedule(step: Step) -> bool:
    """Whether a failure of the step fails its scheduled run. A GitLab schedule picks its jobs by a variable
    it sets (PIPEPROOF_SCHEDULE), so the job is taken as running, and only what it says itself (allow_failure)
    can keep the failure from the pipeline."""
    if step.job.pipeline.platform != "gitlab":
        return step.not_blocking("schedule") is None
    return step.not_blocking("schedule", in_job=True) is None and step.job.data.get("allow_failure") in (None, False)


def _ships_later(step: Step) -> bool:
    """Whether the step's own script uploads after it verifies (a GitLab job's script is one step)."""
    m = _VERIFY.search(step.run)
    if m is None:
        return False
    rest = step.run[m.end() :]
    follower = getattr(step.job.pipeline.adapter, "_followed", None)
    followed = follower(rest, 0) if callable(follower) else []
    return any(_uploads(text) for text in [rest, *followed])


def _ships(step: Step) -> bool:
    """A step that uploads to an evidence store: a cloud CLI upload, directly or in the local action it uses."""
    return _uploads(step.text)


@functools.lru_cache(maxsize=4096)  # the same scripts are followed in many steps and asked about per deploy
def _uploads(text: str) -> bool:
    return bool(_UPLOAD.search(text))
