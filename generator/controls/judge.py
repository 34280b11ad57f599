"""Judgements shared by the controls: "does a blocking tool of this kind gate every change?", production jobs."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping

from generator.controls.base import Finding, Outcome, failed, passed, unknown
from generator.pipeline import shell, tools
from generator.pipeline.model import PULL_REQUEST, Invocation, Job, Pipeline, Step


def gate(pipeline: Pipeline, category: str, what: str) -> Outcome:
    """Pass when some use of a `category` tool runs on every pull request and fails it on findings.

    Every use that does not block is listed with its reason. A use that may block (a condition the files
    cannot decide) makes the verdict unknown; a remote reusable workflow that may run the tool too.
    """
    uses = pipeline.invocations(category, pipeline.gating_jobs())
    change = "merge request" if pipeline.platform == "gitlab" else "pull request"
    blocking: list[Invocation] = []
    maybe: list[Finding] = []
    weak: list[Finding] = []
    for inv in uses:
        # Pull requests are where a change is gated: a required check skipped there passes.
        why = pipeline.why_not_blocking(inv, (PULL_REQUEST,))
        if why is None:
            blocking.append(inv)
        elif _uncertain(why):
            maybe.append(Finding(inv.where, f"{inv.tool.name}: {why}"))
        else:
            weak.append(Finding(inv.where, f"{inv.tool.name}: {why}"))
    # A workflow GitHub rejects runs nothing: its scanners are listed as what they are, not missed.
    gating = set(map(id, pipeline.gating_jobs()))
    rejected = [j for j in pipeline.jobs if j.invalid and id(j) not in gating]
    platform = "GitLab" if pipeline.platform == "gitlab" else "GitHub"
    for inv in pipeline.invocations(category, rejected):
        weak.append(
            Finding(
                inv.where,
                f"{inv.tool.name}: {inv.step.job.file} is rejected by {platform} "
                f"({inv.step.job.invalid}), so it never runs",
            )
        )
    # A platform may refuse to create the merge-request pipeline at all (GitLab: needs: on a job it does not add).
    refused = getattr(pipeline.adapter, "refused", {}).get(PULL_REQUEST)
    if refused and not blocking:
        weak += [Finding(inv.where, f"{inv.tool.name}: {refused}") for inv in pipeline.invocations(category)]
    if blocking:
        names = sorted({inv.tool.name for inv in blocking})
        return passed(
            f"{what} ({', '.join(names)}) runs on every {change} and fails it on findings",
            *(inv.where for inv in blocking),
        )
    remote = remote_calls(pipeline)
    if maybe or remote or pipeline.opaque:
        return unknown(
            f"no {what} is known to block {change}s; the files cannot decide the rest",
            *maybe,
            *(
                Finding(
                    job.where,
                    f"remote reusable workflow {job.calls} may run it: its contents are not in this repository",
                )
                for job in remote
            ),
            *opaque(pipeline, what),
            *weak,
        )
    if weak:
        return failed(f"{what} runs but cannot fail a {change}", *weak)
    return failed(f"nothing runs {what} on {change}s")


def remote_calls(pipeline: Pipeline) -> list[Job]:
    """Jobs that run on changes by calling a reusable workflow of another repository whose contents are unknown.

    A workflow the tool registry knows (generator/pipeline/tools.py) is judged by what it runs instead.
    """
    return [
        j
        for j in pipeline.gating_jobs()
        if j.calls and not j.calls.startswith(("./", "$/")) and not tools.for_workflow(j.calls.split("@", 1)[0])
    ]


def commands_only(script: str) -> str:
    """A script's lines without comments, continued lines joined: what it runs, not what it says."""
    joined = re.sub(r"\\\n\s*", " ", script)
    return "\n".join(line for line in joined.splitlines() if not line.lstrip().startswith("#"))


_SCRIPT_PATH = re.compile(r"(?:^|[\s\"'=(])((?:\./)?[\w.@/-]+\.(?:sh|bash))\b")


