"""Which jobs run for an event: small workflows, each showing one GitHub rule, plus the golden trees."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from generator.pipeline.expressions import UNKNOWN
from generator.pipeline.reach import Event, Reach, Verdict, WorkflowError, jobs_reached, triggered

R, S, M = Reach.RUNS, Reach.SKIPPED, Reach.MAYBE
PR = Event("pull_request", base_ref="main", head_ref="feature/x", action="synchronize")
PUSH = Event("push", ref="refs/heads/main", changed_paths=("src/app.py",))
QUEUE = Event("merge_group", base_ref="main")
MAIN = ".github/workflows/main.yml"


def load(text: str) -> Any:
    return yaml.safe_load(text)


def reached(text: str, event: Event, others: dict[str, str] | None = None, **kw: Any) -> dict[str, Reach]:
    workflows = {MAIN: load(text), **{p: load(t) for p, t in (others or {}).items()}}
    return {key: v.reach for key, v in jobs_reached(workflows, MAIN, event, **kw).items()}


def verdicts(text: str, event: Event, others: dict[str, str] | None = None, **kw: Any) -> dict[str, Verdict]:
    workflows = {MAIN: load(text), **{p: load(t) for p, t in (others or {}).items()}}
    return jobs_reached(workflows, MAIN, event, **kw)


PR_ONLY = """
on: [pull_request, push, merge_group]
jobs:
  always-there: {runs-on: ubuntu-latest, steps: [{run: 'true'}]}
  review:
    if: github.event_name == 'pull_request'
    runs-on: ubuntu-latest
    steps: [{run: 'true'}]
  wrapped:
    if: ${{ github.event_name == 'PULL_REQUEST' }}
    runs-on: ubuntu-latest
    steps: [{run: 'true'}]
"""


@pytest.mark.parametrize(
    ("event", "expected"),
    [(PR, R), (PUSH, S), (QUEUE, S)],
    ids=["pull_request", "push", "merge_group"],
)
def test_pull_request_only_job(event: Event, expected: Reach) -> None:
    assert reached(PR_ONLY, event) == {"always-there": R, "review": expected, "wrapped": expected}


NEEDS = """
on: pull_request
jobs:
  gate: {if: "false", runs-on: x, steps: [{run: 'true'}]}
  after-gate: {needs: gate, runs-on: x, steps: [{run: 'true'}]}
  regardless: {needs: gate, if: always(), runs-on: x, steps: [{run: 'true'}]}
  after-regardless: {needs: regardless, runs-on: x, steps: [{run: 'true'}]}
  checks-result: {needs: gate, if: "always() && needs.gate.result == 'skipped'", runs-on: x, steps: [{run: 'true'}]}
  true-but-after-gate: {needs: gate, if: "github.event_name == 'pull_request'", runs-on: x, steps: [{run: 'true'}]}
"""


def test_job_needing_a_skipped_job_is_skipped() -> None:
    assert reached(NEEDS, PR) == {
        "gate": S,
        "after-gate": S,
        "regardless": R,
        # success() looks at every job upstream, so a skipped grandparent skips it (actions/runner#2205).
        "after-regardless": S,
        "checks-result": R,
        # a condition without a status function is read as `success() && (...)`
        "true-but-after-gate": S,
    }


STATUS = """
on: pull_request
jobs:
  test: {runs-on: x, steps: [{run: 'true'}]}
  report: {needs: test, if: always(), runs-on: x, steps: [{run: 'true'}]}
  notify: {needs: test, if: failure(), runs-on: x, steps: [{run: 'true'}]}
  upload: {needs: test, if: "!cancelled()", runs-on: x, steps: [{run: 'true'}]}
  deploy: {needs: test, runs-on: x, steps: [{run: 'true'}]}
  explicit: {needs: test, if: success(), runs-on: x, steps: [{run: 'true'}]}
  later: {needs: deploy, if: failure(), runs-on: x, steps: [{run: 'true'}]}
