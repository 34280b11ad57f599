"""Scanners that run on every change and block it: SAST, SCA, SBOM, secrets, IaC, containers, DAST, tests."""

from __future__ import annotations

import os
import re
from typing import Any, ClassVar

from generator.controls.base import Control, Finding, Outcome, Severity, failed, not_applicable, passed, unknown
from generator.controls.judge import (
    deploy_path,
    each_production_job,
    gate,
    gated_elsewhere,
    remote_calls,
    why_not_gating,
)
from generator.controls.needs import CODE_SECURITY, ENVIRONMENTS, PROTECTION, REGISTRY, TEAM, Need
from generator.pipeline.model import CHANGE_EVENTS, Job, Pipeline
from generator.repo import Repo

_PR = ".github/workflows/pr-checks.yml"
_GL = ".gitlab-ci.yml"
_DEPLOY_RUNS = (
    'gh run list --repo "$REPO" --workflow deploy.yml --branch {default_branch} --created "$FROM..$TO" '
    "--limit 1000 --json databaseId,headSha,conclusion,url > population.json; "
    "sample: jq -r '.[].databaseId' population.json | shuf -n 25"
)
_SCAN_EVIDENCE = (
    "{sarif}, a workflow artifact ({retention} days) and, "
    "for every commit deployed, the evidence store ({store_retention})."
)


_RUNS = (
    'gh run list --repo "$REPO" --workflow pr-checks.yml --created "$FROM..$TO" --limit 1000 '
    "--json databaseId,headSha,event,conclusion,url > population.json; "
    "sample: jq -r '.[].databaseId' population.json | shuf -n 25; "
    'each run\'s jobs: gh run view RUN_ID --repo "$REPO" --json jobs'
)


_GITLAB_PIPELINES = (
    'curl --header "PRIVATE-TOKEN: $TOKEN" "$GITLAB_API/projects/$PROJECT/pipelines?source=merge_request_event&'
    'updated_after=$FROM&updated_before=$TO&per_page=100" (every page) > population.json; '
    "sample: jq -r '.[].id' population.json | shuf -n 25; each pipeline's jobs: "
    'GET "$GITLAB_API/projects/$PROJECT/pipelines/PIPELINE_ID/jobs"'
)
_GITLAB_DEPLOYS = (
    'curl --header "PRIVATE-TOKEN: $TOKEN" "$GITLAB_API/projects/$PROJECT/deployments?environment=production&'
    "updated_after=$FROM&updated_before=$TO&per_page=100\" (every page) > population.json; each deployment's "
    "pipeline: its deployable.pipeline.id (under Argo CD its notifications create the deployments, which have "
    "none: the synced commit's argocd/environments/production/release.json names the build and DAST pipelines)"
)


def _changes(pipeline: Pipeline) -> str:
    """What a change under review is called on the pipeline's platform."""
    return "merge requests" if pipeline.platform == "gitlab" else "pull requests"


class Scan(Control):
    family = "scan"
    owner = "Security team (scanner configuration, triage and waivers); engineering lead (fixes)"
    frequency = "Every pull request, every merge-queue group and every deploy (continuous)"
    population = {"github": _RUNS, "gitlab": _GITLAB_PIPELINES}
    # Code Security decides where the SARIF report goes (code scanning, or artifacts and the job summary).
    needs: ClassVar[tuple[Need, ...]] = (PROTECTION, CODE_SECURITY)
    prevents: ClassVar[tuple[str, ...]] = ("scans-not-blocking",)
    # The objective a blocking tool on every pull request meets (generator/pipeline/tools.py categories), and
    # how the report names it; None for a control with a check of its own.
    category: ClassVar[str | None] = None
    objective: ClassVar[str] = ""

    @classmethod
    def check(cls, pipeline: Pipeline) -> Outcome:
        assert cls.category is not None
        return gate(pipeline, cls.category, cls.objective)