def command_ignored(step: Step, test: Callable[[str], bool]) -> str | None:
    """Why the shell ignores the exit status of the command of STEP that does what `test` recognises (in its
    own words or in the repository script it runs), or None when that command can fail the step."""
    from generator.pipeline.model import errexit_pipefail

    errexit, pipefail = errexit_pipefail(None, step.job.pipeline.platform)
    for command in shell.commands(step.run, errexit, pipefail):
        script = _SCRIPT_PATH.search(command.text)
        text = step.job.pipeline.repo.text(script[1].removeprefix("./")) if script else None
        if test(command.text) or (text is not None and test(text)):
            return command.ignored or command.unreachable
    return None


def opaque(pipeline: Pipeline, what: str) -> list[Finding]:
    """Findings for the configuration the files pull in but the audit cannot read (a remote include)."""
    return [Finding(where, f"{text}; it may add {what}") for where, text in pipeline.opaque]


def _uncertain(why: str) -> bool:
    return " may " in f" {why} "


def each_production_job(pipeline: Pipeline, judge: Callable[[Job], Outcome]) -> Outcome:
    """Judge every production job: every failing instance, else the evidence of all of them."""
    jobs = pipeline.production_jobs()
    if not jobs:
        return failed("no job deploys to production through a production environment or a verified promotion")
    outcomes = [judge(job) for job in jobs]
    bad = [o for o in outcomes if o.status in {"fail", "unknown"}]
    if bad:
        # Production jobs that stand on the same upstream job report its finding once.
        findings = tuple({(f.where, f.message): f for o in bad for f in o.findings}.values())
        if any(o.status == "fail" for o in bad):
            return Outcome("fail", bad[0].reason, tuple(f.where for f in findings), findings)
        return Outcome("unknown", bad[0].reason, tuple(f.where for f in findings), findings)
    return passed(outcomes[0].reason, *dict.fromkeys(e for o in outcomes for e in o.evidence))


def deploy_path(pipeline: Pipeline, job: Job) -> list[Job]:
    """The jobs whose success a production job stands on.

    Its `needs:` closure in its own run; and, when it deploys a candidate built by another run (a promotion),
    the jobs of that run whose check names its gate requires.
    """
    return list(pipeline.cached(("deploy-path", id(job)), lambda: _deploy_path(pipeline, job)))


def _deploy_path(pipeline: Pipeline, job: Job) -> list[Job]:
    by_id = {j.id: j for j in pipeline.same_run(job)}
    found: dict[int, Job] = {}
    stack = list(job.needs)
    # GitLab jobs of one stage share one needs list (every earlier job): each list is walked once. The lists
    # are kept here so that no id is reused while the walk lasts.
    walked: dict[int, list[str]] = {}
    while stack:
        upstream = by_id.get(stack.pop())
        if upstream is None or id(upstream) in found:
            continue
        found[id(upstream)] = upstream
        needs = upstream.needs
        if id(needs) not in walked:
            walked[id(needs)] = needs
            stack.extend(needs)
        for child in pipeline.called_by(upstream):  # a needed reusable-workflow call brings its jobs
            found[id(child)] = child
    # Each gate names the checks of one run (a GitOps promotion verifies the build run and the staging DAST run).
    if pipeline.platform == "gitlab":
        by_name = pipeline.by_name()
        found.update((id(o), o) for name in _gitlab_gated(job) for o in by_name.get(name, []) if o is not job)
    for step in job.steps:
        value = step.env.get("REQUIRED_CHECKS")
        if not isinstance(value, str):
            continue
        required = frozenset(line.strip() for line in value.splitlines() if line.strip())
        if required:
            candidate = pipeline.cached(("candidate-run", job.file, required), _candidate(pipeline, job.file, required))
            found.update((id(other), other) for other in candidate)
    return list(found.values())


