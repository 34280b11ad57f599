"""What CONTROLS.md tells an auditor about each golden tree is what its files do.

CONTROLS.md is rendered from the answers; the workflows and settings from the same answers by other templates.
These tests read the claim out of CONTROLS.md and the behaviour out of the files, so a template change that
makes the two disagree fails here: retention, required checks and the app they are pinned to, approvals,
where scanner findings go on this plan, and the deploy queue.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

GOLDEN = Path(__file__).parent.parent / "golden"
SCENARIOS = sorted(p.name for p in GOLDEN.iterdir() if (p / ".github").is_dir())  # GitLab: test_gitlab_claims.py


class Tree:
    def __init__(self, scenario: str) -> None:
        self.root = GOLDEN / scenario
        self.answers = yaml.safe_load((self.root / ".copier-answers.yml").read_text())
        self.controls = (self.root / "compliance/CONTROLS.md").read_text()
        self.settings = yaml.safe_load((self.root / ".github/settings.yml").read_text())
        self.ruleset = json.loads((self.root / ".github/rulesets/default-branch.json").read_text())
        self.yaml_files = {
            str(p.relative_to(self.root)): p.read_text()
            for p in sorted((self.root / ".github").rglob("*.yml"))
            if "workflows" in p.parts or "actions" in p.parts
        }
        self.workflows = {
            path: yaml.safe_load(text)
            for path, text in self.yaml_files.items()
            if path.startswith(".github/workflows/")
        }

    def protection(self) -> dict[str, Any]:
        (branch,) = self.settings["branches"]
        return dict(branch["protection"])

    def rule(self, kind: str) -> dict[str, Any]:
        (rule,) = [r for r in self.ruleset["rules"] if r["type"] == kind]
        return dict(rule.get("parameters", {}))

    def steps(self) -> list[tuple[str, str, dict[str, Any]]]:
        found = []
        for path, text in self.yaml_files.items():
            doc = yaml.safe_load(text)
            jobs = doc.get("jobs") or {"(composite)": {"steps": (doc.get("runs") or {}).get("steps", [])}}
            for job_id, job in jobs.items():
                found += [(path, job_id, step) for step in job.get("steps", [])]
        return found


@pytest.fixture(params=SCENARIOS)
def tree(request: pytest.FixtureRequest) -> Tree:
    return Tree(request.param)


def test_artifact_retention_is_what_controls_md_says(tree: Tree) -> None:
    (days,) = re.findall(r"Artifact retention is (\d+) days", tree.controls)
    expected = 90 if tree.answers["visibility"] == "public" else 400  # GitHub's maximum for the visibility
    assert int(days) == expected
    uploads = [(p, j, s) for p, j, s in tree.steps() if "actions/upload-artifact@" in str(s.get("uses", ""))]
    assert uploads
    for path, job, step in uploads:
        assert str(step["with"]["retention-days"]) == days, f"{path} job {job}: {step.get('name')}"
        assert f"({days} days" in step.get("name", f"({days} days"), f"{path} job {job}: the step name says otherwise"
    assert f"({days} days)" in tree.controls


def test_required_checks_are_the_listed_ones_pinned_to_the_actions_app(tree: Tree) -> None:
    (listed,) = re.findall(r"Required status checks \(pinned to the GitHub Actions app\): (.+)\.", tree.controls)
    names = re.findall(r'"([^"]+)"', listed)
    app = tree.answers.get("github_actions_app_id") or 15368  # the GitHub Actions app on github.com
    checks = tree.protection()["required_status_checks"]["checks"]
    assert [c["context"] for c in checks] == names
    assert {c["app_id"] for c in checks} == {app}
    rule = tree.rule("required_status_checks")
    assert [c["context"] for c in rule["required_status_checks"]] == names
    assert {c["integration_id"] for c in rule["required_status_checks"]} == {app}
    assert tree.protection()["required_status_checks"]["strict"] is True
    assert rule["strict_required_status_checks_policy"] is True


def test_approvals_code_owners_and_admins_are_what_controls_md_says(tree: Tree) -> None:
    (count,) = re.findall(r"(\d+) approvals, code owners,<br/>admins included", tree.controls)
    assert int(count) == tree.answers["required_approvals"]
    reviews = tree.protection()["required_pull_request_reviews"]
    assert reviews["required_approving_review_count"] == int(count)
    assert reviews["require_code_owner_reviews"] is True and reviews["dismiss_stale_reviews"] is True
    assert tree.protection()["enforce_admins"] is True
    pull = tree.rule("pull_request")
    assert pull["required_approving_review_count"] == int(count) and pull["require_code_owner_review"] is True
    assert tree.ruleset.get("bypass_actors", []) == [], "admins included: nobody bypasses the ruleset"


def test_findings_go_where_controls_md_says_on_this_plan(tree: Tree) -> None:
    """Code scanning needs GitHub Code Security on a private repository: without it an upload-sarif step fails
    the job, so the files must not upload, and CONTROLS.md must not promise code scanning."""
    uploads = [s for _, _, s in tree.steps() if "codeql-action/upload-sarif@" in str(s.get("uses", ""))]
    summaries = [s for _, _, s in tree.steps() if "sarif-summary.sh" in str(s.get("run", ""))]
    if tree.answers["code_security"]:
        assert uploads and not summaries
        assert "SARIF in code scanning" in tree.controls and "findings listed in the job summary" not in tree.controls
        assert "dependency-review summary" in tree.controls and "osv-scanner.json" not in tree.controls
    else:
        assert summaries and not uploads
        assert "code scanning (kept" not in tree.controls and "findings listed in the job summary" in tree.controls
        assert "osv-scanner.json" in tree.controls and "dependency-review summary" not in tree.controls
        sarifs = {m for _, _, s in tree.steps() for m in re.findall(r"[\w-]+\.sarif", str(s.get("run", "")))}
        summarised = {m for s in summaries for m in re.findall(r"sarif-summary\.sh ([\w-]+\.sarif)", s["run"])}
        assert sarifs == summarised, "every SARIF report a step writes is listed in its job summary"


def test_deploys_queue_and_share_a_group_per_environment(tree: Tree) -> None:
    """Deploys queue in push order: nothing that deploys is cancelled or replaced by a newer run, and two
    workflows that deploy to the same environment (deploy, promote, the rollback drill) wait for each other."""
    if tree.answers["deploy_model"] == "argocd":
        # Argo CD deploys; the pipeline only proposes. Nothing may apply to a cluster, and the workflows that
        # propose or record a promotion queue like deploys.
        deploys = re.compile(r"kubectl\s+(apply|set|patch|rollout)|argocd\s+app\s+sync|helm\s+upgrade|deploy\.sh")
        for path, job_id, step in tree.steps():
            assert not deploys.search(str(step.get("run", ""))), f"{path} job {job_id} deploys from CI"
        for name in ("deploy.yml", "staging.yml", "promote.yml", "rollback.yml"):
            concurrency = tree.workflows[f".github/workflows/{name}"]["concurrency"]
            assert concurrency["cancel-in-progress"] is False and concurrency.get("queue") == "max", name
        return
    groups: dict[str, set[str]] = {}
    for path, workflow in tree.workflows.items():
        for job_id, job in workflow["jobs"].items():
            environment = job.get("environment")
            name = environment["name"] if isinstance(environment, dict) else environment
            if name is None:  # GitHub Free, private: no environments, the hooks name the target
                scripts = " ".join(str(step.get("run", "")) for step in job.get("steps", []))
                found = re.findall(r"scripts/(?:deploy|rollback)\.sh (staging|production)", scripts)
                name = "staging" if "rollback-drill.sh" in scripts else (found[0] if found else None)
            if name not in ("staging", "production"):
                continue
            concurrency = job.get("concurrency") or workflow.get("concurrency")
            assert concurrency, f"{path} job {job_id} deploys without a concurrency group"
            assert concurrency["cancel-in-progress"] is False, f"{path} job {job_id}: a deploy may be cancelled"
            assert concurrency.get("queue") == "max", f"{path} job {job_id}: a waiting deploy may be replaced"
            groups.setdefault(str(name), set()).add(concurrency["group"])
    assert set(groups) == {"staging", "production"}, groups
    for environment, seen in groups.items():
        assert len(seen) == 1, f"{environment} is deployed under several concurrency groups: {seen}"


def test_every_pin_is_used_and_every_action_is_pinned_from_the_pins_file() -> None:
    """generator/data/pins.yml is the one place to bump what pipelines run: nothing in it is dead, and no
    generated `uses:` names an action or a SHA it does not list."""
    pins = yaml.safe_load((GOLDEN.parent / "generator/data/pins.yml").read_text())["pins"]["default"]["actions"]
    used: set[str] = set()
    for path in GOLDEN.glob("*/.github/**/*.yml"):
        for name, sha, version in re.findall(r"uses: ([\w.-]+/[\w./-]+)@([0-9a-f]{40}) # (v[\d.]+)", path.read_text()):
            if name in {"pipeproof/pipeproof", "pipeproof/pipeproof/protect"}:
                continue  # the rendering commit itself
            assert pins.get(name) == {"sha": sha, "version": version}, f"{path}: {name}@{sha} is not the pinned one"
            used.add(name)
    assert used == set(pins), f"pinned but never used: {sorted(set(pins) - used)}"
