"""Which jobs of a GitHub workflow really run for an event, and under which check-run names.

GitHub counts a required status check whose job was skipped as passing, so "the job exists" proves nothing: this
module evaluates `on:` filters, job `if:` conditions, `needs` and reusable-workflow calls the way GitHub does, over
the raw dicts `yaml.safe_load` gives. What cannot be known before the run (a fork flag, a variable, a step output)
makes the answer `maybe`, never a guess. Jobs that run are assumed to succeed unless `outcomes` says otherwise.
"""

from __future__ import annotations

import enum
import itertools
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Final

from generator.errors import UserError
from generator.pipeline.expressions import (
    UNKNOWN,
    EvaluationError,
    ExpressionError,
    Partial,
    Template,
    Unknown,
    condition,
    template,
    to_string,
)

__all__ = ["Event", "Reach", "Verdict", "WorkflowError", "jobs_reached", "triggered"]

Truth = bool | Unknown

# Activity types a trigger listens to when it names none (GitHub docs, "Events that trigger workflows").
DEFAULT_TYPES: Final[Mapping[str, frozenset[str]]] = {
    "pull_request": frozenset({"opened", "synchronize", "reopened"}),
    "pull_request_target": frozenset({"opened", "synchronize", "reopened"}),
    "merge_group": frozenset({"checks_requested"}),
}
PULL_REQUEST_EVENTS: Final = frozenset({"pull_request", "pull_request_target"})
# Contexts a job-level `if:` may use; anything else makes GitHub reject the workflow ("Unrecognized named-value").
JOB_IF_CONTEXTS: Final = frozenset({"github", "needs", "vars", "inputs"})
JOB_NAME_CONTEXTS: Final = JOB_IF_CONTEXTS | {"matrix", "strategy"}
MAX_CALL_DEPTH: Final = 10  # GitHub allows ten levels of nested reusable workflows


class Reach(enum.StrEnum):
    """Whether a job runs for an event: certainly, certainly not, or depending on what only the run knows."""

    RUNS = "runs"
    SKIPPED = "skipped"
    MAYBE = "maybe"


@dataclass(frozen=True)
class Verdict:
    """A job's reach, the check-run names it reports, and why; `uses` names a remote reusable workflow."""

    reach: Reach
    names: tuple[str, ...]
    reason: str
    uses: str | None = None
    call: Reach | None = None  # for a remote call: whether the calling job itself runs (its jobs are unknown)


class WorkflowError(UserError):
    """A workflow GitHub rejects as a whole (needs on a missing job, a cycle, a bad `if:`): no job of it runs."""


@dataclass(frozen=True)
class Event:
    """An event and what it tells the `github` context; anything not given is UNKNOWN.

    `ref` is the full ref (`refs/heads/main`, `refs/tags/v1`), `base_ref` and `head_ref` are branch names,
    `action` the activity type (None: one of the event's default types), `changed_paths` the files the push or
    pull request changes (None: unknown), `payload` known pieces of `github.event`, `inputs` and `vars` their
    contexts (None: unknown), `cancelled` whether the run is being cancelled.
    """

    name: str
    ref: str | None = None
    base_ref: str | None = None
    head_ref: str | None = None
    action: str | None = None
    changed_paths: tuple[str, ...] | None = None
    payload: Mapping[str, Any] = field(default_factory=dict)
    inputs: Mapping[str, Any] | None = None
    vars: Mapping[str, Any] | None = None
    cancelled: bool = False

    def github(self) -> Partial:
        """The `github` context this event implies; keys it does not imply read as UNKNOWN."""
        event = _partial(self.payload)
        known: dict[str, Any] = {"event_name": self.name, "event": event}
        if self.action is not None:
            event.setdefault("action", self.action)
        if self.ref is not None:
            known["ref"] = self.ref
            known["ref_name"] = re.sub(r"^refs/(heads|tags)/", "", self.ref)
            known["ref_type"] = "tag" if self.ref.startswith("refs/tags/") else "branch"
        if self.name in PULL_REQUEST_EVENTS:
            pull = event.setdefault("pull_request", Partial())
            for key, branch in (("base_ref", self.base_ref), ("head_ref", self.head_ref)):
                if branch is not None:
                    known[key] = branch
                    pull.setdefault(key[:4], Partial())["ref"] = branch
        elif self.name == "merge_group":
            if self.base_ref is not None:
                event.setdefault("merge_group", Partial())["base_ref"] = "refs/heads/" + self.base_ref
        else:
            known["base_ref"] = known["head_ref"] = ""  # set only for pull request events
        return Partial(known)


