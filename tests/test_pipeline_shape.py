"""The generated pull-request pipeline is fast and its reports land where they are uploaded from.

Everything here is computed from the parsed workflows of each golden tree, not from the template text:

- the PR critical path (longest `needs:` chain of the jobs a pull request runs) is at most 2 jobs;
- DAST (any zaproxy/* action) is never on the PR path, including reusable workflows and local actions a PR
  workflow calls, and still runs elsewhere (deploy.yml, against staging);
- the `unit-tests` job caches dependencies through its setup-python/node/go/java step, and the goldens
  cover all four languages between them;
- every SARIF file uploaded with github/codeql-action/upload-sarif is written at that path by an earlier
  step of the same job (a scanner's output flag or input), so code scanning never silently gets nothing.
"""

from __future__ import annotations

import copy
import posixpath
import re
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from generator.pipeline import tools
from tests.helpers import GOLDEN
from tests.helpers import SCENARIOS as ALL_SCENARIOS

# GitHub trees; the GitLab pipeline's shape is tested in tests/test_gitlab_golden_reach.py.
SCENARIOS = {n: s for n, s in ALL_SCENARIOS.items() if s["answers"].get("platform", "github") == "github"}

MAX_PR_CRITICAL_PATH = 2
PR_EVENTS = frozenset({"pull_request", "pull_request_target"})
DAST_PREFIXES = ("zaproxy/",)
UPLOAD_SARIF = "github/codeql-action/upload-sarif"
LANGUAGES = {"python", "node", "go", "java"}


# --- reading workflows -----------------------------------------------------------------------------


