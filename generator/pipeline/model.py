"""One platform-neutral model of a repository's pipeline, built by a platform adapter, judged by the controls.

The model holds what the controls ask about, whatever the platform: jobs with their steps, which events reach
each job (and whether it may be skipped), the tools each step runs and whether each use can fail the job,
environments and approvals, credentials, artifacts and their retention, pins, and the branch-protection and
environment settings kept in the repository. A GitHub workflow, a GitLab `.gitlab-ci.yml` and a reusable
workflow all become the same `Job` and `Step` objects; what only one platform has (token permissions) stays
in `Job.data` for the platform-specific checks the catalog declares as such.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Literal, Protocol, TypeVar

from generator.pipeline import shell
from generator.pipeline.tools import Tool, Use
from generator.repo import Doc, FileError, Repo

# Events, in the platform-neutral names controls use.
PULL_REQUEST = "pull_request"  # a pull or merge request against the default branch
MERGE_QUEUE = "merge_group"  # a merge-queue group (GitHub) or merge train (GitLab)
PUSH = "push"  # a push to the default branch
SCHEDULE = "schedule"
MANUAL = "manual"  # workflow_dispatch, a web-triggered pipeline
TAG = "tag"  # a pushed tag or a published release
EVENTS = (PULL_REQUEST, MERGE_QUEUE, PUSH, SCHEDULE, MANUAL, TAG)
CHANGE_EVENTS = (PULL_REQUEST, MERGE_QUEUE)  # the events that gate a merge

Verdict = Literal["runs", "maybe", "skipped", "never"]


class Adapter(Protocol):
    """What a platform adapter answers about the model it built (the platform's own semantics)."""

    platform: str

    def invocations(self, step: Step) -> list[Invocation]: ...

    def step_not_blocking(self, step: Step, event: str, *, in_job: bool = False) -> str | None: ...

    def job_not_blocking(self, job: Job, event: str) -> str | None: ...

    def deploys_to_production(self, job: Job) -> bool: ...

    def script_text(self, step: Step) -> str: ...


_T = TypeVar("_T")


@dataclass(frozen=True)
class Invocation:
    """One use of a tool by a step: an action, a reusable workflow, or one command of its script."""

    tool: Tool
    step: Step
    where: str  # file:line of the command (inside a followed script, that script's line)
    use: Use
    ignored: str | None = None  # why the shell ignores its exit status, or why it never runs

    def soft(self) -> str | None:
        """Why the tool itself, as configured, reports without failing (its own switch or threshold)."""
        if self.tool.reports_only and self.tool.blocks_through:
            protection = self.step.job.pipeline.protection
            if protection is not None and protection.enforced(self.tool.blocks_through, self.tool.name):
                return self.tool.soft(self.use)
            # Rulesets may live only in the platform's settings, so the files cannot rule the merge rule out.
            return f"{self.tool.reports_only}; no rule in the files does, and one may be set in the live rulesets"
        return self.tool.reports_only or self.tool.soft(self.use)


@dataclass(eq=False)
class Step:
    job: Job
    index: int
    data: Mapping[str, Any]
    where: str  # file:line

    @property
    def uses(self) -> str:
        value = self.data.get("uses")
        return value if isinstance(value, str) else ""

    @property
    def action(self) -> str:
        """owner/repo[/path] of `uses:`, lowercase, without the ref; '' for a script step."""
        return self.uses.split("@", 1)[0].lower()

    @property
    def run(self) -> str:
        value = self.data.get("run")
        return value if isinstance(value, str) else ""

    @property
    def with_(self) -> Mapping[str, Any]:
        value = self.data.get("with")
        return value if isinstance(value, Mapping) else {}

    @property
    def env(self) -> Mapping[str, Any]:
        value = self.data.get("env")
        return value if isinstance(value, Mapping) else {}

    @property
    def name(self) -> str:
        return str(self.data.get("name") or self.uses or self.run.split("\n")[0])

    def line_of(self, key: str) -> str:
        return self.job.pipeline.at(self.job.file, *self.job.path, "steps", self.index, key)

    @cached_property
    def invocations(self) -> list[Invocation]:
        """Every tool this step runs (set by the adapter)."""
        return self.job.pipeline.adapter.invocations(self)

    def not_blocking(self, event: str, *, in_job: bool = False) -> str | None:
        """Why a failure of this step would not fail its job on `event`, or None.

        `in_job`: judge the step alone, taking its job as running (a gate in a production job that may not
        run on an event still stops that job when it does).
        """
        return self.job.pipeline.adapter.step_not_blocking(self, event, in_job=in_job)

    @cached_property
    def text(self) -> str:
        """The script with every repository script, Makefile recipe and local action it runs."""
        return self.job.pipeline.adapter.script_text(self)


@dataclass(eq=False)
class Job:
    pipeline: Pipeline
    file: str  # the workflow file (or .gitlab-ci.yml)
    id: str
    name: str  # what the platform reports it as (a GitHub check-run name, a GitLab job name)
    data: Mapping[str, Any]
    path: tuple[Any, ...]  # key path of the job inside its file
    reached: dict[str, Verdict] = field(default_factory=dict)  # per event
    names: tuple[str, ...] = ()  # every check-run name it reports (a static matrix reports one per combination)
    called_by: Job | None = None  # the caller, for a job of a reusable workflow
    invalid: str | None = None  # why the platform would reject the workflow (so nothing in it runs)

    @property
    def where(self) -> str:
        return self.pipeline.at(self.file, *self.path)

    def at(self, *keys: Any) -> str:
        return self.pipeline.at(self.file, *self.path, *keys)

    @cached_property
    def steps(self) -> list[Step]:
        steps = self.data.get("steps")
        if not isinstance(steps, list):
            return []
        return [
            Step(self, i, s, self.pipeline.at(self.file, *self.path, "steps", i))
            for i, s in enumerate(steps)
            if isinstance(s, Mapping)
        ]

    @property
    def environment(self) -> str:
        """The deployment environment's name, lowercase ('' when none)."""
        env = self.data.get("environment")
        if isinstance(env, Mapping):
            env = env.get("name")
        return env.strip().lower() if isinstance(env, str) else ""

    @property
    def calls(self) -> str:
        """A reusable workflow this job calls (GitHub `jobs.X.uses`), or ''."""
        value = self.data.get("uses")
        return value if isinstance(value, str) else ""

    @property
    def needs(self) -> list[str]:
        needs = self.data.get("needs", [])
        if isinstance(needs, str):
            return [needs]
        if isinstance(needs, list):
            return [n if isinstance(n, str) else str(n.get("job", "")) for n in needs if isinstance(n, (str, dict))]
        return []

    def runs_on(self, *events: str) -> bool:
        """Whether the job runs (or may run) on any of the events."""
        return any(self.reached.get(e) in {"runs", "maybe"} for e in events)

    def not_blocking(self, event: str) -> str | None:
        return self.pipeline.adapter.job_not_blocking(self, event)

    @cached_property
    def call(self) -> Step | None:
        """The reusable-workflow call as a step of its own (index -1, `with:` its inputs), or None."""
        if not self.calls:
            return None
        return Step(self, -1, {"with": self.data.get("with")}, self.where)

    @cached_property
    def by_category(self) -> dict[str, list[Invocation]]:
        """This job's tool uses by the tool's category (the controls ask one category at a time)."""
        found: dict[str, list[Invocation]] = {}
        for inv in self.invocations():
            found.setdefault(inv.tool.category, []).append(inv)
        return found

    def invocations(self) -> Iterator[Invocation]:
        if self.call is not None:
            yield from self.call.invocations
        for step in self.steps:
            yield from step.invocations


@dataclass(frozen=True)
class RequiredCheck:
    """A status check branch protection requires, where it is declared, and the app it is pinned to."""

    context: str
    app: int | None
    where: str


@dataclass
class Protection:
    """Branch protection of the default branch as declared in the repository (settings file, rulesets)."""

    declared: bool  # some source exists at all
    sources: list[str]  # where (file:line) each source is
    applies: dict[str, str]  # source -> why the platform would not apply it ('' when it would)
    values: dict[str, list[tuple[Any, str]]]  # neutral setting name -> [(value, where)] per source
    required_checks: list[RequiredCheck] = field(default_factory=list)
    bypass: list[str] = field(default_factory=list)  # where a bypass is allowed

    def get(self, key: str) -> list[tuple[Any, str]]:
        return self.values.get(key, [])

    def enforced(self, key: str, name: str) -> str | None:
        """Where a source the platform applies sets `key` for `name` (a rule listing tools), or None."""
        live = {s.split(":")[0] for s, why in self.applies.items() if not why}
        return next(
            (where for value, where in self.get(key) if where.split(":")[0] in live and name in (value or ())),
            None,
        )


@dataclass(frozen=True)
class Environment:
    name: str
    where: str
    branches: tuple[str, ...] | None  # deployment branch policy; None when any branch may deploy
    reviewers: int  # required reviewers declared in the repository (0 when none or unknown)


@dataclass(eq=False)
class Pipeline:
    """Everything the controls judge, from one repository."""

    platform: str
    repo: Repo
    adapter: Adapter  # the platform adapter that built this (it answers the platform-specific questions)
    default_branch: str
    jobs: list[Job] = field(default_factory=list)
    protection: Protection | None = None
    environments: dict[str, Environment] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)  # other declared settings (secret scanning, ...)
    read: dict[str, int] = field(default_factory=dict)  # what was read: {"workflows": 3, ...}
    docs: dict[str, Doc] = field(default_factory=dict)  # parsed files by path, for locations
    # Configuration the files pull in but the audit cannot read (a remote include): (where, what); whatever
    # it may add makes a missing control unknown rather than failed.
    opaque: list[tuple[str, str]] = field(default_factory=list)
    # Facts the controls derive again and again, each kept with the job count it was computed for.
    _cache: dict[Any, tuple[int, Any]] = field(default_factory=dict, repr=False)

    @property
    def errors(self) -> list[FileError]:
        return self.repo.errors

    def at(self, path: str, *keys: Any) -> str:
        doc = self.docs.get(path)
        return doc.at(*keys) if doc is not None else f"{path}:1"

    def steps(self) -> Iterator[Step]:
        for job in self.jobs:
            yield from job.steps

    def gating_jobs(self) -> list[Job]:
        """Jobs that run on a pull request or merge-queue group (the ones that can gate a merge)."""
        return self.cached("gating", lambda: [job for job in self.jobs if job.runs_on(*CHANGE_EVENTS)])

    def production_jobs(self) -> list[Job]:
        return self.cached("production", lambda: [job for job in self.jobs if self.adapter.deploys_to_production(job)])

    def cached(self, key: Any, compute: Callable[[], _T]) -> _T:
        """compute() once per key for this pipeline, again only if jobs were added since."""
        memo = self._cache.get(key)
        if memo is None or memo[0] != len(self.jobs):
            memo = self._cache[key] = (len(self.jobs), compute())
        return memo[1]

    def same_run(self, job: Job) -> list[Job]:
        """The jobs of the same workflow in the same run as JOB (a called workflow's jobs are their own run;
        on GitLab every job of the configuration, includes too, is one pipeline)."""
        if self.platform == "gitlab":
            return self.jobs
        return self._grouped("run", lambda j: (j.file, id(j.called_by))).get((job.file, id(job.called_by)), [])

    def called_by(self, job: Job) -> list[Job]:
        """The jobs a reusable-workflow call brings into the run."""
        return self._grouped("callees", lambda j: id(j.called_by)).get(id(job), [])

    def by_name(self) -> dict[Any, list[Job]]:
        """Jobs by the name their check runs report."""
        return self._grouped("name", lambda j: j.name)

    def job_of_step(self, step: Mapping[str, Any]) -> list[Job]:
        """The jobs a step mapping belongs to (one, or several for a workflow called more than once)."""

        def index() -> dict[int, list[Job]]:
            found: dict[int, list[Job]] = {}
            for job in self.jobs:
                for s in job.steps:
                    found.setdefault(id(s.data), []).append(job)
            return found

        return self.cached("steps", index).get(id(step), [])

    def _grouped(self, key: str, by: Callable[[Job], Any]) -> dict[Any, list[Job]]:
        def index() -> dict[Any, list[Job]]:
            found: dict[Any, list[Job]] = {}
            for job in self.jobs:
                found.setdefault(by(job), []).append(job)
            return found

        return self.cached(key, index)

    def invocations(self, category: str, jobs: list[Job] | None = None) -> list[Invocation]:
        jobs = self.jobs if jobs is None else jobs
        return [inv for job in jobs for inv in job.by_category.get(category, ())]

    def why_not_blocking(self, inv: Invocation, events: tuple[str, ...] = CHANGE_EVENTS) -> str | None:
        """Why a tool use would not fail the change it checks on these events, or None when it blocks."""
        job = inv.step.job
        if job.invalid:
            return job.invalid
        reasons = []
        for event in events:
            why = inv.step.not_blocking(event)
            if why:
                reasons.append(why)
                continue
            return inv.ignored or inv.soft()
        return reasons[0] if reasons else f"job {job.name} does not run on {', '.join(events)}"


def errexit_pipefail(shell_name: str | None, platform: str) -> tuple[bool, bool]:
    """The errexit and pipefail state a platform starts a `run:` script with."""
    if platform == "gitlab":
        return True, True
    if shell_name is None:
        return True, False  # bash -e {0}
    name = shell_name.strip().split()[0] if shell_name.strip() else ""
    if name == "bash":
        return (True, True) if shell_name.strip() == "bash" else ("-e" in shell_name, "pipefail" in shell_name)
    if name == "sh":
        return True, False
    return False, False


__all__ = [
    "CHANGE_EVENTS",
    "EVENTS",
    "MANUAL",
    "MERGE_QUEUE",
    "PULL_REQUEST",
    "PUSH",
    "SCHEDULE",
    "TAG",
    "Environment",
    "Invocation",
    "Job",
    "Pipeline",
    "Protection",
    "RequiredCheck",
    "Step",
    "Verdict",
    "errexit_pipefail",
    "shell",
]
