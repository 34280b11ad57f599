"""GitHub adapter: workflows, composite actions, .github/settings.yml and rulesets into the neutral model.

What GitHub does, modelled here rather than guessed from words:
- which jobs each event reaches: `on:` filters, job `if:` (default `success()`), `needs:` on skipped jobs,
  reusable workflows run with the caller's event (generator/pipeline/reach.py);
- a workflow whose `needs:` names a missing job, or whose jobs need each other in a cycle, is rejected
  whole, so nothing in it runs;
- a `run:` script is `bash -e {0}` unless `shell: bash` (then `-eo pipefail`); scripts and Makefile targets
  it calls in the repository are read too (generator/pipeline/shell.py says which exit statuses count);
- a local composite action's steps belong to the step that uses it;
- the repository-settings app applies branch protection only when all four mandatory keys are present, and
  required checks are trustworthy only when pinned to an app.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from functools import cached_property
from typing import Any

from generator.pipeline import expressions, reach, shell, tools
from generator.pipeline.model import (
    CHANGE_EVENTS,
    EVENTS,
    MANUAL,
    MERGE_QUEUE,
    PULL_REQUEST,
    PUSH,
    SCHEDULE,
    TAG,
    Environment,
    Invocation,
    Job,
    Pipeline,
    Protection,
    RequiredCheck,
    Step,
    Verdict,
    errexit_pipefail,
)
from generator.pipeline.tools import Use
from generator.repo import Doc, Repo

ACTIONS_APP = 15368  # the GitHub Actions app on github.com
MANDATORY_PROTECTION = ("required_status_checks", "enforce_admins", "required_pull_request_reviews", "restrictions")
_PRODUCTION = re.compile(r"^(?:prod|production|prd|live)(?:[-_ ].*)?$|^.*[-_ ](?:prod|production)$")
_PRODUCTION_JOB = re.compile(
    r"(?i)(?:deploy|release|promote|ship)[-_ ]?(?:to[-_ ])?(?:prod|production)\b|\bproduction\b"
)
_DEPLOY_STEP = re.compile(
    r"\bdeploy\.sh\b|kubectl\s+(?:apply|set\s+image)|helm\s+(?:upgrade|install)|terraform\s+apply|"
    r"(?:gcloud|az|aws)\s+[\w-]+\s+(?:deploy|update-service)|flyctl\s+deploy"
)
# GitOps: production's desired state is a path in Git (argocd/environments/production/, k8s/prod/...); a push
# that changes only such paths is the production deploy, which Argo CD or Flux then applies.
_GITOPS_PRODUCTION_PATH = re.compile(r"(?:^|/)(?:prod|production|prd)(?:/|$)")


# A `git push` to the default branch: a refspec naming it, or none at all (the branch checked out, which a push
# pipeline checks out). Pushing a branch of its own (HEAD:refs/heads/promote-x) proposes, it does not deploy.
_GIT_PUSH = re.compile(r"\bgit\b(?:\s+-c\s+\S+)*\s+push\b([^\n;&|]*)")
_DEFAULT_BRANCH_REF = re.compile(
    r"\$\{?(?:CI_DEFAULT_BRANCH|CI_COMMIT_BRANCH|CI_COMMIT_REF_NAME|GITHUB_REF_NAME|GITHUB_REF)\}?|"
    r"\$\{\{\s*github\.(?:ref_name|ref|event\.repository\.default_branch)\s*\}\}"
)
# A path of production's manifests named in a script (k8s/overlays/production, argocd/environments/prod/...).
_PRODUCTION_PATH_IN_TEXT = re.compile(r"[\w.-]/(?:prod|production|prd)\b(?!-)")


def pushes_to_default_branch(text: str, branch: str) -> bool:
    """Whether a script pushes straight to the default branch `branch`."""
    lines = (line for line in text.splitlines() if "push" in line and "git" in line)
    for m in (m for line in lines for m in _GIT_PUSH.finditer(line)):
        if {"--tags", "--delete", "-d", "--dry-run", "-n"} & set(m[1].split()):
            continue  # tags, deletions and dry runs push no commit to a branch
        args = [a for a in m[1].split() if not a.startswith("-")]
        refs = args[1:]  # after the remote
        if not refs:
            return True
        if _DEFAULT_BRANCH_REF.search(" ".join(refs)) or any(
            r.strip("'\"").rsplit(":", 1)[-1] in {branch, f"refs/heads/{branch}"} for r in refs
        ):
            return True
    return False


def ci_pushes_production(job: Job) -> bool:
    """A job that changes production's manifests and pushes them straight to the default branch: the GitOps
    production deploy of a pipeline that proposes nothing for review."""

    def compute() -> bool:
        text = "\n".join(s.text for s in job.steps)
        if " push" not in text or "git" not in text:
            return False
        return pushes_to_default_branch(text, job.pipeline.default_branch) and bool(
            _PRODUCTION_PATH_IN_TEXT.search(text)
        )

    return job.pipeline.cached(("ci-pushes-production", id(job)), compute)


def _gitops_production(job: Job) -> bool:
    """A job of a workflow that a push runs only when production's manifests change (a GitOps promotion)."""
    doc = job.pipeline.docs.get(job.file)
    on = doc.data.get("on", doc.data.get(True)) if doc is not None and isinstance(doc.data, Mapping) else None
    push = on.get("push") if isinstance(on, Mapping) else None
    paths = push.get("paths") if isinstance(push, Mapping) else None
    if not isinstance(paths, list) or not paths or not all(isinstance(p, str) for p in paths):
        return False
    return isinstance(on, Mapping) and len(on) == 1 and all(_GITOPS_PRODUCTION_PATH.search(p) for p in paths)


