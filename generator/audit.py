"""Run the control catalog against any repository: applicability, checks, prerequisites, waivers, statuses.

Statuses: pass, fail, unknown (the files cannot decide; the reason says what would), not-applicable, waived,
skipped (a prerequisite control failed) and error (the check itself broke: reported, never swallowed).
"""

from __future__ import annotations

import datetime as dt
import inspect
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jinja2 import Environment

from generator import argocd, detect
from generator.controls import Control, Severity, all_controls
from generator.controls.base import Finding, Outcome
from generator.errors import UserError
from generator.pipeline import github as github_adapter
from generator.pipeline import gitlab as gitlab_adapter
from generator.pipeline.model import Pipeline
from generator.repo import Doc, FileError, ParseError, Repo, load_yaml

WAIVER_FILE = "compliance/risk-acceptance.yml"
WAIVER_KEYS = ("control", "scope", "justification", "approver", "expires")
STATUSES = ("fail", "error", "unknown", "waived", "skipped", "pass", "not-applicable")
PROFILES = ("auto", "service", "library")


@dataclass(frozen=True)
class Waiver:
    control: str
    scope: str
    justification: str
    approver: str
    expires: dt.date
    where: str

    def covers(self, where: str) -> bool:
        """A waiver's scope is a file (optionally file#job), or `*`; it covers instances located in that file."""
        scope = self.scope.split("#", 1)[0]
        return scope in {"*", "."} or where.split(":", 1)[0] == scope


@dataclass(frozen=True)
class Result:
    control: type[Control]
    status: str
    reason: str
    evidence: tuple[str, ...] = ()
    findings: tuple[Finding, ...] = ()
    waivers: tuple[Waiver, ...] = ()

    @property
    def waiver(self) -> Waiver | None:
        return self.waivers[0] if self.waivers else None


@dataclass
class Report:
    root: Path
    answers: dict[str, Any]
    results: list[Result]
    errors: list[FileError] = field(default_factory=list)
    read: dict[str, int] = field(default_factory=dict)  # what was read: {"workflows": 3, ...}
    profile: str = ""  # what the repository does, and why (deploys / publishes)
    empty: bool = False  # nothing to judge: no CI configuration at all

    def count(self, status: str) -> int:
        return sum(r.status == status for r in self.results)

    def summary(self) -> dict[str, int]:
        return {status: self.count(status) for status in STATUSES} | {"file-errors": len(self.errors)}

    def failing(self, threshold: Severity, *, strict: bool = False) -> list[Result]:
        bad = {"fail", "error"} | ({"unknown"} if strict else set())
        return [r for r in self.results if r.status in bad and r.control.severity >= threshold]


def load_waivers(repo: Repo, known: set[str]) -> list[Waiver]:
    """The risk acceptances; a malformed file is a UserError naming the line."""
    path = repo.root / WAIVER_FILE
    if not path.is_file():
        return []
    try:
        doc = Doc(WAIVER_FILE, load_yaml(path))
    except ParseError as exc:
        raise UserError(f"{WAIVER_FILE}: {exc}") from None
    data = doc.data
    if data is None:
        return []
    if not isinstance(data, dict) or not isinstance(data.get("waivers", []), list):
        raise UserError(f"{doc.at()}: must be a mapping with a `waivers:` list")
    waivers = []
    for i, entry in enumerate(data.get("waivers") or []):
        where = doc.at("waivers", i)
        if not isinstance(entry, dict):
            raise UserError(f"{where}: a waiver must be a mapping with {', '.join(WAIVER_KEYS)}")
        missing = [k for k in WAIVER_KEYS if not entry.get(k)]
        if missing:
            raise UserError(f"{where}: waiver lacks {', '.join(missing)} (needs {', '.join(WAIVER_KEYS)})")
        unknown_keys = sorted(set(map(str, entry)) - set(WAIVER_KEYS))
        if unknown_keys:
            raise UserError(
                f"{doc.at('waivers', i, unknown_keys[0])}: unknown waiver key {unknown_keys[0]!r}; "
                f"allowed: {', '.join(WAIVER_KEYS)}"
            )
        if entry["control"] not in known:
            raise UserError(f"{doc.at('waivers', i, 'control')}: unknown control {entry['control']!r}")
        expires = entry["expires"]
        if isinstance(expires, str):
            try:
                expires = dt.date.fromisoformat(expires)
            except ValueError:
                expires = None
        if not isinstance(expires, dt.date) or isinstance(expires, dt.datetime):
            raise UserError(
                f"{doc.at('waivers', i, 'expires')}: expires must be a date YYYY-MM-DD, not {entry['expires']!r}"
            )
        waivers.append(
            Waiver(
                str(entry["control"]),
                str(entry["scope"]),
                str(entry["justification"]),
                str(entry["approver"]),
                expires,
                where,
            )
        )
    return waivers