class PP_SCAN_01(Scan):
    """Static analysis (Semgrep) runs on every change and blocks on findings"""

    procedure = (
        "For each sampled run, confirm the sast job ran, used the pinned Semgrep with --error and "
        "--disable-nosem, and that a run with findings failed and its pull request did not merge until fixed or "
        "waived; "
        "open the kept semgrep.sarif."
    )

    id = "PP-SCAN-01"
    procedures = {
        "gitlab": (
            "For each sampled pipeline, confirm the sast job ran, used the pinned Semgrep with --error and "
            "--disable-nosem, and that a pipeline with findings failed and its merge request did not merge "
            "until fixed or waived; open the kept semgrep.sarif and gl-sast-report.json."
        )
    }
    remediations = {
        "gitlab": (
            "Run `semgrep scan --config p/<ruleset> --error --metrics=off` in a job of the merge-request "
            "pipeline (rules: for merge_request_event), without allow_failure or when: manual, and keep its "
            "`sast` report artifact."
        )
    }
    category = "sast"
    platform_notes = {
        "gitlab": "Same check (Semgrep blocks the merge-request pipeline). Where GitHub uploads the SARIF to code "
        "scanning (GitHub-only), GitLab's counterpart is the `sast` report artifact (artifacts:reports:sast, "
        "shown in the merge request's security widget on Ultimate)."
    }
    objective = "static analysis"
    implemented_by = {"github": (f"{_PR}#sast",), "gitlab": (f"{_GL}#sast",)}
    soc2 = ("CC7.1", "CC8.1")
    iso27001 = ("A.8.25", "A.8.28")
    severity = Severity.CRITICAL
    remediation = (
        "Run `semgrep scan --config p/<ruleset> --error --metrics=off` on every pull request, without "
        "continue-on-error or an if: that skips it, and upload its SARIF."
    )
    evidence = "semgrep.sarif: " + _SCAN_EVIDENCE


class PP_SCAN_02(Scan):
    """Dependency review blocks high-severity vulnerabilities and denied licences"""

    procedure = (
        "For each sampled run, confirm the sca job ran on the change and that advisories of high severity or "
        "licences outside the allow-list failed it; compare the allow-list with the licence policy."
    )

    id = "PP-SCAN-02"
    remediations = {
        "gitlab": (
            "Run osv-scanner (or Grype over the SBOM) in a merge-request pipeline job that fails on "
            "high-severity vulnerabilities, without allow_failure, `|| true` or when: manual."
        )
    }
    category = "sca"
    objective = "dependency vulnerability check"
    implemented_by = {"github": (f"{_PR}#sca",), "gitlab": (f"{_GL}#sca",)}
    soc2 = ("CC7.1", "CC8.1")
    iso27001 = ("A.8.28", "A.8.25")
    remediation = (
        "Run actions/dependency-review-action on pull requests with fail-on-severity: high (or stricter) and "
        "allow-licenses, or (without GitHub Code Security) osv-scanner with a licence allow-list, failing on a "
        "CVSS score of 7.0 or more; make the job a required check."
    )
    evidence = "{sca}."


class PP_SCAN_03(Scan):
    """An SBOM is produced for every build and scanned for vulnerabilities"""

    population = {"github": _DEPLOY_RUNS, "gitlab": _GITLAB_DEPLOYS}
    procedure = (
        "For each sampled deploy, confirm an SPDX SBOM of the deployed image (by digest) exists in the "
        "evidence store with the SHA-256 the deployment record names, and that Grype scanned it and would "
        "fail on high."
    )

    id = "PP-SCAN-03"
    remediations = {
        "gitlab": (
            "Generate an SPDX SBOM (syft) in the merge-request pipeline and for the built image, scan it with"
            " `grype sbom:... --fail-on high`, and keep it (artifacts:reports:cyclonedx and the evidence "
            "store)."
        )
    }
    implemented_by = {
        "github": (f"{_PR}#sbom", ".github/workflows/deploy.yml#build"),
        "gitlab": (f"{_GL}#sbom", f"{_GL}#build"),
    }
    soc2 = ("CC8.1", "CC7.1")
    iso27001 = ("A.8.9", "A.8.28")
    prevents = ("no-sbom", "scans-not-blocking")
    remediation = (
        "Generate an SPDX JSON SBOM (anchore/sbom-action) on every build and scan it with Grype "
        "(anchore/scan-action, fail-build: true, severity-cutoff: high); link its digest in the deployment record."
    )
    evidence = "sbom.spdx.json and grype.sarif: " + _SCAN_EVIDENCE

    @classmethod
    def check(cls, pipeline: Pipeline, answers: dict[str, Any]) -> Outcome:  # type: ignore[override]
        gating = pipeline.gating_jobs()
        sboms = [inv for inv in pipeline.invocations("sbom", gating) if inv.step.not_blocking(CHANGE_EVENTS[0]) is None]
        if not sboms:
            if remote := remote_calls(pipeline):
                return unknown(
                    "no SBOM is known to be generated on pull requests; a remote reusable workflow may generate it",
                    *(Finding(job.where, f"{job.calls}: its contents are not in this repository") for job in remote),
                )
            return failed(f"no SBOM is generated on {_changes(pipeline)}")
        scanned = [
            inv
            for inv in pipeline.invocations("sca", gating) + pipeline.invocations("image-scan", gating)
            if ("sbom:" in inv.use.command or inv.use.inputs.get("sbom")) and pipeline.why_not_blocking(inv) is None
        ]
        if not scanned:
            return failed(
                "the SBOM is not scanned by a blocking vulnerability scanner (grype sbom:..., scan-action sbom:)",
                *(inv.where for inv in sboms),
            )
        evidence = [sboms[0].where, scanned[0].where]
        findings = []
        for job in pipeline.production_jobs():
            path = [job, *deploy_path(pipeline, job)]
            made = [inv for j in path for inv in j.invocations() if inv.tool.category == "sbom" and not inv.ignored]
            if answers.get("containers"):
                # What is deployed is the image: its SBOM is of the image (by reference), built where it is pushed.
                made = [inv for inv in made if _OF_IMAGE.search(inv.use.command) or inv.use.inputs.get("image")]
            if made:
                evidence.append(made[0].where)
            else:
                findings.append(Finding(job.where, f"no SBOM is generated for what {job.name} deploys"))
        if findings:
            return failed(findings[0].message, *findings)
        return passed("an SBOM is generated and scanned on every change and for every deploy", *evidence)


