"""pipeproof benchmarks: one entry point, ratios measured in the same run, a table at the end.

    python benchmarks/run.py [--quick]
    PATH=$PATH:/work/venv-tools/bin python benchmarks/run.py   # checkov lives in its own virtualenv

Rows (every ratio compares two commands timed in this run, on this machine; medians of a few repetitions,
time.perf_counter around each subprocess):

  1. `pipeproof new --defaults` vs plain `copier copy --defaults` of the same template, same answers.
  2. `pipeproof update` vs plain `copier update` (n/a until `pipeproof update` exists).
  3. `pipeproof validate` over each golden tree vs the four linters run one after another.
  4. `pipeproof audit` vs `zizmor --offline` and vs `checkov --framework github_actions` on synthetic
     repositories with 100, 1,000 and 5,000 workflows (checkov at 100 and 1,000 only: at 5,000 it alone
     would take many minutes).
  5. `pipeproof --help` start-up time vs `python -c pass`.

Nothing is asserted: the script reports each value with its target and ok/MISS. Exit codes: 0 when it ran
(even with MISS or ERROR rows), 2 when a tool is missing (named on stderr). Tools are looked up on PATH and
next to this Python (an un-activated virtualenv's bin/); checkov must be on PATH. Progress goes to stderr,
the report to stdout: a plain table, then after a separator the same table as Markdown for the README.
"""

from __future__ import annotations

import argparse
import datetime as dt
import filecmp
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent  # the repository, which is also the copier template
GOLDEN = ROOT / "golden"
PY = sys.executable
PIPEPROOF = [PY, "-m", "generator"]
ANSWERS = ["project_name=bench"]  # the same --data answers for pipeproof new and copier copy
SIZES_FULL = (100, 1000, 5000)
SIZES_QUICK = (100, 1000)
CHECKOV_SIZES = (100, 1000)
CHECKOV_ENV = {"CKV_SKIP_PACKAGE_UPDATE_CHECK": "true", "BC_SKIP_MAPPING": "TRUE"}
ZIZMOR_OK = {0, 11, 12, 13, 14}  # 11-14: findings by severity; 3 would mean "no inputs"
TOOLS = ("copier", "zizmor", "actionlint", "yamllint", "check-jsonschema", "checkov")


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------------------- tools


def which(name: str) -> str | None:
    """A tool on PATH, or next to this Python (so an un-activated venv's tools are found too)."""
    search = os.pathsep.join([str(Path(PY).parent), os.environ.get("PATH", "")])
    return shutil.which(name, path=search)


def find_tools() -> dict[str, str]:
    found = {name: which(name) for name in TOOLS}
    missing = [name for name, path in found.items() if path is None]
    if missing:
        hint = " (checkov: put its virtualenv on PATH, e.g. PATH=$PATH:/work/venv-tools/bin)" if "checkov" in missing else ""
        print(f"error: missing tool{'s' if len(missing) > 1 else ''}: {', '.join(missing)}{hint}", file=sys.stderr)
        raise SystemExit(2)
    return {name: path for name, path in found.items() if path is not None}


def version(argv: Sequence[str]) -> str:
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=120, env=tool_env())
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"? ({exc})"
    text = (proc.stdout.strip() or proc.stderr.strip()).splitlines()
    return text[0].strip() if text else "?"


def tool_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    # The venv's bin/ first on PATH so every child (pipeproof validate's linters too) finds the same tools.
    path = os.pathsep.join([str(Path(PY).parent), os.environ.get("PATH", "")])
    return {**os.environ, "PATH": path, "NO_COLOR": "1", **(extra or {})}


# ------------------------------------------------------------------------------------------- timing


class CommandFailed(Exception):
    pass


def timed(argv: Sequence[str], *, ok: Callable[[int], bool] = lambda c: c == 0, cwd: Path | None = None,
          env: dict[str, str] | None = None) -> float:
    """Seconds one subprocess took (output discarded); raises CommandFailed on an unexpected exit code."""
    start = time.perf_counter()
    proc = subprocess.run(list(argv), cwd=cwd, env=env or tool_env(), stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True)
    elapsed = time.perf_counter() - start
    if not ok(proc.returncode):
        last = (proc.stderr.strip().splitlines() or ["(no stderr)"])[-1]
        raise CommandFailed(f"{Path(argv[0]).name} {' '.join(map(str, argv[1:4]))} ... exited {proc.returncode}: {last}")
    return elapsed


