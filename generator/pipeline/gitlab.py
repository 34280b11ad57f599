"""GitLab adapter: `.gitlab-ci.yml`, its local includes and the `.gitlab/settings/` payloads into the neutral model.

What GitLab does, modelled here rather than guessed from words:
- the configuration is the main file merged over its `include:`s (deep merge of mappings, the including file
  wins); a remote, project, template or component include cannot be read here, so what it may add is unknown;
- `!reference [job, key]` is resolved on that merged configuration, then `extends:` (multi-level, deep merge,
  later parents over earlier ones, the job over all), then `default:` fills the keys a job does not set;
  hidden jobs (`.name`) are templates, not jobs;
- which jobs each pipeline source adds: `workflow:rules` first (no match: no pipeline), then each job's
  `rules:` (first match wins; no match: not added) or `only`/`except` (default `only: [branches, tags]`, so a
  job without rules never runs in a merge-request pipeline); a merge request is gated by its merge-request
  pipeline when the configuration creates one, otherwise by the branch pipeline of its source branch;
- `needs:` on a job the same pipeline does not add (and not `optional: true`) makes GitLab refuse to create
  the pipeline; a job without `needs:` waits for every job of the earlier stages;
- `when: manual` runs only when started by hand (and outside `rules:` defaults to `allow_failure: true`),
  `allow_failure` (or its `exit_codes`) lets a failed job pass the pipeline, `after_script` never fails a job;
- a job script runs under `set -eo pipefail` (bash), so `|| true` and friends are judged by the shell model.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from functools import cached_property
from typing import Any

from generator.pipeline import gitlab_expr
from generator.pipeline.github import (
    _DEPLOY_STEP,
    _GITOPS_PRODUCTION_PATH,
    _PRODUCTION,
    _PRODUCTION_JOB,
    ScriptFollower,
    ci_pushes_production,
)
from generator.pipeline.model import (
    EVENTS,
    MANUAL,
    MERGE_QUEUE,
    PULL_REQUEST,
    PUSH,
    SCHEDULE,
    TAG,
    Invocation,
    Job,
    Pipeline,
    Step,
    Verdict,
    errexit_pipefail,
)
from generator.repo import Doc, Map, Reference, Repo, Seq

MAIN = ".gitlab-ci.yml"


def _gitops_production(job: Job) -> bool:
    """A job whose every rule adds it only when production's manifests change (argocd/environments/production/,
    k8s/prod/...): a merged GitOps promotion, which Argo CD or Flux then applies. A job that runs whatever the
    jobs before it did (`when: always`) or only when they failed records or rolls back; it is not the deploy."""
    rules = job.data.get("rules")
    if not isinstance(rules, list) or not rules:
        return False
    adding = [r for r in rules if isinstance(r, Mapping) and r.get("when", "on_success") != "never"]
    if not adding or len(adding) != len([r for r in rules if isinstance(r, Mapping)]):
        return False
    for rule in adding:
        if rule.get("when", "on_success") not in {"on_success", "manual", "delayed"}:
            return False
        changes = rule.get("changes")
        paths = changes.get("paths") if isinstance(changes, Mapping) else changes
        if not isinstance(paths, list) or not paths or not all(isinstance(p, str) for p in paths):
            return False
        if not all(_GITOPS_PRODUCTION_PATH.search(p) for p in paths):
            return False
    return True


# GitLab's own security templates (Security/SAST.gitlab-ci.yml, Jobs/Secret-Detection.latest.gitlab-ci.yml, ...).
_SECURITY_TEMPLATE = re.compile(
    r"(?:Security|Jobs)/(?:SAST|SAST-IaC|Secret-Detection|Dependency-Scanning|Container-Scanning|DAST|"
    r"License-Scanning)\b",
    re.IGNORECASE,
)
RESERVED = frozenset(
    {"default", "include", "stages", "variables", "workflow", "image", "services", "cache", "before_script"}
    | {"after_script", "types", "spec", "pages:deploy"}
)
DEFAULT_KEYS = (
    "after_script",
    "artifacts",
    "before_script",
    "cache",
    "hooks",
    "id_tokens",
    "image",
    "interruptible",
    "retry",
    "services",
    "tags",
    "timeout",
)
DEFAULT_STAGES = (".pre", "build", "test", "deploy", ".post")
_MAX_EXTENDS = 11  # GitLab's limit on extends depth
_MAX_INCLUDES = 150
_FEATURE = "feature"  # the source branch of the merge request the audit imagines
RUNNING = frozenset({"on_success", "always", "delayed"})
# A merge request is gated by its own pipeline; without one, by the branch pipeline of its source branch.
_FEATURE_PUSH = "feature_push"
_BRANCH_PUSH = "branch_push"  # a push to another branch, with no merge request open for it


def _context(event: str, branch: str) -> dict[str, Any]:
    """The predefined variables of a pipeline for the neutral event (what rules:if can read)."""
    none = {
        "CI_DEFAULT_BRANCH": branch,
        "CI_COMMIT_TAG": None,
        "CI_COMMIT_BRANCH": None,
        "CI_MERGE_REQUEST_IID": None,
        "CI_MERGE_REQUEST_ID": None,
        "CI_MERGE_REQUEST_TARGET_BRANCH_NAME": None,
        "CI_MERGE_REQUEST_SOURCE_BRANCH_NAME": None,
        "CI_MERGE_REQUEST_EVENT_TYPE": None,
        "CI_OPEN_MERGE_REQUESTS": None,
        "CI_EXTERNAL_PULL_REQUEST_IID": None,
        "CI_PIPELINE_TRIGGERED": None,
        "CI_COMMIT_REF_NAME": branch,
        "CI_COMMIT_REF_SLUG": branch,
    }
    mr = {
        "CI_PIPELINE_SOURCE": "merge_request_event",
        "CI_MERGE_REQUEST_IID": "1",
        "CI_MERGE_REQUEST_ID": "1",
        "CI_MERGE_REQUEST_TARGET_BRANCH_NAME": branch,
        "CI_MERGE_REQUEST_SOURCE_BRANCH_NAME": _FEATURE,
        "CI_MERGE_REQUEST_EVENT_TYPE": "detached",
        "CI_OPEN_MERGE_REQUESTS": "group/project!1",
        "CI_COMMIT_REF_NAME": _FEATURE,
        "CI_COMMIT_REF_SLUG": _FEATURE,
    }
    branch_pipeline = {"CI_COMMIT_BRANCH": branch}
    own = {
        PULL_REQUEST: mr,
        MERGE_QUEUE: mr | {"CI_MERGE_REQUEST_EVENT_TYPE": "merge_train"},
        _FEATURE_PUSH: {
            "CI_PIPELINE_SOURCE": "push",
            "CI_COMMIT_BRANCH": _FEATURE,
            "CI_COMMIT_REF_NAME": _FEATURE,
            "CI_COMMIT_REF_SLUG": _FEATURE,
            "CI_OPEN_MERGE_REQUESTS": "group/project!1",
        },
        _BRANCH_PUSH: {
            "CI_PIPELINE_SOURCE": "push",
            "CI_COMMIT_BRANCH": _FEATURE,
            "CI_COMMIT_REF_NAME": _FEATURE,
            "CI_COMMIT_REF_SLUG": _FEATURE,
        },
        PUSH: {"CI_PIPELINE_SOURCE": "push"} | branch_pipeline,
        SCHEDULE: {"CI_PIPELINE_SOURCE": "schedule"} | branch_pipeline,
        MANUAL: {"CI_PIPELINE_SOURCE": "web"} | branch_pipeline,
        TAG: {"CI_PIPELINE_SOURCE": "push", "CI_COMMIT_TAG": "v1.0.0", "CI_COMMIT_REF_NAME": "v1.0.0"},
    }[event]
    return none | own


# only:/except: keywords and the pipeline sources each one means.
_REF_KEYWORDS = {
    "branches": None,  # any branch pipeline
    "tags": None,
    "merge_requests": ("merge_request_event",),
    "schedules": ("schedule",),
    "web": ("web",),
    "pushes": ("push",),
    "api": ("api",),
    "triggers": ("trigger",),
    "pipelines": ("pipeline", "parent_pipeline"),
    "external": ("external",),
    "chat": ("chat",),
    "external_pull_requests": ("external_pull_request_event",),
}


class Outcome:
    """One way a job can end up in a pipeline: its `when:`, `allow_failure:` and the rule that decided it."""

    __slots__ = ("allow_failure", "certain", "when", "where")

    def __init__(self, when: str, allow_failure: Any, where: str, certain: bool) -> None:
        self.when = when
        self.allow_failure = allow_failure
        self.where = where
        self.certain = certain


class GitLabJob(Job):
    """A GitLab job: its steps are its script sections, its needs the stage order when it declares none."""

    stage: str = "test"
    earlier: list[str]  # ids of the jobs of earlier stages (what a job without needs: waits for), shared
    sections: tuple[tuple[str, list[tuple[str, str]]], ...] = ()  # (section, [(line text, where)])

    @cached_property
    def steps(self) -> list[Step]:
        found: list[Step] = []
        for index, (section, lines) in enumerate(self.sections):
            data: dict[str, Any] = {
                "name": f"{self.id} {section}",
                "run": "\n".join(text for text, _ in lines),
                "env": _variables(self.data.get("variables")),
                "section": section,
            }
            if section == "after_script":
                data["if"] = "always()"  # runs whatever the script did, and cannot fail the job
            found.append(GitLabStep(self, index, data, lines[0][1] if lines else self.where, lines))
        return found

    @property
    def needs(self) -> list[str]:
        """Its needs:, or every job of the earlier stages (one list shared by the jobs of a stage: read only)."""
        if "needs" not in self.data:
            return self.earlier
        return [n for n, _optional in _needs(self.data.get("needs"))]

    def at(self, *keys: Any) -> str:
        return _where(self.data, *keys) or self.where


class GitLabStep(Step):
    """One script section of a GitLab job, with the file:line of each of its lines (includes and !reference
    bring lines of other files)."""

    def __init__(self, job: Job, index: int, data: Mapping[str, Any], where: str, lines: list[tuple[str, str]]):
        super().__init__(job, index, data, where)
        self.lines = lines

    def line_of(self, key: str) -> str:
        if key == "run":
            return self.where
        return self.job.at(key)


class GitLabAdapter(ScriptFollower):
    """Builds the model of a GitLab project and answers the platform's own questions about it."""

    platform = "gitlab"

    def __init__(self, repo: Repo, default_branch: str, changed: tuple[str, ...] | None = None) -> None:
        self.repo = repo
        # The files a push or merge request changes, when known (rules:changes is then decided, not unknown).
        self.changed = changed
        self._uses_memo = {}
        self._followed_memo = {}
        self.pipeline = Pipeline("gitlab", repo, self, default_branch)
        self.outcomes: dict[int, dict[str, list[Outcome]]] = {}
        self.refused: dict[str, str] = {}  # event -> why GitLab refuses to create that pipeline
        self.files: list[str] = []
        self._workflow_rules = False
        self._exists_memo: dict[tuple[str, ...], bool] = {}
        config = self._configuration()
        self.pipeline.read = {"CI files": len(self.files), "settings files": 0}
        if config is not None:
            self._build_jobs(config)
        from generator.pipeline import gitlab_settings

        gitlab_settings.build(self.pipeline, repo)

    # --- configuration: includes, references, extends, default --------------------------------------

    def _configuration(self) -> Map | None:
        main = self.repo.gitlab_ci(MAIN)
        if main is None:
            return None
        seen: set[str] = set()
        return self._expand(main, seen, 0)

    def _expand(self, doc: Doc, seen: set[str], depth: int) -> Map:
        """The file merged over its includes (each include expanded the same way first)."""
        seen.add(doc.path)
        self.files.append(doc.path)
        self.pipeline.docs[doc.path] = doc
        _tag(doc.data, doc.path)
        merged = Map()
        _init(merged, doc.path, getattr(doc.data, "line", 1))
        for where, kind, target in _includes(doc):
            if kind == "local":
                paths = self._local_paths(target)
                if not paths:
                    self.pipeline.opaque.append((where, f"local include {target} does not exist in the repository"))
                for rel in paths:
                    if rel in seen or len(seen) >= _MAX_INCLUDES:
                        continue
                    included = self.repo.gitlab_ci(rel)
                    if included is None:
                        self.pipeline.opaque.append((where, f"local include {rel} cannot be read"))
                        continue
                    merged = _merge(merged, self._expand(included, seen, depth + 1))
            elif kind == "template" and _SECURITY_TEMPLATE.search(target):
                self.pipeline.opaque.append(
                    (
                        where,
                        f"template {target}: GitLab's analyzers report findings to the security widget and do not "
                        "fail the job; only a merge request approval policy (Ultimate, set outside the files) may "
                        "block on them",
                    )
                )
            else:
                self.pipeline.opaque.append(
                    (where, f"{kind} include {target}: its contents are not in this repository")
                )
        own = Map()
        _init(own, doc.path, getattr(doc.data, "line", 1))
        for key, value in doc.data.items():
            if key != "include":
                _put(own, key, value, doc.data)
        return _merge(merged, own)

    def _local_paths(self, target: str) -> list[str]:
        rel = target.lstrip("/")
        if "$" in rel:
            return []
        if "*" in rel:
            return [p.relative_to(self.repo.root).as_posix() for p in self.repo.files(rel)]
        return [rel] if (self.repo.root / rel).is_file() else []

    def _build_jobs(self, config: Map) -> None:
        config = _resolve_references(config, config, self.pipeline, 0)
        names = [str(k) for k, v in config.items() if isinstance(v, Mapping) and str(k) not in RESERVED]
        resolved: dict[str, Map] = {}
        problems: dict[str, str] = {}
        for name in names:
            resolved[name] = self._extend(config, name, (), problems)
        default_ = config.get("default")
        default: Mapping[str, Any] = default_ if isinstance(default_, Mapping) else {}
        globals_ = {
            k: config[k] for k in ("image", "services", "cache", "before_script", "after_script") if k in config
        }
        stages = config.get("stages")
        stage_list = [str(s) for s in stages] if isinstance(stages, list) else list(DEFAULT_STAGES[1:4])
        stage_list = [".pre", *[s for s in stage_list if s not in {".pre", ".post"}], ".post"]
        top_vars = _variables(config.get("variables"))
        workflow_ = config.get("workflow")
        workflow: Mapping[str, Any] = workflow_ if isinstance(workflow_, Mapping) else {}
        jobs: list[GitLabJob] = []
        for name in names:
            if name.startswith("."):
                continue  # a hidden job is a template
            data = resolved[name]
            data = self._inherit(data, default, globals_, top_vars)
            file, line_path = self._home(name)
            job = GitLabJob(self.pipeline, file, name, name, data, line_path)
            job.names = (name,)
            stage = str(data.get("stage", "test"))
            job.stage = stage
            if name in problems:
                job.invalid = problems[name]
            elif stage not in stage_list:
                job.invalid = f"job {name} is in stage {stage!r}, which stages: does not list"
            elif not any(k in data for k in ("script", "trigger", "run")) and not self.pipeline.opaque:
                # (with an include the audit cannot read, the script may come from it)
                job.invalid = f"job {name} has no script: (nor trigger:)"
            trigger = data.get("trigger")
            if isinstance(trigger, (str, Mapping)):
                # A child or downstream pipeline runs jobs of its own; they are not read here.
                target = trigger if isinstance(trigger, str) else trigger.get("include") or trigger.get("project")
                self.pipeline.opaque.append(
                    (_where(data, "trigger") or f"{file}:1", f"job {name} triggers pipeline {target}, not followed")
                )
            job.sections = tuple(
                (section, lines)
                for section in ("before_script", "script", "after_script")
                if (lines := _script_lines(data.get(section), data, section))
            )
            jobs.append(job)
        # The jobs of all earlier stages, one shared tuple per stage (not one list per job: no quadratic memory).
        order = {stage: i for i, stage in enumerate(stage_list)}
        by_stage: dict[int, list[str]] = {}
        for job in jobs:
            by_stage.setdefault(order.get(job.stage, len(stage_list)), []).append(job.id)
        before: dict[int, list[str]] = {}
        seen: list[str] = []
        for index in sorted(by_stage):
            before[index] = seen
            seen = seen + by_stage[index]
        for job in jobs:
            job.earlier = before[order.get(job.stage, len(stage_list))]
        by_id = {j.id: j for j in jobs}
        # A needs: on a job that does not exist is a configuration error: GitLab creates no pipeline at all.
        broken = next(
            (
                f"job {job.id} needs {need}, which does not exist"
                for job in jobs
                if "needs" in job.data
                for need, _optional in _needs(job.data.get("needs"))
                if need not in by_id and not _optional
            ),
            None,
        )
        broken = broken or next((j.invalid for j in jobs if j.invalid), None)
        if broken:
            for job in jobs:
                job.invalid = broken
        self.pipeline.jobs.extend(jobs)
        self._reach(jobs, workflow, top_vars)

    def _home(self, name: str) -> tuple[str, tuple[Any, ...]]:
        """The file whose top level defines the job (the last one merged: the including file wins)."""
        for path in reversed(self.files):
            doc = self.pipeline.docs.get(path)
            if doc is not None and name in doc.data:
                return path, (name,)
        return MAIN, (name,)

    def _extend(self, config: Map, name: str, chain: tuple[str, ...], problems: dict[str, str]) -> Map:
        job = config.get(name)
        if not isinstance(job, Mapping):
            return Map()
        if len(chain) >= _MAX_EXTENDS or name in chain:
            problems[chain[0] if chain else name] = f"extends of {name} nest too deep or in a cycle"
            return Map()
        parents = job.get("extends")
        parents = [parents] if isinstance(parents, str) else [str(p) for p in parents or [] if isinstance(p, str)]
        result = Map()
        _init(result, getattr(job, "file", MAIN), getattr(job, "line", 1))
        for parent in parents:
            if parent not in config:
                if not self.pipeline.opaque:  # an include the audit cannot read may define it
                    problems[chain[0] if chain else name] = f"{name} extends {parent}, which does not exist"
                continue
            result = _merge(result, self._extend(config, parent, (*chain, name), problems))
        own = Map()
        _init(own, getattr(job, "file", MAIN), getattr(job, "line", 1))
        for key, value in job.items():
            if key != "extends":
                _put(own, key, value, job)
        return _merge(result, own)

    def _inherit(self, data: Map, default: Mapping[str, Any], globals_: Mapping[str, Any], top: dict[str, Any]) -> Map:
        inherit_ = data.get("inherit")
        inherit: Mapping[str, Any] = inherit_ if isinstance(inherit_, Mapping) else {}
        wanted_default = inherit.get("default", True)
        wanted_vars = inherit.get("variables", True)
        out = Map()
        _init(out, getattr(data, "file", MAIN), getattr(data, "line", 1))
        for key in DEFAULT_KEYS:
            if key in data:
                continue
            allowed = wanted_default is True or (isinstance(wanted_default, list) and key in wanted_default)
            source = default if key in default else globals_
            if allowed and key in source:
                _put(out, key, source[key], source if isinstance(source, Map) else default)
        for key, value in data.items():
            _put(out, key, value, data)
        if wanted_vars is not False:
            keep = top if wanted_vars is True else {k: v for k, v in top.items() if k in (wanted_vars or [])}
            own = _variables(data.get("variables"))
            merged_vars = Map()
            _init(merged_vars, getattr(data, "file", MAIN), getattr(data, "line", 1))
            for k, v in {**keep, **own}.items():
                merged_vars[k] = v
            if merged_vars:
                out["variables"] = merged_vars
                source_vars = data.get("variables")
                if isinstance(source_vars, Map):
                    merged_vars.key_lines = dict(source_vars.key_lines)
                    merged_vars.key_files = dict(getattr(source_vars, "key_files", {}))
        return out

    # --- which pipelines add each job -------------------------------------------------------------------

    def _reach(self, jobs: list[GitLabJob], workflow: Mapping[str, Any], top: dict[str, Any]) -> None:
        branch = self.pipeline.default_branch
        self._workflow_rules = isinstance(workflow.get("rules"), list)
        per_event: dict[str, dict[int, list[Outcome]]] = {}
        created: dict[str, gitlab_expr.Truth] = {}
        for event in (*EVENTS, _FEATURE_PUSH, _BRANCH_PUSH):
            ctx = _context(event, branch)
            allowed, extra = self._workflow(workflow, {**top, **ctx}, event)
            ctx = {**top, **extra, **ctx}
            outcomes = {id(job): self._job_outcomes(job, ctx, event) for job in jobs}
            any_added = _any(o.when != "never" for outs in outcomes.values() for o in outs) if outcomes else False
            created[event] = _and(allowed, any_added)
            rules_at = _where(workflow, "rules") or MAIN
            if created[event] is False:
                outcomes = {id(job): [Outcome("never", False, rules_at, True)] for job in jobs}
            elif allowed is None:  # workflow:rules may not create this pipeline: every job may be missing
                outcomes = {
                    key: [*(Outcome(o.when, o.allow_failure, o.where, False) for o in outs)]
                    + [Outcome("never", False, rules_at, False)]
                    for key, outs in outcomes.items()
                }
            per_event[event] = outcomes
            self._refusal(event, jobs, outcomes)
        # Which pipeline gates a merge request.
        mr = created[PULL_REQUEST]
        if mr is False:
            per_event[PULL_REQUEST] = per_event[_FEATURE_PUSH]
            self.refused.pop(PULL_REQUEST, None)
            if _FEATURE_PUSH in self.refused:
                self.refused[PULL_REQUEST] = self.refused[_FEATURE_PUSH]
        elif mr is None:
            per_event[PULL_REQUEST] = {
                key: outs + [Outcome(o.when, o.allow_failure, o.where, False) for o in per_event[_FEATURE_PUSH][key]]
                for key, outs in per_event[PULL_REQUEST].items()
            }
        for job in jobs:
            self.outcomes[id(job)] = {e: per_event[e][id(job)] for e in (*EVENTS, _FEATURE_PUSH, _BRANCH_PUSH)}
            job.reached = {e: self._verdict(job, e) for e in EVENTS}

    def _refusal(self, event: str, jobs: list[GitLabJob], outcomes: dict[int, list[Outcome]]) -> None:
        """GitLab refuses a pipeline in which a job surely added needs a job surely not added."""
        added = {j.id: outcomes[id(j)] for j in jobs}
        for job in jobs:
            if "needs" not in job.data or not all(o.when != "never" and o.certain for o in added[job.id]):
                continue
            for need, optional in _needs(job.data.get("needs")):
                if optional or need not in added:
                    continue
                if all(o.when == "never" for o in added[need]):
                    self.refused[event] = (
                        f"job {job.id} needs {need}, which this pipeline does not add, so GitLab creates no "
                        f"pipeline ({job.at('needs')})"
                    )
                    return

    def _verdict(self, job: GitLabJob, event: str) -> Verdict:
        if job.invalid or event in self.refused:
            return "never"
        outs = self.outcomes[id(job)][event]
        if all(o.when == "never" for o in outs):
            return "never"
        if all(o.when in RUNNING and o.certain for o in outs):
            return "runs"
        return "maybe"

    def _workflow(
        self, workflow: Mapping[str, Any], ctx: Mapping[str, Any], event: str
    ) -> tuple[gitlab_expr.Truth, dict[str, Any]]:
        """Whether workflow:rules create the pipeline (first match wins, no match: none), and the variables
        the deciding rule sets."""
        rules = workflow.get("rules")
        if not isinstance(rules, list):
            return True, {}
        runs: list[bool] = []
        extra: dict[str, Any] = {}
        decided = False
        for rule in rules:
            if not isinstance(rule, Mapping):
                continue
            match = self._match(rule, ctx, event)
            if match is False:
                continue
            creates = rule.get("when", "always") != "never"
            runs.append(creates)
            if creates and not extra:
                extra = _variables(rule.get("variables"))
            if match is True:
                decided = True
                break
        if not decided:
            runs.append(False)
        return (True if all(runs) else False if not any(runs) else None), extra

    def _job_outcomes(self, job: GitLabJob, ctx: Mapping[str, Any], event: str) -> list[Outcome]:
        data = job.data
        variables = {**ctx, **_variables(data.get("variables"))}
        variables.update({k: v for k, v in ctx.items() if k.startswith("CI_")})
        rules = data.get("rules")
        if isinstance(rules, list):
            found: list[Outcome] = []
            for i, rule in enumerate(rules):
                if not isinstance(rule, Mapping):
                    continue
                match = self._match(rule, variables, event)
                if match is False:
                    continue
                when = str(rule.get("when", "on_success"))
                allow = rule.get("allow_failure", data.get("allow_failure", False))
                found.append(
                    Outcome(
                        when, allow, job.at("rules") if i == 0 else _where(rules, i) or job.at("rules"), match is True
                    )
                )
                if match is True:
                    return found
            found.append(Outcome("never", False, job.at("rules"), not found))
            return found
        included = self._only_except(data, variables, event)
        when = str(data.get("when", "on_success"))
        default_allow = when == "manual"  # a manual job outside rules may fail (GitLab's default)
        allow = data.get("allow_failure", default_allow)
        where = job.at("only") if "only" in data else job.at("except") if "except" in data else job.where
        if included is False:
            return [Outcome("never", False, where, True)]
        if included is None:
            return [Outcome(when, allow, where, False), Outcome("never", False, where, False)]
        return [Outcome(when, allow, where, True)]

    def _match(self, rule: Mapping[str, Any], ctx: Mapping[str, Any], event: str) -> gitlab_expr.Truth:
        clauses: list[gitlab_expr.Truth] = []
        if "if" in rule:
            try:
                clauses.append(gitlab_expr.evaluate(str(rule["if"]), ctx))
            except gitlab_expr.ExpressionError:
                clauses.append(None)
        if "changes" in rule:
            # Without a Git push (schedule, web, tag) rules:changes is always true; otherwise the diff decides.
            clauses.append(True if event in {SCHEDULE, MANUAL, TAG} else self._changes(rule["changes"]))
        if "exists" in rule:
            clauses.append(self._exists(rule["exists"]))
        return _and(*clauses) if clauses else True

    def _changes(self, spec: Any) -> gitlab_expr.Truth:
        """Whether the known changed files match rules:changes (GitLab's fnmatch globs), or None when unknown."""
        paths = spec.get("paths") if isinstance(spec, Mapping) else spec
        if self.changed is None or (isinstance(spec, Mapping) and "compare_to" in spec):
            return None
        patterns = [str(p).lstrip("/") for p in (paths if isinstance(paths, list) else [paths]) if p]
        if any("$" in p for p in patterns):
            return None
        return any(_glob(p).match(f) for p in patterns for f in self.changed)

    def _exists(self, spec: Any) -> gitlab_expr.Truth:
        paths = spec.get("paths") if isinstance(spec, Mapping) else spec
        if isinstance(spec, Mapping) and spec.get("project"):
            return None
        patterns = tuple(str(p).lstrip("/") for p in (paths if isinstance(paths, list) else [paths]) if p)
        if any("$" in p for p in patterns):
            return None
        if patterns not in self._exists_memo:  # the same rule is asked once per pipeline source
            self._exists_memo[patterns] = any(True for _ in self.repo.files(*patterns)) if patterns else False
        return self._exists_memo[patterns]

    def _only_except(self, data: Mapping[str, Any], ctx: Mapping[str, Any], event: str) -> gitlab_expr.Truth:
        only = data.get("only")
        exclude = data.get("except")
        if only is None and exclude is None and not self._workflow_rules:
            # The default `only: [branches, tags]` keeps a job out of merge-request pipelines, but GitLab drops
            # it when workflow:rules exist (gitlab-org/gitlab!21742: the workflow decides for such jobs).
            only = ["branches", "tags"]
        inside = self._policy(only, ctx, event, default=["branches", "tags"]) if only is not None else True
        outside = self._policy(exclude, ctx, event, default=None) if exclude is not None else False
        return _and(inside, None if outside is None else not outside)

    def _policy(self, spec: Any, ctx: Mapping[str, Any], event: str, default: list[str] | None) -> gitlab_expr.Truth:
        refs: Any
        variables: Any = None
        changes: Any = None
        if isinstance(spec, Mapping):
            refs = spec.get("refs", default)
            variables = spec.get("variables")
            changes = spec.get("changes")
        else:
            refs = spec
        checks: list[gitlab_expr.Truth] = []
        if refs is not None:
            refs = [refs] if isinstance(refs, str) else list(refs or [])
            checks.append(_any(self._ref(str(r), ctx) for r in refs))
        if variables:
            found: list[gitlab_expr.Truth] = []
            for expression in variables if isinstance(variables, list) else [variables]:
                try:
                    found.append(gitlab_expr.evaluate(str(expression), ctx))
                except gitlab_expr.ExpressionError:
                    found.append(None)
            checks.append(_any(found))
        if changes:
            checks.append(True if event in {SCHEDULE, MANUAL, TAG} else None)
        return _and(*checks) if checks else True

    @staticmethod
    def _ref(ref: str, ctx: Mapping[str, Any]) -> gitlab_expr.Truth:
        source = ctx.get("CI_PIPELINE_SOURCE")
        is_mr = source == "merge_request_event"
        tag = ctx.get("CI_COMMIT_TAG")
        if ref == "branches":
            return not is_mr and not tag
        if ref == "tags":
            return bool(tag)
        if ref in _REF_KEYWORDS:
            return source in (_REF_KEYWORDS[ref] or ())
        if is_mr:
            return False  # a branch name or pattern matches branch and tag pipelines only
        name = str(ctx.get("CI_COMMIT_REF_NAME") or "")
        if ref.startswith("/") and ref.rstrip("i").endswith("/"):
            try:
                return re.search(ref[1:].rstrip("i")[:-1], name) is not None
            except re.error:
                return None
        return ref.split("@", 1)[0] == name

    # --- the platform's answers ----------------------------------------------------------------------

    def job_not_blocking(self, job: Job, event: str) -> str | None:
        if job.invalid:
            return f"GitLab rejects {MAIN} ({job.invalid}), so no pipeline runs"
        if event in self.refused:
            return self.refused[event]
        outs = self.outcomes.get(id(job), {}).get(event, [])
        pipeline = "merge request" if event in {PULL_REQUEST, MERGE_QUEUE} else event
        if not outs or all(o.when == "never" for o in outs):
            where = outs[0].where if outs else job.where
            return f"job {job.name} is not added to {pipeline} pipelines ({where})"
        for o in outs:
            if o.when == "manual":
                return (
                    f"job {job.name} is when: manual on {pipeline} pipelines: it runs only when started by hand "
                    f"({o.where})"
                )
            if o.when == "on_failure":
                return f"job {job.name} runs only when an earlier job fails ({o.where})"
            if o.allow_failure is True:
                return f"allow_failure: true on job {job.name} ({job.at('allow_failure')})"
        for o in outs:
            if o.when == "never" or not o.certain:
                return (
                    f"job {job.name} may not be added to {pipeline} pipelines: its rules depend on the run ({o.where})"
                )
        return None

    def step_not_blocking(self, step: Step, event: str, *, in_job: bool = False) -> str | None:
        if step.data.get("section") == "after_script":
            return f"after_script cannot fail job {step.job.name} ({step.where})"
        codes = self._exit_codes(step.job, event)
        if codes:
            exits = {1} | {int(m) for m in re.findall(r"--exit-code[= ](\d+)", step.run)}
            if exits & codes:
                return (
                    f"allow_failure: exit_codes {sorted(codes)} on job {step.job.name} lets a tool exiting with "
                    f"{sorted(exits & codes)[0]} pass ({step.job.at('allow_failure')})"
                )
        return None if in_job else step.job.not_blocking(event)

    def _exit_codes(self, job: Job, event: str) -> set[int]:
        found: set[int] = set()
        for o in self.outcomes.get(id(job), {}).get(event, []):
            allow = o.allow_failure
            if isinstance(allow, Mapping):
                codes = allow.get("exit_codes")
                codes = codes if isinstance(codes, list) else [codes]
                found |= {c for c in codes if isinstance(c, int)}
        return found

    def deploys_to_production(self, job: Job) -> bool:
        """A job whose environment is production (by name or deployment_tier) and that deploys to it (action
        start), or one named for production that runs a deploy step; a job that runs only when another
        failed is a rollback."""
        if ci_pushes_production(job):
            return True
        if _gitops_production(job):
            # Without a push, rules:changes is always true: only a job no other pipeline source adds is a promotion.
            others = [o for e, per in self.outcomes.get(id(job), {}).items() if e != PUSH for o in per]
            return all(o.when == "never" for o in others)
        env = job.data.get("environment")
        action = env.get("action", "start") if isinstance(env, Mapping) else "start"
        tier = str(env.get("deployment_tier", "")) if isinstance(env, Mapping) else ""
        if action != "start":
            return False
        outs = [o for per in self.outcomes.get(id(job), {}).values() for o in per if o.when != "never"]
        if outs and all(o.when == "on_failure" for o in outs):
            return False
        if job.environment:
            return tier == "production" or bool(_PRODUCTION.match(job.environment.split("/")[0]))
        named = _PRODUCTION_JOB.search(f"{job.id} {job.name}")
        return bool(named) and any(_DEPLOY_STEP.search(s.run) for s in job.steps)

    def other_branches(self, job: Job) -> str | None:
        """Where a push to a branch other than the default one may add the job (the branch pipeline of a feature
        branch), or None when it never does."""
        if job.invalid:
            return None
        for event in (_FEATURE_PUSH, _BRANCH_PUSH):
            outs = [] if event in self.refused else self.outcomes.get(id(job), {}).get(event, [])
            added = [o for o in outs if o.when != "never"]
            if added:
                return added[0].where
        return None

    def when(self, job: Job, event: str) -> set[str]:
        """The `when:` values a job can have on the event ('never' when it may not be added)."""
        return {o.when for o in self.outcomes.get(id(job), {}).get(event, [])}

    def invocations(self, step: Step) -> list[Invocation]:
        if not isinstance(step, GitLabStep) or not step.run:
            return []
        errexit, pipefail = errexit_pipefail(None, "gitlab")
        found: list[Invocation] = []
        # Each script line runs in the same shell; a multi-line item keeps its own first line.
        for text, where in step.lines:
            file, _, line = where.rpartition(":")
            first = int(line) if line.isdigit() else 1
            found += self._script(step, text, errexit, pipefail, file, first, None, 0)
        return found

    def script_text(self, step: Step) -> str:
        return "\n".join(p for p in [step.run, *self._followed(step.run, 0)] if p)