_OF_IMAGE = re.compile(r"registry:|docker:|oci-|podman:|\$\{?IMAGE|@sha256:")


class PP_SCAN_04(Scan):
    """Secrets scanning (gitleaks) over the pull request's commits blocks the merge"""

    procedure = (
        "For each sampled run, confirm the secrets job scanned every commit of the change with gitleaks (exit "
        "code 1, inline allows ignored); confirm GitHub secret scanning and push protection are on where the "
        "plan has them."
    )

    id = "PP-SCAN-04"
    procedures = {
        "gitlab": (
            "For each sampled pipeline, confirm the secrets job scanned every commit of the merge request "
            "with gitleaks (exit code 1, inline allows ignored); on Ultimate, confirm secret push protection "
            "is on."
        )
    }
    remediations = {
        "gitlab": (
            "Run `gitleaks git --exit-code 1 --redact` over the merge request's commits (GIT_DEPTH: 0, "
            "CI_MERGE_REQUEST_DIFF_BASE_SHA..CI_COMMIT_SHA) in the merge-request pipeline; GitLab's Secret "
            "Detection template alone reports without failing the job."
        )
    }
    category = "secrets"
    objective = "secrets scanning"

    @classmethod
    def check(cls, pipeline: Pipeline, answers: dict[str, Any]) -> Outcome:  # type: ignore[override]
        outcome = gate(pipeline, "secrets", "secrets scanning")
        if outcome.status == "pass" or pipeline.platform != "github":
            return outcome
        declared = pipeline.settings.get("security_and_analysis")
        if declared:
            analysis, where = declared
            push = (analysis.get("secret_scanning_push_protection") or {}).get("status")
            if push == "enabled":
                return passed("GitHub secret scanning push protection is declared in the settings", where)
        # Unknown visibility is not assumed private: the repository may be public, where push protection is on.
        if (
            answers.get("visibility") not in {"private", "internal"}
            and outcome.status == "fail"
            and not outcome.findings
        ):
            return unknown(
                "no secrets scanner runs in CI; GitHub enables secret scanning push protection on public "
                "repositories unless an owner turned it off: the repository's visibility and Settings > Code "
                "security decide (or declare repository.security_and_analysis in .github/settings.yml)"
            )
        return Outcome(
            outcome.status,
            outcome.reason + " (GitHub secret scanning with push protection would meet it, but the files do "
            "not declare it: repository.security_and_analysis in .github/settings.yml)",
            outcome.evidence,
            outcome.findings,
        )

    implemented_by = {"github": (f"{_PR}#secrets",), "gitlab": (f"{_GL}#secrets",)}
    soc2 = ("CC6.1", "CC6.7")
    iso27001 = ("A.8.4", "A.8.11")
    severity = Severity.CRITICAL
    remediation = (
        "Run `gitleaks git --exit-code 1 --redact` over the pull request's full commit range (fetch-depth: 0) "
        "with the repository's .gitleaks.toml; gitleaks-action needs a paid licence for organisations."
    )
    evidence = "gitleaks.sarif (redacted): " + _SCAN_EVIDENCE