_SCRIPT = re.compile(r"^(?:(?:bash|sh|zsh|source|\.)\s+)?(\.?\.?/?[\w.@/-]+\.(?:sh|bash))(?:\s|$)")
_MAKE = re.compile(r"^(?:g?make)(\s+(?:-[\w-]+(?:=\S+)?\s+)*)([\w./-]+(?:\s+[\w./-]+)*)?\s*$")
_MAX_DEPTH = 3  # scripts calling scripts


def _event(name: str, branch: str) -> reach.Event:
    """The neutral event as GitHub's event for a repository whose default branch is `branch`."""
    ref = f"refs/heads/{branch}"
    return {
        PULL_REQUEST: reach.Event("pull_request", ref="refs/pull/1/merge", base_ref=branch),
        MERGE_QUEUE: reach.Event("merge_group", ref=f"refs/heads/gh-readonly-queue/{branch}/pr-1", base_ref=branch),
        PUSH: reach.Event("push", ref=ref),
        SCHEDULE: reach.Event("schedule", ref=ref),
        MANUAL: reach.Event("workflow_dispatch", ref=ref),
        TAG: reach.Event("push", ref="refs/tags/v1.0.0"),
    }[name]


_REACH: dict[reach.Reach, Verdict] = {
    reach.Reach.RUNS: "runs",
    reach.Reach.SKIPPED: "skipped",
    reach.Reach.MAYBE: "maybe",
}
# A step's `if:` may read every context; the ones only the run knows are UNKNOWN.
_STEP_CONTEXTS = ("env", "vars", "secrets", "steps", "needs", "inputs", "matrix", "job", "runner", "strategy")
_STEP_STATUS = {"success": True, "failure": False, "cancelled": False, "always": True}


