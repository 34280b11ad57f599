"""pipeproof benchmarks: one entry point, ratios measured in the same run, a table at the end.

    python benchmarks/run.py [--quick]
    PATH=$PATH:/work/venv-tools/bin python benchmarks/run.py   # checkov lives in its own virtualenv

Rows (every ratio compares two commands timed in this run, on this machine; medians of a few repetitions,
time.perf_counter around each subprocess, the commands of a pair interleaved in alternating order):

  1. `pipeproof new --defaults` vs plain `copier copy --defaults` of the same template, same answers.
  1b. the same for a GitLab project (platform=gitlab, GitLab Premium, Terraform).
  2. `pipeproof update` vs plain `copier update` of the same project, v1.0.0 -> v2.0.0 of a throw-away template
     repository holding this template (v2 bumps a pinned action in every workflow and adds a file).
  2b. `pipeproof retrofit --dry-run` on a generated repository of 10,000 files (absolute time).
  3. `pipeproof validate` over each golden tree vs the four linters run one after another.
  4. `pipeproof audit` vs `zizmor --offline` and vs `checkov --framework github_actions` on synthetic
     repositories with 100, 1,000 and 5,000 workflows (checkov at 100 and 1,000 only, once each: it needs two
     to four minutes for 1,000 on two cores, so 5,000 would break the ten-minute budget).
  5. `pipeproof --help` start-up time vs `python -c pass`.

Nothing is asserted: the script reports each value with its target and ok/MISS. Exit codes: 0 when it ran
(MISS and ERROR rows included), 2 when a tool is missing (named on stderr). Tools are looked up on PATH and
next to this Python (an un-activated virtualenv's bin/); checkov must be on PATH. Progress goes to stderr,
the report to stdout: a plain table, then after a separator the same table as Markdown for the README.
"""

from __future__ import annotations

import argparse
import datetime as dt
import filecmp
import math
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent  # the repository, which is also the copier template
GOLDEN = ROOT / "golden"
PY = sys.executable
PIPEPROOF = [PY, "-m", "generator"]
ANSWERS = ["project_name=bench"]  # the same --data answers for pipeproof new and copier copy
DATA = [arg for answer in ANSWERS for arg in ("--data", answer)]
GITLAB_ANSWERS = [
    *ANSWERS,
    "platform=gitlab",
    "gitlab_tier=premium",
    "iac=[terraform]",
    "security_team=@bench/security",
]
TOOLS = ("copier", "zizmor", "actionlint", "yamllint", "check-jsonschema", "checkov")
CHECKOV_SIZES = (100, 1000)
CHECKOV_ENV = {"CKV_SKIP_PACKAGE_UPDATE_CHECK": "true", "BC_SKIP_MAPPING": "TRUE"}
# Expected exit codes: anything else is an ERROR row, not a timing.
OK = (0,)
FINDINGS_OK = (0, 1)  # pipeproof validate / audit, actionlint, check-jsonschema, checkov: 1 = findings
YAMLLINT_OK = (0, 1, 2)  # 2 = warnings only
ZIZMOR_OK = (0, 11, 12, 13, 14)  # 11-14 = findings by severity; 3 would mean "no inputs"


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------------------- tools


def which(name: str) -> str | None:
    """A tool on PATH, or next to this Python (so an un-activated venv's tools are found too)."""
    return shutil.which(name, path=os.pathsep.join([str(Path(PY).parent), os.environ.get("PATH", "")]))


def find_tools() -> dict[str, str]:
    found = {name: which(name) for name in TOOLS}
    missing = [name for name, path in found.items() if path is None]
    if missing:
        hint = " (checkov has its own virtualenv: PATH=$PATH:/path/to/venv-tools/bin)" if "checkov" in missing else ""
        print(f"error: missing tool{'s' if len(missing) > 1 else ''}: {', '.join(missing)}{hint}", file=sys.stderr)
        raise SystemExit(2)
    return {name: path for name, path in found.items() if path is not None}


def tool_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    # This Python's bin/ first on PATH, so every child (pipeproof validate's linters too) finds the same tools.
    path = os.pathsep.join([str(Path(PY).parent), os.environ.get("PATH", "")])
    return {**os.environ, "PATH": path, "NO_COLOR": "1", **(extra or {})}


def version(argv: Sequence[str]) -> str:
    try:
        proc = subprocess.run(list(argv), capture_output=True, text=True, timeout=120, env=tool_env())
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"? ({exc})"
    lines = (proc.stdout.strip() or proc.stderr.strip()).splitlines()
    return lines[0].strip() if lines else "?"


def cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def load_average() -> float:
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):
        return math.nan


# ------------------------------------------------------------------------------------------ timing


class CommandFailed(Exception):
    pass


@dataclass(frozen=True)
class Cmd:
    argv: list[str]
    ok: Collection[int] = OK
    cwd: Path | None = None
    env: dict[str, str] | None = None


def timed(cmd: Cmd) -> float:
    """Seconds one subprocess took (stdout discarded); raises CommandFailed on an unexpected exit code."""
    return timed_cpu(cmd)[0]


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)  # every waited-for descendant, grandchildren too
    return usage.ru_utime + usage.ru_stime


def timed_cpu(cmd: Cmd) -> tuple[float, float]:
    """Wall seconds and CPU seconds (user + system, the process and the children it waited for)."""
    cpu = _children_cpu()
    start = time.perf_counter()
    proc = subprocess.run(
        cmd.argv, cwd=cmd.cwd, env=cmd.env or tool_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    elapsed = time.perf_counter() - start
    cpu = _children_cpu() - cpu
    if proc.returncode not in cmd.ok:
        last = (proc.stderr.strip().splitlines() or ["(no stderr)"])[-1]
        shown = " ".join([Path(cmd.argv[0]).name, *cmd.argv[1:5]])
        raise CommandFailed(f"`{shown} ...` exited {proc.returncode}: {last}")
    return elapsed, cpu


def interleaved(reps: int, runs: dict[str, Callable[[int], float]]) -> dict[str, float]:
    """Median seconds of each run; rep i runs them in order, rep i+1 in reverse, so drift hits both."""
    times: dict[str, list[float]] = {name: [] for name in runs}
    for i in range(reps):
        names = list(runs) if i % 2 == 0 else list(reversed(runs))
        for name in names:
            times[name].append(runs[name](i))
    return {name: statistics.median(values) for name, values in times.items()}


def fmt_s(seconds: float) -> str:
    if seconds >= 10:
        return f"{seconds:.1f} s"
    if seconds >= 1:
        return f"{seconds:.2f} s"
    return f"{seconds * 1000:.0f} ms"


def fmt_ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f} ms"


# ------------------------------------------------------------------------------------------- table


@dataclass
class Row:
    name: str
    value: str
    target: str
    status: str  # ok, MISS, n/a, ERROR
    detail: list[str] = field(default_factory=list)


ROWS: list[Row] = []


def add(name: str, value: str, target: str, passed: bool, detail: Sequence[str] = ()) -> None:
    ROWS.append(Row(name, value, target, "ok" if passed else "MISS", list(detail)))


# --------------------------------------------------------------------------- 1. new vs copier copy


def bench_new(
    tools: dict[str, str], reps: int, tmp: Path, answers: Sequence[str] = ANSWERS, name: str = "1. new --defaults"
) -> None:
    log(f"{name}: pipeproof new vs copier copy ({reps} reps each, alternating, after one warm-up each)")
    data = [arg for answer in answers for arg in ("--data", answer)]

    def pipeproof(tag: str) -> Cmd:
        return Cmd([*PIPEPROOF, "new", str(tmp / tag / "bench"), "--defaults", *data])

    def copier(tag: str) -> Cmd:
        return Cmd(
            [
                tools["copier"],
                "copy",
                "--defaults",
                "--vcs-ref",
                "HEAD",
                "--quiet",
                *data,
                str(ROOT),
                str(tmp / tag / "bench"),
            ]
        )

    timed(pipeproof("warm-p"))  # bytecode, page cache; the two trees are then compared
    timed(copier("warm-c"))
    same = same_tree(tmp / "warm-p" / "bench", tmp / "warm-c" / "bench")
    t = interleaved(reps, {"p": lambda i: timed(pipeproof(f"p{i}")), "c": lambda i: timed(copier(f"c{i}"))})
    ratio = t["p"] / t["c"]
    add(
        f"{name} vs copier copy",
        f"{ratio:.2f}x",
        "<= 1.3x",
        ratio <= 1.3,
        [
            f"pipeproof new {fmt_s(t['p'])}, copier copy {fmt_s(t['c'])} "
            f"(medians of {reps}; --data {' '.join(answers)})",
            f"rendered trees identical: {same}",
        ],
    )


