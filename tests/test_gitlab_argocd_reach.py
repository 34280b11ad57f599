"""What each pipeline source and each kind of push really runs in the GitLab Argo CD golden trees, resolved by
the audit's GitLab adapter with the pushed files known (rules:changes decided, not assumed).

The claims under test are those of the rendered .gitlab-ci.yml and CONTROLS.md: a code push builds, ships the
evidence and proposes the digest to staging; the merge of that proposal runs DAST against the synced staging
and only a passing scan proposes production; the merge of the production proposal is verified and recorded,
whatever the verification finds; nothing of that runs for a merge request or a schedule; the rollback runs only
when started by hand; the sync record only on the daily schedule. CI never deploys to a cluster.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from generator.pipeline import gitlab
from generator.pipeline.model import MANUAL, MERGE_QUEUE, PULL_REQUEST, PUSH, SCHEDULE, TAG, Pipeline
from generator.repo import Repo

GOLDEN = Path(__file__).parent.parent / "golden"
SCENARIOS = sorted(p.name for p in GOLDEN.iterdir() if (p / ".gitlab-ci.yml").is_file() and (p / "argocd").is_dir())
GITOPS = {"build", "evidence", "propose-staging", "dast", "propose-production", "verify-production"}
GITOPS |= {"record-production", "rollback", "rollback-ship", "sync-record"}

CODE = ("src/app.py",)
STAGING = ("argocd/environments/staging/kustomization.yaml", "argocd/environments/staging/release.json")
PRODUCTION = ("argocd/environments/production/kustomization.yaml", "argocd/environments/production/release.json")


class Tree:
    jobs: dict[str, Any]

    def __init__(self, scenario: str, changed: tuple[str, ...]) -> None:
        root = GOLDEN / scenario
        self.answers = yaml.safe_load((root / ".copier-answers.yml").read_text())
        self.pipeline: Pipeline = gitlab.build(Repo(root), str(self.answers["default_branch"]), changed)
        self.jobs = {j.id: j for j in self.pipeline.jobs}
        self.gitops = GITOPS & set(self.jobs)  # rollback-ship exists only with an evidence store

    def running(self, event: str) -> set[str]:
        """The GitOps jobs the event adds for certain."""
        return {name for name in self.gitops if self.jobs[name].reached[event] == "runs"}

    def when(self, job: str, event: str) -> set[str]:
        return self.pipeline.adapter.when(self.jobs[job], event)  # type: ignore[attr-defined, no-any-return]


@pytest.fixture(params=SCENARIOS)
def scenario(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def test_there_is_an_argocd_golden_per_gitlab_tier_kind() -> None:
    tiers = {yaml.safe_load((GOLDEN / s / ".copier-answers.yml").read_text())["gitlab_tier"] for s in SCENARIOS}
    assert {"free", "premium"} <= tiers, SCENARIOS


def test_gitlab_creates_every_pipeline(scenario: str) -> None:
    for changed in (CODE, STAGING, PRODUCTION):
        assert Tree(scenario, changed).pipeline.adapter.refused == {}  # type: ignore[attr-defined]


def test_a_code_push_builds_and_proposes_staging_only(scenario: str) -> None:
    tree = Tree(scenario, CODE)
    assert tree.running(PUSH) == {"build", "evidence", "propose-staging"}
    assert {"tools", "build", "evidence"} <= set(tree.jobs["propose-staging"].needs)


def test_the_merged_staging_proposal_runs_dast_then_proposes_production(scenario: str) -> None:
    tree = Tree(scenario, STAGING)
    assert tree.running(PUSH) == {"dast", "propose-production"}
    # Only a passing scan proposes production: the proposal needs the scan, which blocks.
    assert "dast" in tree.jobs["propose-production"].needs
    assert tree.when("propose-production", PUSH) == {"on_success"}
    assert tree.jobs["dast"].not_blocking(PUSH) is None


def test_the_merged_production_proposal_is_verified_and_always_recorded(scenario: str) -> None:
    tree = Tree(scenario, PRODUCTION)
    assert tree.running(PUSH) == {"verify-production", "record-production"}
    assert tree.when("record-production", PUSH) == {"always"}
    assert "verify-production" in tree.jobs["record-production"].needs
    adapter = tree.pipeline.adapter
    assert adapter.deploys_to_production(tree.jobs["verify-production"])  # type: ignore[attr-defined]
    assert not adapter.deploys_to_production(tree.jobs["record-production"])  # type: ignore[attr-defined]
    assert [j.id for j in tree.pipeline.production_jobs()] == ["verify-production"]


def test_a_push_that_mixes_code_and_manifests_builds_nothing(scenario: str) -> None:
    # Promotions change only argocd/environments/; a hand-made commit that also changes code is not built
    # (the documented rule of on_default), and staging's merge still gets its DAST.
    tree = Tree(scenario, CODE + STAGING)
    assert tree.running(PUSH) == {"dast", "propose-production"}


@pytest.mark.parametrize("event", [PULL_REQUEST, MERGE_QUEUE, TAG])
def test_nothing_gitops_runs_for_a_merge_request_or_a_tag(scenario: str, event: str) -> None:
    for changed in (CODE, STAGING, PRODUCTION):
        tree = Tree(scenario, changed)
        reached = {name: tree.jobs[name].reached[event] for name in tree.gitops}
        assert set(reached.values()) == {"never"}, (changed, reached)


def test_schedules_run_the_sync_record_and_nothing_that_promotes(scenario: str) -> None:
    tree = Tree(scenario, CODE)
    scheduled = {name for name in tree.gitops if tree.jobs[name].reached[SCHEDULE] != "never"}
    assert scheduled == {"sync-record"}
    assert tree.when("sync-record", SCHEDULE) == {"never", "on_success"}  # the audit-export schedule only


def test_the_rollback_runs_only_when_started_by_hand(scenario: str) -> None:
    tree = Tree(scenario, CODE)
    by_hand = {name for name in tree.gitops if tree.jobs[name].reached[MANUAL] != "never"}
    assert by_hand == {"rollback"} | ({"rollback-ship"} & tree.gitops)
    assert tree.jobs["rollback"].reached[MANUAL] == "maybe"  # PIPEPROOF_SCHEDULE=rollback picks it


def test_promotions_are_serialised_and_never_cancelled(scenario: str) -> None:
    tree = Tree(scenario, CODE)
    for name in ("propose-staging", "propose-production", "rollback"):
        assert tree.jobs[name].data["resource_group"] == "gitops", name
        assert tree.jobs[name].data["interruptible"] is False, name
    assert tree.jobs["verify-production"].data["interruptible"] is False


def test_ci_never_touches_a_cluster(scenario: str) -> None:
    text = (GOLDEN / scenario / ".gitlab-ci.yml").read_text()
    for word in ("kubectl", "helm ", "argocd app sync", "scripts/deploy.sh"):
        assert word not in text, word
    assert not (GOLDEN / scenario / "scripts" / "deploy.sh").exists()


def test_only_the_gitops_jobs_read_the_write_token(scenario: str) -> None:
    ci = yaml.safe_load((GOLDEN / scenario / ".gitlab-ci.yml").read_text())
    scripts = GOLDEN / scenario / ".gitlab" / "scripts"
    readers = {p.name for p in scripts.iterdir() if "PIPEPROOF_GITOPS_TOKEN" in p.read_text()}
    assert readers == {"gitops-propose.sh", "gitops-revert.sh"}, readers
    for name, job in ci.items():
        if isinstance(job, dict) and "script" in job:
            assert "PIPEPROOF_GITOPS_TOKEN" not in yaml.safe_dump(job), name