# --- helpers ------------------------------------------------------------------------------------------


def _and(*values: gitlab_expr.Truth) -> gitlab_expr.Truth:
    if any(v is False for v in values):
        return False
    return True if all(v is True for v in values) else None


def _any(values: Iterator[gitlab_expr.Truth] | Any) -> gitlab_expr.Truth:
    found = list(values)
    if any(v is True for v in found):
        return True
    return False if all(v is False for v in found) else None


def _needs(value: Any) -> list[tuple[str, bool]]:
    """(job, optional) of every job in a needs: list (a needs: of another pipeline or project is left out)."""
    items = [value] if isinstance(value, (str, Mapping)) else value if isinstance(value, list) else []
    found = []
    for item in items:
        if isinstance(item, str):
            found.append((item, False))
        elif (
            isinstance(item, Mapping)
            and isinstance(item.get("job"), str)
            and not item.get("project")
            and not item.get("pipeline")
        ):
            found.append((item["job"], bool(item.get("optional"))))
    return found


def _variables(value: Any) -> dict[str, Any]:
    """Variables by name; a value that expands another variable is only known to the run."""
    if not isinstance(value, Mapping):
        return {}
    found: dict[str, Any] = {}
    for key, item in value.items():
        raw = item.get("value", "") if isinstance(item, Mapping) else item
        text = "" if raw is None else str(raw).lower() if isinstance(raw, bool) else str(raw)
        found[str(key)] = gitlab_expr.UNKNOWN if "$" in text else text
    return found


