"""The evidence store's Terraform in the golden trees (one per cloud): it parses and is formatted, AWS validates
against the real provider when its plugin is on this machine, the structure holds what CONTROLS.md promises, the
OIDC trust names exactly the subjects of the jobs that ship evidence, checkov passes with only the reviewed skips,
and each weakening fails PP-EVID-06 naming the aspect it breaks.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import hcl2
import jinja2
import pytest
import yaml

from generator.audit import audit
from generator.controls.store_iac import Module, judge, modules
from generator.repo import Repo
from tests.helpers import GOLDEN
from tests.test_mutations import STORE_IAC, STORE_TF, copy_golden, text

ROOT = Path(__file__).parent.parent
STORES = {"aws": "python-defaults", "gcp": "node-terraform-public", "azure": "go-kubernetes-azure"}
PINS = yaml.safe_load((ROOT / "generator/data/pins.yml").read_text())["pins"]["default"]["terraform"]
PLUGINS = Path("/opt/tf-plugins")  # a provider mirror on this machine (no registry access)


def clean(value: Any) -> Any:
    if isinstance(value, dict):
        return {clean(k): clean(v) for k, v in value.items() if k not in ("__is_block__", "__comments__")}
    if isinstance(value, list):
        return [clean(v) for v in value]
    if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    return value


def parsed(scenario: str, name: str = "main.tf") -> dict[str, Any]:
    return dict(clean(hcl2.loads((GOLDEN / scenario / "infrastructure/evidence-store" / name).read_text())))


def resources(doc: dict[str, Any], type_: str) -> dict[str, Any]:
    return {
        n: b for entry in doc.get("resource", []) for t, named in entry.items() if t == type_ for n, b in named.items()
    }


def answers(scenario: str) -> dict[str, Any]:
    return dict(yaml.safe_load((GOLDEN / scenario / ".copier-answers.yml").read_text()))


def store_module(scenario: str) -> Module:
    (module,) = modules(Repo(GOLDEN / scenario))
    return module


@pytest.mark.parametrize("store", sorted(STORES))
def test_the_module_is_rendered_only_for_the_store_chosen(store: str) -> None:
    scenario = STORES[store]
    versions = parsed(scenario, "versions.tf")
    (providers,) = versions["terraform"][0]["required_providers"]
    name = {"aws": "aws", "gcp": "google", "azure": "azurerm"}[store]
    assert set(providers) == {name}
    # Exact versions, one place to bump: a plan never picks up a new provider by itself.
    assert providers[name]["version"] == PINS[name] and re.fullmatch(r"\d+\.\d+\.\d+", PINS[name])
    assert not (GOLDEN / "python-all-iac-no-store/infrastructure").exists()
    assert not (GOLDEN / "ghes/infrastructure").exists()


@pytest.mark.parametrize("store", sorted(STORES))
def test_terraform_fmt(store: str, tmp_path: Path) -> None:
    terraform = shutil.which("terraform")
    if terraform is None:
        pytest.skip("terraform is not on PATH: the HCL is still parsed and judged by the tests below")
    proc = subprocess.run(
        [terraform, "fmt", "-check", "-diff", "-recursive", str(GOLDEN / STORES[store] / "infrastructure")],
        capture_output=True,
        text=True,
        env={**os.environ, "TF_CLI_CONFIG_FILE": os.devnull},
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_terraform_validate_aws_with_the_pinned_provider(tmp_path: Path) -> None:
    terraform = shutil.which("terraform")
    plugin = PLUGINS / "registry.terraform.io/hashicorp/aws" / PINS["aws"]
    if terraform is None or not plugin.is_dir():
        pytest.skip(f"terraform or the aws provider {PINS['aws']} mirror ({PLUGINS}) is not on this machine")
    module = tmp_path / "evidence-store"
    shutil.copytree(GOLDEN / STORES["aws"] / "infrastructure/evidence-store", module)
    env = {**os.environ, "TF_CLI_CONFIG_FILE": os.devnull, "TF_IN_AUTOMATION": "1", "CHECKPOINT_DISABLE": "1"}
    for args in (["init", "-backend=false", "-input=false", f"-plugin-dir={PLUGINS}"], ["validate", "-json"]):
        proc = subprocess.run([terraform, *args], cwd=module, capture_output=True, text=True, env=env, check=False)
        assert proc.returncode == 0, proc.stdout + proc.stderr
    assert json.loads(proc.stdout)["valid"] is True


def test_aws_structure() -> None:
    doc = parsed(STORES["aws"])
    locals_ = doc["locals"][0]
    assert locals_["retention_years"] == answers(STORES["aws"])["evidence_retention_years"] == 7
    (lock,) = resources(doc, "aws_s3_bucket_object_lock_configuration").values()
    assert lock["rule"][0]["default_retention"][0] == {"mode": "COMPLIANCE", "years": "${local.retention_years}"}
    assert resources(doc, "aws_s3_bucket")["evidence"]["object_lock_enabled"] is True
    assert resources(doc, "aws_s3_bucket_versioning")["evidence"]["versioning_configuration"][0]["status"] == "Enabled"
    key = resources(doc, "aws_kms_key")["evidence"]
    assert key["enable_key_rotation"] is True
    sse = resources(doc, "aws_s3_bucket_server_side_encryption_configuration")["evidence"]["rule"][0]
    assert sse["apply_server_side_encryption_by_default"][0] == {
        "sse_algorithm": "aws:kms",
        "kms_master_key_id": "${aws_kms_key.evidence.arn}",
    }
    block = resources(doc, "aws_s3_bucket_public_access_block")["evidence"]
    assert all(
        block[k] is True
        for k in ("block_public_acls", "block_public_policy", "ignore_public_acls", "restrict_public_buckets")
    )
    assert resources(doc, "aws_s3_bucket_logging")["evidence"]["target_bucket"] == "${aws_s3_bucket.logs.id}"
    transition = resources(doc, "aws_s3_bucket_lifecycle_configuration")["evidence"]["rule"][0]["transition"][0]
    assert transition["storage_class"] == "GLACIER_IR"
    trail = resources(doc, "aws_cloudtrail")["evidence"]
    assert trail["enable_log_file_validation"] is True
    (selector,) = trail["event_selector"]
    assert selector["data_resource"][0] == {"type": "AWS::S3::Object", "values": ["${aws_s3_bucket.evidence.arn}/"]}
    policy = {s["sid"]: s for s in data_doc(doc, "evidence")["statement"]}
    assert policy["DenyInsecureTransport"]["condition"][0]["values"] == ["false"]
    assert {"s3:BypassGovernanceRetention", "s3:DeleteObject", "s3:DeleteObjectVersion"} <= set(
        policy["DenyDeletesAndBypass"]["actions"]
    )
    assert policy["DenyOverwrites"]["condition"][0] == {
        "test": "Null",
        "variable": "s3:if-none-match",
        "values": ["true"],
    }
    assert all(s.get("effect") == "Deny" for s in policy.values())


def data_doc(doc: dict[str, Any], name: str) -> dict[str, Any]:
    return next(
        named[name]
        for entry in doc["data"]
        for t, named in entry.items()
        if t == "aws_iam_policy_document" and name in named
    )


def test_aws_writer_is_write_only() -> None:
    doc = parsed(STORES["aws"])
    actions = {a for s in data_doc(doc, "write")["statement"] for a in s["actions"]}
    assert "s3:PutObject" in actions
    assert not {a for a in actions if re.search(r"Delete|\*|Retention$|LegalHold|Bypass|PutBucket|iam:", a)} - {
        "s3:GetObjectRetention"
    }
    assert resources(doc, "aws_iam_role_policy")["write"]["role"] == "${aws_iam_role.writer.id}"
    assert not resources(doc, "aws_iam_role_policy_attachment")


def test_gcp_structure() -> None:
    scenario = STORES["gcp"]
    doc = parsed(scenario)
    bucket = resources(doc, "google_storage_bucket")["evidence"]
    assert bucket["retention_policy"][0] == {"is_locked": True, "retention_period": "${local.retention_seconds}"}
    assert doc["locals"][0]["retention_seconds"] >= answers(scenario)["evidence_retention_years"] * 365 * 86400
    assert bucket["uniform_bucket_level_access"] is True and bucket["public_access_prevention"] == "enforced"
    assert bucket["encryption"][0]["default_kms_key_name"] == "${google_kms_crypto_key.evidence.id}"
    assert resources(doc, "google_kms_crypto_key")["evidence"]["rotation_period"]
    role = resources(doc, "google_project_iam_custom_role")["writer"]
    assert not [p for p in role["permissions"] if "delete" in p or "update" in p or "setIamPolicy" in p]


def test_azure_structure() -> None:
    scenario = STORES["azure"]
    doc = parsed(scenario)
    policy = resources(doc, "azurerm_storage_container_immutability_policy")["evidence"]
    assert policy["locked"] is True and policy["immutability_period_in_days"] == "${local.retention_days}"
    assert doc["locals"][0]["retention_days"] >= answers(scenario)["evidence_retention_years"] * 365
    account = resources(doc, "azurerm_storage_account")["evidence"]
    assert account["shared_access_key_enabled"] is False and account["allow_nested_items_to_be_public"] is False
    assert account["min_tls_version"] == "TLS1_2"
    definition = resources(doc, "azurerm_role_definition")["writer"]["permissions"][0]
    assert not [a for a in definition["actions"] + definition["data_actions"] if a.endswith("/delete") or "*" in a]


# --- the trust: exactly the subjects of the jobs that ship -----------------------------------------------------


def shipping_subjects(scenario: str) -> set[str]:
    """The `sub` each job that writes to or reads the store presents, from the rendered workflows: a job with an
    environment presents it, one without the default branch it runs on (push and schedule run there)."""
    a = answers(scenario)
    found = set()
    for path in (GOLDEN / scenario / ".github/workflows").glob("*.yml"):
        for job in (yaml.safe_load(path.read_text()).get("jobs") or {}).values():
            steps = json.dumps(job.get("steps", []))
            if "ship-evidence" not in steps and "verify-evidence" not in steps:
                continue
            env = job.get("environment")
            env = env.get("name") if isinstance(env, dict) else env
            found.add(
                f"repo:{a['repository']}:environment:{env}"
                if env
                else f"repo:{a['repository']}:ref:refs/heads/{a['default_branch']}"
            )
    return found


@pytest.mark.parametrize(
    "scenario", sorted(p.parent.parent.name for p in GOLDEN.glob("*/infrastructure/evidence-store"))
)
def test_trust_names_exactly_the_subjects_of_the_jobs_that_ship(scenario: str) -> None:
    a = answers(scenario)
    subjects = parsed(scenario)["locals"][0]["oidc_subjects"]
    if a["platform"] == "gitlab":
        # A GitLab id token names the project and the ref: every job that asks for one runs on the default branch.
        assert subjects == [f"project_path:{a['repository']}:ref_type:branch:ref:{a['default_branch']}"]
        ci = yaml.safe_load((GOLDEN / scenario / ".gitlab-ci.yml").read_text())
        cloud_jobs = {n: j for n, j in ci.items() if isinstance(j, dict) and "id_tokens" in j}
        assert cloud_jobs, scenario
        for name, job in cloud_jobs.items():
            ifs = [r["if"] for r in job.get("rules", []) if isinstance(r, dict) and "if" in r]
            assert ifs and all("$CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH" in i for i in ifs), (scenario, name)
        return
    assert set(subjects) == shipping_subjects(scenario), scenario
    owner, name = a["repository"].split("/")
    for subject in subjects:
        assert "*" not in subject and "?" not in subject
        assert re.fullmatch(
            rf"repo:{re.escape(owner)}/{re.escape(name)}:(ref:refs/heads/{re.escape(a['default_branch'])}|environment:[a-z-]+)",
            subject,
        )


def test_aws_trust_is_string_equals_on_sub_and_aud() -> None:
    doc = parsed(STORES["aws"])
    (statement,) = data_doc(doc, "trust")["statement"]
    assert statement["actions"] == ["sts:AssumeRoleWithWebIdentity"]
    conditions = {c["variable"]: c for c in statement["condition"]}
    assert conditions["${local.oidc_issuer}:sub"]["test"] == "StringEquals"
    assert conditions["${local.oidc_issuer}:sub"]["values"] == "${local.oidc_subjects}"
    assert conditions["${local.oidc_issuer}:aud"]["values"] == ["${local.oidc_audience}"]
    assert doc["locals"][0]["oidc_issuer"] == "token.actions.githubusercontent.com"


def test_gitlab_trusts_the_id_token_subject_of_the_default_branch() -> None:
    """GitLab answers arrive with the GitLab templates; the subjects are keyed on `platform` already."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(ROOT)),
        block_start_string="[%",
        block_end_string="%]",
        variable_start_string="[[",
        variable_end_string="]]",
        comment_start_string="[#",
        comment_end_string="#]",
        trim_blocks=True,
        lstrip_blocks=True,
    )
    template = env.from_string(
        "[% from 'templates/_macros/evidence.jinja' import oidc_subjects, oidc_issuer_host, oidc_audience"
        " with context %]"
        "[[ oidc_subjects() ]]|[[ oidc_issuer_host() ]]|[[ oidc_audience('aws') ]]"
    )
    common = {
        "repository": "acme/platform/shop",
        "default_branch": "main",
        "environments_available": True,
        "controls": [],
    }
    subjects, issuer, audience = template.render(platform="gitlab", gitlab_host="gitlab.example.com", **common).split(
        "|"
    )
    assert json.loads(subjects) == ["project_path:acme/platform/shop:ref_type:branch:ref:main"]
    assert (issuer, audience) == ("gitlab.example.com", "https://gitlab.example.com")
    github = template.render(platform="github", github_host="github.com", **{**common, "repository": "acme/shop"})
    assert json.loads(github.split("|")[0]) == [
        "repo:acme/shop:ref:refs/heads/main",
        "repo:acme/shop:environment:production",
        "repo:acme/shop:environment:staging",
    ]