def _partial(value: Any) -> Any:
    if isinstance(value, Mapping):
        return Partial({k: _partial(v) for k, v in value.items()})
    if isinstance(value, list):
        return [_partial(v) for v in value]
    return value


# --- three-valued logic --------------------------------------------------------------------------------------


def _and(*values: Truth) -> Truth:
    if any(v is False for v in values):
        return False
    return UNKNOWN if any(v is UNKNOWN for v in values) else True


def _any(values: Iterable[Truth]) -> Truth:
    seen = list(values)
    if any(v is True for v in seen):
        return True
    return UNKNOWN if any(v is UNKNOWN for v in seen) else False


# --- on: ------------------------------------------------------------------------------------------------------


def _triggers(workflow: Mapping[Any, Any]) -> dict[str, Any]:
    if not isinstance(workflow, Mapping):
        raise WorkflowError(f"a workflow is a mapping, not {type(workflow).__name__}")
    # PyYAML reads a bare `on:` key as the boolean True (YAML 1.1).
    on = workflow.get("on", workflow.get(True))
    if isinstance(on, str):
        return {on: None}
    if isinstance(on, list):
        return {str(e): None for e in on}
    if isinstance(on, Mapping):
        return {str(k): v for k, v in on.items()}
    raise WorkflowError(f"the workflow has no `on:` (got {on!r})")


def _strings(value: Any) -> list[str]:
    if value is None:
        return []
    return [str(v) for v in (value if isinstance(value, list) else [value])]


@lru_cache(maxsize=4096)
def _pattern(pattern: str) -> re.Pattern[str]:
    """GitHub's filter pattern: `*` (not /), `**`, `?` and `+` (of the previous character), `[...]`, `\\` escapes."""
    out: list[str] = []
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\\" and i + 1 < len(pattern):
            out.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")  # `**/README.md` matches README.md at the root too
            i += 3
            continue
        if pattern.startswith("**", i):
            out.append(".*")
            i += 2
            continue
        end = pattern.find("]", i + 1) if c == "[" else -1
        if c == "*":
            out.append("[^/]*")
        elif c in "?+" and out:
            out.append(c)
        elif end > i + 1:
            body = pattern[i + 1 : end]
            out.append("[" + "".join(ch if ch == "-" else re.escape(ch) for ch in body) + "]")
            i = end
        else:
            out.append(re.escape(c))
        i += 1
    return re.compile("".join(out))


def _matches(patterns: list[str], value: str) -> bool:
    # Order matters: a later `!pattern` excludes what an earlier pattern included, and a later pattern includes
    # again (GitHub docs, "Filter pattern cheat sheet").
    hit = False
    for p in patterns:
        negated = p.startswith("!")
        if _pattern(p[1:] if negated else p).fullmatch(value):
            hit = not negated
    return hit


def _filter(config: Mapping[str, Any], key: str, value: str | None) -> Truth:
    """`key` / `key-ignore` on one value; True when neither is given."""
    include, ignore = config.get(key), config.get(f"{key}-ignore")
    if include is not None and ignore is not None:
        raise WorkflowError(f"`{key}` and `{key}-ignore` cannot both filter one event")
    if include is None and ignore is None:
        return True
    if value is None:
        return UNKNOWN
    if include is not None:
        return _matches(_strings(include), value)
    return not _matches(_strings(ignore), value)