"""


def test_status_functions_after_a_failure() -> None:
    assert reached(STATUS, PR, outcomes={"test": "failure"}) == {
        "test": R,
        "report": R,
        "notify": R,
        "upload": R,
        "deploy": S,
        "explicit": S,
        "later": R,  # failure() sees the failed job two levels up
    }


def test_status_functions_when_all_succeed() -> None:
    assert reached(STATUS, PR) == {
        "test": R,
        "report": R,
        "notify": S,
        "upload": R,
        "deploy": R,
        "explicit": R,
        "later": S,
    }


def test_not_cancelled_differs_from_always_when_the_run_is_cancelled() -> None:
    cancelled = Event("pull_request", base_ref="main", action="opened", cancelled=True)
    result = reached(STATUS, cancelled, outcomes={"test": "cancelled"})
    assert result["report"] is R
    assert result["upload"] is S
    assert result["deploy"] is S


UNKNOWNS = """
on: pull_request
jobs:
  same-repo:
    if: ${{ !github.event.pull_request.head.repo.fork }}
    runs-on: x
    steps: [{run: 'true'}]
  flagged: {if: "vars.RUN_E2E == 'true'", runs-on: x, steps: [{run: 'true'}]}
  flagged-or-pr:
    if: vars.RUN_E2E == 'true' || github.event_name == 'pull_request'
    runs-on: x
  flagged-and-push: {if: "vars.RUN_E2E == 'true' && github.event_name == 'push'", runs-on: x, steps: [{run: 'true'}]}
  draft: {if: "!github.event.pull_request.draft", runs-on: x, steps: [{run: 'true'}]}
  after-maybe: {needs: same-repo, runs-on: x, steps: [{run: 'true'}]}
  text-around: {if: "${{ false }} && true", runs-on: x, steps: [{run: 'true'}]}
"""


def test_unknown_values_make_maybe() -> None:
    assert reached(UNKNOWNS, PR) == {
        "same-repo": M,
        "flagged": M,
        "flagged-or-pr": R,
        "flagged-and-push": S,
        "draft": M,
        "after-maybe": M,
        "text-around": R,  # text around ${{ }} makes a non-empty string: always true
    }


def test_known_payload_and_vars_decide() -> None:
    event = Event(
        "pull_request",
        base_ref="main",
        action="opened",
        payload={"pull_request": {"draft": True, "head": {"repo": {"fork": False}}}},
        vars={"RUN_E2E": "TRUE"},
    )
    result = reached(UNKNOWNS, event)
    assert (result["same-repo"], result["flagged"], result["draft"], result["after-maybe"]) == (R, R, S, R)


CALLER = """
on: [pull_request, push]
jobs:
  checks:
    name: CI
    uses: ./.github/workflows/checks.yml
    with: {level: strict}
  shared:
    uses: $/.github/workflows/checks.yml
  remote:
    uses: octo-org/ci/.github/workflows/scan.yml@0123456789abcdef0123456789abcdef01234567
  deploy:
    needs: [checks, shared]
    runs-on: x
    steps: [{run: 'true'}]
"""
CALLED = """
on:
  workflow_call:
    inputs:
      level: {type: string, default: loose}
jobs:
  lint: {name: Lint, runs-on: x, steps: [{run: 'true'}]}
  review: {if: "github.event_name == 'pull_request'", runs-on: x, steps: [{run: 'true'}]}
  strict: {if: "inputs.level == 'strict'", runs-on: x, steps: [{run: 'true'}]}