class PP_SCAN_05(Scan):
    """Secrets are caught before they are committed (pre-commit gitleaks hook)"""

    frequency = "Every local commit of an engineer who installed the hooks"
    population = {
        "github": "cat .pre-commit-config.yaml; per engineer: pre-commit run gitleaks --all-files",
        "gitlab": "cat .pre-commit-config.yaml; per engineer: pre-commit run gitleaks --all-files",
    }
    needs = ()
    procedure = (
        "Confirm .pre-commit-config.yaml carries the gitleaks hook pinned to a release commit; ask a sample "
        "of engineers to show `pre-commit install` in their clone (the hook is a local control)."
    )

    id = "PP-SCAN-05"
    soc2 = ("CC6.1",)
    iso27001 = ("A.8.4",)
    severity = Severity.MEDIUM
    prevents = ()
    implemented_by = {"github": (".pre-commit-config.yaml",), "gitlab": (".pre-commit-config.yaml",)}
    remediation = "Add the gitleaks pre-commit hook, pinned to a release commit SHA, to .pre-commit-config.yaml."
    evidence = "The hook configuration under version control."

    @classmethod
    def check(cls, repo: Repo) -> Outcome:  # type: ignore[override]  # fixtures are injected by name
        doc = repo.precommit
        if doc is None:
            return failed("no .pre-commit-config.yaml")
        for i, entry in enumerate(doc.data.get("repos") or [] if isinstance(doc.data, dict) else []):
            if not isinstance(entry, dict) or "gitleaks" not in str(entry.get("repo", "")).lower():
                continue
            hooks = [h.get("id") for h in entry.get("hooks") or [] if isinstance(h, dict)]
            if any(str(h).startswith("gitleaks") for h in hooks):
                pinned = len(str(entry.get("rev", ""))) == 40
                note = "" if pinned else " (rev is a tag, not a commit SHA)"
                return passed(f"gitleaks pre-commit hook{note}", doc.at("repos", i))
        return failed("no gitleaks hook in .pre-commit-config.yaml", doc.at("repos"))


class PP_SCAN_06(Scan):
    """The secrets-scanner allowlist does not silently disable the scanner"""

    frequency = "Every change to the gitleaks configuration"
    population = {
        "github": 'git log --format="%H %an %ad" -- .gitleaks.toml .gitleaksignore',
        "gitlab": 'git log --format="%H %an %ad" -- .gitleaks.toml .gitleaksignore',
    }
    needs = (PROTECTION, TEAM)
    procedure = (
        "Confirm .gitleaks.toml extends the default rules with no allowlist entry and that no .gitleaksignore "
        "exists, or that each one is covered by an unexpired waiver."
    )

    id = "PP-SCAN-06"
    soc2 = ("CC6.1",)
    iso27001 = ("A.8.4",)
    prevents = ()
    implemented_by = {"github": (".gitleaks.toml",), "gitlab": (".gitleaks.toml",)}
    remediation = (
        "Keep .gitleaks.toml extending the default rules with an empty allowlist; add an exception only with "
        "a waiver in compliance/risk-acceptance.yml."
    )
    evidence = ".gitleaks.toml and compliance/risk-acceptance.yml under version control."

    @classmethod
    def check(cls, repo: Repo, pipeline: Pipeline) -> Outcome:  # type: ignore[override]  # fixtures by name
        ignore = repo.root / ".gitleaksignore"
        if ignore.is_file() and ignore.read_text(encoding="utf-8", errors="replace").strip():
            return failed(
                ".gitleaksignore exempts findings by fingerprint; waive PP-SCAN-06 if they are reviewed",
                ".gitleaksignore:1",
            )
        doc = repo.gitleaks
        if doc is None:
            runs = any(inv.tool.name == "gitleaks" for inv in pipeline.invocations("secrets"))
            hook = repo.precommit is not None and "gitleaks" in str(repo.precommit.data)
            if not runs and not hook:
                return not_applicable("gitleaks does not run here (no CI step, no pre-commit hook)")
            return passed("no .gitleaks.toml: gitleaks runs its default rules with no allowlist")
        data: dict[str, Any] = doc.data
        lists = []
        if isinstance(data.get("allowlist"), dict):
            lists.append(data["allowlist"])
        lists += [a for a in data.get("allowlists") or [] if isinstance(a, dict)]
        for rule in data.get("rules") or []:
            if isinstance(rule, dict):
                lists += [rule["allowlist"]] if isinstance(rule.get("allowlist"), dict) else []
                lists += [a for a in rule.get("allowlists") or [] if isinstance(a, dict)]
        keys = ("paths", "regexes", "commits", "stopwords")
        entries = sum(len(a.get(k) or []) for a in lists for k in keys)
        if entries:
            return failed(
                f"the allowlist has {entries} entr{'y' if entries == 1 else 'ies'} that exempt findings "
                "from the scan; waive PP-SCAN-06 in compliance/risk-acceptance.yml if they are reviewed",
                doc.path + ":1",
            )
        extend = data.get("extend") or {}
        if isinstance(extend, dict) and extend.get("disabledRules"):
            return failed(f"default rules disabled: {', '.join(map(str, extend['disabledRules']))}", doc.path + ":1")
        if not (isinstance(extend, dict) and extend.get("useDefault")) and not data.get("rules"):
            return failed("the configuration neither extends the default rules nor defines any", doc.path + ":1")
        return passed("default rules, no allowlist entries", doc.path + ":1")


