"""Argo CD, platform-neutral: answer checks copier's Jinja cannot make, the policy.csv grammar, and the Argo CD
objects of any repository (AppProject, Application, argocd-rbac-cm) as the audit and `validate` see them.
"""

from __future__ import annotations

import re
import zoneinfo
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from functools import cache
from typing import Any

from generator.repo import MAX_NODES, ConflictError, Doc, FileError, Map, ParseError, Repo, conflict_line, read_text

# --- answers ---------------------------------------------------------------------------------------------

# Argo CD parses schedules with robfig/cron (minute hour day-of-month month day-of-week, names allowed for
# months and days, and the @descriptors).
_CRON_FIELDS: tuple[tuple[str, int, int, dict[str, int]], ...] = (
    ("minute", 0, 59, {}),
    ("hour", 0, 23, {}),
    ("day-of-month", 1, 31, {}),
    (
        "month",
        1,
        12,
        dict(
            zip(
                ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"],
                range(1, 13),
                strict=True,
            )
        ),
    ),
    ("day-of-week", 0, 7, {d: i for i, d in enumerate(["sun", "mon", "tue", "wed", "thu", "fri", "sat"])}),
)
_DESCRIPTORS = {"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"}


def cron_problem(text: str) -> str | None:
    """Why `text` is not a cron schedule Argo CD accepts, or None."""
    if text.strip() in _DESCRIPTORS:
        return None
    parts = text.split()
    if len(parts) != 5:
        return f"has {len(parts)} fields, not 5 (minute hour day-of-month month day-of-week)"
    for part, (name, low, high, names) in zip(parts, _CRON_FIELDS, strict=True):
        for item in part.split(","):
            base, slash, step = item.partition("/")
            if slash and not (step.isdigit() and int(step) > 0):
                return f"{name} field {part!r}: step {step!r} is not a positive number"
            if base == "*":
                continue
            bounds = base.split("-")
            if len(bounds) > 2 or not all(bounds):
                return f"{name} field {part!r} is not a number, a range, a list or a step"
            values = []
            for bound in bounds:
                value = names.get(bound.lower()) if not bound.isdigit() else int(bound)
                if value is None or not low <= value <= high:
                    return f"{name} field {part!r}: {bound!r} is outside {low}-{high}"
                values.append(value)
            if len(values) == 2 and values[0] > values[1]:
                return f"{name} field {part!r}: the range runs backwards"
    return None


_DURATION = re.compile(r"\A(?:(\d{1,4})h)?(?:(\d{1,4})m)?\Z")


def duration_problem(text: str) -> str | None:
    """Why `text` is not a window duration (hours and minutes, longer than 0 and at most a week), or None."""
    m = _DURATION.match(text)
    if not text or not m:
        return "is not a duration such as 8h or 7h30m"
    minutes = int(m[1] or 0) * 60 + int(m[2] or 0)
    if not 0 < minutes <= 7 * 24 * 60:
        return "must be longer than 0 and at most 168h"
    return None


@cache
def _zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def timezone_problem(text: str) -> str | None:
    """Why `text` is not an IANA time zone this system knows, or None."""
    if text in _zones():
        return None
    return "is not an IANA time zone (e.g. UTC, Europe/Amsterdam, America/New_York)"


# Checks pipeproof makes beyond copier.yml's validators (the answer key -> a function returning why not).
ANSWER_CHECKS: dict[str, Callable[[str], str | None]] = {
    "argocd_allow_schedule": cron_problem,
    "argocd_deny_schedule": cron_problem,
    "argocd_allow_duration": duration_problem,
    "argocd_deny_duration": duration_problem,
    "argocd_sync_timezone": timezone_problem,
}

# --- policy.csv ------------------------------------------------------------------------------------------

RESOURCES = frozenset(
    {
        "applications",
        "applicationsets",
        "clusters",
        "projects",
        "repositories",
        "accounts",
        "certificates",
        "gpgkeys",
        "logs",
        "exec",
        "extensions",
    }
)
EFFECTS = frozenset({"allow", "deny"})


@dataclass(frozen=True)
class Policy:
    """A `p` line: subject may (or may not) do action on resource/object."""

    line: int
    subject: str
    resource: str
    action: str
    object: str
    effect: str


@dataclass(frozen=True)
class Grouping:
    """A `g` line: subject (a user or SSO group) has role."""

    line: int
    subject: str
    role: str


