"""Scanners that run on every change and block it: SAST, SCA, SBOM, secrets, IaC, containers, DAST, tests."""

from __future__ import annotations

from typing import Any, ClassVar

from generator.controls import tools
from generator.controls.base import Control, Outcome, Severity, failed, passed
from generator.controls.github import GitHub, Job, each_production_job
from generator.repo import Repo

_PR = ".github/workflows/pr-checks.yml"
_SCAN_EVIDENCE = (
    "SARIF in code scanning (kept while the alert exists), a workflow artifact ({retention} days) and, "
    "for every commit deployed, the evidence store ({store_retention})."
)


class Scan(Control):
    family = "scan"
    prevents: ClassVar[tuple[str, ...]] = ("scans-not-blocking",)
    # The tool whose blocking step on pull requests proves the control (None: a custom check).
    tool: ClassVar[str | None] = None

    @classmethod
    def check(cls, gh: GitHub) -> Outcome:
        assert cls.tool is not None
        step, why = tools.blocking(gh.pr_steps(), cls.tool)
        if step is None:
            where = [s.where for s in gh.pr_steps() if tools.kind(s) == cls.tool]
            return failed(f"no blocking {cls.tool} step on pull requests: {why}", *where)
        return passed(f"{cls.tool} runs on pull requests and fails the job on findings", step.where)


class PP_SCAN_01(Scan):
    """Static analysis (Semgrep) runs on every change and blocks on findings"""

    id = "PP-SCAN-01"
    tool = "semgrep"
    implemented_by = {"github": (f"{_PR}#sast",)}
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

    id = "PP-SCAN-02"
    tool = "dependency-review"
    implemented_by = {"github": (f"{_PR}#sca",)}
    soc2 = ("CC7.1", "CC8.1")
    iso27001 = ("A.8.28", "A.8.25")
    remediation = (
        "Run actions/dependency-review-action on pull requests with fail-on-severity: high (or stricter) "
        "and a licence deny-list."
    )
    evidence = "Dependency-review summary in the pull request's check run."


class PP_SCAN_03(Scan):
    """An SBOM is produced for every build and scanned for vulnerabilities"""

    id = "PP-SCAN-03"
    implemented_by = {"github": (f"{_PR}#sbom", ".github/workflows/deploy.yml#build")}
    soc2 = ("CC8.1", "CC7.1")
    iso27001 = ("A.8.9", "A.8.28")
    prevents = ("no-sbom", "scans-not-blocking")
    remediation = (
        "Generate an SPDX JSON SBOM (anchore/sbom-action) on every build and scan it with Grype "
        "(anchore/scan-action, fail-build: true, severity-cutoff: high); link its digest in the deployment record."
    )
    evidence = "sbom.spdx.json and grype.sarif: " + _SCAN_EVIDENCE

    @classmethod
    def check(cls, gh: GitHub) -> Outcome:
        sbom, why = tools.blocking(gh.pr_steps(), "sbom")
        if sbom is None:
            return failed(f"no SBOM generated on pull requests: {why}")
        grype, why = tools.blocking(sbom.job.steps[sbom.index + 1 :], "grype")
        if grype is None:
            return failed(f"the SBOM is not scanned with a blocking Grype step after it: {why}", sbom.where)
        evidence = [sbom.where, grype.where]
        for job in gh.production_jobs():
            # In the deploying workflow itself: its SBOM is the one the deployment record links.
            path = [job.workflow.jobs[n] for n in {job.id} | job.upstream() if n in job.workflow.jobs]
            deployed = [s for j in path for s in j.steps if tools.kind(s) == "sbom" and s.not_blocking() is None]
            if not deployed:
                return failed("no SBOM is generated for what production deploys (in its needs: chain)", job.where)
            evidence.append(deployed[0].where)
        return passed("SBOM generated and scanned on pull requests and for every deploy", *evidence)


class PP_SCAN_04(Scan):
    """Secrets scanning (gitleaks) over the pull request's commits blocks the merge"""

    id = "PP-SCAN-04"
    tool = "gitleaks"
    implemented_by = {"github": (f"{_PR}#secrets",)}
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

    id = "PP-SCAN-05"
    soc2 = ("CC6.1",)
    iso27001 = ("A.8.4",)
    severity = Severity.MEDIUM
    prevents = ()
    implemented_by = {"github": (".pre-commit-config.yaml",)}
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

    id = "PP-SCAN-06"
    soc2 = ("CC6.1",)
    iso27001 = ("A.8.4",)
    prevents = ()
    implemented_by = {"github": (".gitleaks.toml",)}
    remediation = (
        "Keep .gitleaks.toml extending the default rules with an empty allowlist; add an exception only with "
        "a waiver in compliance/risk-acceptance.yml."
    )
    evidence = ".gitleaks.toml and compliance/risk-acceptance.yml under version control."

    @classmethod
    def check(cls, repo: Repo) -> Outcome:  # type: ignore[override]  # fixtures are injected by name
        ignore = repo.root / ".gitleaksignore"
        if ignore.is_file() and ignore.read_text(encoding="utf-8", errors="replace").strip():
            return failed(
                ".gitleaksignore exempts findings by fingerprint; waive PP-SCAN-06 if they are reviewed",
                ".gitleaksignore:1",
            )
        doc = repo.gitleaks
        if doc is None:
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

    id = "PP-SCAN-07"
    tool = "checkov"
    implemented_by = {"github": (f"{_PR}#iac",)}
    soc2 = ("CC8.1", "CC7.1")
    iso27001 = ("A.8.9", "A.8.25")
    applies = "iac | length > 0"
    remediation = "Run bridgecrewio/checkov-action over the IaC frameworks in use with soft_fail: false."
    evidence = "checkov.sarif: " + _SCAN_EVIDENCE


class PP_SCAN_08(Scan):
    """Container images are scanned (Trivy) and block on CRITICAL or HIGH vulnerabilities"""

    id = "PP-SCAN-08"
    tool = "trivy"
    implemented_by = {"github": (f"{_PR}#container",)}
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

    id = "PP-SCAN-09"
    soc2 = ("CC7.1",)
    iso27001 = ("A.8.25", "A.8.29")
    implemented_by = {"github": (".github/workflows/deploy.yml#dast", ".zap/rules.tsv")}
    remediation = (
        "Run a ZAP full scan against staging after the staging deploy and before production, and fail the "
        "job when the report holds a high-risk alert."
    )
    evidence = "ZAP JSON/HTML report: workflow artifact ({retention} days) and the evidence store ({store_retention})."

    @classmethod
    def check(cls, gh: GitHub) -> Outcome:
        def judge(job: Job) -> Outcome:
            step, why = tools.blocking([s for j in gh.deploy_path(job) for s in j.steps], "zap")
            if step is None:
                return failed(f"production deploy is not gated by a blocking DAST scan: {why}", job.where)
            if step.job is job:
                return failed("DAST runs in the production job itself, not against staging before it", step.where)
            return passed("a blocking ZAP scan of staging gates the production deploy", step.where)

        return each_production_job(gh, judge)


class PP_SCAN_10(Scan):
    """Unit tests run on every change"""

    id = "PP-SCAN-10"
    tool = "tests"
    implemented_by = {"github": (f"{_PR}#unit-tests",)}
    soc2 = ("CC8.1",)
    iso27001 = ("A.8.25", "A.8.29")
    severity = Severity.MEDIUM
    prevents = ()
    remediation = "Run the language's unit tests on every pull request and list the job as a required check."
    evidence = "Test job logs in the check run."
