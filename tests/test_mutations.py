"""Each weakening of a generated repository fails the control it weakens.

Two kinds: the word-level weakenings (a key set to the weak value, a job or file deleted) and the semantic ones
of issue 8, which keep every file lint-clean and every word in place but change what GitHub would do: a
scanner skipped on pull requests, `|| echo` after a scanner, a gate that exits 0 first, `set +e`, a pipe
without pipefail, a lowered threshold, a suppression file, a workflow GitHub rejects, a required check that no
job reports, settings the repository-settings app would not apply.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from generator.audit import audit
from generator.controls import all_controls
from tests.helpers import GOLDEN

PR = ".github/workflows/pr-checks.yml"
DEPLOY = ".github/workflows/deploy.yml"
PROMOTE = ".github/workflows/promote.yml"
SETTINGS = ".github/settings.yml"
RULESET = ".github/rulesets/default-branch.json"
SCRIPTS = ".github/scripts"
STORE_TF = "infrastructure/evidence-store/main.tf"
# PP-EVID-06: one weakening of each aspect of the evidence store's Terraform, per cloud (scenario, old, new).
STORE_IAC = {
    "aws-governance": ("python-defaults", 'mode  = "COMPLIANCE"', 'mode  = "GOVERNANCE"'),
    "aws-one-year": ("python-defaults", "retention_years = 7", "retention_years = 1"),
    "aws-no-versioning": ("python-defaults", 'status = "Enabled"', 'status = "Suspended"'),
    "aws-public-policy": ("python-defaults", "block_public_policy     = true", "block_public_policy     = false"),
    "aws-wildcard-sub": (
        "python-defaults",
        '"repo:python-defaults/python-defaults:ref:refs/heads/main"',
        '"repo:python-defaults/*"',
    ),
    "aws-stringlike-sub": (
        "python-defaults",
        'test     = "StringEquals"\n      variable = "${local.oidc_issuer}:sub"',
        'test     = "StringLike"\n      variable = "${local.oidc_issuer}:sub"',
    ),
    "aws-other-repo": (
        "python-defaults",
        "repo:python-defaults/python-defaults:environment:production",
        "repo:evil/python-defaults:environment:production",
    ),
    "aws-delete": (
        "python-defaults",
        '"s3:PutObject", "s3:GetObject"',
        '"s3:PutObject", "s3:DeleteObject", "s3:GetObject"',
    ),
    "aws-overwrite": ("python-defaults", 'variable = "s3:if-none-match"', 'variable = "s3:x-amz-acl"'),
    "gcp-unlocked": ("node-terraform-public", "is_locked        = true", "is_locked        = false"),
    "gcp-short": ("node-terraform-public", "retention_period = local.retention_seconds", "retention_period = 86400"),
    "gcp-public": (
        "node-terraform-public",
        'public_access_prevention    = "enforced"',
        'public_access_prevention    = "inherited"',
    ),
    "gcp-owner-only": (
        "node-terraform-public",
        "assertion.sub == 'repo:node-terraform-public/node-terraform-public:ref:refs/heads/main'",
        "assertion.repository_owner == 'node-terraform-public'",
    ),
    "gcp-delete": (
        "node-terraform-public",
        '"storage.objects.create"',
        '"storage.objects.create", "storage.objects.delete"',
    ),
    "azure-unlocked": (
        "go-kubernetes-azure",
        "locked                                = true",
        "locked                                = false",
    ),
    "azure-no-versioning": ("go-kubernetes-azure", "versioning_enabled = true", "versioning_enabled = false"),
    "azure-public": ("go-kubernetes-azure", 'container_access_type = "private"', 'container_access_type = "blob"'),
    "azure-wildcard": (
        "go-kubernetes-azure",
        '"repo:acme-corp/go-kubernetes-azure:ref:refs/heads/trunk"',
        '"repo:acme-corp/*"',
    ),
    "azure-delete": (
        "go-kubernetes-azure",
        '"Microsoft.Storage/storageAccounts/blobServices/containers/blobs/write",',
        '"Microsoft.Storage/storageAccounts/blobServices/containers/blobs/write",\n'
        '      "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/delete",',
    ),
}

Mutate = Callable[[Path], None]


def copy_golden(name: str, tmp_path: Path) -> Path:
    dest = tmp_path / name
    shutil.copytree(GOLDEN / name, dest)
    return dest


def edit(path: Path, old: str, new: str, count: int = 1) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}: the golden changed shape, update the mutation"
    path.write_text(text.replace(old, new, count))


def text(rel: str, old: str, new: str, count: int = 1) -> Mutate:
    return lambda tree: edit(tree / rel, old, new, count)


def regex(rel: str, pattern: str, new: str) -> Mutate:
    def mutate(tree: Path) -> None:
        path = tree / rel
        changed, n = re.subn(pattern, new, path.read_text(), count=1, flags=re.MULTILINE)
        assert n == 1, f"{pattern!r} not in {path}"
        path.write_text(changed)

    return mutate


def data(rel: str, change: Callable[[dict], None]) -> Mutate:  # type: ignore[type-arg]
    def mutate(tree: Path) -> None:
        path = tree / rel
        doc = yaml.safe_load(path.read_text())
        change(doc)
        path.write_text(yaml.safe_dump(doc, sort_keys=False))

    return mutate


def job(rel: str, job_id: str, key: str, value: object) -> Mutate:
    return data(rel, lambda d: d["jobs"][job_id].__setitem__(key, value))


def unset(rel: str, job_id: str, key: str) -> Mutate:
    return data(rel, lambda d: d["jobs"][job_id].pop(key))


def drop_job(rel: str, job_id: str) -> Mutate:
    return data(rel, lambda d: d["jobs"].pop(job_id))


def drop_step(rel: str, job_id: str, name: str) -> Mutate:
    def change(d: dict) -> None:  # type: ignore[type-arg]
        steps = d["jobs"][job_id]["steps"]
        kept = [s for s in steps if s.get("name") != name]
        assert len(kept) == len(steps) - 1, f"no step {name!r} in {rel}#{job_id}"
        d["jobs"][job_id]["steps"] = kept

    return data(rel, change)


def step(rel: str, job_id: str, name: str, change: Callable[[dict], None]) -> Mutate:  # type: ignore[type-arg]
    def apply(d: dict) -> None:  # type: ignore[type-arg]
        found = [s for s in d["jobs"][job_id]["steps"] if s.get("name") == name]
        assert found, f"no step {name!r} in {rel}#{job_id}"
        change(found[0])

    return data(rel, apply)


def delete(rel: str) -> Mutate:
    return lambda tree: (tree / rel).unlink()


def write(rel: str, content: str) -> Mutate:
    def mutate(tree: Path) -> None:
        (tree / rel).parent.mkdir(parents=True, exist_ok=True)
        (tree / rel).write_text(content)

    return mutate


def both(*mutations: Mutate) -> Mutate:
    def mutate(tree: Path) -> None:
        for m in mutations:
            m(tree)

    return mutate


# (scenario, mutation, control that must fail). Scenarios: python-defaults (GitHub Team, private: promotion
# pull request, osv-scanner), enterprise-private (environment reviewers, dependency review, Terraform),
# team-private-code-security (dependency review), python-all-iac-no-store (Checkov), node-terraform-public.
WORDS: dict[str, tuple[str, Mutate, str]] = {
    "enforce-admins-false": (
        "python-defaults",
        text(SETTINGS, "enforce_admins: true", "enforce_admins: false"),
        "PP-BRANCH-02",
    ),
    "approvals-below-answer": (
        "python-defaults",
        text(SETTINGS, "required_approving_review_count: 2", "required_approving_review_count: 1"),
        "PP-BRANCH-01",
    ),
    "ruleset-approvals-below-answer": (
        "go-kubernetes-azure",
        text(RULESET, '"required_approving_review_count": 3', '"required_approving_review_count": 2'),
        "PP-BRANCH-01",
    ),
    "ruleset-bypass-actor": (
        "python-defaults",
        text(
            RULESET,
            '"bypass_actors": []',
            '"bypass_actors": [{"actor_id": 5, "actor_type": "RepositoryRole", "bypass_mode": "always"}]',
        ),
        "PP-BRANCH-02",
    ),
    "stale-reviews-kept": (
        "python-defaults",
        text(SETTINGS, "dismiss_stale_reviews: true", "dismiss_stale_reviews: false"),
        "PP-BRANCH-03",
    ),
    "check-not-required": (
        "python-defaults",
        text(SETTINGS, "          - context: secrets\n            app_id: 15368\n", ""),
        "PP-BRANCH-04",
    ),
    "force-push-allowed": (
        "python-defaults",
        text(SETTINGS, "allow_force_pushes: false", "allow_force_pushes: true"),
        "PP-BRANCH-05",
    ),
    "codeowners-deleted": ("python-defaults", delete(".github/CODEOWNERS"), "PP-BRANCH-06"),
    "secrets-job-deleted": ("python-defaults", drop_job(PR, "secrets"), "PP-SCAN-04"),
    "gitleaks-or-true": (
        "python-defaults",
        text(PR, "--report-path gitleaks.sarif .", "--report-path gitleaks.sarif . || true"),
        "PP-SCAN-04",
    ),
    "sast-continue-on-error": ("python-defaults", job(PR, "sast", "continue-on-error", True), "PP-SCAN-01"),
    "semgrep-without-error": ("python-defaults", text(PR, "--disable-nosem --error", "--disable-nosem"), "PP-SCAN-01"),
    "sast-needs-disabled-job": (
        "python-defaults",
        both(job(PR, "sca", "if", False), job(PR, "sast", "needs", "sca")),
        "PP-SCAN-01",
    ),
    "dependency-review-warn-only": (
        "team-private-code-security",
        text(PR, "fail-on-severity: high", "fail-on-severity: high\n          warn-only: true"),
        "PP-SCAN-12",
    ),
    "dependency-scanners-removed": (
        "python-defaults",
        both(drop_job(PR, "sca"), text(PR, "grype sbom:sbom.spdx.json --fail-on high", "grype sbom:sbom.spdx.json")),
        "PP-SCAN-02",
    ),
    "licence-allow-list-removed": (
        "python-defaults",
        text(f"{SCRIPTS}/osv-gate.sh", '--licenses="${allowed}" ', ""),
        "PP-SCAN-12",
    ),
    "checkov-soft-fail": (
        "python-all-iac-no-store",
        text(PR, "checkov --directory .", "checkov --soft-fail --directory ."),
        "PP-SCAN-07",
    ),
    "trivy-exit-code-0": (
        "python-defaults",
        text(PR, "trivy image --exit-code 1", "trivy image --exit-code 0"),
        "PP-SCAN-08",
    ),
    "trivy-step-disabled": (
        "python-defaults",
        step(PR, "container", "Trivy image scan", lambda s: s.__setitem__("if", False)),
        "PP-SCAN-08",
    ),
    "grype-without-fail-on": (
        "python-defaults",
        text(PR, "grype sbom:sbom.spdx.json --fail-on high", "grype sbom:sbom.spdx.json"),
        "PP-SCAN-03",
    ),
    "sbom-not-generated": (
        "python-defaults",
        text(PR, "syft scan dir:. --output spdx-json=sbom.spdx.json\n", ""),
        "PP-SCAN-03",
    ),
    "deploy-sbom-removed": (
        "enterprise-private",
        text(DEPLOY, '          syft scan "registry:${IMAGE}" --output spdx-json=sbom.spdx.json\n', ""),
        "PP-SCAN-03",
    ),
    "gitleaks-allowlist": (
        "python-defaults",
        lambda t: (t / ".gitleaks.toml").write_text(
            (t / ".gitleaks.toml").read_text() + '\n[[allowlists]]\npaths = ["src/"]\n'
        ),
        "PP-SCAN-06",
    ),
    "gitleaksignore": (
        "python-defaults",
        write(".gitleaksignore", "abc123:src/app.py:aws-access-token:3\n"),
        "PP-SCAN-06",
    ),
    "precommit-hook-removed": ("python-defaults", delete(".pre-commit-config.yaml"), "PP-SCAN-05"),
    "dast-gate-removed": (
        "python-defaults",
        drop_step(DEPLOY, "dast", "Gate on the rules in .zap/rules.tsv"),
        "PP-SCAN-09",
    ),
    "tests-continue-on-error": ("python-defaults", job(PR, "unit-tests", "continue-on-error", True), "PP-SCAN-10"),
    "approval-check-removed": (
        "python-defaults",
        drop_step(PROMOTE, "deploy-production", "Verify the production approval"),
        "PP-DEPLOY-01",
    ),
    "production-environment-removed": (
        "enterprise-private",
        unset(DEPLOY, "deploy-production", "environment"),
        "PP-DEPLOY-01",
    ),
    "production-skips-staging": (
        "enterprise-private",
        job(DEPLOY, "deploy-production", "needs", ["build"]),
        "PP-DEPLOY-02",
    ),
    "check-gate-removed": (
        "enterprise-private",
        drop_step(DEPLOY, "deploy-production", "Verify every check of the deploy run passed"),
        "PP-DEPLOY-03",
    ),
    "rollback-removed": ("python-defaults", drop_step(PROMOTE, "deploy-production", "Roll back"), "PP-DEPLOY-04"),
    "rollback-workflow-deleted": ("python-defaults", delete(".github/workflows/rollback-drill.yml"), "PP-DEPLOY-05"),
    "record-step-removed": (
        "python-defaults",
        drop_step(PROMOTE, "deploy-production", "Write the deployment record"),
        "PP-EVID-01",
    ),
    "record-not-always": (
        "python-defaults",
        step(
            PROMOTE,
            "deploy-production",
            "Write the deployment record",
            lambda s: s.__setitem__("if", "${{ success() }}"),
        ),
        "PP-EVID-01",
    ),
    "record-not-shipped": (
        "python-defaults",
        drop_step(PROMOTE, "deploy-production", "Ship record-manifest.json to the evidence store (PP-EVID-02)"),
        "PP-EVID-02",
    ),
    "retention-2555-public": (
        "node-terraform-public",
        text(PR, "retention-days: 90", "retention-days: 2555"),
        "PP-EVID-03",
    ),
    "retention-401-private": ("python-defaults", text(PR, "retention-days: 400", "retention-days: 401"), "PP-EVID-03"),
    "audit-log-export-deleted": ("enterprise-private", delete(".github/workflows/audit-log-export.yml"), "PP-EVID-04"),
    "protect-check-deleted": ("python-defaults", delete(".github/workflows/protect-check.yml"), "PP-EVID-07"),
    "protect-check-continue-on-error": (
        "enterprise-private",
        job(".github/workflows/protect-check.yml", "check", "continue-on-error", True),
        "PP-EVID-07",
    ),
    "ship-may-overwrite": (
        "python-defaults",
        text("scripts/evidence-store.sh", "--if-none-match '*' ||", "||"),
        "PP-EVID-02",
    ),
    "ship-without-lock-check": (
        "go-kubernetes-azure",
        text("scripts/evidence-store.sh", "az storage container immutability-policy show", "az storage container show"),
        "PP-EVID-02",
    ),
    "evidence-verify-deleted": ("python-defaults", delete(".github/workflows/evidence-verify.yml"), "PP-EVID-05"),
    "evidence-verify-weekly": (
        "python-defaults",
        text(".github/workflows/evidence-verify.yml", '"41 3 * * *"', '"41 3 * * 1"'),
        "PP-EVID-05",
    ),
    "evidence-verify-not-shipped": (
        "node-terraform-public",
        drop_step(
            ".github/workflows/evidence-verify.yml",
            "verify",
            "Ship record-manifest.json to the evidence store (PP-EVID-02)",
        ),
        "PP-EVID-05",
    ),
    **{
        f"evidence-store-{name}": (scenario, text(STORE_TF, old, new), "PP-EVID-06")
        for name, (scenario, old, new) in STORE_IAC.items()
    },
    "action-unpinned": (
        "python-defaults",
        regex(PR, r"actions/checkout@[0-9a-f]{40}", "actions/checkout@v4"),
        "PP-HARD-01",
    ),
    "job-permissions-write-all": ("python-defaults", job(PR, "sast", "permissions", "write-all"), "PP-HARD-02"),
    "title-in-run": (
        "python-defaults",
        text(
            PR,
            "          semgrep scan \\",
            '          echo "${{ github.event.pull_request.title }}"\n          semgrep scan \\',
        ),
        "PP-HARD-03",
    ),
    "persisted-credentials": (
        "python-defaults",
        text(PR, "persist-credentials: false", "persist-credentials: true"),
        "PP-HARD-04",
    ),
    "long-lived-aws-keys": (
        "python-defaults",
        text(
            PR,
            "      - name: Semgrep scan\n",
            "      - name: Semgrep scan\n        env:\n          AWS_SECRET_ACCESS_KEY: ${{ secrets.AWS_SECRET }}\n",
        ),
        "PP-HARD-05",
    ),
    "timeout-removed": ("python-defaults", unset(PR, "secrets", "timeout-minutes"), "PP-HARD-07"),
    "dependabot-deleted": ("python-defaults", delete(".github/dependabot.yml"), "PP-HARD-08"),
    "latest-image": (
        "python-defaults",
        job(PR, "sast", "container", {"image": "semgrep/semgrep:latest"}),
        "PP-HARD-09",
    ),
    "drift-job-removed": ("python-defaults", drop_job(PR, "controls-drift"), "PP-HARD-10"),
}

SEMANTIC: dict[str, tuple[str, Mutate, str]] = {
    "scanner-skipped-on-pull-requests": (
        "python-defaults",
        job(PR, "sast", "if", "${{ github.event_name != 'pull_request' }}"),
        "PP-SCAN-01",
    ),
    "continue-on-error-expression": (
        "python-defaults",
        job(PR, "sast", "continue-on-error", "${{ github.event_name == 'pull_request' }}"),
        "PP-SCAN-01",
    ),
    "or-echo-after-scanner": (
        "python-defaults",
        text(PR, "--report-path gitleaks.sarif .", '--report-path gitleaks.sarif . || echo "leaks found"'),
        "PP-SCAN-04",
    ),
    "set-plus-e-before-scanner": (
        "python-defaults",
        both(
            text(PR, "          semgrep scan \\", "          set +e\n          semgrep scan \\"),
            text(
                PR,
                "--error --sarif --output semgrep.sarif\n",
                "--error --sarif --output semgrep.sarif\n          ls -l semgrep.sarif\n",
            ),
        ),
        "PP-SCAN-01",
    ),
    "scanner-piped-without-pipefail": (
        "python-defaults",
        text(PR, "--error --sarif --output semgrep.sarif", "--error --sarif | tee semgrep.sarif"),
        "PP-SCAN-01",
    ),
    "zap-gate-exits-0-first": (
        "python-defaults",
        text("scripts/zap-gate.sh", "set -euo pipefail\n", "set -euo pipefail\nexit 0\n"),
        "PP-SCAN-09",
    ),
    # ghes: no evidence store, so no reviewed checkov skips of its Terraform (waived) before the mutation.
    "zap-rule-ignored": ("ghes", text(".zap/rules.tsv", "40018\tFAIL", "40018\tIGNORE"), "PP-SCAN-11"),
    "trivyignore-added": ("ghes", write(".trivyignore", "CVE-2026-0001\n"), "PP-SCAN-11"),
    "grype-threshold-lowered": ("python-defaults", text(PR, "--fail-on high", "--fail-on critical"), "PP-SCAN-03"),
    "trivy-severity-critical-only": (
        "python-defaults",
        text(PR, "--severity CRITICAL,HIGH", "--severity CRITICAL"),
        "PP-SCAN-08",
    ),
    "checkov-skips-every-check": (
        "python-all-iac-no-store",
        text(PR, "checkov --directory .", "checkov --skip-check 'CKV_*' --directory ."),
        "PP-SCAN-07",
    ),
    "checkov-config-soft-fail": ("python-all-iac-no-store", write(".checkov.yaml", "soft-fail: true\n"), "PP-SCAN-07"),
    "needs-a-missing-job": ("python-defaults", job(PR, "sast", "needs", "lint"), "PP-SCAN-01"),
    "settings-without-restrictions": (
        "python-defaults",
        both(delete(RULESET), text(SETTINGS, "      restrictions: null\n", "")),
        "PP-BRANCH-01",
    ),
    "ruleset-in-evaluate-mode": (
        "python-defaults",
        both(delete(SETTINGS), text(RULESET, '"enforcement": "active"', '"enforcement": "evaluate"')),
        "PP-BRANCH-01",
    ),
    "required-check-named-by-id": ("python-defaults", job(PR, "sast", "name", "Static analysis"), "PP-BRANCH-04"),
    "required-check-not-pinned": (
        "python-defaults",
        text(SETTINGS, "            app_id: 15368\n", "", 1),
        "PP-BRANCH-04",
    ),
    "check-gate-accepts-skipped": (
        "enterprise-private",
        text(
            f"{SCRIPTS}/check-gate.sh",
            "${conclusion} == success ]]",
            "( ${conclusion} == success || ${conclusion} == skipped ) ]]",
        ),
        "PP-DEPLOY-03",
    ),
    "rollback-not-on-cancel": (
        "python-defaults",
        step(
            PROMOTE,
            "deploy-production",
            "Roll back",
            lambda s: s.__setitem__("if", "${{ failure() && steps.deploy.outcome != 'skipped' }}"),
        ),
        "PP-DEPLOY-04",
    ),
    "deploy-step-without-timeout": (
        "python-defaults",
        step(PROMOTE, "deploy-production", "Deploy to production", lambda s: s.pop("timeout-minutes")),
        "PP-DEPLOY-04",
    ),
    "production-from-any-branch": (
        "enterprise-private",
        regex(
            SETTINGS,
            r"  - name: production\n    deployment_branch_policy:\n      custom_branches:\n        - \"main\"\n",
            "  - name: production\n    deployment_branch_policy:\n      protected_branches: true\n",
        ),
        "PP-DEPLOY-01",
    ),
    "comment-trigger-checks-out-the-head": (
        "python-defaults",
        write(
            ".github/workflows/chatops.yml",
            "name: chatops\non:\n  issue_comment:\n    types: [created]\npermissions:\n  contents: write\n"
            "jobs:\n  run:\n    runs-on: ubuntu-24.04\n    timeout-minutes: 5\n    concurrency: chatops\n    steps:\n"
            "      - uses: actions/checkout@3d3c42e5aac5ba805825da76410c181273ba90b1 # v7.0.1\n"
            "        with:\n          ref: refs/pull/${{ github.event.issue.number }}/head\n"
            "          persist-credentials: false\n      - run: make release\n",
        ),
        "PP-HARD-06",
    ),
    "no-permissions-anywhere": (
        "python-defaults",
        both(text(PR, "permissions: {}\n", ""), unset(PR, "sast", "permissions")),
        "PP-HARD-02",
    ),
    "install-script-from-a-branch": (
        "python-defaults",
        text(
            PR,
            "      - name: Semgrep scan\n",
            "      - name: Tool\n"
            "        run: curl -sSfL https://raw.githubusercontent.com/acme/tool/main/install.sh | sh\n"
            "      - name: Semgrep scan\n",
        ),
        "PP-HARD-09",
    ),
}

# Argo CD (issue 11): each audit rule over Argo CD objects, on the rendered argocd/ manifests.
ARGO = "argocd-team-private"
ARGO_AUTO = "argocd-enterprise-automated"
PROJ = "argocd/projects/production.yaml"
STAGING_PROJ = "argocd/projects/staging.yaml"
APP = "argocd/applications/production.yaml"
RBAC = "argocd/argocd-rbac-cm.yaml"


def spec(rel: str, change: Callable[[dict], None]) -> Mutate:  # type: ignore[type-arg]
    return data(rel, lambda d: change(d["spec"]))


GITOPS: dict[str, tuple[str, Mutate, str]] = {
    "argocd-source-repos-any": (ARGO, spec(PROJ, lambda p: p.__setitem__("sourceRepos", ["*"])), "PP-ARGO-01"),
    "argocd-destination-any-namespace": (
        ARGO,
        spec(STAGING_PROJ, lambda p: p["destinations"][0].__setitem__("namespace", "*")),
        "PP-ARGO-01",
    ),
    "argocd-destination-any-server": (
        ARGO,
        spec(
            PROJ,
            lambda p: p.__setitem__("destinations", [{"server": "*", "namespace": "argocd-team-private-production"}]),
        ),
        "PP-ARGO-01",
    ),
    "argocd-cluster-resources-any": (
        ARGO,
        spec(PROJ, lambda p: p.__setitem__("clusterResourceWhitelist", [{"group": "*", "kind": "*"}])),
        "PP-ARGO-01",
    ),
    "argocd-application-outside-its-project": (
        ARGO,
        spec(APP, lambda a: a["destination"].__setitem__("namespace", "kube-system")),
        "PP-ARGO-01",
    ),
    "argocd-application-in-default-project": (
        ARGO,
        spec(APP, lambda a: a.__setitem__("project", "default")),
        "PP-ARGO-01",
    ),
    "argocd-production-auto-prune": (
        ARGO_AUTO,
        spec(APP, lambda a: a["syncPolicy"]["automated"].__setitem__("prune", True)),
        "PP-ARGO-03",
    ),
    "argocd-production-automated-against-answers": (
        ARGO,
        spec(APP, lambda a: a["syncPolicy"].__setitem__("automated", {"prune": False, "selfHeal": True})),
        "PP-ARGO-03",
    ),
    "argocd-no-sync-window-on-production": (ARGO, spec(PROJ, lambda p: p.pop("syncWindows")), "PP-ARGO-03"),
    "argocd-production-follows-a-branch": (
        ARGO,
        spec(APP, lambda a: a["source"].__setitem__("targetRevision", "develop")),
        "PP-ARGO-03",
    ),
    "argocd-production-path-not-code-owned": (
        ARGO,
        both(
            text(".github/CODEOWNERS", "/argocd/ @acme/platform\n", ""),
            text(".github/CODEOWNERS", "/argocd/environments/production/ @acme/platform\n", ""),
        ),
        "PP-ARGO-03",
    ),
    "argocd-policy-default-admin": (ARGO, text(RBAC, 'policy.default: ""', "policy.default: role:admin"), "PP-ARGO-02"),
    "argocd-wildcard-sync-to-developers": (
        ARGO,
        text(
            RBAC,
            "    p, role:argocd-team-private-developer, applications, sync, argocd-team-private-production/*, deny\n",
            "    p, role:argocd-team-private-developer, applications, *, */*, allow\n",
        ),
        "PP-ARGO-02",
    ),
    "argocd-developers-are-admins": (
        ARGO,
        text(RBAC, "g, acme:developers, role:argocd-team-private-developer", "g, acme:developers, role:admin"),
        "PP-ARGO-02",
    ),
    "argocd-project-role-lets-developers-sync": (
        ARGO,
        spec(
            PROJ,
            lambda p: p["roles"][1]["policies"].append(
                "p, proj:argocd-team-private-production:viewer, applications, sync, "
                "argocd-team-private-production/*, allow"
            ),
        ),
        "PP-ARGO-02",
    ),
    "argocd-no-sync-notifications": (
        ARGO,
        data(APP, lambda d: d["metadata"].pop("annotations")),
        "PP-ARGO-04",
    ),
    "argocd-no-sync-record": (ARGO, delete(".github/workflows/argocd-sync.yml"), "PP-ARGO-04"),
    "argocd-rollback-without-revert": (ARGO, delete(".github/workflows/rollback.yml"), "PP-ARGO-04"),
    "argocd-rollback-reverts-only-in-comments": (
        ARGO,
        text(f"{SCRIPTS}/gitops-revert.sh", "  revert --no-edit", "  cherry-pick --no-edit"),
        "PP-ARGO-04",
    ),
    "argocd-dast-not-gating-production": (
        ARGO,
        step(
            PROMOTE,
            "record-production",
            "Verify DAST passed against staging",
            lambda s: s.__setitem__("continue-on-error", True),
        ),
        "PP-SCAN-09",
    ),
}

ALL = {**WORDS, **SEMANTIC, **GITOPS}


@pytest.mark.parametrize("mutation", sorted(ALL))
def test_each_weakening_fails_the_right_control(mutation: str, tmp_path: Path) -> None:
    scenario, mutate, control = ALL[mutation]
    tree = copy_golden(scenario, tmp_path)
    before = {r.control.id: r.status for r in audit(tree).results}
    assert before[control] == "pass", f"{scenario}: {control} is {before[control]} before the mutation"
    mutate(tree)
    result = next(r for r in audit(tree).results if r.control.id == control)
    assert result.status == "fail", f"{mutation}: {control} is {result.status}: {result.reason}"
    assert result.findings, f"{mutation}: the failure names no place"


def test_every_control_rendered_for_github_has_a_mutation() -> None:
    covered = {control for _, _, control in ALL.values()}
    rendered = {c.id for c in all_controls() if "github" in c.platforms and c.applies != "publishes"}
    assert rendered <= covered, f"no mutation fails {sorted(rendered - covered)}"


def test_there_are_at_least_fifteen_semantic_weakenings() -> None:
    assert len(SEMANTIC) >= 15


def test_a_weakening_is_reported_at_every_place_it_occurs(tmp_path: Path) -> None:
    tree = copy_golden("python-defaults", tmp_path)
    text(PR, "persist-credentials: false", "persist-credentials: true", count=3)(tree)
    result = next(r for r in audit(tree).results if r.control.id == "PP-HARD-04")
    assert result.status == "fail" and len(result.findings) == 3, result.findings


def test_reserialising_every_yaml_file_changes_no_verdict(tmp_path: Path) -> None:
    """Comments and formatting are not behaviour: safe_dump of every YAML file keeps every status."""
    for name in ("python-defaults", "enterprise-private", "free-private"):
        tree = copy_golden(name, tmp_path)
        before = {r.control.id: r.status for r in audit(tree).results}
        for path in [*tree.rglob("*.yml"), *tree.rglob("*.yaml")]:
            path.write_text(yaml.safe_dump(yaml.safe_load(path.read_text()), sort_keys=False))
        after = {r.control.id: r.status for r in audit(tree).results}
        assert after == before, {k: (before[k], after[k]) for k in before if before[k] != after[k]}


def test_an_unparsable_argocd_manifest_is_a_per_file_error(tmp_path: Path) -> None:
    tree = copy_golden(ARGO, tmp_path)
    (tree / "argocd/projects/extra.yaml").write_text("apiVersion: argoproj.io/v1alpha1\nkind: AppProject\nspec: [x\n")
    report = audit(tree)
    assert [(e.path, e.message.split(":")[0]) for e in report.errors] == [
        ("argocd/projects/extra.yaml", "invalid YAML")
    ]
    statuses = {r.control.id: r.status for r in report.results}
    assert statuses["PP-ARGO-01"] == "pass", "the other manifests are still judged"