def _tag(node: Any, path: str) -> None:
    """Remember which file every mapping and list of a parsed file came from."""
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, Map):
            if getattr(item, "file", None) == path:
                continue
            item.file = path
            item.key_files = dict.fromkeys(item.key_lines, path)
            stack.extend(item.values())
        elif isinstance(item, Seq):
            if getattr(item, "file", None) == path:
                continue
            item.file = path
            stack.extend(item)


def _init(node: Map, file: str, line: int) -> None:
    node.file = file
    node.line = line
    node.key_lines = {}
    node.text_lines = {}
    node.key_files = {}


def _put(target: Map, key: Any, value: Any, source: Any) -> None:
    target[key] = value
    if isinstance(source, Map):
        target.key_lines[key] = source.key_lines.get(key, source.line)
        target.key_files[key] = getattr(source, "key_files", {}).get(key, getattr(source, "file", MAIN))
        if key in source.text_lines:
            target.text_lines[key] = source.text_lines[key]


def _merge(base: Map, over: Mapping[str, Any]) -> Map:
    """GitLab's deep merge: mappings merge key by key, anything else (lists too) is replaced."""
    out = Map()
    _init(out, getattr(over, "file", getattr(base, "file", MAIN)), getattr(over, "line", base.line))
    for key, value in base.items():
        _put(out, key, value, base)
    for key, value in over.items():
        if isinstance(value, Mapping) and not isinstance(value, Reference) and isinstance(out.get(key), Mapping):
            left = out[key] if isinstance(out[key], Map) else _as_map(out[key])
            _put(out, key, _merge(left, value), over)
        else:
            _put(out, key, value, over)
    return out