class PP_SCAN_07(Scan):
    """Infrastructure as code is scanned (Checkov) and blocks on findings"""

    procedure = (
        "For each sampled run, confirm the iac job ran Checkov over the declared frameworks without "
        "--soft-fail and that failed checks failed the job."
    )

    id = "PP-SCAN-07"
    remediations = {
        "gitlab": (
            "Run `checkov` over the IaC frameworks in use in the merge-request pipeline, without --soft-fail "
            "or allow_failure."
        )
    }
    category = "iac"
    objective = "infrastructure-as-code scanning"
    implemented_by = {"github": (f"{_PR}#iac",), "gitlab": (f"{_GL}#iac",)}
    soc2 = ("CC8.1", "CC7.1")
    iso27001 = ("A.8.9", "A.8.25")
    applies = "iac | length > 0"
    remediation = "Run bridgecrewio/checkov-action over the IaC frameworks in use with soft_fail: false."
    evidence = "checkov.sarif: " + _SCAN_EVIDENCE


class PP_SCAN_08(Scan):
    """Container images are scanned (Trivy) and block on CRITICAL or HIGH vulnerabilities"""

    population = {"github": _DEPLOY_RUNS, "gitlab": _GITLAB_DEPLOYS}
    procedure = (
        "For each sampled deploy, confirm Trivy scanned the image that was deployed (the digest in the "
        "deployment record) and would fail on CRITICAL or HIGH; for pull requests, confirm the container job "
        "ran."
    )

    id = "PP-SCAN-08"
    procedures = {
        "gitlab": (
            "For each sampled deploy, confirm Trivy scanned the image that was deployed (the digest in the "
            "deployment record) and would fail on CRITICAL or HIGH; for merge requests, confirm the container"
            " job ran."
        )
    }
    remediations = {
        "gitlab": (
            "Build the image rootless (kaniko or buildah, pinned) and run `trivy image --exit-code 1 "
            "--severity CRITICAL,HIGH` on it in the merge-request pipeline, and on the pushed digest where it"
            " is built for deploy."
        )
    }
    category = "image-scan"
    objective = "container image scanning"
    # The build pushes the image it scans; staging and production deploy that digest.
    needs: ClassVar[tuple[Need, ...]] = (*Scan.needs, REGISTRY)

    @classmethod
    def check(cls, pipeline: Pipeline) -> Outcome:
        outcome = gate(pipeline, "image-scan", "container image scanning")
        if outcome.status != "pass":
            return outcome
        # Build once: what production deploys is scanned in the run that built it.
        findings = []
        evidence = list(outcome.evidence)
        for job in pipeline.production_jobs():
            scans = [
                inv
                for j in deploy_path(pipeline, job)
                for inv in j.invocations()
                if inv.tool.category == "image-scan" and why_not_gating(pipeline, job, inv) is None
            ]
            if scans:
                evidence.append(scans[0].where)
            else:
                findings.append(
                    Finding(job.where, f"the image {job.name} deploys is not scanned in the run that built it")
                )
        if findings:
            return failed(findings[0].message, *findings)
        return passed(outcome.reason + "; the deployed image is scanned where it is built", *evidence)

    implemented_by = {"github": (f"{_PR}#container",), "gitlab": (f"{_GL}#container",)}
    soc2 = ("CC7.1",)
    iso27001 = ("A.8.25", "A.8.28")
    applies = "containers"
    remediation = (
        "Build the image and scan it with aquasecurity/trivy-action (pinned by SHA) with "
        "severity: CRITICAL,HIGH and exit-code: '1'."
    )
    evidence = "trivy.sarif: " + _SCAN_EVIDENCE