_ENV = Environment(autoescape=False)


def _applies(control: type[Control], answers: dict[str, Any]) -> bool:
    if answers.get("platform", "github") not in control.platforms:
        return False
    return bool(_ENV.compile_expression(control.applies)(**answers))


def _git_branch(repo: Repo) -> str:
    """The default branch git knows (origin's HEAD, else the checked-out branch), else main."""
    for args in (
        ["symbolic-ref", "--short", "-q", "refs/remotes/origin/HEAD"],
        ["symbolic-ref", "--short", "-q", "HEAD"],
    ):
        try:
            out = subprocess.run(
                ["git", "-C", str(repo.root), *args], capture_output=True, text=True, timeout=10, check=False
            ).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            out = ""
        if out:
            return out.removeprefix("origin/")
    return "main"


def audit(root: Path, *, today: dt.date | None = None, profile: str = "auto", follow_links: bool = False) -> Report:
    """Check the repository at root against every control of the catalog (follow_links: see Repo)."""
    if profile not in PROFILES:
        raise UserError(f"--profile {profile!r} is not allowed: choose one of {', '.join(PROFILES)}")
    root = root.absolute()
    if not root.is_dir():
        raise UserError(f"PATH {str(root)!r} is not a directory")
    repo = Repo(root, follow_links=follow_links)
    controls = all_controls()
    waivers = load_waivers(repo, {c.id for c in controls})
    found = detect.detected(repo)
    answers = detect.answers(repo, found)
    given = repo.answers_file.data if repo.answers_file is not None and isinstance(repo.answers_file.data, dict) else {}
    rendered = "deploy_model" in given
    answers["default_branch"] = given.get("default_branch") or found.get("default_branch") or _git_branch(repo)
    builder = gitlab_adapter.build if answers.get("platform") == "gitlab" else github_adapter.build
    pipeline = builder(repo, str(answers["default_branch"]))
    deploys, publishes, why = detect.profile(pipeline)
    if rendered:
        deploys, why = True, "rendered by pipeproof with a deploy model"
    if profile != "auto":
        deploys, publishes, why = profile == "service", profile == "library", f"--profile {profile}"
    answers.setdefault("deploys", deploys)
    answers.setdefault("publishes", publishes)
    answers["deploys"], answers["publishes"] = deploys, publishes
    empty = not repo.workflows and not repo.settings and not repo.rulesets and not (root / ".gitlab-ci.yml").exists()
    today = today or dt.date.today()
    conflicted = {e.path: e.line for e in repo.errors if e.conflict}
    fixtures: dict[str, Callable[[], Any]] = {
        "repo": lambda: repo,
        "answers": lambda: answers,
        "pipeline": lambda: pipeline,
        "argocd": lambda: argocd.objects(repo),
    }
    results: dict[str, Result] = {}
    for control in controls:
        results[control.id] = _run(control, answers, fixtures, results, waivers, today, conflicted, pipeline, empty)
    return Report(root, answers, list(results.values()), list(repo.errors), dict(pipeline.read), why, empty)