def _as_map(value: Mapping[str, Any]) -> Map:
    out = Map()
    _init(out, MAIN, 1)
    out.update(value)
    return out


def _where(node: Any, *keys: Any) -> str | None:
    """file:line of a key path inside a merged mapping, as far as it exists."""
    found: str | None = None
    for key in keys:
        if isinstance(node, Map) and key in node:
            file = getattr(node, "key_files", {}).get(key, getattr(node, "file", MAIN))
            found = f"{file}:{node.key_lines.get(key, node.line)}"
            node = node[key]
        elif isinstance(node, Seq) and isinstance(key, int) and 0 <= key < len(node):
            found = f"{getattr(node, 'file', MAIN)}:{node.item_lines[key] if key < len(node.item_lines) else node.line}"
            node = node[key]
        else:
            break
    return found


def _includes(doc: Doc) -> Iterator[tuple[str, str, str]]:
    """(where, kind, target) of every include: local, remote, project, template or component."""
    value = doc.data.get("include")
    items = value if isinstance(value, list) else [value] if value is not None else []
    for i, item in enumerate(items):
        where = doc.at("include", i) if isinstance(value, list) else doc.at("include")
        if isinstance(item, str):
            kind = "remote" if item.startswith(("http://", "https://")) else "local"
            yield where, kind, item
        elif isinstance(item, Mapping):
            if "local" in item:
                yield where, "local", str(item["local"])
            elif "project" in item:
                files = item.get("file")
                for f in files if isinstance(files, list) else [files]:
                    yield where, "project", f"{item['project']}:{f}@{item.get('ref', 'HEAD')}"
            else:
                for kind in ("remote", "template", "component"):
                    if kind in item:
                        yield where, kind, str(item[kind])
                        break