def _paths(config: Mapping[str, Any], changed: tuple[str, ...] | None) -> Truth:
    include, ignore = config.get("paths"), config.get("paths-ignore")
    if include is not None and ignore is not None:
        raise WorkflowError("`paths` and `paths-ignore` cannot both filter one event")
    if include is None and ignore is None:
        return True
    if changed is None:
        return UNKNOWN
    if include is not None:
        return any(_matches(_strings(include), p) for p in changed)  # one matching file is enough
    return any(not _matches(_strings(ignore), p) for p in changed)  # skipped only if every file is ignored


def _types(config: Mapping[str, Any], event: Event) -> Truth:
    listed = config.get("types")
    defaults = DEFAULT_TYPES.get(event.name)
    types = set(_strings(listed)) if listed is not None else defaults
    if types is None:
        return True  # the event fires for every activity type
    if event.action is not None:
        return event.action in types
    # No action given: the event is one of its default types.
    if defaults is None:
        return UNKNOWN
    if defaults <= types:
        return True
    return UNKNOWN if defaults & types else False


def triggered(workflow: Mapping[Any, Any], event: Event) -> Truth:
    """Whether the workflow's `on:` fires for the event (UNKNOWN when a filter needs what the event lacks)."""
    triggers = _triggers(workflow)
    if event.name not in triggers:
        return False
    config = triggers[event.name]
    if not isinstance(config, Mapping):
        config = {}  # `pull_request:` with nothing under it, or `schedule:` with its cron list
    verdict = _types(config, event)
    if event.name == "push":
        ref = event.ref
        if ref is None:
            has_filter = any(k in config for k in ("branches", "branches-ignore", "tags", "tags-ignore", "paths"))
            return _and(verdict, UNKNOWN) if has_filter or "paths-ignore" in config else verdict
        kind = "tags" if ref.startswith("refs/tags/") else "branches"
        name = re.sub(r"^refs/(heads|tags)/", "", ref)
        filtered = {k for k in ("branches", "branches-ignore", "tags", "tags-ignore") if k in config}
        if filtered and not filtered & {kind, f"{kind}-ignore"}:
            return False  # only the other kind of ref is filtered: GitHub does not run for this kind at all
        verdict = _and(verdict, _filter(config, kind, name))
        if kind == "branches":  # paths filters are not evaluated for tag pushes
            verdict = _and(verdict, _paths(config, event.changed_paths))
        return verdict
    if event.name in PULL_REQUEST_EVENTS or event.name == "merge_group":
        # pull_request and merge_group filter branches on the base (target) branch, not the head.
        verdict = _and(verdict, _filter(config, "branches", event.base_ref))
        if event.name != "merge_group":
            verdict = _and(verdict, _paths(config, event.changed_paths))
        return verdict
    if event.name == "workflow_run":
        return _and(verdict, _filter(config, "branches", event.head_ref))
    return verdict


# --- jobs -----------------------------------------------------------------------------------------------------


def _needs(job: Mapping[str, Any]) -> list[str]:
    return _strings(job.get("needs"))


def _job_order(jobs: Mapping[str, Any], where: str) -> list[str]:
    """Jobs in dependency order; GitHub rejects needs on a missing job and cycles."""
    for job_id, job in jobs.items():
        for need in _needs(job):
            if need not in jobs:
                raise WorkflowError(f"{where}: job '{job_id}' needs '{need}', which is not a job of this workflow")
    order: list[str] = []
    state: dict[str, int] = {}  # 1: being visited, 2: done

    def visit(job_id: str, path: list[str]) -> None:
        if state.get(job_id) == 2:
            return
        if state.get(job_id) == 1:
            cycle = path[path.index(job_id) :] + [job_id]
            raise WorkflowError(f"{where}: jobs need each other in a cycle: {' -> '.join(cycle)}")
        state[job_id] = 1
        for need in _needs(jobs[job_id]):
            visit(need, [*path, job_id])
        state[job_id] = 2
        order.append(job_id)

    for job_id in jobs:
        visit(job_id, [])
    return order