"""
CHECKS = {".github/workflows/checks.yml": CALLED}


def test_reusable_workflow_jobs_are_named_after_the_caller() -> None:
    result = verdicts(CALLER, PR, CHECKS)
    named = {key: (v.reach, v.names) for key, v in result.items()}
    assert named == {
        "checks": (R, ()),
        "checks/lint": (R, ("CI / Lint",)),
        "checks/review": (R, ("CI / review",)),
        "checks/strict": (R, ("CI / strict",)),
        "shared": (R, ()),
        "shared/lint": (R, ("shared / Lint",)),
        "shared/review": (R, ("shared / review",)),
        "shared/strict": (S, ("shared / strict",)),  # the input's default is 'loose'
        "remote": (M, ()),
        "deploy": (R, ("deploy",)),
    }
    assert result["remote"].uses == "octo-org/ci/.github/workflows/scan.yml@0123456789abcdef0123456789abcdef01234567"


def test_called_workflow_sees_the_callers_event() -> None:
    result = reached(CALLER, PUSH, CHECKS)
    assert (result["checks/review"], result["shared/review"], result["checks/lint"]) == (S, S, R)


def test_failure_inside_a_called_workflow_fails_the_caller() -> None:
    assert reached(CALLER, PR, CHECKS, outcomes={"checks/lint": "failure"})["deploy"] is S


def test_called_workflow_must_be_reusable() -> None:
    with pytest.raises(WorkflowError, match="workflow_call"):
        reached(CALLER, PR, {".github/workflows/checks.yml": "on: push\njobs: {a: {runs-on: x, steps: []}}"})
    with pytest.raises(WorkflowError, match="not in this repository"):
        reached(CALLER, PR)


@pytest.mark.parametrize(
    ("patterns", "branch", "expected"),
    [
        (["feature/*"], "feature/my-branch", True),
        (["feature/*"], "feature/your/branch", False),
        (["feature/**"], "feature/beta-a/my-branch", True),
        (["main", "releases/mona-the-octocat"], "main", True),
        (["v2*"], "v2.0", True),
        (["v[12].[0-9]+.[0-9]+"], "v1.10.1", True),
        (["v[12].[0-9]+.[0-9]+"], "v3.0.0", False),
        (["*"], "releases/x", False),
        (["**"], "releases/x", True),
        (["releases/**", "!releases/**-alpha"], "releases/10", True),
        (["releases/**", "!releases/**-alpha"], "releases/10-alpha", False),
        (["!releases/**-alpha", "releases/**"], "releases/10-alpha", True),  # order matters
        (["Main"], "main", False),  # case-sensitive
    ],
)
def test_branch_filters(patterns: list[str], branch: str, expected: bool) -> None:
    workflow = {"on": {"pull_request": {"branches": patterns}}, "jobs": {}}
    assert triggered(workflow, Event("pull_request", base_ref=branch, action="opened")) is expected


def test_branches_ignore_and_base_branch() -> None:
    workflow = load("on:\n  pull_request:\n    branches-ignore: ['docs/**']\n  merge_group:\n    branches: [main]\n")
    assert triggered(workflow, Event("pull_request", base_ref="docs/x", head_ref="main", action="opened")) is False
    assert triggered(workflow, Event("pull_request", base_ref="main", head_ref="docs/x", action="opened")) is True
    assert triggered(workflow, Event("merge_group", base_ref="main")) is True
    assert triggered(workflow, Event("merge_group", base_ref="release")) is False
    assert triggered(workflow, Event("pull_request", action="opened")) is UNKNOWN  # base branch not given


def test_both_include_and_ignore_is_invalid() -> None:
    with pytest.raises(WorkflowError, match="branches-ignore"):
        triggered({"on": {"push": {"branches": ["a"], "branches-ignore": ["b"]}}}, PUSH)


@pytest.mark.parametrize(
    ("paths", "changed", "expected"),
    [
        ({"paths": ["**.js"]}, ("src/app.py",), False),
        ({"paths": ["**.js"]}, ("src/app.py", "web/app.js"), True),
        ({"paths": ["*.md"]}, ("docs/guide.md",), False),
        ({"paths": ["**/README.md"]}, ("README.md",), True),
        ({"paths": ["sub/**", "!sub/docs/**"]}, ("sub/docs/a.md",), False),
        ({"paths-ignore": ["docs/**"]}, ("docs/a.md",), False),
        ({"paths-ignore": ["docs/**"]}, ("docs/a.md", "src/b.py"), True),
        ({"paths": ["src/**"]}, None, UNKNOWN),
        ({"paths-ignore": ["docs/**"]}, None, UNKNOWN),
        ({}, None, True),
    ],
)
def test_paths_filters(paths: dict[str, Any], changed: tuple[str, ...] | None, expected: object) -> None:
    workflow = {"on": {"push": paths}}
    assert triggered(workflow, Event("push", ref="refs/heads/main", changed_paths=changed)) is expected


def test_unknown_paths_make_every_job_maybe() -> None:
    text = "on: {pull_request: {paths: ['src/**']}}\njobs: {a: {runs-on: x, steps: []}, b: {if: 'false', runs-on: x}}"
    assert reached(text, PR) == {"a": M, "b": S}
    assert reached(text, Event("pull_request", base_ref="main", action="opened", changed_paths=("docs/x",))) == {}


def test_push_tags_and_branches() -> None:
    tags_only = {"on": {"push": {"tags": ["v*"], "paths": ["src/**"]}}}
    assert triggered(tags_only, Event("push", ref="refs/heads/main", changed_paths=("src/a",))) is False
    assert triggered(tags_only, Event("push", ref="refs/tags/v1.2", changed_paths=("docs/a",))) is True  # no paths
    assert triggered({"on": "push"}, Event("push")) is True
    assert triggered({"on": {"push": {"branches": ["main"]}}}, Event("push")) is UNKNOWN


def test_activity_types() -> None:
    labeled = {"on": {"pull_request": {"types": ["labeled"]}}}
    opened = {"on": {"pull_request": {"types": ["opened"]}}}
    defaults = {"on": ["pull_request"]}
    assert triggered(labeled, Event("pull_request", action="labeled")) is True
    assert triggered(labeled, Event("pull_request")) is False  # no action: one of the default types
    assert triggered(opened, Event("pull_request")) is UNKNOWN
    assert triggered(defaults, Event("pull_request", action="closed")) is False
    assert triggered(defaults, Event("pull_request", action="reopened")) is True
    assert triggered({"on": {"workflow_dispatch": None, "schedule": [{"cron": "0 0 * * *"}]}}, Event("schedule"))
    assert triggered({"on": "workflow_call"}, Event("workflow_call")) is True
    assert triggered({"on": "push"}, Event("pull_request")) is False


@pytest.mark.parametrize(
    ("jobs", "match"),
    [
        ("{a: {needs: b, runs-on: x}}", "needs 'b'"),
        (
            "{a: {needs: b, runs-on: x}, b: {needs: [c], runs-on: x}, c: {needs: a, runs-on: x}}",
            "cycle: a -> b -> c -> a",
        ),
        ("{a: {needs: a, runs-on: x}}", "cycle"),
        ("{a: {if: env.X == 'y', runs-on: x}}", "Unrecognized named-value: 'env'"),
        ("{a: {if: \"hashFiles('x') != ''\", runs-on: x}}", "hashFiles"),
        ("{a: {if: 'github.ref = 1', runs-on: x}}", "position 12"),
    ],
    ids=["missing-need", "cycle", "self-need", "job-if-env", "job-if-hashfiles", "bad-syntax"],
)
def test_invalid_workflows(jobs: str, match: str) -> None:
    with pytest.raises(WorkflowError, match=match):
        reached(f"on: pull_request\njobs: {jobs}", PR)


def test_malformed_workflows_are_typed_errors() -> None:
    for doc in ("just text", "jobs: {}", "on: push\njobs: {}"):
        with pytest.raises(WorkflowError):
            jobs_reached({MAIN: load(doc)}, MAIN, PUSH)


def test_untriggered_workflow_has_no_checks() -> None:
    assert reached("on: push\njobs: {a: {runs-on: x}}", PR) == {}


MATRIX = """
on: pull_request
jobs:
  test:
    runs-on: x
    strategy:
      matrix:
        os: [ubuntu, windows]
        python: ['3.11', 3.10]
        exclude: [{os: windows, python: 3.10}]
        include:
          - {os: ubuntu, experimental: true}
          - {os: macos, python: '3.12'}
  named:
    name: Build ${{ matrix.target }}
    runs-on: x
    strategy: {matrix: {target: [web, api]}}
  plain-name:
    name: Lint
    runs-on: x
    strategy: {matrix: {node: [20, 22], empty: ['']}}
  dynamic:
    runs-on: x
    strategy: {matrix: {v: '${{ fromJSON(needs.x.outputs.list) }}'}}
  skipped:
    if: github.event_name == 'push'
    name: Skip ${{ matrix.v }}
    runs-on: x
    strategy: {matrix: {v: [1, 2]}}
  event-name:
    name: On ${{ github.event_name }}
    runs-on: x
