"""GitHub configuration as the checks read it: workflows, jobs, steps and branch protection.

It follows what makes a scanner silently non-blocking: `continue-on-error`, `if:` conditions that disable a
step or job, `needs:` on a disabled job, `|| true` in a script, and each tool's own soft-fail switch.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from generator.controls.base import Outcome, failed, passed
from generator.repo import Doc, Repo

PR_EVENTS = {"pull_request", "merge_group"}
_FALSE = re.compile(r"^\s*(\$\{\{\s*)?false(\s*\}\})?\s*$", re.IGNORECASE)
_SWALLOW = re.compile(r"\|\|\s*(true|:|exit\s+0)\b|^\s*set\s+\+e\b", re.MULTILINE)


def truthy(value: Any) -> bool:
    """A YAML/expression value that GitHub would treat as true (expressions count as possibly true)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        text = value.strip().lower()
        return text not in {"", "false", "${{ false }}", "0"}
    return bool(value)


def is_false(value: Any) -> bool:
    return value is False or (isinstance(value, str) and bool(_FALSE.match(value)))


@dataclass(eq=False)
class Step:
    job: Job
    index: int
    data: dict[str, Any]
    tool: str | None = None  # what tools.kind() found, once it has looked

    @property
    def uses(self) -> str:
        value = self.data.get("uses")
        return value if isinstance(value, str) else ""

    @property
    def action(self) -> str:
        """owner/repo[/path] of `uses:`, lowercased, without the ref."""
        return self.uses.split("@", 1)[0].lower()

    @property
    def run(self) -> str:
        value = self.data.get("run")
        return value if isinstance(value, str) else ""

    @property
    def with_(self) -> dict[str, Any]:
        value = self.data.get("with")
        return value if isinstance(value, dict) else {}

    @property
    def name(self) -> str:
        return str(self.data.get("name") or self.uses or self.run.split("\n")[0])

    @property
    def where(self) -> str:
        return self.job.doc.at("jobs", self.job.id, "steps", self.index)

    def line_of(self, key: str) -> str:
        return self.job.doc.at("jobs", self.job.id, "steps", self.index, key)

    def not_blocking(self) -> str | None:
        """Why a failure of this step would not fail the job, or None when it would."""
        if truthy(self.data.get("continue-on-error", False)):
            return f"continue-on-error on the step ({self.line_of('continue-on-error')})"
        if is_false(self.data.get("if", True)):
            return f"the step is disabled by `if: {self.data.get('if')}` ({self.line_of('if')})"
        if self.run and _SWALLOW.search(self.run):
            return f"the script swallows its exit code (`|| true` or `set +e`) ({self.line_of('run')})"
        return self.job.not_blocking()


@dataclass
class Job:
    workflow: Workflow
    id: str
    data: dict[str, Any]

    @property
    def doc(self) -> Doc:
        return self.workflow.doc

    @property
    def name(self) -> str:
        return str(self.data.get("name") or self.id)

    @property
    def where(self) -> str:
        return self.doc.at("jobs", self.id)

    @cached_property
    def steps(self) -> list[Step]:
        steps = self.data.get("steps")
        if not isinstance(steps, list):
            return []
        return [Step(self, i, s) for i, s in enumerate(steps) if isinstance(s, dict)]

    @property
    def needs(self) -> list[str]:
        needs = self.data.get("needs", [])
        return (
            [needs]
            if isinstance(needs, str)
            else [n for n in needs if isinstance(n, str)]
            if isinstance(needs, list)
            else []
        )

    @property
    def environment(self) -> str:
        env = self.data.get("environment")
        if isinstance(env, dict):
            env = env.get("name")
        return env.strip().lower() if isinstance(env, str) else ""

    @property
    def calls(self) -> str:
        """The reusable workflow this job calls (`uses:` at job level), or ''."""
        value = self.data.get("uses")
        return value if isinstance(value, str) else ""

    def not_blocking(self, seen: frozenset[str] = frozenset()) -> str | None:
        """Why this job would not run or not fail the workflow, or None."""
        if truthy(self.data.get("continue-on-error", False)):
            return f"continue-on-error on job {self.id} ({self.doc.at('jobs', self.id, 'continue-on-error')})"
        condition = self.data.get("if", True)
        if is_false(condition):
            return f"job {self.id} is disabled by `if: {condition}` ({self.doc.at('jobs', self.id, 'if')})"
        runs_anyway = isinstance(condition, str) and "always()" in condition
        for need in self.needs:
            upstream = self.workflow.jobs.get(need)
            if upstream is None:
                return f"job {self.id} needs job {need}, which does not exist ({self.doc.at('jobs', self.id, 'needs')})"
            if need not in seen and not runs_anyway:
                reason = upstream.not_blocking(seen | {self.id})
                if reason:
                    return f"job {self.id} needs {need}: {reason}"
        return None

    def upstream(self) -> set[str]:
        """Every job this one needs, directly or transitively."""
        found: set[str] = set()
        stack = list(self.needs)
        while stack:
            need = stack.pop()
            if need in found:
                continue
            found.add(need)
            job = self.workflow.jobs.get(need)
            if job is not None:
                stack.extend(job.needs)
        return found


@dataclass
class Workflow:
    doc: Doc

    @cached_property
    def triggers(self) -> set[str]:
        data = self.doc.data
        on = data.get("on", data.get(True))  # YAML 1.1 reads a bare `on:` key as true
        if isinstance(on, str):
            return {on}
        if isinstance(on, list):
            return {t for t in on if isinstance(t, str)}
        if isinstance(on, dict):
            return {str(t) for t in on}
        return set()

    @cached_property
    def jobs(self) -> dict[str, Job]:
        jobs = self.doc.data.get("jobs")
        if not isinstance(jobs, dict):
            return {}
        return {str(k): Job(self, str(k), v) for k, v in jobs.items() if isinstance(v, dict)}