def _ancestors(jobs: Mapping[str, Any], job_id: str) -> set[str]:
    # success() and failure() in a job's `if:` look at every upstream job, not only the direct needs
    # (actions/runner#2205: a job after an `always()` job is skipped when a job further up was skipped).
    seen: set[str] = set()
    stack = _needs(jobs[job_id])
    while stack:
        need = stack.pop()
        if need not in seen:
            seen.add(need)
            stack.extend(_needs(jobs[need]))
    return seen


def _status(results: Iterable[Any], cancelled: bool) -> dict[str, Truth]:
    seen = list(results)
    success: Truth = _and(*(UNKNOWN if r is UNKNOWN else r == "success" for r in seen))
    failure: Truth = _any(UNKNOWN if r is UNKNOWN else r == "failure" for r in seen)
    return {"success": success, "failure": failure, "cancelled": cancelled, "always": True}


def _check(tpl: Template, allowed: frozenset[str], where: str) -> None:
    for expr in tpl.expressions:
        if bad := sorted(expr.contexts - allowed):
            shown = ", ".join(sorted(allowed))
            raise WorkflowError(f"{where}: Unrecognized named-value: '{bad[0]}' (allowed: {shown})")
        if "hashfiles" in expr.functions:
            raise WorkflowError(f"{where}: hashFiles() is not available here")


def _matrix(job: Mapping[str, Any]) -> list[dict[str, Any]] | None:
    """The static matrix combinations, in GitHub's order; None when the matrix comes from an expression."""
    strategy = job.get("strategy")
    matrix = strategy.get("matrix") if isinstance(strategy, Mapping) else None
    if matrix is None:
        return [{}]
    if not isinstance(matrix, Mapping):
        return None
    axes = {str(k): v for k, v in matrix.items() if k not in ("include", "exclude")}
    include, exclude = matrix.get("include") or [], matrix.get("exclude") or []
    if not all(isinstance(v, list) for v in axes.values()) or not isinstance(include, list):
        return None
    if not isinstance(exclude, list):
        return None
    combos = [dict(zip(axes, values, strict=True)) for values in itertools.product(*axes.values())] if axes else []
    combos = [c for c in combos if not any(_subset(e, c) for e in exclude if isinstance(e, Mapping))]
    originals = [dict(c) for c in combos]
    for extra in include:
        if not isinstance(extra, Mapping):
            return None
        # An include entry extends every combination whose original values it does not change; added values
        # may be overwritten by later entries. One that fits none becomes a combination of its own.
        fits = [i for i, o in enumerate(originals) if all(o[k] == v for k, v in extra.items() if k in o)]
        for i in fits:
            combos[i].update(extra)
        if not fits:
            combos.append(dict(extra))
    return combos


def _subset(part: Mapping[str, Any], whole: Mapping[str, Any]) -> bool:
    return all(k in whole and whole[k] == v for k, v in part.items())


def _suffix_value(v: Any) -> str:
    if isinstance(v, (Mapping, list)):
        return json.dumps(v, separators=(",", ":"))  # not verified against GitHub; objects in names are rare
    return to_string(v)


def _names(job_id: str, job: Mapping[str, Any], contexts: Mapping[str, Any], expand: bool) -> tuple[str, ...]:
    """Check-run names: `name:` (maybe an expression) else the id; a static matrix adds `(a, b)` per combination.

    A skipped matrix job reports once, unexpanded: the matrix is never evaluated for it.
    """
    raw = job.get("name")
    tpl = template(str(raw)) if raw is not None else None
    if tpl is not None:
        _check(tpl, JOB_NAME_CONTEXTS, f"job '{job_id}' name")
    combos = _matrix(job) if expand else [{}]
    if combos is None:
        return ()
    names = []
    for combo in combos:
        ctx = {**contexts, "matrix": Partial(combo) if combo else Partial(), "strategy": Partial()}
        if tpl is None or (not combo and "matrix" in tpl.contexts):
            base = job_id if tpl is None else tpl.source
        else:
            try:
                value = tpl.evaluate(ctx)
            except EvaluationError:
                value = UNKNOWN
            base = tpl.source if value is UNKNOWN else to_string(value)
        shown = [_suffix_value(v) for v in combo.values() if v is not None and v != ""]
        # A name that does not use the matrix still gets the values appended, as GitHub does.
        if shown and (tpl is None or "matrix" not in tpl.contexts):
            base = f"{base} ({', '.join(shown)})"
        names.append(base)
    return tuple(names)