def same_tree(a: Path, b: Path) -> str:
    diffs: list[str] = []

    def walk(cmp: filecmp.dircmp[str], prefix: str) -> None:
        diffs.extend(prefix + n for n in cmp.left_only + cmp.right_only + cmp.funny_files)
        _, mismatch, errors = filecmp.cmpfiles(cmp.left, cmp.right, cmp.common_files, shallow=False)
        diffs.extend(prefix + n for n in mismatch + errors)
        for name, sub in cmp.subdirs.items():
            walk(sub, f"{prefix}{name}/")

    walk(filecmp.dircmp(a, b), "")
    answers, note = ".copier-answers.yml", ""
    if answers in diffs and _without_commit(a / answers) == _without_commit(b / answers):
        # copier commits a dirty template checkout to a throwaway commit on every run, so _commit differs.
        diffs.remove(answers)
        note = " except `_commit:` in .copier-answers.yml (copier commits the dirty checkout anew on each run)"
    return f"yes{note}" if not diffs else f"no ({', '.join(sorted(diffs)[:5])})"


def _without_commit(path: Path) -> list[str]:
    return [line for line in path.read_text(encoding="utf-8").splitlines() if not line.startswith("_commit:")]


# ---------------------------------------------------------------------- 2. update vs copier update


GIT = ["git", "-c", "user.name=bench", "-c", "user.email=bench@example.invalid", "-c", "commit.gpgsign=false"]


def git_commit_all(repo: Path, message: str, tag: str | None = None) -> None:
    if not (repo / ".git").exists():
        subprocess.run(["git", "init", "-q", "-b", "main"], cwd=repo, check=True, capture_output=True)
    subprocess.run(["git", "add", "-A"], cwd=repo, check=True, capture_output=True)
    subprocess.run([*GIT, "commit", "-q", "--allow-empty", "-m", message], cwd=repo, check=True, capture_output=True)
    if tag:
        subprocess.run(["git", "tag", tag], cwd=repo, check=True, capture_output=True)


def template_versions(dest: Path) -> Path:
    """A template repository: this checkout's template as v1.0.0; v2.0.0 bumps actions/checkout in every
    workflow and adds a file (the update both commands apply)."""
    dest.mkdir(parents=True)
    shutil.copy2(ROOT / "copier.yml", dest / "copier.yml")
    shutil.copytree(ROOT / "templates", dest / "templates")
    shutil.copytree(ROOT / "generator" / "data", dest / "generator" / "data")
    git_commit_all(dest, "v1", "v1.0.0")
    pins = dest / "generator" / "data" / "pins.yml"
    text = pins.read_text(encoding="utf-8")
    old = next(line for line in text.splitlines() if line.strip().startswith("actions/checkout:"))
    new = old.split("{")[0] + "{sha: " + "1" * 40 + ", version: v99.0.0}"
    pins.write_text(text.replace(old, new), encoding="utf-8")
    (dest / "templates" / "SECURITY.md.jinja").write_text("Report vulnerabilities privately.\n", encoding="utf-8")
    git_commit_all(dest, "v2", "v2.0.0")
    return dest


def bench_update(tools: dict[str, str], reps: int, tmp: Path) -> None:
    name, target = "2. update vs copier update", "<= 1.5x"
    log(f"2. pipeproof update vs copier update, v1.0.0 -> v2.0.0 ({reps} reps each, alternating)")
    template = template_versions(tmp / "template")
    base = tmp / "base" / "bench"
    timed(
        Cmd([tools["copier"], "copy", "--defaults", "--vcs-ref", "v1.0.0", "--quiet", *DATA, str(template), str(base)])
    )
    git_commit_all(base, "rendered")

    def fresh(tag: str) -> str:
        dest = tmp / tag / "bench"
        shutil.copytree(base, dest, symlinks=True)  # untimed: every run updates its own clean checkout
        return str(dest)

    def pipeproof(i: int) -> float:
        return timed(Cmd([*PIPEPROOF, "update", fresh(f"p{i}"), "--to", "v2.0.0"]))

    def copier(i: int) -> float:
        return timed(Cmd([tools["copier"], "update", "--defaults", "--vcs-ref", "v2.0.0", "--quiet", fresh(f"c{i}")]))

    pipeproof(-1), copier(-1)  # warm-up; the two results are then compared
    same = same_tree(tmp / "p-1" / "bench", tmp / "c-1" / "bench")
    t = interleaved(reps, {"p": pipeproof, "c": copier})
    ratio = t["p"] / t["c"]
    add(
        name,
        f"{ratio:.2f}x",
        target,
        ratio <= 1.5,
        [
            f"pipeproof update {fmt_s(t['p'])}, copier update {fmt_s(t['c'])} (medians of {reps}); pipeproof also "
            "stages the update in a clone, audits before and after, and validates the changed workflows",
            f"updated trees identical: {same}",
        ],
    )