def med(values: Sequence[float]) -> float:
    return statistics.median(values)


def fmt_s(seconds: float) -> str:
    if seconds >= 10:
        return f"{seconds:.1f} s"
    if seconds >= 1:
        return f"{seconds:.2f} s"
    return f"{seconds * 1000:.0f} ms"


def fmt_ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f} ms"


# -------------------------------------------------------------------------------------------- table


@dataclass
class Row:
    name: str
    value: str
    target: str
    status: str  # ok, MISS, n/a, ERROR, info
    detail: list[str] = field(default_factory=list)


ROWS: list[Row] = []


def add(name: str, value: str, target: str, passed: bool | None, detail: list[str] | None = None,
        status: str | None = None) -> None:
    if status is None:
        status = "info" if passed is None else ("ok" if passed else "MISS")
    ROWS.append(Row(name, value, target, status, detail or []))


def error_row(name: str, target: str, exc: Exception) -> None:
    log(f"ERROR in {name}: {exc}")
    ROWS.append(Row(name, "error", target, "ERROR", [str(exc)]))


# ---------------------------------------------------------------------------- 1. new vs copier copy


def bench_new(tools: dict[str, str], reps: int, tmp: Path) -> None:
    log(f"1. pipeproof new vs copier copy ({reps} reps each, alternating, after one warm-up each)")
    data = [arg for answer in ANSWERS for arg in ("--data", answer)]
    pipeproof_times: list[float] = []
    copier_times: list[float] = []

    def run_pipeproof(dest: Path) -> float:
        return timed([*PIPEPROOF, "new", str(dest), "--defaults", *data])

    def run_copier(dest: Path) -> float:
        return timed([tools["copier"], "copy", "--defaults", "--vcs-ref", "HEAD", "--quiet", *data, str(ROOT), str(dest)])

    # Warm-up (bytecode compilation, page cache), kept to compare the two trees.
    run_pipeproof(tmp / "warm-p" / "bench")
    run_copier(tmp / "warm-c" / "bench")
    same = _same_tree(tmp / "warm-p" / "bench", tmp / "warm-c" / "bench")
    for i in range(reps):
        order = [("p", run_pipeproof, pipeproof_times), ("c", run_copier, copier_times)]
        for tag, fn, sink in order if i % 2 == 0 else reversed(order):
            sink.append(fn(tmp / f"{tag}{i}" / "bench"))
    p, c = med(pipeproof_times), med(copier_times)
    add("1. new --defaults vs copier copy", f"{p / c:.2f}x", "<= 1.3x", p / c <= 1.3, [
        f"pipeproof new {fmt_s(p)}, copier copy {fmt_s(c)} (medians of {reps}; answers {' '.join(ANSWERS)})",
        f"rendered trees identical: {same}",
    ])


def _same_tree(a: Path, b: Path) -> str:
    diffs: list[str] = []

    def walk(cmp: filecmp.dircmp[str], prefix: str) -> None:
        diffs.extend(prefix + n for n in cmp.left_only + cmp.right_only + cmp.funny_files)
        _, mismatch, errors = filecmp.cmpfiles(cmp.left, cmp.right, cmp.common_files, shallow=False)
        diffs.extend(prefix + n for n in mismatch + errors)
        for name, sub in cmp.subdirs.items():
            walk(sub, f"{prefix}{name}/")

    walk(filecmp.dircmp(a, b), "")
    return "yes" if not diffs else f"no ({', '.join(sorted(diffs)[:5])})"


# ------------------------------------------------------------------------ 2. update vs copier update