class ScriptFollower:
    """Reads the repository scripts and Makefile recipes a shell script runs, and the tools they run
    (shared by the platform adapters: a script is a script on every platform)."""

    repo: Repo
    _uses_memo: dict[tuple[Any, ...], tuple[tuple[str, tools.Tool, str, Any], ...]]
    _followed_memo: dict[tuple[Any, ...], list[str]]

    def _script(
        self,
        step: Step,
        text: str,
        errexit: bool,
        pipefail: bool,
        file: str,
        first_line: int,
        outer: str | None,
        depth: int,
    ) -> list[Invocation]:
        return [
            Invocation(tool, step, where, Use(command=seen, config=self._config(tool)), ignored)
            for where, tool, seen, ignored in self._tool_uses(text, errexit, pipefail, file, first_line, outer, depth)
        ]

    def _tool_uses(
        self, text: str, errexit: bool, pipefail: bool, file: str, first_line: int, outer: str | None, depth: int
    ) -> tuple[tuple[str, tools.Tool, str, Any], ...]:
        """(where, tool, command line, why it cannot fail the step) of every tool a script runs, following the
        repository scripts and Makefile targets it calls. The same scripts recur in many steps: each is read
        once per audit."""
        key = (text, errexit, pipefail, file, first_line, outer, depth)
        if key in self._uses_memo:
            return self._uses_memo[key]
        found: list[tuple[str, tools.Tool, str, Any]] = []
        for command in shell.commands(text, errexit, pipefail):
            where = f"{file}:{first_line + command.line}"
            ignored = outer or command.unreachable or command.ignored
            found += [(where, tool, seen, ignored) for tool, seen in tools.uses_of(command.text)]
            if depth >= _MAX_DEPTH:
                continue
            body = _beside(_strip_env_prefix(command.text), file)
            if m := _SCRIPT.match(body):
                rel = m[1].removeprefix("./")
                script = self.repo.text(rel)
                if script is not None:
                    found += self._tool_uses(script, False, False, rel, 1, ignored, depth + 1)
            elif m := _MAKE.match(body):
                for target_line, recipe in self._make_recipes(m[2] or ""):
                    found += self._tool_uses(recipe, False, False, "Makefile", target_line, ignored, depth + 1)
        self._uses_memo[key] = result = tuple(found)
        return result

    def _followed(self, text: str, depth: int, file: str = "") -> list[str]:
        key = ("followed", text, depth, file)
        if key not in self._followed_memo:
            self._followed_memo[key] = self._follow(text, depth, file)
        return list(self._followed_memo[key])

    def _follow(self, text: str, depth: int, file: str = "") -> list[str]:
        found: list[str] = []
        if depth >= _MAX_DEPTH or not text:
            return found
        for command in shell.commands(text, False, False):
            body = _beside(_strip_env_prefix(command.text), file)
            if m := _SCRIPT.match(body):
                rel = m[1].removeprefix("./")
                script = self.repo.text(rel)
                if script is not None:
                    found.append(script)
                    found += self._followed(script, depth + 1, rel)
            elif m := _MAKE.match(body):
                found += [recipe for _line, recipe in self._make_recipes(m[2] or "")]
        return found

    def _make_recipes(self, targets: str) -> Iterator[tuple[int, str]]:
        """(line, recipe line) of each target and the targets it depends on, from the repository's Makefile."""
        rules = self._makefile
        wanted = targets.split() or ([next(iter(rules))] if rules else [])
        seen: set[str] = set()
        while wanted:
            target = wanted.pop(0)
            if target in seen or target not in rules:
                continue
            seen.add(target)
            deps, recipes = rules[target]
            wanted += deps
            yield from recipes

    @cached_property
    def _makefile(self) -> dict[str, tuple[list[str], list[tuple[int, str]]]]:
        text = self.repo.text("Makefile") or self.repo.text("makefile") or ""
        rules: dict[str, tuple[list[str], list[tuple[int, str]]]] = {}
        current: list[str] = []
        for number, line in enumerate(text.splitlines(), 1):
            if line.startswith("\t") and current:
                recipe = line.strip().lstrip("@+")
                if recipe.startswith("-"):
                    recipe = recipe[1:] + " || true"  # make ignores a failure of a `-` line
                for target in current:
                    rules[target][1].append((number, recipe))
            elif m := re.match(r"^([\w./ -]+?)\s*::?(?!=)\s*(.*)$", line):
                current = m[1].split()
                for target in current:
                    rules.setdefault(target, ([], []))[0].extend(m[2].split(";")[0].split())
            elif line.strip() and not line.startswith("#"):
                current = []
        return rules

    @cached_property
    def _configs(self) -> dict[str, Mapping[str, Any]]:
        from generator.repo import ParseError, load_yaml

        found: dict[str, Mapping[str, Any]] = {}
        for tool, names in {
            "checkov": (".checkov.yaml", ".checkov.yml"),
            "trivy": ("trivy.yaml",),
            "grype": (".grype.yaml", ".grype/config.yaml"),
        }.items():
            for name in names:
                path = self.repo.root / name
                if path.is_file():
                    try:
                        data = load_yaml(path)
                    except (ParseError, OSError):
                        continue
                    if isinstance(data, Mapping):
                        found[tool] = data
                        break
        return found

    def _config(self, tool: tools.Tool) -> Mapping[str, Any]:
        return self._configs.get(tool.name.split("-")[0], {})


