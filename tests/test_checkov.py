"""Checkov over every golden tree: no failed check except the reviewed skips, and no workflow left unscanned.

One checkov run per tree covers every framework the tree has files for (github_actions, secrets, and
terraform, kubernetes, cloudformation or dockerfile when such files exist), so the gate costs one checkov
start-up per tree; the golden trees are scanned in parallel.

The run does not pass `--quiet`: with it checkov's JSON drops `passed_checks`, and the coverage guard needs
the file of every passed check to prove each workflow was scanned. checkov silently skips a workflow that
fails its internal schema (for example `cancel-in-progress: ${{ ... }}`): it reports neither a check nor
a parsing error for it, so without the guard a broken workflow would pass the gate unscanned.

checkov comes from the test extras (its own virtualenv, see .ci/run) and must be on PATH; a missing checkov
fails the test, it is never skipped.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.helpers import GOLDEN, SCENARIOS

SKIPS_FILE = Path(__file__).parent / "checkov-skips.yml"
CHECKOV_ENV = {**os.environ, "CKV_SKIP_PACKAGE_UPDATE_CHECK": "true", "BC_SKIP_MAPPING": "TRUE"}
CHECK_ID = re.compile(r"^CKV2?_[A-Z0-9]+_[0-9]+$")
WORKFLOW_GLOBS = ("*.yml", "*.yaml")
AWS_ACCESS_KEY_CHECK = "CKV_SECRET_2"  # checkov's "AWS Access Key" secrets check
SHELL_INJECTION_CHECK = "CKV_GHA_2"  # "Ensure run commands are not vulnerable to shell injection"


# --- running checkov -------------------------------------------------------------------------------


def tool(name: str) -> str:
    path = shutil.which(name)
    assert path, f"{name} not on PATH: install the test extras"
    return path


def load_skips() -> dict[str, str]:
    skips = yaml.safe_load(SKIPS_FILE.read_text(encoding="utf-8"))
    assert isinstance(skips, dict), f"{SKIPS_FILE.name} must be a mapping check_id -> reason, got {skips!r}"
    return {str(k): str(v) for k, v in skips.items()}


def _yaml_documents(path: Path) -> Iterator[Any]:
    """Every document of a YAML or JSON file, unknown tags (CloudFormation's !Ref ...) read as null."""

    class Loader(yaml.SafeLoader):
        pass

    Loader.add_multi_constructor("!", lambda loader, suffix, node: None)
    try:
        yield from yaml.load_all(path.read_text(encoding="utf-8"), Loader=Loader)  # noqa: S506 (SafeLoader)
    except (yaml.YAMLError, UnicodeDecodeError):
        return


def _is_kubernetes(doc: Any) -> bool:
    return isinstance(doc, dict) and "apiVersion" in doc and "kind" in doc


def _is_cloudformation(doc: Any) -> bool:
    if not isinstance(doc, dict):
        return False
    if "AWSTemplateFormatVersion" in doc:
        return True
    resources = doc.get("Resources")
    return isinstance(resources, dict) and any(
        isinstance(r, dict) and str(r.get("Type", "")).startswith(("AWS::", "Custom::")) for r in resources.values()
    )


def frameworks_for(tree: Path) -> list[str]:
    """The checkov frameworks the tree has files for; secrets always (it reads every file)."""
    files = [p for p in tree.rglob("*") if p.is_file() and ".git" not in p.relative_to(tree).parts]
    found = ["secrets"]
    if workflow_files(tree):
        found.append("github_actions")
    if (tree / ".gitlab-ci.yml").is_file():
        found.append("gitlab_ci")
    if any(p.name.endswith((".tf", ".tf.json")) for p in files):
        found.append("terraform")
    docs = [d for p in files if p.suffix in (".yml", ".yaml", ".json", ".template") for d in _yaml_documents(p)]
    if any(_is_kubernetes(d) for d in docs):
        found.append("kubernetes")
    if any(_is_cloudformation(d) for d in docs):
        found.append("cloudformation")
    if any(
        p.name in ("Dockerfile", "Containerfile") or p.name.startswith("Dockerfile.") or p.suffix == ".dockerfile"
        for p in files
    ):
        found.append("dockerfile")
    return found


def workflow_files(tree: Path) -> list[str]:
    """The tree's workflow files, as checkov names them (relative, posix, no leading slash)."""
    folder = tree / ".github" / "workflows"
    return sorted({p.relative_to(tree).as_posix() for glob in WORKFLOW_GLOBS for p in folder.glob(glob) if p.is_file()})


@dataclass(frozen=True)
class Scan:
    tree: Path
    frameworks: tuple[str, ...]
    argv: tuple[str, ...]
    returncode: int
    reports: dict[str, dict[str, Any]]  # check_type -> checkov's report for that framework
    stderr: str
    raw: str

    def checks(self, kind: str, framework: str | None = None) -> list[dict[str, Any]]:
        """passed_checks / failed_checks / skipped_checks of one framework or of all."""
        return [
            check
            for name, report in self.reports.items()
            if framework in (None, name)
            for check in report["results"].get(kind) or []
        ]

    def describe(self, check: dict[str, Any]) -> str:
        lines = check.get("file_line_range") or ["?"]
        return f"{check['check_id']} {check['file_path'].lstrip('/')}:{lines[0]}: {check.get('check_name')}"


def parse_reports(data: Any) -> dict[str, dict[str, Any]]:
    """checkov's JSON: a dict for one framework, a list for several, a bare summary when nothing was found."""
    items = data if isinstance(data, list) else [data]
    reports: dict[str, dict[str, Any]] = {}
    for item in items:
        assert isinstance(item, dict), f"unexpected checkov output item: {item!r}"
        if "check_type" not in item:
            # Nothing scanned by any framework: a bare summary with no results to hide a failure in.
            assert item.get("failed", 0) == 0 and "results" not in item, f"unexpected checkov output: {item}"
            continue
        assert "results" in item, f"checkov report for {item['check_type']} has no results: {item}"
        reports[item["check_type"]] = item
    return reports


def run_checkov(tree: Path, skips: dict[str, str] | None = None) -> Scan:
    skips = load_skips() if skips is None else skips
    frameworks = frameworks_for(tree)
    argv = [
        tool("checkov"),
        "-d",
        str(tree),
        "--framework",
        *frameworks,
        "--skip-download",
        "--enable-secret-scan-all-files",
        "--compact",
        "-o",
        "json",
    ]
    if skips:
        argv += ["--skip-check", ",".join(sorted(skips))]
    result = subprocess.run(argv, env=CHECKOV_ENV, capture_output=True, text=True, timeout=600, check=False)
    # 0: no failed check; 1: failed checks. Anything else is checkov itself failing.
    tail = f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    assert result.returncode in (0, 1), f"checkov exit {result.returncode}:\n{tail}"
    try:
        data = json.loads(result.stdout)
    except json.JSONDecodeError as exc:
        raise AssertionError(f"checkov printed no JSON ({exc}):\n{tail}") from exc
    reports = parse_reports(data)
    return Scan(tree, tuple(frameworks), tuple(argv), result.returncode, reports, result.stderr, result.stdout)


def gate_failures(scan: Scan, skips: dict[str, str]) -> list[str]:
    """Failed checks that no reviewed skip covers, and parsing errors, as readable lines."""
    problems = [scan.describe(c) for c in scan.checks("failed_checks") if c["check_id"] not in skips]
    for name, report in scan.reports.items():
        problems += [f"{name}: checkov could not parse {e}" for e in report["results"].get("parsing_errors") or []]
    return problems


def unscanned_workflows(scan: Scan) -> list[str]:
    """Workflow files of the tree on which checkov's github_actions framework reported no check at all."""
    checks = scan.checks("passed_checks", "github_actions") + scan.checks("failed_checks", "github_actions")
    scanned = {_relative(scan.tree, c["file_path"]) for c in checks}
    return [wf for wf in workflow_files(scan.tree) if wf not in scanned]


def _relative(tree: Path, file_path: str) -> str:
    path = Path(file_path)
    if path.is_absolute() and path.is_relative_to(tree):
        return path.relative_to(tree).as_posix()
    return file_path.lstrip("/")


# checkov 3.3.30's GitHub Actions schema predates `concurrency.queue` (GitHub changelog 2026-05-07) and drops a
# workflow that has it without a word. checkov therefore reads a copy of each tree without that one key; a
# test below proves the copy differs from the golden tree in those lines only.
QUEUE_LINE = re.compile(r"^\s+queue: max\s*$", re.MULTILINE)


def checkov_view(tree: Path, into: Path) -> Path:
    """A copy of `tree` as checkov's schema can read it (no `queue: max` lines)."""
    view = into / tree.name
    shutil.copytree(tree, view)
    for workflow in (view / ".github" / "workflows").glob("*.yml"):
        text = workflow.read_text(encoding="utf-8")
        workflow.write_text(QUEUE_LINE.sub("", text).replace("\n\n\n", "\n\n"), encoding="utf-8")
    return view


def test_checkov_view_removes_only_the_queue_key(tmp_path: Path) -> None:
    tree = GOLDEN / "python-defaults"
    view = checkov_view(tree, tmp_path)
    for workflow in (tree / ".github" / "workflows").glob("*.yml"):
        before = [line for line in workflow.read_text(encoding="utf-8").splitlines() if not QUEUE_LINE.match(line)]
        after = (view / ".github/workflows" / workflow.name).read_text(encoding="utf-8").splitlines()
        assert [line for line in before if line.strip()] == [line for line in after if line.strip()], workflow.name
    assert QUEUE_LINE.search((tree / ".github/workflows/deploy.yml").read_text()), "the golden deploy queues"


class Scans:
    """checkov over every golden tree, run once, in parallel, the first time a test asks for one."""

    def __init__(self) -> None:
        self._scans: dict[str, Scan] | None = None

    def __getitem__(self, name: str) -> Scan:
        if self._scans is None:
            tool("checkov")  # fail with the install hint before starting any thread
            names = sorted(SCENARIOS)
            into = Path(tempfile.mkdtemp(prefix="pipeproof-checkov-"))
            views = {n: checkov_view(GOLDEN / n, into) for n in names}
            with ThreadPoolExecutor(max_workers=max(2, min(len(names), os.cpu_count() or 2))) as pool:
                self._scans = dict(zip(names, pool.map(lambda n: run_checkov(views[n]), names), strict=True))
        return self._scans[name]


@pytest.fixture(scope="module")
def golden_scans() -> Scans:
    return Scans()


# --- the reviewed skip list ------------------------------------------------------------------------


def test_skip_list_names_check_ids_with_reasons() -> None:
    text = SKIPS_FILE.read_text(encoding="utf-8")
    assert text.lstrip().startswith("#"), f"{SKIPS_FILE.name} lost its header comment (what a skip must say, review)"
    for check_id, reason in load_skips().items():
        assert CHECK_ID.match(check_id), f"{SKIPS_FILE.name}: {check_id!r} is not a checkov check id"
        assert len(reason.split()) >= 5, (
            f"{SKIPS_FILE.name}: {check_id} needs a reason why it does not apply, got {reason!r}"
        )


# --- the gate over every golden tree ---------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_golden_tree_has_no_failed_checkov_check(name: str, golden_scans: Scans) -> None:
    scan = golden_scans[name]
    skips = load_skips()
    ci = "gitlab_ci" if (scan.tree / ".gitlab-ci.yml").is_file() else "github_actions"
    assert ci in scan.frameworks and "secrets" in scan.frameworks, scan.frameworks
    problems = gate_failures(scan, skips)
    assert not problems, (
        f"checkov ({' '.join(scan.frameworks)}) fails golden/{name}; fix the template, or add a reviewed skip "
        f"with its reason to tests/{SKIPS_FILE.name}:\n" + "\n".join(problems)
    )
    assert scan.returncode == 0, f"checkov exit {scan.returncode} with no unskipped failure:\n{scan.stderr[-3000:]}"
    # Something was actually checked: a tree checkov could not read would pass with zero checks.
    assert scan.checks("passed_checks", ci), f"checkov passed no {ci} check on golden/{name}"


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_checkov_scans_every_golden_workflow(name: str, golden_scans: Scans) -> None:
    scan = golden_scans[name]
    if (scan.tree / ".gitlab-ci.yml").is_file():
        # GitLab: the one pipeline file; checkov's gitlab_ci framework must report checks on it.
        scanned = {c.get("file_path", "").lstrip("/") for c in scan.checks("passed_checks", "gitlab_ci")}
        assert ".gitlab-ci.yml" in scanned, f"checkov's gitlab_ci framework reported no check on golden/{name}"
        return
    workflows = workflow_files(scan.tree)
    assert workflows, f"golden/{name} has no .github/workflows/*.yml"
    missing = unscanned_workflows(scan)
    assert not missing, (
        f"checkov's github_actions framework reported no check on {missing} of golden/{name}: it silently "
        "drops a workflow that fails its schema (e.g. an expression where it wants a boolean)"
    )


# --- negative controls: the same gate on weakened copies -------------------------------------------


def fake_aws_access_key() -> str:
    """An AWS-shaped access key id made now (AKIA + 16 of A-Z2-7), so no scanner can have it allowlisted."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
    while True:
        key = "AKIA" + "".join(secrets.choice(alphabet) for _ in range(16))
        if not key.endswith("EXAMPLE") and len(set(key[4:])) >= 10:
            return key


def replace_once(path: Path, pattern: str, replacement: str) -> None:
    text = path.read_text(encoding="utf-8")
    new, count = re.subn(pattern, replacement, text, count=1, flags=re.MULTILINE)
    assert count == 1, f"{path}: no match for {pattern!r}; the golden changed shape, update the negative control"
    path.write_text(new, encoding="utf-8")


class Weakened:
    """A weakened copy of a golden tree and its checkov scan, run once, when a test first asks for it."""

    def __init__(self, tree: Path, key: str) -> None:
        self.tree, self.key = tree, key
        self._scan: Scan | None = None

    @property
    def scan(self) -> Scan:
        if self._scan is None:
            self._scan = run_checkov(self.tree)
        return self._scan


@pytest.fixture(scope="module")
def weakened(tmp_path_factory: pytest.TempPathFactory) -> Weakened:
    """A copy of the first golden tree with three independent weaknesses, each in its own file:

    - deploy.yml: a step that puts the pull request title into a run: script (shell injection, CKV_GHA_2);
    - scripts/deploy.sh: a planted AWS access key id;
    - pr-checks.yml: `cancel-in-progress` as an expression, which checkov's schema rejects, so checkov
      silently skips the whole workflow.

    (checkov 3.3.30 has no github_actions check for a `pull_request_target` trigger or a `uses:` on a
    mutable tag such as `@v4`; zizmor catches both in `pipeproof validate`.)
    """
    name = sorted(SCENARIOS)[0]
    tree = checkov_view(GOLDEN / name, tmp_path_factory.mktemp("weakened"))
    workflows = tree / ".github" / "workflows"
    replace_once(
        workflows / "deploy.yml",
        r"^(    steps:\n)",
        '\\1      - name: Greet the pull request\n        run: echo "${{ github.event.pull_request.title }}"\n',
    )
    key = fake_aws_access_key()
    with (tree / "scripts" / "deploy.sh").open("a", encoding="utf-8") as fh:
        fh.write(f'AWS_ACCESS_KEY_ID="{key}"\n')
    replace_once(
        workflows / "pr-checks.yml",
        r"^  cancel-in-progress: true$",
        "  cancel-in-progress: ${{ github.event_name == 'pull_request' }}",
    )
    # Each mutation still parses as YAML: checkov drops pr-checks.yml for its schema, not for bad YAML.
    for wf in workflows.glob("*.yml"):
        yaml.safe_load(wf.read_text(encoding="utf-8"))
    return Weakened(tree, key)


def test_gate_fails_on_a_shell_injection_in_a_workflow(weakened: Weakened) -> None:
    scan = weakened.scan
    problems = gate_failures(scan, load_skips())
    hits = [
        c
        for c in scan.checks("failed_checks", "github_actions")
        if c["check_id"] == SHELL_INJECTION_CHECK and c["file_path"].lstrip("/") == ".github/workflows/deploy.yml"
    ]
    assert hits, f"checkov missed the pull request title injected in deploy.yml (in {SKIPS_FILE.name}?):\n{problems}"
    assert any(scan.describe(c) in problems for c in hits), "the gate does not count the shell injection as a failure"
    assert scan.returncode == 1


def test_gate_finds_a_planted_aws_key(weakened: Weakened) -> None:
    scan = weakened.scan
    key = weakened.key
    hits = [
        c
        for c in scan.checks("failed_checks", "secrets")
        if c["check_id"] == AWS_ACCESS_KEY_CHECK and c["file_path"].lstrip("/") == "scripts/deploy.sh"
    ]
    assert hits, f"checkov's secrets framework missed the key in scripts/deploy.sh: {scan.checks('failed_checks')}"
    # The finding is this key (checkov names a secret by its SHA-1), and the report does not leak it.
    assert hashlib.sha1(key.encode()).hexdigest() in {c["resource"] for c in hits}, hits
    assert key not in scan.raw
    assert any(scan.describe(c) in gate_failures(scan, load_skips()) for c in hits)


def test_coverage_guard_catches_a_workflow_checkov_silently_skipped(weakened: Weakened) -> None:
    scan = weakened.scan
    # checkov itself says nothing about the dropped workflow: no parsing error, no failed check on it.
    dropped = ".github/workflows/pr-checks.yml"
    assert not any(c["file_path"].lstrip("/") == dropped for c in scan.checks("failed_checks"))
    assert not [e for report in scan.reports.values() for e in report["results"].get("parsing_errors") or []]
    assert unscanned_workflows(scan) == [dropped]


# --- the plumbing the gate relies on ---------------------------------------------------------------


def test_parse_reports_handles_every_checkov_output_shape() -> None:
    one = {"check_type": "github_actions", "results": {"failed_checks": []}, "summary": {"failed": 0}}
    two = {"check_type": "secrets", "results": {"failed_checks": [{"check_id": "CKV_SECRET_2"}]}, "summary": {}}
    bare = {"passed": 0, "failed": 0, "skipped": 0, "parsing_errors": 0, "resource_count": 0, "checkov_version": "3"}
    assert list(parse_reports(one)) == ["github_actions"]
    assert sorted(parse_reports([one, two])) == ["github_actions", "secrets"]
    assert parse_reports(bare) == {}
    with pytest.raises(AssertionError):
        parse_reports({**bare, "failed": 1})


def test_frameworks_follow_the_files_of_the_tree(tmp_path: Path) -> None:
    (tmp_path / ".github" / "workflows").mkdir(parents=True)
    assert frameworks_for(tmp_path) == ["secrets"]
    (tmp_path / ".github" / "workflows" / "ci.yml").write_text("on: push\n")
    (tmp_path / "main.tf").write_text('resource "aws_s3_bucket" "b" {}\n')
    (tmp_path / "deploy.yaml").write_text("apiVersion: v1\nkind: Pod\nmetadata: {name: p}\n")
    (tmp_path / "stack.yml").write_text(
        "AWSTemplateFormatVersion: '2010-09-09'\nResources:\n  B:\n    Type: AWS::S3::Bucket\n"
        "    Properties: {BucketName: !Ref Name}\n"
    )
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    assert frameworks_for(tmp_path) == [
        "secrets",
        "github_actions",
        "terraform",
        "kubernetes",
        "cloudformation",
        "dockerfile",
    ]