class PP_SCAN_09(Scan):
    """Staging is tested dynamically (OWASP ZAP) and high alerts block promotion"""

    population = {"github": _DEPLOY_RUNS, "gitlab": _GITLAB_DEPLOYS}
    needs = (ENVIRONMENTS,)
    procedure = (
        "For each sampled production deploy, confirm the dast job that gated it (in the same run, or under Argo "
        "CD the staging run named in the promotion's release.json and deployment record) scanned staging after "
        "staging served that commit, that zap-gate.sh applied .zap/rules.tsv, and that a high-risk alert "
        "would have blocked production."
    )

    id = "PP-SCAN-09"
    remediations = {
        "gitlab": (
            "Run a ZAP scan against staging in a job after the staging deploy and before production (needs:),"
            " and fail it on a high-risk alert (a gate that reads the report's riskcode)."
        )
    }
    applies = "deploys"  # DAST of staging before production: only where the repository deploys
    soc2 = ("CC7.1",)
    iso27001 = ("A.8.25", "A.8.29")
    implemented_by = {
        "github": ("{dast_workflow}#dast", ".zap/rules.tsv"),
        "gitlab": (f"{_GL}#dast", ".zap/rules.tsv"),
    }
    remediation = (
        "Run a ZAP full scan against staging after the staging deploy and before production, and fail the "
        "job when the report holds a high-risk alert."
    )
    evidence = "ZAP JSON/HTML report: workflow artifact ({retention} days) and the evidence store ({store_retention})."

    @classmethod
    def check(cls, pipeline: Pipeline) -> Outcome:
        def judge(job: Job) -> Outcome:
            path = deploy_path(pipeline, job)
            found = []
            for upstream in path:
                dast = [inv for inv in upstream.invocations() if inv.tool.category == "dast"]
                for inv in dast:
                    if why_not_gating(pipeline, job, inv) is None:
                        return passed("a blocking DAST scan of staging gates the production deploy", inv.where)
                    order = list(upstream.invocations())
                    later = [
                        g
                        for g in order
                        if g.tool.category == "dast-gate"
                        and _after(g, inv, order)
                        and why_not_gating(pipeline, job, g) is None
                    ]
                    cross = gated_elsewhere(job, upstream)
                    if (
                        later
                        and inv.step.not_blocking("push", in_job=cross) is None
                        and (not cross or why_not_gating(pipeline, job, later[0]) is None)
                    ):
                        return passed("ZAP scans staging and a gate on its report blocks production", later[0].where)
                    found.append(Finding(inv.where, f"DAST does not block: {why_not_gating(pipeline, job, inv)}"))
            if any(inv.tool.category == "dast" for inv in job.invocations()):
                return failed("DAST runs in the production job itself, not against staging before it", job.where)
            if found:
                return failed(found[0].message, *found)
            return failed(f"production job {job.name} is not gated by a DAST scan of staging", job.where)

        return each_production_job(pipeline, judge)


def _after(later: Any, earlier: Any, order: list[Any]) -> bool:
    """Whether a tool use comes after another in its job: a later step, or later in the same script (the
    invocations of a script are in the order it runs them, a called script's where its call is)."""
    if later.step.index != earlier.step.index:
        return bool(later.step.index > earlier.step.index)
    return order.index(later) > order.index(earlier)


class PP_SCAN_10(Scan):
    """Unit tests run on every change"""

    needs = (PROTECTION,)

    procedure = (
        "For each sampled run, confirm the unit-tests job ran and that a failing test failed it; confirm "
        "unit-tests is a required check."
    )

    id = "PP-SCAN-10"
    evidences = {"gitlab": ("Test job logs in the merge-request pipeline.")}
    procedures = {
        "gitlab": (
            "For each sampled pipeline, confirm the unit-tests job ran and that a failing test failed the "
            "merge-request pipeline (so 'Pipelines must succeed' blocked the merge)."
        )
    }
    remediations = {"gitlab": ("Run the language's unit tests in a merge-request pipeline job without allow_failure.")}
    category = "tests"
    objective = "test suite"
    implemented_by = {"github": (f"{_PR}#unit-tests",), "gitlab": (f"{_GL}#unit-tests",)}
    soc2 = ("CC8.1",)
    iso27001 = ("A.8.25", "A.8.29")
    severity = Severity.MEDIUM
    prevents = ()
    remediation = "Run the language's unit tests on every pull request and list the job as a required check."
    evidence = "Test job logs in the check run."


