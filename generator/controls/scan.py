"""Scanners that run on every change and block it: SAST, SCA, SBOM, secrets, IaC, containers, DAST, tests."""

from __future__ import annotations

from generator.controls.base import Control, Severity

_PR = ".github/workflows/pr-checks.yml"
_SCAN_EVIDENCE = (
    "SARIF in code scanning (kept while the alert exists), a workflow artifact ({retention} days) and, "
    "for every commit deployed, the evidence store ({store_retention})."
)


class Scan(Control):
    family = "scan"
    prevents = ("scans-not-blocking",)


class PP_SCAN_01(Scan):
    """Static analysis (Semgrep) runs on every change and blocks on findings"""

    id = "PP-SCAN-01"
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


class PP_SCAN_04(Scan):
    """Secrets scanning (gitleaks) over the pull request's commits blocks the merge"""

    id = "PP-SCAN-04"
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


class PP_SCAN_07(Scan):
    """Infrastructure as code is scanned (Checkov) and blocks on findings"""

    id = "PP-SCAN-07"
    implemented_by = {"github": (f"{_PR}#iac",)}
    soc2 = ("CC8.1", "CC7.1")
    iso27001 = ("A.8.9", "A.8.25")
    applies = "iac | length > 0"
    remediation = "Run bridgecrewio/checkov-action over the IaC frameworks in use with soft_fail: false."
    evidence = "checkov.sarif: " + _SCAN_EVIDENCE


class PP_SCAN_08(Scan):
    """Container images are scanned (Trivy) and block on CRITICAL or HIGH vulnerabilities"""

    id = "PP-SCAN-08"
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


class PP_SCAN_10(Scan):
    """Unit tests run on every change"""

    id = "PP-SCAN-10"
    implemented_by = {"github": (f"{_PR}#unit-tests",)}
    soc2 = ("CC8.1",)
    iso27001 = ("A.8.25", "A.8.29")
    severity = Severity.MEDIUM
    prevents = ()
    remediation = "Run the language's unit tests on every pull request and list the job as a required check."
    evidence = "Test job logs in the check run."