# --- checkov per module ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("store", sorted(STORES))
def test_checkov_passes_each_module_with_only_its_reviewed_skips(store: str) -> None:
    checkov = shutil.which("checkov")
    assert checkov, "checkov not on PATH: install the test extras"
    skips = yaml.safe_load((Path(__file__).parent / "checkov-skips.yml").read_text())
    pr = (GOLDEN / "enterprise-private" / ".github/workflows/pr-checks.yml").read_text()
    mine = sorted(k for k, v in skips.items() if v.startswith(f"evidence store ({store},"))
    module = GOLDEN / STORES[store] / "infrastructure/evidence-store"
    proc = subprocess.run(
        [
            checkov,
            "--directory",
            str(module),
            "--framework",
            "terraform",
            "--skip-download",
            "--compact",
            "--output",
            "json",
            *(["--skip-check", ",".join(mine)] if mine else []),
        ],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "CKV_SKIP_PACKAGE_UPDATE_CHECK": "true", "BC_SKIP_MAPPING": "TRUE"},
    )
    report = json.loads(proc.stdout)
    summary = report["summary"]
    assert summary["failed"] == 0 and summary["passed"] > 5, proc.stdout[-3000:]
    if store == "aws":  # the generated PR job skips exactly these ids, on this module only
        assert "--skip-check " + ",".join(mine) in pr and "--skip-path infrastructure/evidence-store" in pr