def _inputs(triggers: Mapping[str, Any], kind: str, given: Mapping[str, Any] | None, ctx: Mapping[str, Any]) -> Any:
    """The inputs context: given values over declared defaults; an input with neither is UNKNOWN."""
    declared = triggers.get(kind)
    specs = declared.get("inputs") if isinstance(declared, Mapping) else None
    values: dict[str, Any] = {}
    for name, spec in (specs or {}).items():
        if isinstance(spec, Mapping) and "default" in spec:
            default = spec["default"]
            try:
                values[str(name)] = template(default).evaluate(ctx) if isinstance(default, str) else default
            except ExpressionError:
                continue
    values.update(given or {})
    return Partial(values)


@dataclass
class _Run:
    """One evaluation: the workflows, the event and the assumed outcomes, filled as jobs are decided."""

    workflows: Mapping[str, Any]
    event: Event
    outcomes: Mapping[str, str]
    verdicts: dict[str, Verdict] = field(default_factory=dict)

    def workflow(self, path: str, key: str, prefixes: tuple[str, ...], certain: Truth, inputs: Any, depth: int) -> Any:
        """Decide every job of one workflow; returns the workflow's result (for a caller job)."""
        doc = self.workflows[path]
        jobs = doc.get("jobs") if isinstance(doc, Mapping) else None
        if not isinstance(jobs, Mapping) or not jobs:
            raise WorkflowError(f"{path}: the workflow has no jobs")
        jobs = {str(k): v if isinstance(v, Mapping) else {} for k, v in jobs.items()}
        github = self.event.github()
        base = {"github": github, "vars": UNKNOWN if self.event.vars is None else Partial(self.event.vars)}
        base["inputs"] = inputs
        results: dict[str, Any] = {}
        for job_id in _job_order(jobs, path):
            job = jobs[job_id]
            where = f"{path}: job '{job_id}'"
            ancestors = _ancestors(jobs, job_id)
            status = _status((results[a] for a in ancestors), self.event.cancelled)
            needs = {n: Partial(result=results[n]) if results[n] is not UNKNOWN else Partial() for n in _needs(job)}
            contexts = {**base, "needs": needs}
            reach, reason, failed = self.decide(job, contexts, status, certain, where)
            job_key = key + job_id
            names = [f"{p}{n}" for p in prefixes for n in _names(job_id, job, contexts, reach is not Reach.SKIPPED)]
            if "uses" in job and reach is not Reach.SKIPPED:
                results[job_id] = self.call(job, job_key, tuple(n + " / " for n in names), reach, contexts, depth)
                continue
            self.verdicts[job_key] = Verdict(reach, tuple(names), reason)
            if reach is Reach.RUNS:
                results[job_id] = "failure" if failed else self.outcomes.get(job_key, "success")
            else:
                results[job_id] = "skipped" if reach is Reach.SKIPPED else UNKNOWN
        for outcome in ("failure", "cancelled"):  # a caller job concludes as its workflow: failure first
            if any(r == outcome for r in results.values()):
                return outcome
        return UNKNOWN if any(r is UNKNOWN for r in results.values()) else "success"

    def decide(
        self, job: Mapping[str, Any], ctx: Mapping[str, Any], status: Mapping[str, Truth], certain: Truth, where: str
    ) -> tuple[Reach, str, bool]:
        raw = job.get("if")
        try:
            tpl = condition(raw) if raw is not None and raw != "" else None
        except ExpressionError as e:
            raise WorkflowError(f"{where}: if: {e}") from None
        if tpl is not None:
            _check(tpl, JOB_IF_CONTEXTS, f"{where} if:")
        try:
            truth = True if tpl is None else tpl.truth(ctx, status)
        except EvaluationError as e:
            # GitHub fails the job when its condition cannot be evaluated: a failed check, not a skipped one.
            return Reach.RUNS, f"its if: fails to evaluate ({e.reason}), so GitHub fails the job", True
        if tpl is None or not tpl.uses_status:
            # Without a status function GitHub reads the condition as `success() && (...)`.
            truth = _and(status["success"], truth)
        truth = _and(certain, truth) if truth is not False else False
        shown = "no if:" if tpl is None else f"if: {tpl.source.strip()}"
        if truth is True:
            return Reach.RUNS, f"{shown}: runs", False
        if truth is False:
            if (tpl is None or not tpl.uses_status) and status["success"] is False:
                return Reach.SKIPPED, f"{shown}: a job it needs (or one before that) did not succeed", False
            return Reach.SKIPPED, f"{shown}: false", False
        return Reach.MAYBE, f"{shown}: depends on values only the run knows", False

    def call(
        self, job: Mapping[str, Any], key: str, prefixes: tuple[str, ...], reach: Reach, ctx: Any, depth: int
    ) -> Any:
        """A reusable-workflow call: a local one expands into its jobs; a remote one is `maybe`."""
        uses = str(job["uses"])
        local = re.match(r"^(?:\./|\$/)([^@]+)$", uses)
        if local is None:
            self.verdicts[key] = Verdict(Reach.MAYBE, (), "calls a workflow in another repository", uses, reach)
            return UNKNOWN
        path = local.group(1)
        if path not in self.workflows:
            raise WorkflowError(f"job '{key}' calls {uses}, which is not in this repository")
        if depth >= MAX_CALL_DEPTH:
            raise WorkflowError(f"job '{key}' calls {uses} more than {MAX_CALL_DEPTH} levels deep (or in a loop)")
        triggers = _triggers(self.workflows[path])
        if "workflow_call" not in triggers:
            raise WorkflowError(f"job '{key}' calls {path}, which has no `on: workflow_call`")
        given: dict[str, Any] = {}
        for name, value in (job.get("with") or {}).items():
            try:
                given[str(name)] = template(value).evaluate(ctx) if isinstance(value, str) else value
            except ExpressionError:
                given[str(name)] = UNKNOWN
        inputs = _inputs(triggers, "workflow_call", {k: v for k, v in given.items() if v is not UNKNOWN}, ctx)
        for name in (k for k, v in given.items() if v is UNKNOWN):
            inputs.pop(name, None)
        certain: Truth = True if reach is Reach.RUNS else UNKNOWN
        self.verdicts[key] = Verdict(reach, (), f"calls {path}; its jobs report the checks", None)
        # Inside the called workflow `github` is the caller's: event_name is the caller's event.
        result = self.workflow(path, key + "/", prefixes, certain, inputs, depth + 1)
        return result if reach is Reach.RUNS else UNKNOWN


def jobs_reached(
    workflows: Mapping[str, Any], path: str, event: Event, *, outcomes: Mapping[str, str] | None = None
) -> dict[str, Verdict]:
    """Each job of `workflows[path]` (keys: repository paths) for the event: runs, skipped or maybe.

    Keys are job ids, `caller/called` for jobs of a called workflow. A workflow the event does not trigger has
    no jobs (no check runs at all). Jobs that run are taken to succeed unless `outcomes` maps their key to
    "failure" (or "cancelled"). Raises WorkflowError for what makes GitHub reject the workflow.
    """
    workflow = workflows[path]
    fires = triggered(workflow, event)
    if fires is False:
        return {}
    if event.name in ("workflow_dispatch", "workflow_call"):
        inputs = _inputs(_triggers(workflow), event.name, event.inputs, {"github": event.github()})
    else:
        inputs = dict(event.inputs or {})  # other events have an empty inputs context
    run = _Run(workflows, event, outcomes or {})
    run.workflow(path, "", ("",), fires, inputs, 0)
    return run.verdicts