# Files a scanner reads to skip findings, rules or paths (and where each tool looks for them).
SUPPRESSION_FILES = (
    ".gitleaksignore",
    ".trivyignore",
    ".trivyignore.yaml",
    "trivy.yaml",
    ".grype.yaml",
    ".grype/config.yaml",
    ".syft.yaml",
    ".checkov.yaml",
    ".checkov.yml",
    "osv-scanner.toml",
    ".osv-scanner.toml",
)
# .semgrepignore lines that only skip dependency and build folders (what pipeproof renders).
_SEMGREP_IGNORE_OK = frozenset({".git/", "node_modules/", "vendor/", ".venv/", "venv/", "dist/", "build/"})
_INLINE = re.compile(r"checkov:skip=|#\s*nosec\b|trivy:ignore:")


class PP_SCAN_11(Scan):
    """Scanner suppressions are code-owned and each one is covered by a waiver"""

    id = "PP-SCAN-11"
    remediations = {
        "gitlab": (
            "Give every scanner suppression file a CODEOWNERS entry (in GitLab's CODEOWNERS, a section owned "
            "by the security group) and a waiver in compliance/risk-acceptance.yml; run Semgrep with "
            "--disable-nosem and gitleaks with --ignore-gitleaks-allow."
        )
    }
    soc2 = ("CC7.1", "CC8.1")
    iso27001 = ("A.8.28", "A.8.29")
    severity = Severity.MEDIUM
    prevents = ("scans-not-blocking",)
    implemented_by = {
        "github": (".github/CODEOWNERS", "compliance/risk-acceptance.yml"),
        "gitlab": (".gitlab/CODEOWNERS", "compliance/risk-acceptance.yml"),
    }
    remediation = (
        "Give every scanner suppression file (.trivyignore, .grype.yaml, .syft.yaml, .checkov.yaml, "
        "osv-scanner.toml, .gitleaksignore, a .semgrepignore that skips source) a CODEOWNERS entry for the "
        "security team and a waiver in compliance/risk-acceptance.yml; run Semgrep with --disable-nosem and "
        "gitleaks with --ignore-gitleaks-allow; use WARN, never IGNORE, in .zap/rules.tsv."
    )
    evidence = "CODEOWNERS and compliance/risk-acceptance.yml under version control; the waiver register."
    procedure = (
        "List every suppression file and inline suppression in the repository at the end of the period; "
        "confirm each is owned by the security team in CODEOWNERS and covered by a waiver with a justification, "
        "an approver and an unexpired date."
    )
    frequency = "Every change to a suppression file; the waiver register is reviewed quarterly"
    population = {
        "github": "git ls-files '*.trivyignore*' '*trivy.yaml' '*.grype.yaml' '*.syft.yaml' '*.checkov.y*ml' "
        "'*osv-scanner.toml' '*.gitleaksignore' '*.semgrepignore'; git grep -n 'checkov:skip=\\|nosec\\|nosemgrep'",
        "gitlab": "git ls-files '*.trivyignore*' '*trivy.yaml' '*.grype.yaml' '*.syft.yaml' '*.checkov.y*ml' "
        "'*osv-scanner.toml' '*.gitleaksignore' '*.semgrepignore'; git grep -n 'checkov:skip=\\|nosec\\|nosemgrep'",
    }
    needs = (PROTECTION, TEAM)

    @classmethod
    def check(cls, repo: Repo, answers: dict[str, Any]) -> Outcome:  # type: ignore[override]  # fixtures by name
        from generator.controls.branch import _owner

        found: list[str] = []
        for path in repo.files(*(f"**/{name}" for name in SUPPRESSION_FILES), *SUPPRESSION_FILES):
            found.append(f"{path.relative_to(repo.root).as_posix()}:1")
        ignore = repo.root / ".semgrepignore"
        if ignore.is_file():
            lines = ignore.read_text(encoding="utf-8", errors="replace").splitlines()
            for number, line in enumerate(lines, 1):
                if line.strip() and not line.lstrip().startswith("#") and line.strip() not in _SEMGREP_IGNORE_OK:
                    found.append(f".semgrepignore:{number}")
        rules = repo.root / ".zap" / "rules.tsv"
        if rules.is_file():
            for number, line in enumerate(rules.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
                fields = line.split("\t")
                if len(fields) > 1 and fields[1].strip().upper() == "IGNORE":
                    found.append(f".zap/rules.tsv:{number}")
        for rel in repo.all_files:
            if not rel.startswith(".github/") and _INLINE_FILES.match(rel):
                found += [f"{rel}:{number}" for number in inline_suppressions(os.path.join(repo.root, rel))]
        if not found:
            return passed("no scanner suppression files or inline suppressions")
        owners = repo.gitlab_codeowners if answers.get("platform") == "gitlab" else repo.codeowners
        unowned = [e for e in found if owners is None or not (_owner(owners.data, e.rsplit(":", 1)[0]) or (0, []))[1]]
        if unowned:
            return failed(f"{len(unowned)} suppression(s) without a code owner", *unowned)
        return failed(f"{len(found)} suppression(s) need a waiver in compliance/risk-acceptance.yml", *found)


_INLINE_FILES = re.compile(r".*\.(?:tf|ya?ml|json|py|go|js)\Z")  # where inline suppressions are looked for
# (device, inode, mtime, size) -> the lines of a file that carry an inline suppression. retrofit audits the
# repository twice (as it is, and as its plan leaves it through links to the same files): each file is read once.
SUPPRESSION_LINES: dict[tuple[int, int, int, int], tuple[int, ...]] = {}


def inline_suppressions(path: str) -> tuple[int, ...]:
    """The line numbers of a file's inline scanner suppressions (`checkov:skip=`, `# nosec`, `trivy:ignore:`)."""
    try:
        st = os.stat(path)
    except OSError:
        return ()
    key = (st.st_dev, st.st_ino, st.st_mtime_ns, st.st_size)
    if key not in SUPPRESSION_LINES:
        try:
            with open(path, "rb") as handle:
                data = handle.read(1 << 20)
        except OSError:
            return ()
        lines: tuple[int, ...] = ()
        if b"checkov:skip" in data or b"nosec" in data or b"trivy:ignore" in data:
            text = data.decode("utf-8", "replace").splitlines()
            lines = tuple(number for number, line in enumerate(text, 1) if _INLINE.search(line))
        SUPPRESSION_LINES[key] = lines
    return SUPPRESSION_LINES[key]


class PP_SCAN_12(Scan):
    """Dependency licences are checked against an allow-list on every change"""

    id = "PP-SCAN-12"
    evidences = {
        "gitlab": ("The licence gate's log in the merge-request pipeline, and its report kept as an artifact.")
    }
    remediations = {
        "gitlab": (
            "Check every dependency's licence against an allow-list in the merge-request pipeline "
            "(osv-scanner --licenses=<allow-list>) and fail the job on anything else."
        )
    }
    soc2 = ("CC8.1",)
    iso27001 = ("A.8.28", "A.5.32")
    severity = Severity.MEDIUM
    prevents = ()
    implemented_by = {"github": (f"{_PR}#sca",), "gitlab": (f"{_GL}#sca",)}
    remediation = (
        "Check every dependency's licence against an allow-list evaluated as SPDX expressions, and fail the pull "
        "request on anything else: dependency review with allow-licenses (deny-licenses is deprecated and misses "
        "`MIT AND GPL-3.0-only`), or osv-scanner --licenses=<allow-list>."
    )
    evidence = "The licence gate's log in the pull request's check run, and its report kept as an artifact."
    procedure = (
        "For each sampled run, confirm the licence check ran with the allow-list of the licence policy and that a "
        "dependency under another licence failed it."
    )

    @classmethod
    def check(cls, pipeline: Pipeline) -> Outcome:
        uses = [inv for inv in pipeline.invocations("sca", pipeline.gating_jobs()) if _licence_policy(inv) is not None]
        if not uses:
            return failed(
                f"no dependency licence policy runs on {_changes(pipeline)} (an allow-list that fails the change)"
            )
        weak = []
        for inv in uses:
            problem = _licence_policy(inv)
            why = pipeline.why_not_blocking(inv, ("pull_request",))
            if problem == "" and why is None:
                return passed(f"an allow-list licence policy fails {_changes(pipeline)}", inv.where)
            weak.append(Finding(inv.where, problem or str(why)))
        return failed(weak[0].message, *weak)


def _licence_policy(inv: Any) -> str | None:
    """'' when the use enforces an allow-list; a reason when it checks licences weakly; None when it does not."""
    use = inv.use
    if inv.tool.name == "dependency-review":
        if use.input("license-check", "true") == "false":
            return "dependency review has license-check: false"
        if use.input("allow-licenses"):
            return ""
        if use.input("deny-licenses"):
            return "deny-licenses is deprecated and misses expressions such as MIT AND GPL-3.0-only; use allow-licenses"
        return None
    if inv.tool.name == "osv-scanner":
        if use.command and "--licenses" in use.command:
            return (
                ""
                if re.search(r"--licenses[= ]\S", use.command)
                else "osv-scanner --licenses without an allow-list only summarises"
            )
        return None
    return None
