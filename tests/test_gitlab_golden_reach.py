"""What each GitLab pipeline source really runs in every GitLab golden tree, resolved by the audit's GitLab
adapter (generator/pipeline/gitlab.py: workflow:rules, rules, needs, when, allow_failure).

The claims under test are the ones the rendered CONTROLS.md and .gitlab-ci.yml make: GitLab creates every
pipeline (no `needs:` on a job the same pipeline lacks); every scanner runs in merge-request pipelines and can
fail them; nothing that deploys runs for a merge request; production runs only on the default branch, only by
hand, after every check, staging and DAST; a failed production job is rolled back; schedules run only the
export and the drill.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from generator.pipeline import gitlab
from generator.pipeline.model import MANUAL, MERGE_QUEUE, PULL_REQUEST, PUSH, SCHEDULE, TAG, Pipeline
from generator.repo import Repo

GOLDEN = Path(__file__).parent.parent / "golden"
SCENARIOS = sorted(p.name for p in GOLDEN.iterdir() if (p / ".gitlab-ci.yml").is_file())
# Trees whose CI deploys (platform environments); Argo CD trees are judged in test_gitlab_argocd_reach.py.
DEPLOYING_TREES = [s for s in SCENARIOS if not (GOLDEN / s / "argocd").is_dir()]
DEPLOYING = {
    "build",
    "evidence",
    "deploy-staging",
    "dast",
    "deploy-production",
    "rollback-production",
    "record-production",
}


class Tree:
    def __init__(self, scenario: str) -> None:
        self.root = GOLDEN / scenario
        self.answers = yaml.safe_load((self.root / ".copier-answers.yml").read_text())
        self.pipeline: Pipeline = gitlab.build(Repo(self.root), str(self.answers["default_branch"]))
        self.jobs = {j.id: j for j in self.pipeline.jobs}

    def scanners(self) -> set[str]:
        found = {"sast", "sca", "sbom", "secrets", "unit-tests", "controls-drift"}
        if self.answers["iac"]:
            found.add("iac")
        if self.answers["containers"]:
            found.add("container")
        return found

    def when(self, job: str, event: str) -> set[str]:
        return self.pipeline.adapter.when(self.jobs[job], event)  # type: ignore[attr-defined, no-any-return]


@pytest.fixture(params=SCENARIOS)
def tree(request: pytest.FixtureRequest) -> Tree:
    return Tree(request.param)


@pytest.fixture(params=DEPLOYING_TREES)
def deploying(request: pytest.FixtureRequest) -> Tree:
    return Tree(request.param)


def test_there_are_gitlab_goldens() -> None:
    assert len(SCENARIOS) >= 3, SCENARIOS


def test_gitlab_creates_every_pipeline(tree: Tree) -> None:
    assert tree.pipeline.adapter.refused == {}, tree.pipeline.adapter.refused  # type: ignore[attr-defined]


@pytest.mark.parametrize("event", [PULL_REQUEST, MERGE_QUEUE])
def test_every_scanner_runs_and_blocks_in_merge_request_pipelines(tree: Tree, event: str) -> None:
    for name in sorted(tree.scanners()):
        job = tree.jobs[name]
        assert job.reached[event] == "runs", f"{name} on {event}: {job.reached}"
        assert tree.when(name, event) == {"on_success"}
        assert job.not_blocking(event) is None, job.not_blocking(event)


def test_the_merged_commit_is_checked_again(tree: Tree) -> None:
    # The container job scans the MR's unpushed image; on the default branch `build` scans the pushed one.
    for name in sorted(tree.scanners() - {"container"}):
        assert tree.jobs[name].reached[PUSH] == "runs", name
        assert tree.jobs[name].not_blocking(PUSH) is None


@pytest.mark.parametrize("event", [PULL_REQUEST, MERGE_QUEUE, SCHEDULE, TAG])
def test_nothing_deploys_outside_the_default_branch_push(deploying: Tree, event: str) -> None:
    for name in sorted(DEPLOYING):
        assert deploying.jobs[name].reached[event] == "never", f"{name} on {event}"


def test_production_is_manual_on_the_default_branch_only(deploying: Tree) -> None:
    production = deploying.jobs["deploy-production"]
    assert deploying.when("deploy-production", PUSH) == {"manual"}
    assert all(production.reached[e] == "never" for e in (PULL_REQUEST, MERGE_QUEUE, SCHEDULE, MANUAL, TAG))
    assert deploying.pipeline.adapter.deploys_to_production(production)  # type: ignore[attr-defined]
    # It stands on every check, the build, the evidence, staging and DAST (needs: a failed one stops it).
    assert set(production.needs) >= deploying.scanners() - {"container"} | {
        "build",
        "evidence",
        "deploy-staging",
        "dast",
    }
    assert production.data["resource_group"] == "production"
    assert production.data["interruptible"] is False


def test_a_failed_production_job_is_rolled_back_and_recorded(deploying: Tree) -> None:
    assert deploying.when("rollback-production", PUSH) == {"on_failure"}
    assert "deploy-production" in deploying.jobs["rollback-production"].needs
    assert deploying.when("record-production", PUSH) == {"on_success"}
    assert "deploy-production" in deploying.jobs["record-production"].needs
    assert not deploying.pipeline.adapter.deploys_to_production(deploying.jobs["rollback-production"])  # type: ignore[attr-defined]


def test_schedules_run_only_the_export_the_checks_and_the_drill(deploying: Tree) -> None:
    scheduled = {name for name, job in deploying.jobs.items() if job.reached[SCHEDULE] != "never"}
    stored = deploying.answers["evidence_store"] != "none"
    daily_verification = {"verify-evidence", "protect-ship"} if stored else set()
    assert scheduled == {"tools", "audit-export", "rollback-drill", "protect-check"} | daily_verification
    if stored:  # the snapshot is shipped whether the check found drift or not
        assert deploying.when("protect-ship", SCHEDULE) == {"never", "always"}
    # Each picks its schedule by the PIPEPROOF_SCHEDULE variable the schedule sets, so either may run.
    assert deploying.when("audit-export", SCHEDULE) == {"never", "on_success"}
    assert deploying.when("rollback-drill", SCHEDULE) == {"never", "on_success"}
    # The drill can also be started by hand (a web pipeline); the export only by its schedule.
    assert deploying.jobs["rollback-drill"].reached[MANUAL] == "maybe"
    assert deploying.jobs["audit-export"].reached[MANUAL] == "never"


def test_the_merge_request_critical_path_is_two_jobs(tree: Tree) -> None:
    # tools (the pinned scanners) -> each check, all in parallel: GitLab starts a job as soon as its needs pass.
    ci = yaml.safe_load((tree.root / ".gitlab-ci.yml").read_text())

    def depth(name: str) -> int:
        needs = [n if isinstance(n, str) else n["job"] for n in ci[name].get("needs", [])]
        return 1 + max((depth(n) for n in needs), default=0)

    for name in tree.scanners():
        assert "needs" in ci[name], f"{name} would wait for every job of the earlier stages"
        assert depth(name) <= 2, name


def test_unit_tests_cache_dependencies_keyed_on_the_lock_file(tree: Tree) -> None:
    ci = yaml.safe_load((tree.root / ".gitlab-ci.yml").read_text())
    cache = ci["unit-tests"]["cache"]
    lock = {"python": "pyproject.toml", "node": "package-lock.json", "go": "go.sum", "java": "pom.xml"}
    assert cache["key"]["files"] == [lock[tree.answers["language"]]]
    assert cache["paths"]


def test_the_gitlab_goldens_cover_every_language() -> None:
    languages = {yaml.safe_load((GOLDEN / s / ".copier-answers.yml").read_text())["language"] for s in SCENARIOS}
    assert languages == {"python", "node", "go", "java"}