class GitHubAdapter(ScriptFollower):
    """Builds the model of a GitHub repository and answers the platform's own questions about it."""

    platform = "github"

    def __init__(self, repo: Repo, default_branch: str) -> None:
        self.repo = repo
        self._uses_memo: dict[tuple[Any, ...], tuple[tuple[str, tools.Tool, str, Any], ...]] = {}
        self._followed_memo: dict[tuple[Any, ...], list[str]] = {}
        self.pipeline = Pipeline("github", repo, self, default_branch)
        self._actions = {doc.path.rsplit("/", 1)[0]: doc for doc in repo.actions}
        for doc in [*repo.workflows, *repo.actions]:
            self.pipeline.docs[doc.path] = doc
        self.pipeline.read = {
            "workflows": len(repo.workflows),
            "composite actions": len(repo.actions),
            "settings files": int(repo.settings is not None) + len(repo.rulesets),
        }
        self._build_jobs()
        self._build_settings()

    # --- jobs and reachability ------------------------------------------------------------------------

    def _build_jobs(self) -> None:
        workflows = {doc.path: doc.data for doc in self.repo.workflows}
        branch = self.pipeline.default_branch
        for doc in self.repo.workflows:
            jobs = doc.data.get("jobs")
            if not isinstance(jobs, Mapping):
                continue
            invalid: str | None = None
            verdicts: dict[str, dict[str, reach.Verdict]] = {}
            for name in EVENTS:
                try:
                    found = reach.jobs_reached(workflows, doc.path, _event(name, branch))
                except reach.WorkflowError as exc:
                    invalid = invalid or str(exc)
                    found = {}
                for key, verdict in found.items():
                    verdicts.setdefault(key, {})[name] = verdict
            for job_id, data in jobs.items():
                if isinstance(data, Mapping):
                    self._add(doc.path, str(job_id), data, str(job_id), verdicts, invalid, None, workflows)

    def _add(
        self,
        path: str,
        job_id: str,
        data: Mapping[str, Any],
        key: str,
        verdicts: dict[str, dict[str, reach.Verdict]],
        invalid: str | None,
        caller: Job | None,
        workflows: Mapping[str, Any],
    ) -> None:
        seen = verdicts.get(key, {})
        names = next((v.names for v in seen.values() if v.names), ())
        own = _job_name(job_id, data)
        name = names[0] if names else (f"{caller.name} / {own}" if caller else own)
        job = Job(self.pipeline, path, job_id, name, data, ("jobs", job_id), called_by=caller)
        job.names = names or (name,)
        job.reached = {e: _REACH[_reach(seen[e])] if e in seen else "never" for e in EVENTS}
        job.invalid = invalid
        self.pipeline.jobs.append(job)
        local = _local(job.calls) if job.calls else None
        called = workflows.get(local) if local else None
        if isinstance(called, Mapping) and isinstance(called.get("jobs"), Mapping):
            for child_id, child in called["jobs"].items():
                if isinstance(child, Mapping):
                    self._add(local or "", str(child_id), child, f"{key}/{child_id}", verdicts, invalid, job, workflows)

    def job_not_blocking(self, job: Job, event: str) -> str | None:
        if job.invalid:
            return f"{job.file} is rejected by GitHub ({job.invalid}), so none of its jobs run"
        verdict = job.reached.get(event, "never")
        if verdict in {"never", "skipped"}:
            how = "is skipped" if verdict == "skipped" else "does not run"
            return f"job {job.name} {how} on {event} ({job.where})"
        if verdict == "maybe":
            return f"job {job.name} may be skipped on {event}: its if: or trigger depends on the run ({job.where})"
        chain = [job, job.called_by] if job.called_by else [job]
        for j in chain:
            if j is not None and _truthy(j.data.get("continue-on-error", False)):
                return f"continue-on-error on job {j.name} ({j.at('continue-on-error')})"
        return None

    def step_not_blocking(self, step: Step, event: str, *, in_job: bool = False) -> str | None:
        if _truthy(step.data.get("continue-on-error", False)):
            return f"continue-on-error on the step ({step.line_of('continue-on-error')})"
        condition = step.data.get("if")
        if condition is not None:
            verdict = _step_condition(condition, _event(event, self.pipeline.default_branch), step.job)
            if verdict is False:
                return f"the step is skipped by `if: {condition}` on {event} ({step.line_of('if')})"
            if verdict is None:
                return f"the step may be skipped by `if: {condition}` on {event} ({step.line_of('if')})"
        return None if in_job else step.job.not_blocking(event)

    def deploys_to_production(self, job: Job) -> bool:
        """A job with a production environment, or one named for production that runs a deploy step.

        A private repository on GitHub Free has no environments, so its production job has none.
        """
        if ci_pushes_production(job):
            return True
        if job.environment:
            return bool(_PRODUCTION.match(job.environment))
        named = _PRODUCTION_JOB.search(f"{job.id} {job.name}")
        if not named:
            return False
        return any(_DEPLOY_STEP.search(s.run) for s in job.steps) or _gitops_production(job)

    # --- tools ----------------------------------------------------------------------------------------

    def invocations(self, step: Step) -> list[Invocation]:
        found: list[Invocation] = []
        if step is step.job.call:
            # A remote reusable workflow runs what the registry knows it runs; any other call is opaque.
            path = step.job.calls.split("@", 1)[0]
            return [Invocation(tool, step, step.where, Use(inputs=step.with_)) for tool in tools.for_workflow(path)]
        if step.uses:
            local = _local(step.uses)
            if local is not None:
                found += self._composite(step, local)
            for tool in tools.for_action(step.action):
                found.append(Invocation(tool, step, step.where, Use(inputs=step.with_, config=self._config(tool))))
            return found
        if step.run:
            shell_name = step.data.get("shell") or _default_shell(step.job)
            errexit, pipefail = errexit_pipefail(shell_name if isinstance(shell_name, str) else None, "github")
            first = _text_line(step.data, "run", int(step.line_of("run").rsplit(":", 1)[1]))
            found += self._script(step, step.run, errexit, pipefail, step.job.file, first, None, 0)
        return found

    def script_text(self, step: Step) -> str:
        """The step's script with the text of every repository script, Makefile recipe and local action it runs."""
        parts = [step.run]
        local = _local(step.uses) if step.uses else None
        if local is not None and local in self._actions:
            parts.append(str(self._actions[local].data))
            runs = self._actions[local].data.get("runs")
            for data in runs.get("steps") or [] if isinstance(runs, Mapping) else []:
                if isinstance(data, Mapping) and isinstance(data.get("run"), str):
                    parts += self._followed(data["run"], 0)
        parts += self._followed(step.run, 0)
        return "\n".join(p for p in parts if p)

    def _composite(self, step: Step, folder: str) -> list[Invocation]:
        doc = self._actions.get(folder)
        if doc is None:
            return []
        runs = doc.data.get("runs")
        steps = runs.get("steps") if isinstance(runs, Mapping) else None
        found: list[Invocation] = []
        for index, data in enumerate(steps if isinstance(steps, list) else []):
            if not isinstance(data, Mapping):
                continue
            inner = Step(step.job, step.index, data, doc.at("runs", "steps", index))
            if isinstance(data.get("uses"), str):
                found += [
                    Invocation(t, step, inner.where, Use(inputs=inner.with_, config=self._config(t)))
                    for t in tools.for_action(inner.action)
                ]
            elif inner.run:
                first = _text_line(data, "run", doc.line("runs", "steps", index, "run"))
                errexit, pipefail = errexit_pipefail(str(data.get("shell") or "bash"), "github")
                found += self._script(step, inner.run, errexit, pipefail, doc.path, first, None, 1)
        return found

    # --- settings ---------------------------------------------------------------------------------------

    def _build_settings(self) -> None:
        repo, branch = self.repo, self.pipeline.default_branch
        values: dict[str, list[tuple[Any, str]]] = {}
        sources: list[str] = []
        applies: dict[str, str] = {}
        checks: list[RequiredCheck] = []
        bypass: list[str] = []
        doc = repo.settings
        if doc is not None:
            self.pipeline.docs[doc.path] = doc
        if doc is not None and isinstance(doc.data, Mapping):
            for i, entry in enumerate(doc.data.get("branches") or []):
                if not isinstance(entry, Mapping) or entry.get("name") != branch:
                    continue
                protection = entry.get("protection")
                if not isinstance(protection, Mapping):
                    continue
                where = doc.at("branches", i, "protection")
                sources.append(where)
                missing = [k for k in MANDATORY_PROTECTION if k not in protection]
                applies[where] = (
                    f"the repository-settings app applies none of it: {', '.join(missing)} missing "
                    "(all four of required_status_checks, enforce_admins, required_pull_request_reviews, "
                    "restrictions must be present, null to disable)"
                    if missing
                    else ""
                )
                _settings_values(doc, ("branches", i, "protection"), protection, values, checks)
            sa = (doc.data.get("repository") or {}) if isinstance(doc.data.get("repository"), Mapping) else {}
            analysis = sa.get("security_and_analysis") if isinstance(sa, Mapping) else None
            if isinstance(analysis, Mapping):
                self.pipeline.settings["security_and_analysis"] = (
                    analysis,
                    doc.at("repository", "security_and_analysis"),
                )
            for i, env in enumerate(doc.data.get("environments") or []):
                if isinstance(env, Mapping) and isinstance(env.get("name"), str):
                    policy = env.get("deployment_branch_policy")
                    branches: tuple[str, ...] | None = None
                    if isinstance(policy, Mapping):
                        custom = policy.get("custom_branches")
                        if isinstance(custom, list) and custom:
                            branches = tuple(str(b.get("name") if isinstance(b, Mapping) else b) for b in custom)
                        elif policy.get("protected_branches") is True:
                            branches = ("<protected branches>",)
                    reviewers = env.get("reviewers")
                    count = len(reviewers) if isinstance(reviewers, list) else 0
                    self.pipeline.environments[env["name"].lower()] = Environment(
                        env["name"].lower(), doc.at("environments", i), branches, count
                    )
        for rdoc in repo.rulesets:
            self.pipeline.docs[rdoc.path] = rdoc
            data = rdoc.data
            include = ((data.get("conditions") or {}).get("ref_name") or {}).get("include") or []
            if data.get("target", "branch") != "branch" or not (
                {"~DEFAULT_BRANCH", "~ALL", f"refs/heads/{branch}"} & set(map(str, include))
            ):
                continue
            where = rdoc.at()
            sources.append(where)
            enforcement = data.get("enforcement")
            applies[where] = "" if enforcement == "active" else f"enforcement is {enforcement!r}, not 'active'"
            _ruleset_values(rdoc, data, values, checks)
            for j, actor in enumerate(data.get("bypass_actors") or []):
                if isinstance(actor, Mapping) and actor.get("bypass_mode") != "pull_request":
                    bypass.append(rdoc.at("bypass_actors", j))
        self.pipeline.protection = Protection(bool(sources), sources, applies, values, checks, bypass)