# ------------------------------------------------------------------- 2b. retrofit --dry-run at scale


def build_large_repo(dest: Path, files: int) -> Path:
    """A Python service with `files` files: sources in packages, Kubernetes manifests, docs, a Dockerfile,
    an existing CI workflow and pre-commit config; committed."""
    written = 0

    def put(rel: str, text: str) -> None:
        nonlocal written
        path = dest / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        written += 1

    put("pyproject.toml", '[project]\nname = "big"\n')
    put("Dockerfile", "FROM python:3.12-slim\n")
    put(
        ".pre-commit-config.yaml",
        "repos:\n  - repo: local\n    hooks:\n      - id: x\n        name: x\n"
        "        entry: x\n        language: system\n",
    )
    put(
        ".github/workflows/ci.yml",
        "on: [pull_request]\npermissions: {}\njobs:\n  test:\n    runs-on: ubuntu-24.04\n"
        "    steps:\n      - run: pytest\n",
    )
    for i in range(50):
        put(f"deploy/k8s/svc{i}.yaml", f"apiVersion: v1\nkind: Service\nmetadata:\n  name: svc{i}\n")
    for i in range(300):
        put(f"docs/d{i % 10}/page{i}.md", f"# page {i}\n")
    i = 0
    while written < files:
        put(f"src/big/pkg{i // 100}/mod{i % 100}.py", f"VALUE = {i}\n")
        i += 1
    git_commit_all(dest, "a large repository")
    return dest


def bench_retrofit(reps: int, tmp: Path, files: int = 10_000) -> None:
    name, target = f"2b. retrofit --dry-run, {files:,} files", "< 2 s"
    log(f"2b. pipeproof retrofit --dry-run on a repository of {files:,} files ({reps} reps)")
    repo = build_large_repo(tmp / "large", files)
    count = int(subprocess.run(["git", "ls-files"], cwd=repo, capture_output=True, text=True).stdout.count("\n"))
    cmd = Cmd([*PIPEPROOF, "retrofit", str(repo), "--defaults", "--dry-run"])
    timed(cmd)  # warm-up
    t = interleaved(reps, {"r": lambda i: timed(cmd)})["r"]
    status = subprocess.run(["git", "status", "--porcelain"], cwd=repo, capture_output=True, text=True).stdout
    add(
        name,
        fmt_s(t),
        target,
        t < 2.0,
        [
            f"median of {reps}: detection, audit of the repository as it is and as the plan leaves it, the render "
            f"and the plan; {count:,} files tracked; wrote nothing: {'yes' if not status else 'NO'}",
        ],
    )


# ---------------------------------------------------------------------------- 3. validate goldens


def direct_linters(tree: Path, tools: dict[str, str], env: dict[str, str]) -> list[Cmd]:
    """The four linters over one tree with the files and options `pipeproof validate` uses, one per command."""

    def rel(paths: list[Path]) -> list[str]:
        return sorted(p.relative_to(tree).as_posix() for p in paths if p.is_file())

    yaml_files = rel(
        [p for p in [*tree.rglob("*.yml"), *tree.rglob("*.yaml")] if ".git" not in p.relative_to(tree).parts]
    )
    workflows = rel([*tree.glob(".github/workflows/*.yml"), *tree.glob(".github/workflows/*.yaml")])
    actions = rel([*tree.glob(".github/actions/*/action.yml"), *tree.glob(".github/actions/*/action.yaml")])
    dependabot = rel([tree / ".github/dependabot.yml"])
    config = tree / ".yamllint.yml"
    config_args = ["--config-file", str(config)] if config.is_file() else []
    runs = [Cmd([tools["yamllint"], "--format", "parsable", *config_args, *yaml_files], YAMLLINT_OK, tree, env)]
    if workflows:
        argv = [tools["actionlint"], "-format", "{{json .}}", "-no-color", *workflows]
        runs.append(Cmd(argv, FINDINGS_OK, tree, env))
    for schema, files in (
        ("vendor.github-workflows", workflows),
        ("vendor.github-actions", actions),
        ("vendor.dependabot", dependabot),
    ):
        if files:
            argv = [tools["check-jsonschema"], "--builtin-schema", schema, "--output-format", "json", *files]
            runs.append(Cmd(argv, FINDINGS_OK, tree, env))
    if workflows:
        argv = [
            tools["zizmor"],
            "--offline",
            "--persona=auditor",
            "--format=json",
            "--no-progress",
            "--color=never",
            ".",
        ]
        runs.append(Cmd(argv, ZIZMOR_OK, tree, env))
    return runs