# --- PP-EVID-06 on the golden trees and on each weakening -------------------------------------------------------


@pytest.mark.parametrize("store", sorted(STORES))
def test_every_aspect_passes_on_the_golden(store: str) -> None:
    a = answers(STORES[store])
    verdicts = judge(store_module(STORES[store]), a["evidence_retention_years"] * 365, a["repository"])
    assert {v.aspect for v in verdicts} == {"lock", "versioning", "public access", "trust", "write-only"}
    assert all(v.ok for v in verdicts), [v for v in verdicts if not v.ok]


ASPECT = {
    "governance": "lock",
    "one-year": "lock",
    "unlocked": "lock",
    "short": "lock",
    "no-versioning": "versioning",
    "public-policy": "public access",
    "public": "public access",
    "wildcard-sub": "trust",
    "stringlike-sub": "trust",
    "other-repo": "trust",
    "owner-only": "trust",
    "wildcard": "trust",
    "delete": "write-only",
    "overwrite": "write-only",
}


@pytest.mark.parametrize("name", sorted(STORE_IAC))
def test_each_weakening_names_its_aspect(name: str, tmp_path: Path) -> None:
    scenario, old, new = STORE_IAC[name]
    tree = copy_golden(scenario, tmp_path)
    text(STORE_TF, old, new)(tree)
    result = next(r for r in audit(tree).results if r.control.id == "PP-EVID-06")
    assert result.status == "fail", result.reason
    aspect = ASPECT[name.split("-", 1)[1]]
    assert any(f.message.startswith(aspect + ":") and f.where.startswith(STORE_TF) for f in result.findings), (
        result.findings
    )


def test_a_retention_answer_longer_than_the_module_fails(tmp_path: Path) -> None:
    tree = copy_golden(STORES["aws"], tmp_path)
    path = tree / ".copier-answers.yml"
    path.write_text(path.read_text().replace("evidence_retention_years: 7", "evidence_retention_years: 10"))
    result = next(r for r in audit(tree).results if r.control.id == "PP-EVID-06")
    assert result.status == "fail" and "less than the 3650" in result.reason, result.reason


def test_a_real_world_shape_fails_on_every_aspect_it_misses() -> None:
    """An evidence bucket as public repositories often write it: GOVERNANCE mode for a year, no public access
    block, an organisation-wide StringLike trust in jsonencode, and a policy that may delete."""
    (module,) = modules(Repo(ROOT / "tests/fixtures/real-world-evidence"))
    verdicts = {v.aspect: v for v in judge(module, 7 * 365, "acme/shop")}
    assert not verdicts["lock"].ok and "GOVERNANCE" in verdicts["lock"].message
    assert verdicts["versioning"].ok
    assert not verdicts["public access"].ok
    assert not verdicts["trust"].ok and "StringLike" in verdicts["trust"].message
    assert not verdicts["write-only"].ok and "s3:DeleteObject" in verdicts["write-only"].message
