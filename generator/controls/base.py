"""The control declaration: one class per control carries everything the tool says about it.

A control's id, title, framework references, severity, applicability, remediation and evidence drive
the template (the render context gets the ids that apply), `pipeproof audit`, CONTROLS.md and SARIF.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from jinja2 import Environment

from generator.controls.needs import Need

__all__ = [
    "Control",
    "Finding",
    "Outcome",
    "Severity",
    "all_controls",
    "applicable",
    "failed",
    "not_applicable",
    "passed",
    "unknown",
]


class Severity(enum.IntEnum):
    """How bad a failing control is; `--fail-on` compares against it."""

    LOW = 1
    MEDIUM = 2
    HIGH = 3
    CRITICAL = 4

    def __str__(self) -> str:
        return self.name.lower()


@dataclass(frozen=True)
class Finding:
    """One instance of a failure: where it is (file:line) and what is wrong there."""

    where: str
    message: str


Status = Literal["pass", "fail", "unknown", "not-applicable"]


@dataclass(frozen=True)
class Outcome:
    """What a check found: its status, a one-line reason, every instance (fail, unknown) or the evidence (pass).

    `unknown` means the files cannot decide it; the reason says what would (the live settings, `pipeproof
    protect check`, an organisation setting, a remote workflow's contents).
    """

    status: Status
    reason: str
    evidence: tuple[str, ...] = ()
    findings: tuple[Finding, ...] = ()

    @property
    def locations(self) -> tuple[str, ...]:
        return tuple(f.where for f in self.findings) or self.evidence


def passed(reason: str, *evidence: str) -> Outcome:
    return Outcome("pass", reason, tuple(dict.fromkeys(evidence)))


def _findings(reason: str, items: tuple[Finding | str, ...]) -> tuple[Finding, ...]:
    return tuple(i if isinstance(i, Finding) else Finding(i, reason) for i in items)


def failed(reason: str, *findings: Finding | str) -> Outcome:
    """A failure; each instance is a Finding, or a location that `reason` describes."""
    found = _findings(reason, findings)
    return Outcome("fail", reason, tuple(dict.fromkeys(f.where for f in found)), found)


def unknown(reason: str, *findings: Finding | str) -> Outcome:
    """The files cannot decide; `reason` says what would."""
    found = _findings(reason, findings)
    return Outcome("unknown", reason, tuple(dict.fromkeys(f.where for f in found)), found)


def not_applicable(reason: str) -> Outcome:
    return Outcome("not-applicable", reason)


_REGISTRY: dict[str, type[Control]] = {}


class Control:
    """Base of every control. Subclasses are registered by their `id` as they are defined."""

    id: ClassVar[str]
    title: ClassVar[str]
    family: ClassVar[str]
    soc2: ClassVar[tuple[str, ...]] = ()
    iso27001: ClassVar[tuple[str, ...]] = ()
    severity: ClassVar[Severity] = Severity.HIGH
    platforms: ClassVar[frozenset[str]] = frozenset({"github", "gitlab"})
    # Per platform, how the control is met there when the platform's semantics differ (its check judges that),
    # or, for a platform missing from `platforms`, why the control does not apply there and what stands in.
    platform_notes: ClassVar[Mapping[str, str]] = {}
    # The remediation, test procedure and evidence in a platform's own terms, where the plain ones (GitHub's)
    # do not fit it.
    remediations: ClassVar[Mapping[str, str]] = {}
    procedures: ClassVar[Mapping[str, str]] = {}
    evidences: ClassVar[Mapping[str, str]] = {}
    # A Jinja expression over the answers; the same text is evaluated here and inside copier.yml.
    applies: ClassVar[str] = "true"
    remediation: ClassVar[str]
    # The evidence the control leaves behind, where it is kept and for how long (CONTROLS.md). Placeholders
    # the render fills from the answers: {retention} (artifact days), {store_retention} (the object store),
    # {sarif} (code scanning or the job summary) and {sca} (dependency review or the osv-scanner gate).
    evidence: ClassVar[str] = ""
    # Per platform, the rendered files whose comments name this control.
    implemented_by: ClassVar[Mapping[str, tuple[str, ...]]] = {}
    # Controls whose failure makes this one not worth checking.
    requires: ClassVar[tuple[str, ...]] = ()
    # Finding ids of the source document's "common audit findings" this control prevents.
    prevents: ClassVar[tuple[str, ...]] = ()
    # For the auditor (CONTROLS.md): who owns the control, how often it operates, how to test it, and how to
    # pull the population to sample from (per platform: the exact command or API call).
    owner: ClassVar[str]
    frequency: ClassVar[str]
    procedure: ClassVar[str]
    population: ClassVar[Mapping[str, str]] = {}
    # What the control needs beyond the rendered files, and the fallback when the answers lack it.
    needs: ClassVar[tuple[Need, ...]] = ()

    # The check over parsed configuration: a method whose parameter names pick the fixtures it needs
    # (repo, answers, gh, protection); see generator/audit.py.
    check: ClassVar[Any]

    @classmethod
    def fix(cls, platform: str) -> str:
        """The remediation for a repository on `platform`."""
        return cls.remediations.get(platform, cls.remediation)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "id" not in cls.__dict__:  # an intermediate family base
            return
        if cls.id in _REGISTRY:
            raise TypeError(f"duplicate control id {cls.id}")
        cls.title = (cls.__doc__ or "").strip().splitlines()[0]
        _REGISTRY[cls.id] = cls


_GENERIC_EVIDENCE = {
    "{retention}": "the plan's maximum number of",
    "{store_retention}": "7 years, object-locked",
    "{sarif}": "SARIF in code scanning (or, without GitHub Code Security, the job summary)",
    "{sca}": "The dependency gate's summary in the pull request's check run, and its report as an artifact",
}


def generic_evidence(text: str) -> str:
    """The evidence text with the placeholders the render fills said in general terms, for reports made
    without the answers (SARIF rule help)."""
    for key, value in _GENERIC_EVIDENCE.items():
        text = text.replace(key, value)
    return text


def _load() -> None:
    # Importing the family modules registers their controls.
    from generator.controls import branch, deploy, evidence, gitops, hardening, scan  # noqa: F401


def all_controls() -> list[type[Control]]:
    """Every control in catalog order (whichever family module was imported first, all are loaded here)."""
    _load()
    return sorted(_REGISTRY.values(), key=lambda c: c.id)


_ENV = Environment(autoescape=False)


def applicable(answers: Mapping[str, Any]) -> list[type[Control]]:
    """The controls whose applicability expression is true for these answers."""
    platform = answers.get("platform", "github")
    return [c for c in all_controls() if platform in c.platforms and _ENV.compile_expression(c.applies)(**answers)]