def _resolve_references(node: Any, config: Map, pipeline: Pipeline, depth: int) -> Any:
    """Every `!reference [job, key, ...]` replaced by what it names (a list item that names a list is spliced)."""
    if isinstance(node, Reference):
        return _referenced(node, config, pipeline, depth)
    if isinstance(node, Map):
        out = Map()
        _init(out, getattr(node, "file", MAIN), node.line)
        for key, value in node.items():
            _put(out, key, _resolve_references(value, config, pipeline, depth), node)
        return out
    if isinstance(node, Seq):
        out_seq = Seq()
        out_seq.line = node.line
        out_seq.item_lines = []
        out_seq.file = getattr(node, "file", MAIN)
        out_seq.item_files = []
        for i, item in enumerate(node):
            line = node.item_lines[i] if i < len(node.item_lines) else node.line
            value = _resolve_references(item, config, pipeline, depth)
            if isinstance(item, Reference) and isinstance(value, list):
                # The referenced lines keep the file and line they are written at.
                out_seq.extend(value)
                lines = getattr(value, "item_lines", [])
                files = getattr(value, "item_files", None) or [getattr(value, "file", out_seq.file)] * len(value)
                out_seq.item_lines.extend(lines[j] if j < len(lines) else line for j in range(len(value)))
                out_seq.item_files.extend(files)
            else:
                out_seq.append(value)
                out_seq.item_lines.append(line)
                out_seq.item_files.append(out_seq.file)
        return out_seq
    return node


