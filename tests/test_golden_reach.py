"""What each event really runs in every golden tree, evaluated the way GitHub evaluates `on:`, `if:`, `needs:`
and reusable workflows (generator/pipeline/reach.py, itself checked against GitHub's own expression evaluator).

The claims under test are the ones CONTROLS.md makes: every required check reports on every pull request and
merge-queue group, whatever files it changes (a required check that never reports blocks the merge, a skipped
one passes it); nothing that deploys runs for a pull request; production is reached from the default branch
only, and not when a check, the build, staging or DAST failed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from generator.pipeline.reach import Event, Reach, Verdict, jobs_reached

GOLDEN = Path(__file__).parent.parent / "golden"
SCENARIOS = sorted(p.name for p in GOLDEN.iterdir() if (p / ".github").is_dir())  # GitLab: test_gitlab_golden_reach.py
DEPLOY = ".github/workflows/deploy.yml"
PROMOTE = ".github/workflows/promote.yml"


class Tree:
    def __init__(self, scenario: str) -> None:
        self.root = GOLDEN / scenario
        self.answers = yaml.safe_load((self.root / ".copier-answers.yml").read_text())
        self.branch = str(self.answers["default_branch"])
        # Environment reviewers exist for public repositories and on Enterprise (platform-facts.md, h).
        self.reviewers = self.answers["visibility"] == "public" or self.answers["github_plan"] == "enterprise"
        self.argocd = self.answers["deploy_model"] == "argocd"
        if self.argocd:
            self.reviewers = False  # Argo CD: production is always a promotion pull request
        self.workflows = {
            str(p.relative_to(self.root)): yaml.safe_load(p.read_text())
            for p in sorted((self.root / ".github/workflows").glob("*.yml"))
        }

    def required(self) -> set[str]:
        settings = yaml.safe_load((self.root / ".github/settings.yml").read_text())
        (branch,) = settings["branches"]
        checks = {c["context"] for c in branch["protection"]["required_status_checks"]["checks"]}
        ruleset = json.loads((self.root / ".github/rulesets/default-branch.json").read_text())
        (rule,) = [r for r in ruleset["rules"] if r["type"] == "required_status_checks"]
        assert checks == {c["context"] for c in rule["parameters"]["required_status_checks"]}, "two sources differ"
        return checks

    def reached(self, event: Event, **kw: Any) -> dict[tuple[str, str], Verdict]:
        found = {}
        for path in self.workflows:
            for key, verdict in jobs_reached(self.workflows, path, event, **kw).items():
                found[(path, key)] = verdict
        return found

    def deploying(self) -> set[tuple[str, str]]:
        """Jobs with an environment, and every job of the workflows that deploy or restore."""
        found = set()
        for path, workflow in self.workflows.items():
            for job_id, job in workflow["jobs"].items():
                if "environment" in job or path != ".github/workflows/pr-checks.yml":
                    found.add((path, job_id))
        return found


@pytest.fixture(params=SCENARIOS)
def tree(request: pytest.FixtureRequest) -> Tree:
    return Tree(request.param)


def change_events(branch: str) -> list[Event]:
    return [
        Event("pull_request", base_ref=branch, head_ref="feature/x", action=action, changed_paths=paths)
        for action in ("opened", "synchronize", "reopened")
        for paths in (("src/app.py",), ("README.md",), ("docs/guide.md", ".github/CODEOWNERS"))
    ] + [Event("merge_group", base_ref=branch, action="checks_requested")]


def test_every_required_check_reports_on_every_change(tree: Tree) -> None:
    required = tree.required()
    assert required, "no required checks"
    for event in change_events(tree.branch):
        reported = {
            name for verdict in tree.reached(event).values() if verdict.reach is Reach.RUNS for name in verdict.names
        }
        missing = required - reported
        assert not missing, f"{event}: required checks that would never report: {missing}"


def test_nothing_that_deploys_runs_for_a_change(tree: Tree) -> None:
    deploying = tree.deploying()
    for event in [*change_events(tree.branch), Event("pull_request", base_ref="release", head_ref="x")]:
        ran = {key for key, verdict in tree.reached(event).items() if verdict.reach is not Reach.SKIPPED}
        assert not ran & deploying, f"{event}: {sorted(ran & deploying)}"


def test_a_push_elsewhere_deploys_nothing(tree: Tree) -> None:
    for ref in ("refs/heads/feature/x", f"refs/heads/{tree.branch}-old", "refs/tags/v1.0.0"):
        event = Event("push", ref=ref, changed_paths=("src/app.py", "deploy/production.json"))
        assert not tree.reached(event), f"{ref} starts workflows"


def production_job(tree: Tree) -> str:
    """The deploy.yml job that deploys to production, or (promotion mode) the one that hands the candidate on."""
    jobs = tree.workflows[DEPLOY]["jobs"]
    if tree.argocd:
        return "propose-staging"  # deploy.yml hands the digest to staging; staging.yml and Argo CD do the rest
    found = [j for j, job in jobs.items() if "production" in json.dumps(job.get("environment", ""))]
    if tree.reviewers:
        assert len(found) == 1, found
        return found[0]
    assert not found, "promotion mode never deploys production from deploy.yml"
    return "candidate"


def test_a_merge_reaches_production_only_through_every_gate(tree: Tree) -> None:
    push = Event("push", ref=f"refs/heads/{tree.branch}", changed_paths=("src/app.py",))
    final = production_job(tree)
    verdicts = jobs_reached(tree.workflows, DEPLOY, push)
    assert verdicts[final].reach is Reach.RUNS, verdicts[final]
    assert {k for k, v in verdicts.items() if v.reach is not Reach.RUNS} == set(), "a clean run runs every job"
    gates = [k for k in verdicts if k.startswith("checks/")] + ["build", "evidence", "deploy-staging", "dast"]
    for gate in gates:
        if gate not in verdicts:
            continue
        for outcome in ("failure", "cancelled"):
            after = jobs_reached(tree.workflows, DEPLOY, push, outcomes={gate: outcome})
            assert after[final].reach is Reach.SKIPPED, f"{final} runs after {gate} {outcome}: {after[final]}"


def test_promotion_runs_only_for_a_change_of_the_promotion_file(tree: Tree) -> None:
    if tree.reviewers:
        assert PROMOTE not in tree.workflows
        return
    on_main = f"refs/heads/{tree.branch}"
    promotion = "argocd/environments/production/release.json" if tree.argocd else "deploy/production.json"
    promoted = jobs_reached(tree.workflows, PROMOTE, Event("push", ref=on_main, changed_paths=(promotion,)))
    assert promoted and all(v.reach is Reach.RUNS for v in promoted.values()), promoted
    assert not jobs_reached(tree.workflows, PROMOTE, Event("push", ref=on_main, changed_paths=("src/app.py",)))
    assert not jobs_reached(tree.workflows, PROMOTE, Event("workflow_dispatch")), "no manual way around the review"


def test_no_workflow_runs_with_a_forks_code_and_secrets(tree: Tree) -> None:
    dangerous = {"pull_request_target", "workflow_run", "issue_comment"}
    for path, workflow in tree.workflows.items():
        triggers = workflow.get("on", workflow.get(True))
        names = (
            set(triggers) if isinstance(triggers, dict) else set(triggers if isinstance(triggers, list) else [triggers])
        )
        assert not names & dangerous, f"{path}: {names & dangerous}"


LEVEL = {"none": 0, "read": 1, "write": 2}


def _grants(permissions: Any) -> dict[str, int]:
    if permissions in ("read-all", "write-all"):
        raise AssertionError(f"{permissions}: the generated workflows grant scopes one by one")
    return {scope: LEVEL[level] for scope, level in (permissions or {}).items()}


def test_called_jobs_ask_no_more_than_their_caller_grants(tree: Tree) -> None:
    """GitHub refuses to start a run whose called job requests a scope its caller job does not grant, so a
    permission added to pr-checks.yml and not to deploy.yml's `checks` would stop every deploy."""
    calls = 0
    for path, workflow in tree.workflows.items():
        for job_id, job in workflow["jobs"].items():
            uses = str(job.get("uses", ""))
            if not uses.startswith(("./", "$/")):
                continue
            calls += 1
            granted = _grants(job.get("permissions"))
            callee = tree.workflows[uses[2:]]
            for called_id, called in callee["jobs"].items():
                asked = _grants(called.get("permissions", callee.get("permissions")))
                over = {s: lvl for s, lvl in asked.items() if lvl > granted.get(s, 0)}
                assert not over, f"{path} job {job_id} -> {called_id} asks {over}, granted {granted}"
    assert calls, "deploy.yml runs the pull-request checks again"