# --- helpers ------------------------------------------------------------------------------------------


def _reach(verdict: reach.Verdict) -> reach.Reach:
    """A job's reach; a call to a remote workflow the tool registry knows runs its jobs whenever the call runs."""
    if verdict.uses and verdict.call is not None and tools.for_workflow(verdict.uses.split("@", 1)[0]):
        return verdict.call
    return verdict.reach


def _job_name(job_id: str, data: Mapping[str, Any]) -> str:
    name = data.get("name")
    return name if isinstance(name, str) and name.strip() else job_id


def _local(uses: str) -> str | None:
    """The repository path of `./path` or `$/path` (GitHub's self-repository syntax), else None."""
    for prefix in ("./", "$/"):
        if uses.startswith(prefix):
            return uses[len(prefix) :].split("@", 1)[0].rstrip("/")
    return None


def _invalid(jobs: Mapping[str, Any]) -> str | None:
    """Why GitHub would reject a workflow's job graph: needs on a missing job, or a cycle."""
    graph: dict[str, list[str]] = {}
    for job_id, data in jobs.items():
        needs = data.get("needs", []) if isinstance(data, Mapping) else []
        needs = [needs] if isinstance(needs, str) else [n for n in needs if isinstance(n, str)]
        for need in needs:
            if need not in jobs:
                return f"job {job_id} needs {need}, which does not exist"
        graph[str(job_id)] = needs
    state: dict[str, int] = {}

    def visit(node: str) -> str | None:
        state[node] = 1
        for need in graph.get(node, []):
            if state.get(need) == 1:
                return f"jobs {node} and {need} need each other (a cycle)"
            if state.get(need) is None and (found := visit(need)):
                return found
        state[node] = 2
        return None

    for node in graph:
        if state.get(node) is None and (found := visit(node)):
            return found
    return None