"""


def test_static_matrix_check_names() -> None:
    names = {key: v.names for key, v in verdicts(MATRIX, PR).items()}
    assert names == {
        "test": (
            "test (ubuntu, 3.11, true)",
            "test (ubuntu, 3.1, true)",  # YAML's 3.10 is the number 3.1
            "test (windows, 3.11)",
            "test (macos, 3.12)",
        ),
        "named": ("Build web", "Build api"),
        "plain-name": ("Lint (20)", "Lint (22)"),  # values are appended even to a name without matrix
        "dynamic": (),  # known only at run time
        "skipped": ("Skip ${{ matrix.v }}",),  # a skipped matrix job reports once, unexpanded
        "event-name": ("On pull_request",),
    }


GOLDEN = Path(__file__).parent.parent / "golden"


def _golden(scenario: str) -> dict[str, Any]:
    root = GOLDEN / scenario
    return {
        str(p.relative_to(root)): yaml.safe_load(p.read_text())
        for p in sorted((root / ".github" / "workflows").glob("*.yml"))
    }


GITHUB_GOLDENS = sorted(p.name for p in GOLDEN.iterdir() if (p / ".github" / "workflows").is_dir())
GITLAB_GOLDENS = sorted(p.name for p in GOLDEN.iterdir() if (p / ".gitlab-ci.yml").is_file())


@pytest.mark.parametrize("scenario", GITHUB_GOLDENS)
def test_generated_pull_request_checks_all_run(scenario: str) -> None:
    """Every job of the generated PR pipeline reports a real (not skipped) check on a pull request."""
    answers = yaml.safe_load((GOLDEN / scenario / ".copier-answers.yml").read_text())
    event = Event("pull_request", base_ref=answers["default_branch"], head_ref="feature", action="opened")
    result = jobs_reached(_golden(scenario), ".github/workflows/pr-checks.yml", event)
    assert result and all(v.reach is R for v in result.values()), result
    assert all(v.names == (key,) for key, v in result.items())


DISPATCH = """
on:
  workflow_dispatch:
    inputs:
      deploy: {type: boolean, default: false}
      target: {type: string}