STAGING = ".github/workflows/staging.yml"


def test_argocd_production_is_proposed_only_after_dast_on_synced_staging(tree: Tree) -> None:
    """Under Argo CD: a merged staging promotion runs DAST, and only a passing DAST proposes production; a merged
    promotion rebuilds nothing; no workflow_dispatch reaches the proposals."""
    if not tree.argocd:
        assert STAGING not in tree.workflows
        return
    on_main = f"refs/heads/{tree.branch}"
    staged = Event("push", ref=on_main, changed_paths=("argocd/environments/staging/kustomization.yaml",))
    verdicts = jobs_reached(tree.workflows, STAGING, staged)
    assert set(verdicts) == {"release", "dast", "propose-production"}, verdicts
    assert all(v.reach is Reach.RUNS for v in verdicts.values()), verdicts
    for gate in ("release", "dast"):
        for outcome in ("failure", "cancelled"):
            after = jobs_reached(tree.workflows, STAGING, staged, outcomes={gate: outcome})
            assert after["propose-production"].reach is Reach.SKIPPED, f"production proposed after {gate} {outcome}"
    assert not jobs_reached(tree.workflows, STAGING, Event("push", ref=on_main, changed_paths=("src/app.py",)))
    for env in ("staging", "production"):
        merged = Event("push", ref=on_main, changed_paths=(f"argocd/environments/{env}/kustomization.yaml",))
        assert not jobs_reached(tree.workflows, DEPLOY, merged), f"a merged {env} promotion rebuilds"
    for path in (DEPLOY, STAGING, PROMOTE):
        assert not jobs_reached(tree.workflows, path, Event("workflow_dispatch")), path