def _truthy(value: Any) -> bool:
    """continue-on-error: true, or an expression that may be true."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        return value.strip().lower() not in {"", "false", "${{ false }}", "0"}
    return bool(value)


def _step_condition(condition: Any, event: reach.Event, job: Job) -> bool | None:
    """A step's `if:`; on a static matrix, true when it holds in some combination (whose check then fails)."""
    combos = reach._matrix(job.data) if "matrix" in str(condition) else None
    if not combos or combos == [{}]:
        return _condition(condition, event)
    verdicts = {_condition(condition, event, combo) for combo in combos}
    return True if True in verdicts else False if verdicts == {False} else None


def _condition(condition: Any, event: reach.Event, matrix: Mapping[str, Any] | None = None) -> bool | None:
    """A step's `if:` on an event assuming earlier steps succeeded: True, False, or None (unknown)."""
    try:
        template = expressions.condition(condition)
        contexts = {"github": event.github(), **dict.fromkeys(_STEP_CONTEXTS, expressions.UNKNOWN)}
        if matrix is not None:
            contexts["matrix"] = expressions.Partial(matrix)
        value = template.truth(contexts, _STEP_STATUS)
        if not any(e.uses_status for e in template.expressions):
            value = value  # success() is true here: earlier steps are taken to succeed
    except expressions.ExpressionError:
        return None
    return value if isinstance(value, bool) else None