def bench_update(tools: dict[str, str], reps: int, tmp: Path) -> None:
    name = "2. update vs copier update"
    probe = subprocess.run([*PIPEPROOF, "update", "--help"], capture_output=True, text=True, env=tool_env())
    if probe.returncode != 0:
        log("2. pipeproof update: not implemented yet (update --help exits non-zero); n/a")
        add(name, "n/a (update not implemented yet)", "<= 1.3x", None, status="n/a")
        return
    log(f"2. pipeproof update vs copier update ({reps} reps each, alternating)")
    base = tmp / "update-base" / "bench"
    data = [arg for answer in ANSWERS for arg in ("--data", answer)]
    timed([tools["copier"], "copy", "--defaults", "--vcs-ref", "HEAD", "--quiet", *data, str(ROOT), str(base)])
    git = ["git", "-c", "user.name=bench", "-c", "user.email=bench@example.invalid", "-c", "commit.gpgsign=false"]
    for argv in (["git", "init", "-q"], ["git", "add", "-A"], [*git, "commit", "-q", "-m", "rendered"]):
        subprocess.run(argv, cwd=base, check=True, capture_output=True)
    pipeproof_extra = ["--defaults"] if "--defaults" in probe.stdout else []
    times: dict[str, list[float]] = {"p": [], "c": []}

    def fresh(tag: str, i: int) -> Path:
        dest = tmp / f"update-{tag}{i}" / "bench"
        shutil.copytree(base, dest, symlinks=True)
        return dest

    for i in range(reps):
        order = ["p", "c"] if i % 2 == 0 else ["c", "p"]
        for tag in order:
            dest = fresh(tag, i)
            if tag == "p":
                times[tag].append(timed([*PIPEPROOF, "update", str(dest), *pipeproof_extra]))
            else:
                times[tag].append(timed([tools["copier"], "update", "--defaults", "--vcs-ref", "HEAD", "--quiet", str(dest)]))
    p, c = med(times["p"]), med(times["c"])
    add(name, f"{p / c:.2f}x", "<= 1.3x", p / c <= 1.3,
        [f"pipeproof update {fmt_s(p)}, copier update {fmt_s(c)} (medians of {reps})"])


# ------------------------------------------------------------------------------ 3. validate goldens


def golden_trees() -> list[Path]:
    return sorted(p for p in GOLDEN.iterdir() if p.is_dir())


def direct_linters(tree: Path, tools: dict[str, str]) -> list[list[str]]:
    """The four linters over one tree, the same files and options `pipeproof validate` uses."""
    def rel(paths: list[Path]) -> list[str]:
        return sorted(p.relative_to(tree).as_posix() for p in paths if p.is_file())

    yaml_files = rel([p for p in [*tree.rglob("*.yml"), *tree.rglob("*.yaml")] if ".git" not in p.relative_to(tree).parts])
    workflows = rel([*tree.glob(".github/workflows/*.yml"), *tree.glob(".github/workflows/*.yaml")])
    actions = rel([*tree.glob(".github/actions/*/action.yml"), *tree.glob(".github/actions/*/action.yaml")])
    dependabot = rel([tree / ".github/dependabot.yml"])
    config = tree / ".yamllint.yml"
    runs = [[tools["yamllint"], "--format", "parsable", *(["--config-file", str(config)] if config.is_file() else []), *yaml_files]]
    if workflows:
        runs.append([tools["actionlint"], "-format", "{{json .}}", "-no-color", *workflows])
    for schema, files in (("vendor.github-workflows", workflows), ("vendor.github-actions", actions),
                          ("vendor.dependabot", dependabot)):
        if files:
            runs.append([tools["check-jsonschema"], "--builtin-schema", schema, "--output-format", "json", *files])
    if workflows:
        runs.append([tools["zizmor"], "--offline", "--persona=auditor", "--format=json", "--no-progress", "--color=never", "."])
    return runs