def bench_validate(tools: dict[str, str], reps: int) -> None:
    # The trees where validate runs the same four linters: on GitLab and Argo CD trees it also runs checks the
    # four do not make (GitLab CI and settings schemas, pipeline references, Argo CD schemas, kubernetes-validate,
    # policy.csv), so there the pair would compare unlike work.
    trees = sorted(
        p for p in GOLDEN.iterdir() if (p / ".github" / "workflows").is_dir() and not (p / "argocd").is_dir()
    )
    log(f"3. pipeproof validate vs the four linters in sequence: {len(trees)} GitHub golden trees, {reps} reps each")
    env = tool_env({"ZIZMOR_OFFLINE": "1"})
    per_tree: list[tuple[str, float, float]] = []
    cpu = {"validate": 0.0, "sequence": 0.0}

    def run(name: str, cmds: list[Cmd]) -> float:
        wall = 0.0
        for cmd in cmds:
            w, c = timed_cpu(cmd)
            wall, cpu[name] = wall + w, cpu[name] + c / reps
        return wall

    for tree in trees:
        validate = Cmd([*PIPEPROOF, "validate", str(tree)], FINDINGS_OK, None, env)
        linters = direct_linters(tree, tools, env)
        timed(validate)  # warm-up
        t = interleaved(
            reps,
            {
                "validate": lambda i, cmd=validate: run("validate", [cmd]),  # type: ignore[misc]
                "sequence": lambda i, cmds=linters: run("sequence", cmds),  # type: ignore[misc]
            },
        )
        per_tree.append((tree.name, t["validate"], t["sequence"]))
        log(f"   {tree.name}: validate {fmt_s(t['validate'])}, linters in sequence {fmt_s(t['sequence'])}")
    v_total = sum(v for _, v, _ in per_tree)
    d_total = sum(d for _, _, d in per_tree)
    ratio = v_total / d_total
    add(
        "3. validate vs 4 linters in sequence",
        f"{ratio:.2f}x",
        "< 1.0x (parallel)",
        ratio < 1.0,
        [
            f"validate {fmt_s(v_total)} in total over {len(per_tree)} trees, per-tree median "
            f"{fmt_s(statistics.median(v for _, v, _ in per_tree))}; the linters one after another {fmt_s(d_total)} "
            "(yamllint, actionlint, check-jsonschema once per schema, zizmor --offline)",
            f"parallelism gain {d_total / v_total:.2f}x on {cpu_count()} cores (medians of {reps} per tree); CPU time "
            f"(user + sys, mean per pass over all trees) validate {cpu['validate']:.2f} s vs sequence "
            f"{cpu['sequence']:.2f} s: validate does the same work plus its own start-up, so the gain needs idle cores",
            *(f"  {name}: validate {fmt_s(v)} vs sequence {fmt_s(d)} = {v / d:.2f}x" for name, v, d in per_tree),
        ],
    )


# ------------------------------------------------------------------------------ 4. audit at scale


def build_synthetic(dest: Path, n: int) -> Path:
    """n workflows (every golden's workflows in turn, renamed w0001.yml...) plus python-defaults' other files
    (settings, rulesets, CODEOWNERS, dependabot, the ship-evidence action, compliance/...)."""
    sources = sorted(GOLDEN.glob("*/.github/workflows/*.yml"))
    base = GOLDEN / "python-defaults"
    shutil.copytree(base, dest, ignore=lambda d, names: ["workflows"] if Path(d) == base / ".github" else [])
    workflows = dest / ".github" / "workflows"
    workflows.mkdir(parents=True)
    for i in range(n):
        src = sources[i % len(sources)]
        # A comment makes every file distinct without changing what it does.
        header = f"# synthetic workflow {i + 1} of {n}, from golden/{src.parents[2].name}/{src.name}\n"
        (workflows / f"w{i + 1:04d}.yml").write_text(header + src.read_text(encoding="utf-8"), encoding="utf-8")
    return dest


