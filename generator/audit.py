"""Run the control catalog against any repository: applicability, checks, prerequisites and waivers."""

from __future__ import annotations

import datetime as dt
import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jinja2 import Environment

from generator import detect
from generator.controls import Control, Severity, all_controls
from generator.controls.github import GitHub, Protection
from generator.errors import UserError
from generator.repo import Doc, FileError, ParseError, Repo, load_yaml

WAIVER_FILE = "compliance/risk-acceptance.yml"
WAIVER_KEYS = ("control", "scope", "justification", "approver", "expires")
STATUSES = ("fail", "error", "waived", "skipped", "pass", "not-applicable")


@dataclass(frozen=True)
class Waiver:
    control: str
    scope: str
    justification: str
    approver: str
    expires: dt.date
    where: str

    def covers(self, evidence: tuple[str, ...]) -> bool:
        """A waiver's scope is a file (optionally file#job); it covers findings located in that file."""
        scope = self.scope.split("#", 1)[0]
        return scope in {"*", "."} or any(e.split(":", 1)[0] == scope for e in evidence)


@dataclass(frozen=True)
class Result:
    control: type[Control]
    status: str
    reason: str
    evidence: tuple[str, ...] = ()
    waiver: Waiver | None = None


@dataclass
class Report:
    root: Path
    answers: dict[str, Any]
    results: list[Result]
    errors: list[FileError] = field(default_factory=list)

    def count(self, status: str) -> int:
        return sum(r.status == status for r in self.results)

    def summary(self) -> dict[str, int]:
        return {status: self.count(status) for status in STATUSES} | {"file-errors": len(self.errors)}

    def failing(self, threshold: Severity) -> list[Result]:
        return [r for r in self.results if r.status in {"fail", "error"} and r.control.severity >= threshold]


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
        unknown = sorted(set(map(str, entry)) - set(WAIVER_KEYS))
        if unknown:
            raise UserError(
                f"{doc.at('waivers', i, unknown[0])}: unknown waiver key {unknown[0]!r}; "
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


def audit(root: Path, *, today: dt.date | None = None) -> Report:
    """Check the repository at root against every control of the catalog."""
    root = root.absolute()
    if not root.is_dir():
        raise UserError(f"PATH {str(root)!r} is not a directory")
    repo = Repo(root)
    controls = all_controls()
    waivers = load_waivers(repo, {c.id for c in controls})
    answers = detect.answers(repo)
    today = today or dt.date.today()
    cache: dict[str, Any] = {}
    fixtures: dict[str, Callable[[], Any]] = {
        "repo": lambda: repo,
        "answers": lambda: answers,
        "gh": lambda: GitHub(repo),
        "protection": lambda: Protection.of(repo, str(answers.get("default_branch", "main"))),
    }

    def fixture(name: str) -> Any:
        if name not in cache:
            cache[name] = fixtures[name]()
        return cache[name]

    results: dict[str, Result] = {}
    for control in controls:
        if not _applies(control, answers):
            results[control.id] = Result(control, "not-applicable", f"does not apply: {control.applies}")
            continue
        failed_prereq = next(
            (r for r in control.requires if results.get(r) and results[r].status in {"fail", "error"}), None
        )
        if failed_prereq:
            results[control.id] = Result(control, "skipped", f"requires {failed_prereq}, which failed")
            continue
        try:
            params = inspect.signature(control.check).parameters
            outcome = control.check(**{name: fixture(name) for name in params})
        except Exception as exc:  # a check must never take the audit down with it
            results[control.id] = Result(control, "error", f"the check could not run: {type(exc).__name__}: {exc}")
            continue
        result = Result(control, outcome.status, outcome.reason, outcome.evidence)
        if outcome.status == "fail":
            # A finding without a location is located in the files that implement the control.
            located = outcome.evidence or tuple(
                f.split("#")[0] + ":1" for f in control.implemented_by.get(str(answers.get("platform")), ())
            )
            for waiver in waivers:
                if waiver.control == control.id and waiver.covers(located):
                    if waiver.expires >= today:
                        result = Result(
                            control,
                            "waived",
                            f"waived until {waiver.expires} by {waiver.approver}: "
                            f"{waiver.justification} (finding: {outcome.reason})",
                            outcome.evidence,
                            waiver,
                        )
                    else:
                        result = Result(
                            control,
                            "fail",
                            f"waiver expired on {waiver.expires}: {outcome.reason}",
                            (*outcome.evidence, waiver.where),
                            waiver,
                        )
                    break
        results[control.id] = result
    return Report(root, answers, list(results.values()), list(repo.errors))