def bench_validate(tools: dict[str, str], reps: int) -> None:
    trees = golden_trees()
    log(f"3. pipeproof validate vs the four linters in sequence, {len(trees)} golden trees, {reps} reps each")
    env = tool_env({"ZIZMOR_OFFLINE": "1"})
    lint_ok = {"yamllint": {0, 1, 2}, "actionlint": {0, 1}, "check-jsonschema": {0, 1}, "zizmor": ZIZMOR_OK}
    per_tree: list[tuple[str, float, float]] = []
    for tree in trees:
        runs = direct_linters(tree, tools)
        # warm-up, not counted
        timed([*PIPEPROOF, "validate", str(tree)], ok=lambda c: c in {0, 1}, env=env)
        v_times, d_times = [], []
        for i in range(reps):
            def validate() -> None:
                v_times.append(timed([*PIPEPROOF, "validate", str(tree)], ok=lambda c: c in {0, 1}, env=env))

            def direct() -> None:
                total = 0.0
                for argv in runs:
                    codes = lint_ok[Path(argv[0]).name]
                    total += timed(argv, ok=lambda c, codes=codes: c in codes, cwd=tree, env=env)  # type: ignore[misc]
                d_times.append(total)

            for fn in (validate, direct) if i % 2 == 0 else (direct, validate):
                fn()
        per_tree.append((tree.name, med(v_times), med(d_times)))
        log(f"   {tree.name}: validate {fmt_s(per_tree[-1][1])}, linters in sequence {fmt_s(per_tree[-1][2])}")
    v_total = sum(v for _, v, _ in per_tree)
    d_total = sum(d for _, _, d in per_tree)
    ratio = v_total / d_total
    detail = [
        f"validate total {fmt_s(v_total)} over {len(per_tree)} trees (per-tree median {fmt_s(med([v for _, v, _ in per_tree]))}); "
        f"linters one after another {fmt_s(d_total)} (yamllint, actionlint, check-jsonschema x3 schemas, zizmor --offline); "
        f"parallelism gain {d_total / v_total:.2f}x on {cpu_count()} cores",
        *(f"  {name}: validate {fmt_s(v)} vs sequence {fmt_s(d)} = {v / d:.2f}x" for name, v, d in per_tree),
    ]
    add("3. validate vs 4 linters in sequence", f"{ratio:.2f}x", "< 1.0x (parallel)", ratio < 1.0, detail)


# -------------------------------------------------------------------------------- 4. audit at scale


def build_synthetic(dest: Path, n: int) -> Path:
    """A repository with n workflows (every golden's workflows in turn, renamed w0001.yml...) plus one
    golden's other files (settings, rulesets, CODEOWNERS, compliance/...)."""
    sources = sorted(GOLDEN.glob("*/.github/workflows/*.yml"))
    base = GOLDEN / "python-defaults"
    shutil.copytree(base, dest, ignore=lambda d, names: ["workflows"] if Path(d) == base / ".github" else [])
    workflows = dest / ".github" / "workflows"
    workflows.mkdir(parents=True)
    width = max(4, len(str(n)))
    for i in range(n):
        src = sources[i % len(sources)]
        text = src.read_text(encoding="utf-8")
        # Vary every file a little (no two are byte-identical) without changing what it does.
        header = f"# synthetic workflow {i + 1} of {n}, from golden/{src.parent.parent.parent.name}/{src.name}\n"
        (workflows / f"w{i + 1:0{width}d}.yml").write_text(header + text, encoding="utf-8")
    return dest