def bench_audit(tools: dict[str, str], sizes: Sequence[int], quick: bool, tmp: Path) -> None:
    reps = {0: 5, 100: 5, 1000: 2} if quick else {0: 11, 100: 11, 1000: 3, 5000: 3}
    log(
        f"4. audit vs zizmor vs checkov on synthetic repositories with {', '.join(map(str, sizes))} workflows "
        f"(checkov at {' and '.join(map(str, CHECKOV_SIZES))} only, one run each)"
    )
    repos = {n: build_synthetic(tmp / f"synth-{n}", n) for n in (0, *sizes)}
    checkov_env = tool_env(CHECKOV_ENV)

    def audit(i: int, n: int) -> float:
        return timed(Cmd([*PIPEPROOF, "audit", str(repos[n]), "--format", "json"], FINDINGS_OK))

    def zizmor(i: int, n: int) -> float:
        return timed(Cmd([tools["zizmor"], "--offline", "--format", "json", str(repos[n])], ZIZMOR_OK))

    def checkov(n: int) -> float:
        argv = [tools["checkov"], "--framework", "github_actions", "--skip-download", "-o", "json", "-d", str(repos[n])]
        return timed(Cmd(argv, FINDINGS_OK, None, checkov_env))

    audit(0, 0)  # warm-up
    a: dict[int, float] = {}
    z: dict[int, float] = {}
    c: dict[int, float] = {}
    a[0] = interleaved(reps[0], {"a": lambda i: audit(i, 0)})["a"]
    log(f"   no workflows: audit {fmt_s(a[0])} ({reps[0]} reps)")
    for n in sizes:
        t = interleaved(reps[n], {"a": lambda i, n=n: audit(i, n), "z": lambda i, n=n: zizmor(i, n)})  # type: ignore[misc]
        a[n], z[n] = t["a"], t["z"]
        msg = f"   N={n}: audit {fmt_s(a[n])}, zizmor {fmt_s(z[n])} ({reps[n]} reps)"
        if n in CHECKOV_SIZES:
            c[n] = checkov(n)
            msg += f", checkov {fmt_s(c[n])} (1 run)"
        log(msg)

    per_size = [
        f"  N={n:>5}: audit {fmt_s(a[n])} ({fmt_ms(a[n] / n)}/file), zizmor {fmt_s(z[n])} ({fmt_ms(z[n] / n)}/file)"
        + (f", checkov {fmt_s(c[n])} ({fmt_ms(c[n] / n)}/file)" if n in c else ", checkov not run")
        + f" [{reps[n]} reps]"
        for n in sizes
    ]
    ratio = a[1000] / z[1000]
    add(
        "4a. audit vs zizmor --offline @1,000",
        f"{ratio:.2f}x",
        "<= 2x",
        ratio <= 2.0,
        [
            "; ".join(f"{a[n] / z[n]:.2f}x at N={n}" for n in sizes),
            *per_size,
        ],
    )
    speedup = c[1000] / a[1000]
    add(
        "4b. audit vs checkov @1,000",
        f"{speedup:.1f}x faster",
        ">= 10x faster",
        speedup >= 10,
        [
            f"checkov {fmt_s(c[1000])} vs audit {fmt_s(a[1000])}; at N=100 {c[100] / a[100]:.1f}x faster; checkov runs "
            f"once per size and not at 5,000 "
            f"(at {fmt_s(c[1000] / 1000)}/file that alone would break the 10-min budget)",
        ],
    )
    largest = max(sizes)
    raw = (a[largest] / largest) / (a[100] / 100)
    marginal = ((a[largest] - a[0]) / largest) / ((a[100] - a[0]) / 100)
    add(
        f"4c. audit per-file time {largest:,} vs 100",
        f"{marginal:.2f} (raw {raw:.2f})",
        "~1 (0.75-1.33)",
        0.75 <= marginal <= 1.33,
        [
            f"per-file = (t(N) - t(0)) / N with t(0) = {fmt_s(a[0])}, the audit of the same repository without "
            f"workflows (start-up, catalog, other files); the raw t(N)/N ratio {raw:.2f} still holds that fixed cost",
            *(f"  N={n:>5}: {fmt_ms((a[n] - a[0]) / n)}/file marginal, {fmt_ms(a[n] / n)}/file raw" for n in sizes),
        ],
    )