def _default_shell(job: Job) -> str | None:
    for source in (job.data, job.pipeline.docs[job.file].data if job.file in job.pipeline.docs else {}):
        defaults = source.get("defaults") if isinstance(source, Mapping) else None
        run = defaults.get("run") if isinstance(defaults, Mapping) else None
        if isinstance(run, Mapping) and isinstance(run.get("shell"), str):
            return str(run["shell"])
    return None


_ENV_PREFIX = re.compile(r"^(?:[A-Za-z_][A-Za-z0-9_]*=(?:\"[^\"]*\"|'[^']*'|\S*)\s+)+")


# A script that runs another one beside it: "${here}/x.sh", "$(dirname -- "${BASH_SOURCE[0]}")/x.sh".
_BESIDE = re.compile(
    r"""^((?:bash|sh|zsh|source|\.)\s+)?"?(?:\$\{?(?:here|HERE|dir|DIR|script_dir|SCRIPT_DIR|base|BASE)\}?|\$\(dirname\b[^)]*\))"?/([\w.@/-]+)"?"""
)


def _beside(command: str, file: str) -> str:
    """The command with a path relative to the running script's folder made relative to the repository."""
    if not file or "/" not in file or not (m := _BESIDE.match(command)):
        return command
    return (m[1] or "") + file.rsplit("/", 1)[0] + "/" + m[2] + command[m.end() :]


def _strip_env_prefix(command: str) -> str:
    """`A=1 B=2 ./x.sh` -> `./x.sh`."""
    return _ENV_PREFIX.sub("", command.strip())


def _settings_values(
    doc: Doc,
    base: tuple[Any, ...],
    protection: Mapping[str, Any],
    values: dict[str, list[tuple[Any, str]]],
    checks: list[RequiredCheck],
) -> None:
    """Classic branch-protection names (settings.yml) into the neutral names."""
    reviews = protection.get("required_pull_request_reviews")
    reviews = reviews if isinstance(reviews, Mapping) else None
    status = protection.get("required_status_checks")
    status = status if isinstance(status, Mapping) else None

    def put(key: str, value: Any, *path: Any) -> None:
        values.setdefault(key, []).append((value, doc.at(*base, *path)))

    put("pull_request", reviews is not None, "required_pull_request_reviews")
    put(
        "approvals",
        reviews.get("required_approving_review_count") if reviews else None,
        "required_pull_request_reviews",
        "required_approving_review_count",
    )
    put(
        "dismiss_stale",
        reviews.get("dismiss_stale_reviews") if reviews else None,
        "required_pull_request_reviews",
        "dismiss_stale_reviews",
    )
    put(
        "last_push_approval",
        reviews.get("require_last_push_approval") if reviews else None,
        "required_pull_request_reviews",
        "require_last_push_approval",
    )
    put(
        "code_owner_review",
        reviews.get("require_code_owner_reviews") if reviews else None,
        "required_pull_request_reviews",
        "require_code_owner_reviews",
    )
    put(
        "conversation_resolution",
        protection.get("required_conversation_resolution"),
        "required_conversation_resolution",
    )
    put("enforce_admins", protection.get("enforce_admins"), "enforce_admins")
    put("no_force_push", protection.get("allow_force_pushes") is False, "allow_force_pushes")
    put("no_deletion", protection.get("allow_deletions") is False, "allow_deletions")
    put("linear_history", protection.get("required_linear_history"), "required_linear_history")
    put("strict_checks", status.get("strict") if status else None, "required_status_checks", "strict")
    put("status_checks", status is not None, "required_status_checks")
    if status:
        for i, check in enumerate(status.get("checks") or []):
            if isinstance(check, Mapping) and check.get("context"):
                app = check.get("app_id")
                checks.append(
                    RequiredCheck(
                        str(check["context"]),
                        app if isinstance(app, int) and app > 0 else None,
                        doc.at(*base, "required_status_checks", "checks", i),
                    )
                )
        for i, context in enumerate(status.get("contexts") or []):
            checks.append(RequiredCheck(str(context), None, doc.at(*base, "required_status_checks", "contexts", i)))