def load_yaml(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(data, dict), f"{path}: not a mapping"
    return data


def workflows(tree: Path) -> dict[str, dict[str, Any]]:
    folder = tree / ".github" / "workflows"
    paths = sorted([*folder.glob("*.yml"), *folder.glob("*.yaml")])
    return {p.name: load_yaml(p) for p in paths}


def triggers(workflow: dict[str, Any]) -> set[str]:
    """The events of `on:`. PyYAML reads YAML 1.1, where a bare `on` key is the boolean True."""
    on = workflow["on"] if "on" in workflow else workflow.get(True)  # type: ignore[call-overload]
    if isinstance(on, str):
        return {on}
    if isinstance(on, list):
        return {str(event) for event in on}
    if isinstance(on, dict):
        return {str(event) for event in on}
    return set()


def is_pr_triggered(workflow: dict[str, Any]) -> bool:
    return bool(triggers(workflow) & PR_EVENTS)


def uses_name(uses: str) -> str:
    """`owner/repo/path@ref` -> `owner/repo/path`."""
    return uses.split("@", 1)[0]


def local_target(tree: Path, uses: str) -> Path | None:
    """The file or folder a same-repository `uses:` (`./path` or self-repository `$/path`) points at."""
    for prefix in ("./", "$/"):
        if uses.startswith(prefix):
            return tree / uses[len(prefix) :].split("@", 1)[0]
    return None


def step_list(job: dict[str, Any]) -> list[dict[str, Any]]:
    return [s for s in job.get("steps") or [] if isinstance(s, dict)]


# --- critical path ---------------------------------------------------------------------------------


def needs_of(job: dict[str, Any]) -> list[str]:
    needs = job.get("needs") or []
    return [needs] if isinstance(needs, str) else list(needs)


def longest_needs_chain(jobs: dict[str, dict[str, Any]], weight: dict[str, int] | None = None) -> int:
    """The number of jobs on the longest `needs:` chain (a lone job is 1); `weight` counts a job that calls a
    reusable workflow as that workflow's own chain. Raises ValueError on a cycle or an unknown job."""
    weight = weight or {}
    memo: dict[str, int] = {}
    visiting: set[str] = set()

    def depth(name: str) -> int:
        if name in memo:
            return memo[name]
        if name not in jobs:
            raise ValueError(f"needs: names an unknown job {name!r}")
        if name in visiting:
            raise ValueError(f"needs: cycle through {name!r}")
        visiting.add(name)
        memo[name] = weight.get(name, 1) + max((depth(n) for n in needs_of(jobs[name])), default=0)
        visiting.discard(name)
        return memo[name]

    return max((depth(name) for name in jobs), default=0)


def workflow_chain(tree: Path, path: Path, seen: frozenset[Path] = frozenset()) -> int:
    """The longest chain of a workflow, following jobs that call a same-repository reusable workflow."""
    assert path not in seen, f"reusable workflow cycle through {path}"
    jobs = load_yaml(path).get("jobs") or {}
    weight = {}
    for name, job in jobs.items():
        target = local_target(tree, str(job.get("uses", "")))
        if target is not None:
            assert target.is_file(), f"{path.name}: job {name} calls {job['uses']}, which does not exist"
            weight[name] = workflow_chain(tree, target, seen | {path})
    return longest_needs_chain(jobs, weight)


# --- actions a workflow reaches --------------------------------------------------------------------


def reachable_uses(tree: Path, path: Path, seen: set[Path] | None = None) -> list[tuple[str, str]]:
    """Every `uses:` a workflow runs, as (where, uses), following same-repository reusable workflows
    (job-level `uses:`) and local composite actions (step-level `uses:` of `./` or `$/`)."""
    seen = set() if seen is None else seen
    if path in seen:
        return []
    seen.add(path)
    data = load_yaml(path)
    found: list[tuple[str, str]] = []
    if "jobs" in data:
        for name, job in (data.get("jobs") or {}).items():
            if "uses" in job:
                found.append((f"{path.name}: job {name}", str(job["uses"])))
            found += [(f"{path.name}: job {name}", str(s["uses"])) for s in step_list(job) if "uses" in s]
            found += [(f"{path.name}: job {name}", str(s["run"])) for s in step_list(job) if "run" in s]
    else:  # an action.yml: composite steps
        found += [(path.parent.name, str(s["uses"])) for s in step_list(data.get("runs") or {}) if "uses" in s]
    for _, uses in list(found):
        target = local_target(tree, uses)
        if target is None:
            continue
        if target.is_dir():
            target = next((target / n for n in ("action.yml", "action.yaml") if (target / n).is_file()), target)
        if target.is_file():
            found += reachable_uses(tree, target, seen)
    return found


def is_dast(uses_or_run: str) -> bool:
    """A ZAP action, or a script that runs ZAP (what the audit's tool registry calls DAST)."""
    return uses_or_run.startswith(DAST_PREFIXES) or any(t.category == "dast" for t in tools.for_command(uses_or_run))


def dast_on_pr_path(tree: Path) -> list[str]:
    hits = []
    for name, workflow in workflows(tree).items():
        if not is_pr_triggered(workflow):
            continue
        path = tree / ".github" / "workflows" / name
        hits += [f"{where}: {uses}" for where, uses in reachable_uses(tree, path) if is_dast(uses)]
    return hits


# --- dependency caching ----------------------------------------------------------------------------

# setup action -> (language, the `cache:` values that turn dependency caching on; None: on by default)
SETUP_ACTIONS: dict[str, tuple[str, frozenset[Any] | None]] = {
    "actions/setup-python": ("python", frozenset({"pip", "pipenv", "poetry"})),
    "actions/setup-node": ("node", frozenset({"npm", "yarn", "pnpm"})),
    "actions/setup-go": ("go", None),  # cache defaults to true since setup-go v4
    "actions/setup-java": ("java", frozenset({"maven", "gradle", "sbt"})),
}


def setup_cache(job: dict[str, Any]) -> tuple[str, str | None]:
    """(language, problem or None) for the job's one setup-<language> step."""
    setups = [s for s in step_list(job) if uses_name(str(s.get("uses", ""))) in SETUP_ACTIONS]
    if len(setups) != 1:
        return "?", f"expected one setup-python/node/go/java step, found {[s.get('uses') for s in setups]}"
    step = setups[0]
    language, allowed = SETUP_ACTIONS[uses_name(step["uses"])]
    with_ = step.get("with") or {}
    if allowed is None:  # setup-go: `cache` is a boolean input, true unless turned off
        value = with_.get("cache", True)
        if str(value).lower() != "true":
            return language, f"{step['uses']} has cache: {value!r}"
        return language, None
    if with_.get("cache") not in allowed:
        return language, f"{step['uses']} has cache: {with_.get('cache')!r}, want one of {sorted(allowed)}"
    return language, None


# --- SARIF producers -------------------------------------------------------------------------------

OUTPUT_FLAGS = ("--output", "-o", "--report-path", "--sarif-output", "--output-file")
FORMAT_FLAGS = ("--format", "--report-format", "--output-format")
OUTPUT_INPUTS = ("output", "output-file", "output_file", "output-path", "output_path", "output_file_path")
FORMAT_INPUTS = ("format", "output-format", "output_format")


@dataclass(frozen=True)
class Produced:
    step: int
    path: str
    format: str | None  # "sarif", "json", ... when the step says; None when it does not
    by: str


def normalize(path: str, workdir: str | None = None) -> str:
    path = path.strip()
    if workdir and not path.startswith("/"):
        path = posixpath.join(workdir, path)
    return posixpath.normpath(path)


def shell_commands(script: str) -> list[list[str]]:
    """The words of each logical line of a run: script (continuations joined); lines shlex cannot split
    are left out, which can only make a producer missing, never invent one."""
    commands = []
    for line in script.replace("\\\n", " ").splitlines():
        try:
            commands.append(shlex.split(line, comments=True))
        except ValueError:
            continue
    return commands


def flag_values(words: list[str], flags: tuple[str, ...]) -> list[tuple[str, str]]:
    values = []
    for i, word in enumerate(words):
        for flag in flags:
            if word == flag and i + 1 < len(words):
                values.append((flag, words[i + 1]))
            elif word.startswith(flag + "="):
                values.append((flag, word.split("=", 1)[1]))
    return values


def producers(index: int, step: dict[str, Any], job: dict[str, Any]) -> list[Produced]:
    """The files a step says it writes: output flags of its run: commands, or output inputs of its action."""
    workdir = step.get("working-directory") or ((job.get("defaults") or {}).get("run") or {}).get("working-directory")
    found: list[Produced] = []
    if "run" in step:
        for words in shell_commands(str(step["run"])):
            if "--file" in words or "--output-file-path" in words:
                # grype: `--output FORMAT --file PATH`; checkov: `--output F1 --output F2 --output-file-path P1,P2`
                fmts = [v for _, v in flag_values(words, ("--output", "-o"))]
                paths = [p for _, v in flag_values(words, ("--file", "--output-file-path")) for p in v.split(",")]
                for i, value in enumerate(paths):
                    fmt = fmts[i] if len(fmts) == len(paths) else fmts[0] if len(fmts) == 1 else None
                    by = f"step {index + 1} ({step.get('name', words[0])}): {value}"
                    found.append(Produced(index, normalize(value, workdir), fmt, by))
                continue
            formats = [v for _, v in flag_values(words, FORMAT_FLAGS)]
            fmt = formats[-1] if formats else ("sarif" if "--sarif" in words else "json" if "--json" in words else None)
            for flag, value in flag_values(words, OUTPUT_FLAGS):
                found.append(
                    Produced(
                        index,
                        normalize(value, workdir),
                        "sarif" if flag == "--sarif-output" else fmt,
                        f"step {index + 1} ({step.get('name', words[0])}): {flag} {value}",
                    )
                )
    if "uses" in step:
        with_ = step.get("with") or {}
        formats = next((str(with_[k]).split(",") for k in FORMAT_INPUTS if k in with_), [])
        for key in OUTPUT_INPUTS:
            if key not in with_:
                continue
            paths = str(with_[key]).split(",")  # checkov-action: output_file_path: console,checkov.sarif
            for i, value in enumerate(paths):
                fmt = formats[i] if len(formats) == len(paths) else formats[0] if len(formats) == 1 else None
                found.append(
                    Produced(
                        index,
                        normalize(value),
                        fmt and fmt.strip().lower(),
                        f"step {index + 1} ({step.get('name', step['uses'])}): {key}: {value.strip()}",
                    )
                )
    return found


def covers(upload: str, produced: Produced) -> bool:
    """upload-sarif's sarif_file is a file, or a folder whose .sarif files it uploads."""
    if produced.format not in (None, "sarif"):
        return False
    if produced.path == upload:
        return True
    return not upload.endswith((".sarif", ".json")) and produced.path.startswith(upload.rstrip("/") + "/")


def sarif_problems(workflow: dict[str, Any], name: str) -> tuple[int, list[str]]:
    """(number of SARIF uploads, problems): each upload must have a producer of its path earlier in its job."""
    uploads, problems = 0, []
    for job_name, job in (workflow.get("jobs") or {}).items():
        made: list[Produced] = []
        for index, step in enumerate(step_list(job)):
            summary = re.match(r"^\.github/scripts/sarif-summary\.sh\s+(\S+)", str(step.get("run", "")))
            if uses_name(str(step.get("uses", ""))) == UPLOAD_SARIF or summary:
                uploads += 1
                where = f"{name}: job {job_name}, step {index + 1} ({step.get('name', UPLOAD_SARIF)})"
                raw = summary[1] if summary else (step.get("with") or {}).get("sarif_file")
                if not raw:
                    problems.append(f"{where}: upload-sarif without sarif_file")
                    continue
                target = normalize(str(raw))
                if not any(covers(target, p) for p in made):
                    later = [p.by for p in producers_after(job, index) if covers(target, p)]
                    problems.append(
                        f"{where}: uploads {target}, which no earlier step of the job writes as SARIF "
                        f"(earlier outputs: {[p.path for p in made] or 'none'}"
                        + (f"; written only after the upload by {later}" if later else "")
                        + ")"
                    )
                guarded = re.findall(r"hashFiles\(\s*'([^']+)'", str(step.get("if", "")))
                if guarded and target not in {normalize(g) for g in guarded}:
                    problems.append(f"{where}: its if: checks hashFiles({guarded}) but it uploads {target}")
            made += producers(index, step, job)
    return uploads, problems


def producers_after(job: dict[str, Any], index: int) -> list[Produced]:
    return [p for i, s in enumerate(step_list(job)) if i > index for p in producers(i, s, job)]


# --- the goldens -----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_pr_critical_path_is_at_most_two_jobs(name: str) -> None:
    tree = GOLDEN / name
    pr = {wf: data for wf, data in workflows(tree).items() if is_pr_triggered(data)}
    assert pr, f"golden/{name}: no workflow runs on pull_request"
    lengths = {wf: workflow_chain(tree, tree / ".github" / "workflows" / wf) for wf in pr}
    too_long = {wf: n for wf, n in lengths.items() if n > MAX_PR_CRITICAL_PATH}
    assert not too_long, f"golden/{name}: PR critical path longer than {MAX_PR_CRITICAL_PATH} jobs: {too_long}"


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_dast_is_not_on_the_pr_path(name: str) -> None:
    tree = GOLDEN / name
    hits = dast_on_pr_path(tree)
    assert not hits, f"golden/{name}: DAST runs on pull requests (it belongs after staging):\n" + "\n".join(hits)
    # ...and it still runs somewhere, so the check above is not passing because DAST is gone.
    everywhere = [
        uses
        for wf in workflows(tree)
        for _, uses in reachable_uses(tree, tree / ".github" / "workflows" / wf)
        if is_dast(uses)
    ]
    assert everywhere, f"golden/{name}: no workflow runs ZAP at all (PP-SCAN-09)"


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_unit_tests_job_caches_dependencies(name: str) -> None:
    tree = GOLDEN / name
    job = workflows(tree)["pr-checks.yml"]["jobs"]["unit-tests"]
    language, problem = setup_cache(job)
    assert problem is None, f"golden/{name}: pr-checks.yml unit-tests: {problem}"
    answers = load_yaml(tree / ".copier-answers.yml")
    want = answers["language"]
    assert language == want, f"golden/{name}: unit-tests sets up {language} for a {want} project"


def test_goldens_cover_every_language_with_a_cached_unit_tests_job() -> None:
    languages = {setup_cache(workflows(GOLDEN / n)["pr-checks.yml"]["jobs"]["unit-tests"])[0] for n in SCENARIOS}
    assert languages == LANGUAGES, f"the goldens cover {sorted(languages)}, want {sorted(LANGUAGES)}"


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_every_uploaded_sarif_is_written_earlier_in_its_job(name: str) -> None:
    tree = GOLDEN / name
    total, problems = 0, []
    for wf, data in workflows(tree).items():
        uploads, found = sarif_problems(data, wf)
        total += uploads
        problems += found
    assert total, f"golden/{name}: no SARIF upload or summary at all"
    assert not problems, f"golden/{name}:\n" + "\n".join(problems)


# --- the checkers can fail -------------------------------------------------------------------------


def test_longest_chain_counts_jobs_on_a_synthetic_graph() -> None:
    jobs: dict[str, dict[str, Any]] = {
        "lint": {},
        "build": {"needs": "lint"},
        "test": {"needs": ["build"]},
        "scan": {},
        "report": {"needs": ["scan", "lint"]},
    }
    assert longest_needs_chain(jobs) == 3  # lint -> build -> test
    assert longest_needs_chain({"only": {}}) == 1
    assert longest_needs_chain({"a": {}, "b": {}, "c": {}}) == 1
    # A job calling a reusable workflow whose own chain is 2 makes lint -> build -> test four jobs long.
    assert longest_needs_chain(jobs, {"build": 2}) == 4
    with pytest.raises(ValueError, match="cycle"):
        longest_needs_chain({"a": {"needs": "b"}, "b": {"needs": "a"}})
    with pytest.raises(ValueError, match="unknown"):
        longest_needs_chain({"a": {"needs": "ghost"}})


def test_triggers_read_every_form_of_on() -> None:
    assert is_pr_triggered(yaml.safe_load("on: pull_request\njobs: {}\n"))
    assert is_pr_triggered(yaml.safe_load("on: [push, pull_request]\njobs: {}\n"))
    assert is_pr_triggered(yaml.safe_load("on:\n  pull_request_target:\njobs: {}\n"))
    assert is_pr_triggered({"on": {"pull_request": None}})  # a YAML 1.2 reader keeps the string key
    assert not is_pr_triggered(yaml.safe_load("on:\n  push:\n  merge_group:\njobs: {}\n"))


def test_dast_check_follows_a_reusable_workflow_and_a_local_action(tmp_path: Path) -> None:
    folder = tmp_path / ".github" / "workflows"
    folder.mkdir(parents=True)
    (folder / "pr.yml").write_text(
        "on: pull_request\njobs:\n  quick:\n    runs-on: ubuntu-24.04\n    steps:\n      - run: true\n"
        "  scan:\n    needs: quick\n    uses: $/.github/workflows/scan.yml\n"
    )
    (folder / "scan.yml").write_text(
        "on: workflow_call\njobs:\n  zap:\n    runs-on: ubuntu-24.04\n    steps:\n      - uses: ./.github/actions/zap\n"
    )
    action = tmp_path / ".github" / "actions" / "zap"
    action.mkdir(parents=True)
    (action / "action.yml").write_text(
        "name: zap\nruns:\n  using: composite\n  steps:\n      - uses: zaproxy/action-baseline@v0.14.0\n"
    )
    hits = dast_on_pr_path(tmp_path)
    assert hits == ["zap: zaproxy/action-baseline@v0.14.0"], hits
    # quick -> scan, and scan's own workflow is one job: three jobs on the PR path.
    (folder / "scan.yml").write_text(
        "on: workflow_call\njobs:\n  a:\n    runs-on: x\n    steps: [{run: 'true'}]\n"
        "  b:\n    needs: a\n    runs-on: x\n    steps: [{run: 'true'}]\n"
    )
    assert workflow_chain(tmp_path, folder / "pr.yml") == 3


def test_cache_check_rejects_a_setup_step_without_caching() -> None:
    def job(uses: str, **with_: Any) -> dict[str, Any]:
        return {"steps": [{"uses": f"{uses}@0000000000000000000000000000000000000000", "with": with_}]}

    assert setup_cache(job("actions/setup-go")) == ("go", None)  # the default is on
    assert setup_cache(job("actions/setup-go", cache=True)) == ("go", None)
    assert setup_cache(job("actions/setup-go", cache=False))[1]
    assert setup_cache(job("actions/setup-python", **{"python-version": "3.12"}))[1]
    assert setup_cache(job("actions/setup-node", cache=""))[1]
    assert setup_cache(job("actions/setup-java", distribution="temurin"))[1]
    assert setup_cache(job("actions/setup-java", cache="gradle")) == ("java", None)
    assert setup_cache({"steps": [{"run": "make test"}]})[1]


def golden_pr_checks() -> dict[str, Any]:
    return load_yaml(GOLDEN / sorted(SCENARIOS)[0] / ".github" / "workflows" / "pr-checks.yml")


def semgrep_output(workflow: dict[str, Any]) -> str:
    """The --output path of the semgrep step of the sast job, as the checker reads it."""
    job = workflow["jobs"]["sast"]
    paths = [
        p.path for i, s in enumerate(step_list(job)) if "semgrep" in str(s.get("run", "")) for p in producers(i, s, job)
    ]
    assert len(paths) == 1, f"expected one semgrep output in the sast job, got {paths}"
    return paths[0]


def test_sarif_check_reports_a_renamed_scanner_output() -> None:
    workflow = golden_pr_checks()
    assert sarif_problems(workflow, "pr-checks.yml")[1] == []
    sast = workflow["jobs"]["sast"]
    old = semgrep_output(workflow)
    for step in step_list(sast):
        if "semgrep" in str(step.get("run", "")):
            step["run"] = re.sub(rf"--output(=|\s+){re.escape(old)}", r"--output\1out/semgrep.sarif", step["run"])
    assert semgrep_output(workflow) == "out/semgrep.sarif"
    problems = sarif_problems(workflow, "pr-checks.yml")[1]
    assert len(problems) == 1 and "job sast" in problems[0] and f"uploads {old}" in problems[0], problems


def test_sarif_check_reports_an_upload_before_its_producer() -> None:
    workflow = golden_pr_checks()
    sast = workflow["jobs"]["sast"]
    steps = sast["steps"]
    produce = next(i for i, s in enumerate(steps) if "semgrep" in str(s.get("run", "")))
    upload = next(i for i, s in enumerate(steps) if uses_name(str(s.get("uses", ""))) == UPLOAD_SARIF)
    steps[produce], steps[upload] = steps[upload], steps[produce]
    problems = sarif_problems(workflow, "pr-checks.yml")[1]
    assert len(problems) == 1 and "written only after the upload" in problems[0], problems


def test_sarif_check_reports_a_non_sarif_producer_and_a_stale_guard() -> None:
    workflow = golden_pr_checks()
    json_instead = copy.deepcopy(workflow)
    for step in step_list(json_instead["jobs"]["sast"]):
        if "semgrep" in str(step.get("run", "")):
            step["run"] = step["run"].replace("--sarif", "--json")
    problems = sarif_problems(json_instead, "pr-checks.yml")[1]
    assert len(problems) == 1 and "job sast" in problems[0], problems

    for step in step_list(workflow["jobs"]["sast"]):
        if uses_name(str(step.get("uses", ""))) == UPLOAD_SARIF:
            step["if"] = "${{ !cancelled() && hashFiles('other.sarif') != '' }}"
    problems = sarif_problems(workflow, "pr-checks.yml")[1]
    assert len(problems) == 1 and "hashFiles" in problems[0], problems


@pytest.mark.parametrize(
    ("script", "pushes"),
    [
        ("git push", True),
        ("git push origin", True),
        ("git push origin main", True),
        ('git push "https://ci:${TOKEN}@gitlab.com/a/b.git" "HEAD:${CI_DEFAULT_BRANCH}"', True),
        ("git -c http.extraheader=x push --force origin HEAD:refs/heads/main", True),
        ("git push origin HEAD:${{ github.ref_name }}", True),
        ('git push --quiet --force "${REMOTE:-origin}" "HEAD:refs/heads/${branch}"', False),
        ("git push origin HEAD:refs/heads/pipeproof/promote-production-abc", False),
        ("git push origin --tags", False),
        ("git push origin v1.2.3", False),
        ("git push --dry-run origin main", False),
        ("echo git is pushed later", False),
    ],
)
def test_a_push_to_the_default_branch_is_told_from_a_proposal(script: str, pushes: bool) -> None:
    from generator.pipeline.github import pushes_to_default_branch

    assert pushes_to_default_branch(script, "main") is pushes