def build_synthetic_gitlab(dest: Path, n: int) -> Path:
    """The GitLab Premium golden with n more jobs: copies of its jobs (renamed, without needs:, so the stage order
    links them; without environment:, so one job deploys to production), 100 per local include."""
    import yaml

    base = GOLDEN / "gitlab-premium-python"
    shutil.copytree(base, dest)
    config = yaml.safe_load((base / ".gitlab-ci.yml").read_text(encoding="utf-8"))
    reserved = {"default", "include", "stages", "variables", "workflow", "image", "services", "cache"}
    # Copies of the scanner, build and scheduled jobs; production and its rollback and record stay one each.
    jobs = [
        (k, v)
        for k, v in config.items()
        if k not in reserved and not k.startswith(".") and isinstance(v, dict) and "production" not in k
    ]
    parts: list[dict[str, object]] = []
    for i in range(n):
        name, job = jobs[i % len(jobs)]
        copy = {k: v for k, v in job.items() if k not in {"needs", "environment", "resource_group"}}
        if i % 100 == 0:
            parts.append({})
        parts[-1][f"{name}-{i + 1}"] = copy
    (dest / "ci").mkdir()
    for k, part in enumerate(parts):
        (dest / "ci" / f"part-{k + 1:03d}.yml").write_text(yaml.safe_dump(part, sort_keys=False), encoding="utf-8")
    text = (base / ".gitlab-ci.yml").read_text(encoding="utf-8")
    includes = "".join(f"  - local: ci/part-{k + 1:03d}.yml\n" for k in range(len(parts)))
    (dest / ".gitlab-ci.yml").write_text((f"include:\n{includes}\n" if parts else "") + text, encoding="utf-8")
    return dest


def bench_audit_gitlab(sizes: Sequence[int], quick: bool, tmp: Path) -> None:
    """The GitLab audit (no other tool judges a .gitlab-ci.yml the same way): absolute times and linearity."""
    reps = {0: 5, 100: 5, 1000: 2} if quick else {0: 7, 100: 7, 1000: 3, 5000: 3}
    log(f"4d. audit on GitLab: the Premium golden plus {', '.join(map(str, sizes))} jobs in local includes")
    repos = {n: build_synthetic_gitlab(tmp / f"gitlab-{n}", n) for n in (0, *sizes)}

    def audit(i: int, n: int) -> float:
        return timed(Cmd([*PIPEPROOF, "audit", str(repos[n]), "--format", "json"], FINDINGS_OK))

    audit(0, 0)  # warm-up
    a = {n: interleaved(reps[n], {"a": lambda i, n=n: audit(i, n)})["a"] for n in (0, *sizes)}  # type: ignore[misc]
    for n in (0, *sizes):
        log(f"   N={n}: audit {fmt_s(a[n])} ({reps[n]} reps)")
    largest = max(sizes)
    marginal = ((a[largest] - a[0]) / largest) / ((a[100] - a[0]) / 100)
    add(
        f"4d. GitLab audit per-job time {largest:,} vs 100",
        f"{marginal:.2f}",
        "<= 1.33 (no quadratic work; below 1 when the jobs share scripts)",
        marginal <= 1.33,
        [
            f"the GitLab Premium golden alone {fmt_s(a[0])}; "
            + "; ".join(f"+{n:,} jobs {fmt_s(a[n])} ({fmt_ms((a[n] - a[0]) / n)}/job)" for n in sizes),
        ],
    )


# ----------------------------------------------------------------------------------- 5. start-up


def bench_startup(reps: int) -> None:
    log(f"5. pipeproof --help start-up vs python -c pass ({reps} reps each)")
    script = which("pipeproof")
    help_cmd = Cmd([script, "--help"] if script else [*PIPEPROOF, "--help"])
    bare = Cmd([PY, "-c", "pass"])
    timed(help_cmd), timed(bare)  # warm-up
    t = interleaved(reps, {"help": lambda i: timed(help_cmd), "bare": lambda i: timed(bare)})
    shown = " ".join([Path(help_cmd.argv[0]).name, *help_cmd.argv[1:]])
    add(
        "5. pipeproof --help start-up",
        fmt_s(t["help"]),
        "<= 0.3 s",
        t["help"] <= 0.3,
        [
            f"`{shown}` {fmt_s(t['help'])} vs `python -c pass` {fmt_s(t['bare'])}: {t['help'] / t['bare']:.1f}x the "
            f"bare interpreter, {fmt_s(t['help'] - t['bare'])} of pipeproof's own (medians of {reps})",
        ],
    )


# ------------------------------------------------------------------------------------------ report