@dataclass(frozen=True)
class PolicyFile:
    """policy.csv parsed: its p and g lines, and every line that is not well-formed."""

    policies: tuple[Policy, ...] = ()
    groupings: tuple[Grouping, ...] = ()
    errors: tuple[tuple[int, str], ...] = ()

    def roles_of(self, subject: str) -> set[str]:
        """Every role `subject` holds, directly or through roles that hold roles."""
        roles, todo = {subject}, [subject]
        while todo:
            current = todo.pop()
            for g in self.groupings:
                if g.subject == current and g.role not in roles:
                    roles.add(g.role)
                    todo.append(g.role)
        return roles


def parse_policy(text: str, first_line: int = 1) -> PolicyFile:
    """Parse policy.csv (Casbin CSV: comma-separated, `#` comments); `first_line` is the file line of line 1."""
    policies: list[Policy] = []
    groupings: list[Grouping] = []
    errors: list[tuple[int, str]] = []
    for number, raw in enumerate(text.splitlines(), first_line):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        cells = [c.strip() for c in line.split(",")]
        kind = cells[0]
        if kind == "p":
            if len(cells) != 6 or not all(cells):
                errors.append(
                    (
                        number,
                        "a p line has 6 non-empty fields (p, subject, resource, action, object, effect), "
                        f"got {len(cells)}",
                    )
                )
                continue
            _, subject, resource, action, obj, effect = cells
            if resource not in RESOURCES:
                errors.append((number, f"unknown resource {resource!r} (allowed: {', '.join(sorted(RESOURCES))})"))
            elif effect not in EFFECTS:
                errors.append((number, f"effect {effect!r} must be allow or deny"))
            else:
                policies.append(Policy(number, subject, resource, action, obj, effect))
        elif kind == "g":
            if len(cells) != 3 or not all(cells):
                errors.append((number, f"a g line has 3 non-empty fields (g, subject, role), got {len(cells)}"))
                continue
            groupings.append(Grouping(number, cells[1], cells[2]))
        else:
            errors.append((number, f"a line starts with p or g, not {kind!r}"))
    return PolicyFile(tuple(policies), tuple(groupings), tuple(errors))


def _action_covers(action: str, wanted: str) -> bool:
    # Argo CD 3.0: `update`/`delete` cover sub-resources only as `update/*`; `*` covers everything.
    return action == "*" or fnmatchcase(wanted, action)


def grants(policy: PolicyFile, subject: str, resource: str, action: str, obj: str) -> list[Policy]:
    """The allow lines that let `subject` (through its roles) do `action` on `obj`, unless a deny wins."""
    roles = policy.roles_of(subject)
    matching = [
        p
        for p in policy.policies
        if p.subject in roles
        and p.resource in {resource, "*"}
        and _action_covers(p.action, action)
        and fnmatchcase(obj, p.object)
    ]
    if any(p.effect == "deny" for p in matching):
        return []
    return [p for p in matching if p.effect == "allow"]


# --- objects in a repository ----------------------------------------------------------------------------

ARGO_API = re.compile(r"\Aargoproj\.io/v1alpha1\Z")
_MAYBE_ARGO = re.compile(rb"argoproj\.io/|argocd-rbac-cm|argocd-notifications-cm")


@dataclass(frozen=True)
class Obj:
    """One Argo CD object (or one of its ConfigMaps) from a YAML file: where it is and what it says."""

    doc: Doc  # the file, for line numbers: at(...) resolves inside this document
    index: int  # the document's position in a multi-document file
    kind: str
    name: str
    data: Map

    def at(self, *keys: Any) -> str:
        node, line = self.data, self.data.line
        for key in keys:
            if isinstance(node, dict) and key in node:
                line, node = getattr(node, "key_lines", {}).get(key, line), node[key]
            elif isinstance(node, list) and isinstance(key, int) and 0 <= key < len(node):
                line, node = getattr(node, "item_lines", [line] * len(node))[key], node[key]
            else:
                break
        return f"{self.doc.path}:{line}"

    @property
    def spec(self) -> dict[str, Any]:
        spec = self.data.get("spec")
        return spec if isinstance(spec, dict) else {}


@dataclass
class ArgoCD:
    """Every Argo CD object found in a repository."""

    projects: list[Obj] = field(default_factory=list)
    applications: list[Obj] = field(default_factory=list)
    rbac: list[Obj] = field(default_factory=list)
    notifications: list[Obj] = field(default_factory=list)
    files: list[str] = field(default_factory=list)

    @property
    def found(self) -> bool:
        return bool(self.projects or self.applications or self.rbac)

    def project(self, name: str) -> Obj | None:
        return next((p for p in self.projects if p.name == name), None)