def bench_audit(tools: dict[str, str], sizes: Sequence[int], quick: bool, tmp: Path) -> None:
    audit_reps = {0: 5, 100: 5, 1000: 3, 5000: 2} if not quick else {0: 3, 100: 3, 1000: 2}
    checkov_reps = {100: 2, 1000: 1} if not quick else {100: 1, 1000: 1}
    log(f"4. audit vs zizmor vs checkov on synthetic repositories of {', '.join(map(str, sizes))} workflows "
        f"(checkov only at {', '.join(map(str, CHECKOV_SIZES))})")
    repos = {n: build_synthetic(tmp / f"synth-{n}", n) for n in (0, *sizes)}

    audit_cmd = lambda d: [*PIPEPROOF, "audit", str(d), "--format", "json"]  # noqa: E731
    zizmor_cmd = lambda d: [tools["zizmor"], "--offline", "--format", "json", str(d)]  # noqa: E731
    checkov_cmd = lambda d: [tools["checkov"], "--framework", "github_actions", "--skip-download",  # noqa: E731
                             "-o", "json", "-d", str(d)]
    audit_ok = lambda c: c in {0, 1}  # noqa: E731 - 1 = failing controls, still a complete run
    checkov_env = tool_env(CHECKOV_ENV)

    timed(audit_cmd(repos[0]), ok=audit_ok)  # warm-up
    audit_t: dict[int, float] = {}
    zizmor_t: dict[int, float] = {}
    checkov_t: dict[int, float] = {}
    for n in (0, *sizes):
        reps = audit_reps[n]
        a, z = [], []
        for i in range(reps):
            jobs = [(a, audit_cmd, audit_ok), (z, zizmor_cmd, lambda c: c in ZIZMOR_OK)]
            for sink, cmd, ok in jobs if i % 2 == 0 else reversed(jobs):
                if sink is z and n == 0:
                    continue
                sink.append(timed(cmd(repos[n]), ok=ok))
        audit_t[n] = med(a)
        if z:
            zizmor_t[n] = med(z)
        msg = f"   N={n}: audit {fmt_s(audit_t[n])}" + (f", zizmor {fmt_s(zizmor_t[n])}" if z else "") + f" ({reps} reps)"
        if n in CHECKOV_SIZES:
            c = [timed(checkov_cmd(repos[n]), ok=lambda code: code in {0, 1}, env=checkov_env) for _ in range(checkov_reps[n])]
            checkov_t[n] = med(c)
            msg += f", checkov {fmt_s(checkov_t[n])} ({checkov_reps[n]} rep{'s' if checkov_reps[n] > 1 else ''})"
        log(msg)

    largest = max(sizes)
    per_size = "; ".join(
        f"N={n}: audit {fmt_s(audit_t[n])} ({fmt_ms(audit_t[n] / n)}/file), zizmor {fmt_s(zizmor_t[n])} "
        f"({fmt_ms(zizmor_t[n] / n)}/file)" + (f", checkov {fmt_s(checkov_t[n])} ({fmt_ms(checkov_t[n] / n)}/file)"
                                              if n in checkov_t else "")
        for n in sizes
    )
    common = [per_size, f"audit of the same repository with no workflows (fixed cost): {fmt_s(audit_t[0])}"]

    r = audit_t[1000] / zizmor_t[1000]
    add("4a. audit vs zizmor --offline @1,000", f"{r:.2f}x", "<= 2x", r <= 2.0,
        [f"audit {fmt_s(audit_t[1000])}, zizmor {fmt_s(zizmor_t[1000])}",
         *(f"  at N={n}: {audit_t[n] / zizmor_t[n]:.2f}x" for n in sizes)])
    speedup = checkov_t[1000] / audit_t[1000]
    add("4b. audit speed-up vs checkov @1,000", f"{speedup:.1f}x faster", ">= 10x faster", speedup >= 10,
        [f"checkov {fmt_s(checkov_t[1000])} ({checkov_reps[1000]} rep), audit {fmt_s(audit_t[1000])}; "
         f"at N=100: {checkov_t[100] / audit_t[100]:.1f}x; checkov not run at 5,000 (it alone would take many minutes)"])
    raw = (audit_t[largest] / largest) / (audit_t[100] / 100)
    marginal = ((audit_t[largest] - audit_t[0]) / largest) / ((audit_t[100] - audit_t[0]) / 100)
    add(f"4c. audit linearity, per-file {largest:,} vs 100", f"{marginal:.2f} (raw {raw:.2f})", "~1 (0.75-1.33)",
        0.75 <= marginal <= 1.33,
        [f"per-file time = (t(N) - t(0)) / N, t(0) = audit without workflows (start-up, catalog, other files); "
         f"raw t(N)/N ratio {raw:.2f} includes the fixed cost",
         *(f"  N={n}: {fmt_ms((audit_t[n] - audit_t[0]) / n)}/file marginal, {fmt_ms(audit_t[n] / n)}/file raw"
           for n in sizes)])
    ROWS[-3].detail.append(common[0])
    ROWS[-1].detail.append(common[1])


# ------------------------------------------------------------------------------------- 5. start-up