class GitHub:
    """Every workflow and composite action of the repository."""

    def __init__(self, repo: Repo) -> None:
        self.repo = repo
        self.workflows = [Workflow(doc) for doc in repo.workflows]

    def jobs(self) -> Iterator[Job]:
        for workflow in self.workflows:
            yield from workflow.jobs.values()

    def steps(self) -> Iterator[Step]:
        for job in self.jobs():
            yield from job.steps

    @cached_property
    def _called_from_pr(self) -> set[str]:
        """Paths of reusable workflows that a pull-request workflow calls."""
        called = set()
        for workflow in self.workflows:
            if workflow.triggers & PR_EVENTS:
                for job in workflow.jobs.values():
                    if job.calls:
                        called.add(_local_path(job.calls))
        return called

    def gates_pull_requests(self, job: Job) -> bool:
        """Whether the job runs on pull requests (directly or through a reusable workflow)."""
        if job.workflow.triggers & PR_EVENTS:
            return True
        return job.doc.path in self._called_from_pr

    def pr_steps(self) -> Iterator[Step]:
        for job in self.jobs():
            if self.gates_pull_requests(job):
                yield from job.steps

    def production_jobs(self) -> list[Job]:
        return [job for job in self.jobs() if job.environment == "production"]

    def deploy_path(self, job: Job) -> list[Job]:
        """The job and every job it needs, in its workflow (reusable calls expanded to their workflow)."""
        names = {job.id} | job.upstream()
        jobs = [job.workflow.jobs[n] for n in sorted(names) if n in job.workflow.jobs]
        for called in [j.calls for j in jobs if j.calls]:
            workflow = self._by_path.get(_local_path(called))
            jobs += list(workflow.jobs.values()) if workflow else []
        return jobs

    @cached_property
    def _by_path(self) -> dict[str, Workflow]:
        return {w.doc.path: w for w in self.workflows}

    @property
    def action_steps(self) -> Iterator[tuple[Doc, int, dict[str, Any]]]:
        """Steps of composite actions (doc, index, step)."""
        for doc in self.repo.actions:
            runs = doc.data.get("runs")
            steps = runs.get("steps") if isinstance(runs, dict) else None
            if isinstance(steps, list):
                for i, step in enumerate(steps):
                    if isinstance(step, dict):
                        yield doc, i, step


def first_blocking(steps: list[Step]) -> tuple[Step | None, list[str]]:
    """The first blocking step, and why each non-blocking one is not."""
    reasons: list[str] = []
    for step in steps:
        why = step.not_blocking()
        if why is None:
            return step, reasons
        reasons.append(f"{step.where}: {why}")
    return None, reasons


@dataclass
class Protection:
    """Branch protection of the default branch, from .github/settings.yml and REST ruleset payloads."""

    branch: str
    settings: tuple[Doc, dict[str, Any], tuple[Any, ...]] | None  # doc, protection dict, key path
    rulesets: list[tuple[Doc, dict[str, Any]]]  # doc, ruleset (active, targeting the default branch)

    @classmethod
    def of(cls, repo: Repo, branch: str) -> Protection:
        settings = None
        doc = repo.settings
        if doc is not None and isinstance(doc.data, dict):
            for i, entry in enumerate(doc.data.get("branches") or []):
                if (
                    isinstance(entry, dict)
                    and entry.get("name") == branch
                    and isinstance(entry.get("protection"), dict)
                ):
                    settings = (doc, entry["protection"], ("branches", i, "protection"))
        rulesets = []
        for rdoc in repo.rulesets:
            data = rdoc.data
            if data.get("target", "branch") != "branch" or data.get("enforcement") != "active":
                continue
            include = ((data.get("conditions") or {}).get("ref_name") or {}).get("include") or []
            if {"~DEFAULT_BRANCH", "~ALL", f"refs/heads/{branch}"} & set(map(str, include)):
                rulesets.append((rdoc, data))
        return cls(branch, settings, rulesets)

    @property
    def exists(self) -> bool:
        return self.settings is not None or bool(self.rulesets)

    def setting(self, *keys: str) -> tuple[Any, str] | None:
        """A value under the settings.yml protection block, with its location."""
        if self.settings is None:
            return None
        doc, node, path = self.settings
        value: Any = node
        for key in keys:
            if not isinstance(value, dict) or key not in value:
                return (None, doc.at(*path, *keys[: keys.index(key)]))
            value = value[key]
        return value, doc.at(*path, *keys)

    def rule(self, doc_and_set: tuple[Doc, dict[str, Any]], rule_type: str) -> tuple[dict[str, Any] | None, str]:
        doc, data = doc_and_set
        for i, rule in enumerate(data.get("rules") or []):
            if isinstance(rule, dict) and rule.get("type") == rule_type:
                params = rule.get("parameters")
                return (params if isinstance(params, dict) else {}), doc.at("rules", i)
        return None, doc.at("rules")


def each_production_job(gh: GitHub, judge: Callable[[Job], Outcome]) -> Outcome:
    """Judge every production job (`environment: production`): the first failure, else all the evidence."""
    production = gh.production_jobs()
    if not production:
        return failed("no job deploys through `environment: production`")
    evidence: list[str] = []
    for job in production:
        outcome = judge(job)
        if outcome.status != "pass":
            return outcome
        evidence += outcome.evidence
    return passed(outcome.reason, *evidence)


def _local_path(uses: str) -> str:
    """`./.github/workflows/x.yml` or `$/.github/workflows/x.yml@ref` as a repository path."""
    return uses.split("@")[0].removeprefix("./").removeprefix("$/")