def _candidate(pipeline: Pipeline, own_file: str, required: frozenset[str]) -> Callable[[], list[Job]]:
    return lambda: _candidate_run(pipeline, own_file, set(required))


def _candidate_run(pipeline: Pipeline, own_file: str, required: set[str]) -> list[Job]:
    """The jobs that report the required checks in the run that built a promoted candidate: one run of one
    workflow, the one whose jobs report the most of them (the first such workflow when several tie)."""
    by_name = pipeline.by_name()
    runs: dict[str, list[Job]] = {}
    for other in (o for name in sorted(required) for o in by_name.get(name, [])):
        top = _top_file(other)
        if top != own_file:
            runs.setdefault(top, []).append(other)
    return max(runs.values(), key=lambda jobs: len({j.name for j in jobs})) if runs else []


def _top_file(job: Job) -> str:
    """The workflow file a job's run was started from (a called workflow's jobs run in the caller's run)."""
    while job.called_by is not None:
        job = job.called_by
    return job.file


def why_not_gating(pipeline: Pipeline, production: Job, inv: Invocation) -> str | None:
    """Why a tool use would not stop the production job `production` on a push, or None when it does.

    A job of another run that a check gate of the production job requires by name stops it whenever it does
    not succeed (a skipped or missing check fails the gate), so only its own step decides; a job of the same
    run stops it when the tool blocks on push.
    """
    job = inv.step.job
    if gated_elsewhere(production, job):
        if job.invalid:
            return job.invalid
        gates = _gate_steps(production, job.name)
        whys = [_gate_ignored(s) for s in gates] or [f"no step of {production.name} reads them"]
        if all(whys):
            return f"the check gate of {production.name} that requires {job.name} does not stop it: {whys[0]}"
        return inv.step.not_blocking("push", in_job=True) or inv.ignored or inv.soft()
    return pipeline.why_not_blocking(inv, ("push",))


def _names(value: object) -> set[str]:
    return {line.strip() for line in value.splitlines() if line.strip()} if isinstance(value, str) else set()


# The job variables a GitLab promotion gate (promotion-check.sh) reads the candidate's pipelines' jobs from.
GITLAB_GATE_VARIABLES = ("REQUIRED_JOBS", "DAST_JOB")


def _gitlab_gated(job: Job) -> set[str]:
    variables = job.data.get("variables")
    if not isinstance(variables, Mapping):
        return set()
    return {name for key in GITLAB_GATE_VARIABLES for name in _names(variables.get(key))}


def _gated_names(job: Job) -> set[str]:
    if job.pipeline.platform == "gitlab":
        return _gitlab_gated(job)
    return {name for step in job.steps for name in _names(step.env.get("REQUIRED_CHECKS"))}


def _gate_steps(production: Job, name: str) -> list[Step]:
    """The steps of the production job that require the job `name` of another run to have passed."""
    if production.pipeline.platform == "gitlab":
        # The variables name the jobs; the steps whose scripts read them are the gate.
        return [s for s in production.steps if any(k in s.text for k in GITLAB_GATE_VARIABLES)]
    return [s for s in production.steps if name in _names(s.env.get("REQUIRED_CHECKS"))]


def _gate_ignored(step: Step) -> str | None:
    """Why a gate step would not stop its job: the step's own failure, or (GitLab) the shell ignoring the
    command that runs the gate script."""
    why = step.not_blocking("push", in_job=True)
    if why is None and step.job.pipeline.platform == "gitlab":
        why = command_ignored(step, lambda text: any(k in text for k in GITLAB_GATE_VARIABLES))
    return why


def gated_elsewhere(production: Job, job: Job) -> bool:
    """Whether `job` runs in another run than the production job, whose check gate requires it by name (on
    GitLab, another pipeline of the same file: a job outside the production job's needs)."""
    if job.name not in _gated_names(production) or job is production:
        return False
    if production.pipeline.platform == "gitlab":
        return job.id not in production.needs
    return _top_file(job) != _top_file(production)