def _load_all(path: Any) -> list[Any]:
    import yaml

    from generator.repo import _expanded_size, _LineLoader

    text = read_text(path)
    if (line := conflict_line(text)) is not None:
        raise ConflictError(line)
    try:
        docs = list(yaml.load_all(text, Loader=_LineLoader))  # noqa: S506 - a SafeLoader subclass
        if _expanded_size(docs, MAX_NODES) > MAX_NODES:
            raise ParseError(f"YAML expands to more than {MAX_NODES} nodes through aliases (an alias bomb?)")
        return docs
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ParseError(f"invalid YAML: {where}{problem}") from None
    except RecursionError:
        raise ParseError("invalid YAML: nested too deeply") from None


def objects(repo: Repo) -> ArgoCD:
    """The Argo CD objects of every YAML file that mentions argoproj.io or an Argo CD ConfigMap; a file that
    does and cannot be parsed is a per-file error of the repository. Read once per Repo."""
    cached = repo.__dict__.get("_argocd")
    if isinstance(cached, ArgoCD):
        return cached
    found = ArgoCD()
    repo.__dict__["_argocd"] = found
    for path in repo.files("**/*.yaml", "**/*.yml"):
        rel = path.relative_to(repo.root).as_posix()
        if rel.startswith((".github/", ".gitlab/")) or rel == ".gitlab-ci.yml":
            continue
        try:
            if path.stat().st_size > 5 * 1024 * 1024 or not _MAYBE_ARGO.search(path.read_bytes()):
                continue
            docs = _load_all(path)
        except ConflictError as exc:
            repo.errors.append(FileError(rel, str(exc), exc.line, conflict=True))
            continue
        except ParseError as exc:
            repo.errors.append(FileError(rel, str(exc)))
            continue
        except OSError as exc:
            repo.errors.append(FileError(rel, f"cannot read: {exc.strerror or exc}"))
            continue
        doc = Doc(rel, docs[0] if docs else None)
        for index, data in enumerate(docs):
            for item in _items(data):
                obj = _classify(doc, index, item)
                if obj is None:
                    continue
                found.files.append(rel)
                {
                    "AppProject": found.projects,
                    "Application": found.applications,
                    "argocd-rbac-cm": found.rbac,
                    "argocd-notifications-cm": found.notifications,
                }[obj.kind].append(obj)
    found.files = sorted(set(found.files))
    return found


def _items(data: Any) -> Iterator[Map]:
    if isinstance(data, Map) and data.get("kind") == "List" and isinstance(data.get("items"), list):
        yield from (i for i in data["items"] if isinstance(i, Map))
    elif isinstance(data, Map):
        yield data


def _classify(doc: Doc, index: int, data: Map) -> Obj | None:
    kind = data.get("kind")
    meta = as_map(data.get("metadata"))
    name = str(meta.get("name", ""))
    if kind in {"AppProject", "Application"} and ARGO_API.match(str(data.get("apiVersion", ""))):
        return Obj(doc, index, str(kind), name, data)
    if kind == "ConfigMap" and name in {"argocd-rbac-cm", "argocd-notifications-cm"}:
        return Obj(doc, index, name, name, data)
    return None


def as_map(value: Any) -> dict[Any, Any]:
    """A mapping from YAML, or an empty one for anything else."""
    return value if isinstance(value, dict) else {}


def is_production(name: str) -> bool:
    """Whether an AppProject or Application name says it is production (prod, production, *-prod, prod-*)."""
    return bool(re.search(r"(?:\A|[-_.])prod(?:uction)?(?:\Z|[-_.])", name.lower()))


def rbac_policy(obj: Obj) -> tuple[PolicyFile, str]:
    """policy.csv (and every policy.*.csv overlay key) of an argocd-rbac-cm, with its policy.default."""
    data = as_map(obj.data.get("data"))
    texts = []
    for key in sorted(k for k in data if str(k) == "policy.csv" or re.fullmatch(r"policy\.[\w.-]+\.csv", str(k))):
        start = getattr(data, "text_lines", {}).get(key, obj.data.line)
        texts.append(parse_policy(str(data[key] or ""), start))
    merged = PolicyFile(
        tuple(p for t in texts for p in t.policies),
        tuple(g for t in texts for g in t.groupings),
        tuple(e for t in texts for e in t.errors),
    )
    return merged, str(data.get("policy.default", "") or "")