jobs:
  deploy: {if: inputs.deploy, runs-on: x}
  target: {if: "inputs.target == 'prod'", runs-on: x}
  on-push: {if: "github.event_name == 'push'", runs-on: x}
"""


def test_dispatch_inputs_defaults_and_given_values() -> None:
    assert reached(DISPATCH, Event("workflow_dispatch")) == {"deploy": S, "target": M, "on-push": S}
    given = Event("workflow_dispatch", inputs={"deploy": True, "target": "prod"})
    assert reached(DISPATCH, given) == {"deploy": R, "target": R, "on-push": S}


def test_event_implies_the_github_context() -> None:
    github = PR.github()
    assert (github["event_name"], github["base_ref"], github["head_ref"]) == ("pull_request", "main", "feature/x")
    assert github["event"]["pull_request"]["base"]["ref"] == "main"
    assert github["event"]["action"] == "synchronize"
    assert PUSH.github()["ref_name"] == "main" and PUSH.github()["head_ref"] == ""
    assert "ref" not in PR.github()  # refs/pull/<number>/merge: the number is not given
    assert QUEUE.github()["event"]["merge_group"]["base_ref"] == "refs/heads/main"


@pytest.mark.parametrize("scenario", GITLAB_GOLDENS)
def test_gitlab_golden_reachability(scenario: str) -> None:
    """Issue 10: resolving workflow:rules, rules: and needs: of the generated .gitlab-ci.yml, every scanner job runs
    in merge-request pipelines (and on the default branch), the production job is never in a merge-request
    pipeline and is manual on the default branch, and the scheduled jobs run only on schedules (or by hand)."""
    from generator.pipeline import gitlab
    from generator.pipeline.model import MANUAL, MERGE_QUEUE, PULL_REQUEST, PUSH, SCHEDULE
    from generator.repo import Repo

    answers = yaml.safe_load((GOLDEN / scenario / ".copier-answers.yml").read_text())
    pipeline = gitlab.build(Repo(GOLDEN / scenario), answers["default_branch"])
    adapter = pipeline.adapter
    assert isinstance(adapter, gitlab.GitLabAdapter) and not adapter.refused and not pipeline.opaque
    categories = {"sast", "sca", "sbom", "secrets", "tests", "drift"}
    categories |= {"iac"} if answers.get("iac") else set()
    categories |= {"image-scan"} if answers.get("containers") else set()
    for category in sorted(categories):
        jobs = [j for j in pipeline.jobs if any(i.tool.category == category for i in j.invocations())]
        gating = [j for j in jobs if j.reached[PULL_REQUEST] == "runs" and j.not_blocking(PULL_REQUEST) is None]
        assert gating, (category, {j.id: j.reached for j in jobs})
    # Whatever is in the merge-request pipeline can fail it: nothing there is manual or allowed to fail.
    for job in pipeline.gating_jobs():
        assert job.not_blocking(PULL_REQUEST) is None, (job.id, job.not_blocking(PULL_REQUEST))
    [production] = pipeline.production_jobs()
    assert production.reached[PULL_REQUEST] == production.reached[MERGE_QUEUE] == "never"
    if answers["deploy_model"] == "argocd":
        # A merged production promotion (a push that may or may not change its manifests: files unknown here).
        assert production.id == "verify-production"
        assert adapter.when(production, PUSH) == {"never", "on_success"}
    else:
        assert adapter.when(production, PUSH) == {"manual"}
    for job in pipeline.jobs:
        if job.id in {"rollback-drill", "audit-export"}:
            assert job.reached[PULL_REQUEST] == job.reached[PUSH] == "never", (job.id, job.reached)
            assert job.runs_on(SCHEDULE, MANUAL), (job.id, job.reached)