def _ruleset_values(
    doc: Doc, data: Mapping[str, Any], values: dict[str, list[tuple[Any, str]]], checks: list[RequiredCheck]
) -> None:
    """Ruleset rules into the neutral names."""
    rules = {
        r.get("type"): (i, r.get("parameters") or {})
        for i, r in enumerate(data.get("rules") or [])
        if isinstance(r, Mapping)
    }

    def put(key: str, rule: str, param: str | None, convert: Any = None) -> None:
        if rule not in rules:
            values.setdefault(key, []).append((None if param else False, doc.at("rules")))
            return
        i, params = rules[rule]
        value = True if param is None else params.get(param) if isinstance(params, Mapping) else None
        values.setdefault(key, []).append((convert(value) if convert else value, doc.at("rules", i)))

    put("pull_request", "pull_request", None)
    put("approvals", "pull_request", "required_approving_review_count")
    put("dismiss_stale", "pull_request", "dismiss_stale_reviews_on_push")
    put("last_push_approval", "pull_request", "require_last_push_approval")
    put("code_owner_review", "pull_request", "require_code_owner_review")
    put("conversation_resolution", "pull_request", "required_review_thread_resolution")
    put("no_force_push", "non_fast_forward", None)
    put("no_deletion", "deletion", None)
    put("linear_history", "required_linear_history", None)
    put("strict_checks", "required_status_checks", "strict_required_status_checks_policy")
    put("status_checks", "required_status_checks", None)
    put("code_scanning", "code_scanning", "code_scanning_tools", _blocking_tools)
    values.setdefault("enforce_admins", []).append((not (data.get("bypass_actors") or []), doc.at("bypass_actors")))
    if "required_status_checks" in rules:
        i, params = rules["required_status_checks"]
        for j, check in enumerate(params.get("required_status_checks") or [] if isinstance(params, Mapping) else []):
            if isinstance(check, Mapping) and check.get("context"):
                app = check.get("integration_id")
                checks.append(
                    RequiredCheck(
                        str(check["context"]),
                        app if isinstance(app, int) else None,
                        doc.at("rules", i, "parameters", "required_status_checks", j),
                    )
                )


def _blocking_tools(tools_: Any) -> tuple[str, ...]:
    """The tools (lowercase) whose alerts a code_scanning rule blocks on: a threshold other than none."""
    return tuple(
        str(t.get("tool", "")).lower()
        for t in tools_ or []
        if isinstance(t, Mapping)
        and (t.get("security_alerts_threshold", "none") != "none" or t.get("alerts_threshold", "none") != "none")
    )


def build(repo: Repo, default_branch: str) -> Pipeline:
    return GitHubAdapter(repo, default_branch).pipeline


__all__ = ["ACTIONS_APP", "CHANGE_EVENTS", "GitHubAdapter", "build"]


def _text_line(data: Mapping[str, Any], key: str, key_line: int) -> int:
    """The line a script's first command is on: the key's own line for `run: cmd`, the next for `run: |`."""
    return int(getattr(data, "text_lines", {}).get(key, key_line + 1))