def bench_startup(reps: int) -> None:
    log(f"5. pipeproof --help start-up ({reps} reps) vs python -c pass")
    script = which("pipeproof")
    help_cmd = [script, "--help"] if script else [*PIPEPROOF, "--help"]
    timed(help_cmd)
    timed([PY, "-c", "pass"])
    h, b = [], []
    for i in range(reps):
        pair = [(h, help_cmd), (b, [PY, "-c", "pass"])]
        for sink, cmd in pair if i % 2 == 0 else reversed(pair):
            sink.append(timed(cmd))
    hs, bs = med(h), med(b)
    add("5. pipeproof --help start-up", fmt_s(hs), "<= 0.3 s", hs <= 0.3,
        [f"`{' '.join(Path(c).name if j == 0 else c for j, c in enumerate(help_cmd))}` {fmt_s(hs)} vs "
         f"`python -c pass` {fmt_s(bs)} ({hs / bs:.1f}x the bare interpreter; medians of {reps})"])


# ------------------------------------------------------------------------------------------- report


def cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def report(tools: dict[str, str], quick: bool, elapsed: float) -> None:
    versions = {
        "pipeproof": version([*PIPEPROOF, "--version"]),
        "copier": version([tools["copier"], "--version"]),
        "zizmor": version([tools["zizmor"], "--version"]),
        "actionlint": version([tools["actionlint"], "--version"]),
        "yamllint": version([tools["yamllint"], "--version"]),
        "check-jsonschema": version([tools["check-jsonschema"], "--version"]),
        "checkov": version([tools["checkov"], "--version"]),
    }
    header = [
        f"date: {dt.datetime.now().astimezone().isoformat(timespec='seconds')}",
        f"machine: {platform.machine()} (uname -m), nproc {cpu_count()}, {platform.system()} {platform.release()}",
        f"python: {platform.python_version()} ({PY})",
        "tools: " + ", ".join(f"{k} {v}" for k, v in versions.items()),
        f"mode: {'--quick (no 5,000 size, fewer repetitions)' if quick else 'full'}; checkov at 100 and 1,000 "
        f"workflows only; benchmark wall time {elapsed:.0f} s",
    ]
    print()
    print("\n".join(header))
    print()
    widths = [max(len(r.name) for r in ROWS), max(len(r.value) for r in ROWS), max(len(r.target) for r in ROWS)]
    print(f"{'row':<{widths[0]}}  {'value':<{widths[1]}}  {'target':<{widths[2]}}  status")
    print(f"{'-' * widths[0]}  {'-' * widths[1]}  {'-' * widths[2]}  ------")
    for r in ROWS:
        print(f"{r.name:<{widths[0]}}  {r.value:<{widths[1]}}  {r.target:<{widths[2]}}  {r.status}")
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
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="skip the 5,000-workflow size and repeat less")
    args = parser.parse_args(argv)
    tools = find_tools()
    quick: bool = args.quick
    started = time.perf_counter()
    sizes = SIZES_QUICK if quick else SIZES_FULL
    with tempfile.TemporaryDirectory(prefix="pipeproof-bench-") as tmpdir:
        tmp = Path(tmpdir)
        steps: list[tuple[str, str, Callable[[], None]]] = [
            ("1. new --defaults vs copier copy", "<= 1.3x", lambda: bench_new(tools, 3 if quick else 5, tmp / "new")),
            ("2. update vs copier update", "<= 1.3x", lambda: bench_update(tools, 3 if quick else 5, tmp / "update")),
            ("3. validate vs 4 linters in sequence", "< 1.0x (parallel)", lambda: bench_validate(tools, 2 if quick else 3)),
            ("4. audit vs zizmor / checkov", "see targets", lambda: bench_audit(tools, sizes, quick, tmp / "audit")),
            ("5. pipeproof --help start-up", "<= 0.3 s", lambda: bench_startup(10 if quick else 20)),
        ]
        for name, target, step in steps:
            try:
                step()
            except (CommandFailed, OSError, subprocess.CalledProcessError) as exc:
                error_row(name, target, exc)
    report(tools, quick, time.perf_counter() - started)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