def _referenced(ref: Reference, config: Map, pipeline: Pipeline, depth: int) -> Any:
    where = f"{getattr(ref, 'file', MAIN)}:{ref.line}"
    node: Any = config
    for key in ref:
        if not isinstance(node, Mapping) or key not in node:
            pipeline.opaque.append((where, f"!reference [{', '.join(ref)}] names nothing in the configuration"))
            return None
        node = node[key]
    if depth >= 10:
        pipeline.opaque.append((where, "!reference nests more than 10 levels"))
        return None
    return _resolve_references(node, config, pipeline, depth + 1)


def _script_lines(value: Any, data: Map, section: str) -> list[tuple[str, str]]:
    """(text, file:line) of each line of a script section, nested lists flattened as GitLab does."""
    found: list[tuple[str, str]] = []
    base = _where(data, section) or f"{getattr(data, 'file', MAIN)}:{data.line}"

    def walk(item: Any, where: str, depth: int) -> None:
        if isinstance(item, str):
            multi = "\n" in item.strip()
            file, _, line = where.rpartition(":")
            found.append((item, f"{file}:{int(line) + 1}" if multi and line.isdigit() else where))
        elif isinstance(item, list) and depth < 10:
            file = getattr(item, "file", where.rpartition(":")[0])
            files = getattr(item, "item_files", None) or [file] * len(item)
            lines = getattr(item, "item_lines", [])
            for i, sub in enumerate(item):
                walk(sub, f"{files[i]}:{lines[i]}" if i < len(lines) else where, depth + 1)

    if isinstance(value, str):
        file, _, line = base.rpartition(":")
        found.append((value, f"{file}:{data.text_lines.get(section, int(line) if line.isdigit() else 1)}"))
    else:
        walk(value, base, 0)
    return found


def _glob(pattern: str) -> re.Pattern[str]:
    """A rules:changes glob as GitLab matches it (File.fnmatch with FNM_PATHNAME, FNM_DOTMATCH, FNM_EXTGLOB):
    `**/` any folders, `*` and `?` within one path segment, `{a,b}` alternatives."""
    out, i = [], 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        elif pattern[i] == "{" and "}" in pattern[i:]:
            end = pattern.index("}", i)
            out.append("(?:" + "|".join(re.escape(a) for a in pattern[i + 1 : end].split(",")) + ")")
            i = end + 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return re.compile("".join(out) + r"\Z")


def build(repo: Repo, default_branch: str, changed: tuple[str, ...] | None = None) -> Pipeline:
    """The model of the project's pipelines; `changed`: the files a push or merge request changes, if known."""
    return GitLabAdapter(repo, default_branch, changed).pipeline


__all__ = ["MAIN", "GitLabAdapter", "GitLabJob", "GitLabStep", "build"]