def report(tools: dict[str, str], quick: bool, elapsed: float, load_start: float) -> None:
    versions = {
        "pipeproof": version([*PIPEPROOF, "--version"]).removeprefix("pipeproof "),
        "copier": version([tools["copier"], "--version"]).removeprefix("copier "),
        "zizmor": version([tools["zizmor"], "--version"]).removeprefix("zizmor "),
        "actionlint": version([tools["actionlint"], "--version"]),
        "yamllint": version([tools["yamllint"], "--version"]).removeprefix("yamllint "),
        "check-jsonschema": version([tools["check-jsonschema"], "--version"]).split("version ")[-1],
        "checkov": version([tools["checkov"], "--version"]),
    }
    header = [
        f"date: {dt.datetime.now().astimezone().isoformat(timespec='seconds')}",
        f"machine: {platform.machine()} (uname -m), nproc {cpu_count()}, {platform.system()} {platform.release()}",
        f"python: {platform.python_version()} ({PY})",
        "tools: " + ", ".join(f"{k} {v}" for k, v in versions.items()),
        f"mode: {'--quick (no 5,000 size, fewer repetitions)' if quick else 'full'}; benchmark wall time "
        f"{elapsed:.0f} s",
        f"load average (1 min): {load_start:.2f} at start, {load_average():.2f} at end; other work on the machine "
        "adds noise, which the interleaved runs share",
    ]
    print("\n".join(header))
    print()
    w = [max(len(r.name) for r in ROWS), max(len(r.value) for r in ROWS), max(len(r.target) for r in ROWS)]
    print(f"{'benchmark':<{w[0]}}  {'value':<{w[1]}}  {'target':<{w[2]}}  status")
    print(f"{'-' * w[0]}  {'-' * w[1]}  {'-' * w[2]}  ------")
    for r in ROWS:
        print(f"{r.name:<{w[0]}}  {r.value:<{w[1]}}  {r.target:<{w[2]}}  {r.status}")
        for line in r.detail:
            print(f"    {line}")
    print()
    print("-" * 40 + " markdown " + "-" * 40)
    print()
    for line in header:
        print(f"- {line}")
    print()
    print("| benchmark | value | target | status | details |")
    print("|---|---|---|---|---|")
    for r in ROWS:
        details = "<br>".join(line.strip().replace("|", "\\|") for line in r.detail)
        print(f"| {r.name} | {r.value} | {r.target} | {r.status} | {details} |")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="pipeproof benchmarks: a table of ratios measured in one run.")
    parser.add_argument("--quick", action="store_true", help="skip the 5,000-workflow repository, repeat less")
    args = parser.parse_args(argv)
    quick: bool = args.quick
    tools = find_tools()
    load_start = load_average()
    started = time.perf_counter()
    sizes = (100, 1000) if quick else (100, 1000, 5000)
    with tempfile.TemporaryDirectory(prefix="pipeproof-bench-") as tmpdir:
        tmp = Path(tmpdir)
        steps: list[tuple[str, str, Callable[[], None]]] = [
            ("1. new --defaults vs copier copy", "<= 1.3x", lambda: bench_new(tools, 3 if quick else 5, tmp / "new")),
            (
                "1b. new GitLab vs copier copy",
                "<= 1.3x",
                lambda: bench_new(
                    tools, 3 if quick else 5, tmp / "new-gitlab", GITLAB_ANSWERS, "1b. new GitLab (premium, terraform)"
                ),
            ),
            ("2. update vs copier update", "<= 1.5x", lambda: bench_update(tools, 3 if quick else 5, tmp / "update")),
            ("2b. retrofit --dry-run", "< 2 s", lambda: bench_retrofit(3 if quick else 5, tmp / "retrofit")),
            (
                "3. validate vs 4 linters in sequence",
                "< 1.0x (parallel)",
                lambda: bench_validate(tools, 2 if quick else 3),
            ),
            ("4. audit vs zizmor / checkov", "see 4a-4c", lambda: bench_audit(tools, sizes, quick, tmp / "audit")),
            ("4d. GitLab audit", "~1 per job", lambda: bench_audit_gitlab(sizes, quick, tmp / "audit-gitlab")),
            ("5. pipeproof --help start-up", "<= 0.3 s", lambda: bench_startup(10 if quick else 20)),
        ]
        for name, target, step in steps:
            try:
                step()
            except (CommandFailed, OSError, subprocess.CalledProcessError) as exc:
                log(f"ERROR in {name}: {exc}")
                ROWS.append(Row(name, "error", target, "ERROR", [str(exc)]))
    elapsed = time.perf_counter() - started
    print(file=sys.stderr)
    report(tools, quick, elapsed, load_start)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