def _run(
    control: type[Control],
    answers: dict[str, Any],
    fixtures: dict[str, Callable[[], Any]],
    results: dict[str, Result],
    waivers: list[Waiver],
    today: dt.date,
    conflicted: dict[str, int],
    pipeline: Pipeline,
    empty: bool,
) -> Result:
    if not _applies(control, answers):
        return Result(control, "not-applicable", f"does not apply: {control.applies}")
    if empty:
        return Result(control, "unknown", "nothing to judge: the repository has no CI configuration")
    failed_prereq = next(
        (r for r in control.requires if results.get(r) and results[r].status in {"fail", "error"}), None
    )
    if failed_prereq:
        return Result(control, "skipped", f"requires {failed_prereq}, which failed")
    params = inspect.signature(control.check).parameters
    if conflicted and _reads_conflicted(control, params, conflicted, pipeline):
        return Result(
            control,
            "unknown",
            f"depends on a file with an unresolved merge conflict: {', '.join(sorted(conflicted))}",
            findings=tuple(
                Finding(f"{path}:{line}", "unresolved merge conflict") for path, line in sorted(conflicted.items())
            ),
        )
    try:
        outcome: Outcome = control.check(**{name: fixtures[name]() for name in params})
    except Exception as exc:  # a check must never take the audit down with it, nor be swallowed
        return Result(control, "error", f"the check could not run: {type(exc).__name__}: {exc}")
    if outcome.status == "fail" and not outcome.findings:
        # Something is missing: the finding is where it belongs (the files that implement the control).
        places = [f + ":1" for f in _implementing_files(control, pipeline.platform, answers)] or ["."]
        outcome = Outcome("fail", outcome.reason, tuple(places), tuple(Finding(p, outcome.reason) for p in places))
    if outcome.status != "fail":
        return Result(control, outcome.status, outcome.reason, outcome.evidence, outcome.findings)
    return _waive(control, outcome, [w for w in waivers if w.control == control.id], today)


class _Keep(dict[str, Any]):
    """format_map that leaves unknown {placeholders} as they are."""

    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def _implementing_files(control: type[Control], platform: str, answers: Mapping[str, Any]) -> list[str]:
    """The files a control names as its implementation, placeholders filled from the answers; each once, and
    none whose name the answers cannot fill."""
    files = [f.format_map(_Keep(answers)).split("#")[0] for f in control.implemented_by.get(platform, ())]
    return [f for f in dict.fromkeys(files) if "{" not in f]


def _reads_conflicted(control: type[Control], params: Any, conflicted: dict[str, int], pipeline: Pipeline) -> bool:
    platform = pipeline.platform
    files = {f.split("#")[0] for f in control.implemented_by.get(platform, ())}
    if files & conflicted.keys():
        return True
    workflows = any(p.startswith((".github/", ".gitlab/")) for p in conflicted) or ".gitlab-ci.yml" in conflicted
    return workflows and "pipeline" in params


def _waive(control: type[Control], outcome: Outcome, waivers: list[Waiver], today: dt.date) -> Result:
    """Each instance of a failure is waived by an unexpired waiver whose scope covers it; the rest still fail."""
    findings = outcome.findings  # never empty: a failure without findings is placed on its files above
    if not waivers:
        return Result(control, "fail", outcome.reason, outcome.evidence, outcome.findings)
    live = [w for w in waivers if w.expires >= today]
    expired = [w for w in waivers if w.expires < today]
    open_findings = [f for f in findings if not any(w.covers(f.where) for w in live)]
    used = tuple(w for w in live if any(w.covers(f.where) for f in findings))
    if not open_findings:
        w = used[0]
        return Result(
            control,
            "waived",
            f"waived until {w.expires} by {w.approver}: {w.justification} (finding: {outcome.reason})",
            outcome.evidence,
            outcome.findings,
            used,
        )
    lapsed = [w for w in expired if any(w.covers(f.where) for f in open_findings)]
    reason = outcome.reason
    if lapsed:
        reason = f"waiver expired on {lapsed[0].expires}: {reason}"
    elif used:
        reason = f"{reason} ({len(findings) - len(open_findings)} of {len(findings)} instances waived)"
    extra = tuple(Finding(w.where, f"expired waiver ({w.expires})") for w in lapsed)
    return Result(control, "fail", reason, outcome.evidence, (*open_findings, *extra), used)
