"""A semantic check of `.gitlab-ci.yml` that the JSON schema cannot make: every `stage:`, `extends:`, `needs:`
and `dependencies:` names a stage or job that exists (GitLab refuses to create the pipeline otherwise), and
`needs:` never points at a later stage.

The configuration is the main file merged with its local `include:`s; a remote, project, template or component
include cannot be read here, so names it could define are not reported missing (GitLab would know them).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

MAIN = ".gitlab-ci.yml"
KEYWORDS = frozenset(
    {"default", "include", "stages", "variables", "workflow", "image", "services", "cache", "before_script"}
    | {"after_script", "types", "spec"}
)
DEFAULT_STAGES = (".pre", "build", "test", "deploy", ".post")
MAX_EXTENDS = 11  # GitLab's limit on extends depth


@dataclass(frozen=True)
class Problem:
    """One broken reference: the file and line of the job, and what is wrong."""

    path: str
    line: int
    rule: str
    message: str


class _Loader(yaml.SafeLoader):
    """Safe YAML that keeps the line of each mapping and reads GitLab's `!reference [job, key]` as a list."""


def _reference(loader: yaml.SafeLoader, node: yaml.Node) -> list[Any]:
    return list(loader.construct_sequence(node))  # type: ignore[arg-type]


def _mapping(loader: yaml.SafeLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    data = _Lined(loader.construct_mapping(node, deep=True))
    data.line = node.start_mark.line + 1
    return data


class _Lined(dict[Any, Any]):
    line = 1


_Loader.add_constructor("!reference", _reference)
_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)


def _load(path: Path) -> Any:
    return yaml.load(path.read_text(encoding="utf-8"), Loader=_Loader)  # noqa: S506 - a SafeLoader subclass


def _local_includes(doc: Mapping[str, Any]) -> Iterator[tuple[str | None, bool]]:
    """(local path, None) for each local include; (None, True) for one that cannot be read here."""
    spec = doc.get("include")
    items = spec if isinstance(spec, list) else [spec] if spec is not None else []
    for item in items:
        if isinstance(item, str):
            yield (item, False) if "://" not in item else (None, True)
        elif isinstance(item, Mapping) and isinstance(item.get("local"), str):
            yield item["local"], False
        else:
            yield None, True


def check(root: Path) -> list[Problem]:
    """Every broken stage/extends/needs/dependencies reference in root's .gitlab-ci.yml."""
    main = root / MAIN
    if not main.is_file():
        return []
    problems: list[Problem] = []
    files: list[tuple[str, Mapping[str, Any]]] = []
    opaque = False
    queue = [MAIN]
    seen: set[str] = set()
    while queue:
        rel = queue.pop(0)
        if rel in seen:
            continue
        seen.add(rel)
        try:
            doc = _load(root / rel)
        except (OSError, yaml.YAMLError) as exc:
            problems.append(Problem(rel, 1, "include", f"cannot read {rel}: {str(exc).splitlines()[0]}"))
            continue
        if not isinstance(doc, Mapping):
            continue
        files.append((rel, doc))
        for local, unreadable in _local_includes(doc):
            if unreadable:
                opaque = True
            elif local is not None:
                target = local.lstrip("/")
                if "*" in target:
                    queue.extend(sorted(p.relative_to(root).as_posix() for p in root.glob(target)))
                elif (root / target).is_file():
                    queue.append(target)
                else:
                    problems.append(
                        Problem(rel, getattr(doc, "line", 1), "include", f"local include {local} does not exist")
                    )
    # Later files lose to the main file (GitLab merges includes under the including file).
    entries: dict[str, tuple[str, Any]] = {}
    stages: list[str] | None = None
    for rel, doc in reversed(files):
        for key, value in doc.items():
            if key == "stages" and isinstance(value, list):
                stages = [str(s) for s in value]
            elif key not in KEYWORDS and isinstance(value, Mapping):
                entries[str(key)] = (rel, value)
    known_stages = [".pre", *[s for s in (stages or DEFAULT_STAGES) if s not in (".pre", ".post")], ".post"]
    jobs = {name: e for name, e in entries.items() if not name.startswith(".")}

    def where(name: str) -> tuple[str, int]:
        rel, data = entries[name]
        return rel, getattr(data, "line", 1)

    def resolved(name: str, chain: tuple[str, ...] = ()) -> Mapping[str, Any]:
        """The job with its extends: applied (later parents win, the job over all), reporting broken chains."""
        data = entries[name][1]
        parents = data.get("extends")
        merged: dict[str, Any] = {}
        for parent in parents if isinstance(parents, list) else [parents] if parents else []:
            parent = str(parent)
            if parent in chain or parent == name:
                problems.append(Problem(*where(name), "extends", f"job {name} extends {parent} in a cycle"))
                continue
            if parent not in entries:
                if not opaque:
                    problems.append(
                        Problem(*where(name), "extends", f"job {name} extends {parent}, which is not defined")
                    )
                continue
            if len(chain) >= MAX_EXTENDS:
                problems.append(
                    Problem(*where(name), "extends", f"job {name}: extends nests deeper than {MAX_EXTENDS}")
                )
                continue
            merged.update(resolved(parent, (*chain, name)))
        merged.update({k: v for k, v in data.items() if k != "extends"})
        return merged

    for name in sorted(jobs):
        rel, line = where(name)
        data = resolved(name)
        stage = str(data.get("stage", "test"))
        # A job with no script of its own under an unreadable include overrides that include's job of the same
        # name (Security/SAST's semgrep-sast, say), whose stage only GitLab can see.
        override = opaque and "stage" not in data and not ({"script", "trigger", "run"} & set(data))
        if stage not in known_stages and not override:
            problems.append(
                Problem(rel, line, "stage", f"job {name} is in stage {stage}, which `stages:` does not list")
            )
        needs = data.get("needs")
        for need in needs if isinstance(needs, list) else []:
            if isinstance(need, Mapping) and ("project" in need or "pipeline" in need):
                continue  # another project's or a parent pipeline's job
            wanted: Any = need.get("job") if isinstance(need, Mapping) else need
            optional = isinstance(need, Mapping) and need.get("optional") is True
            if not isinstance(wanted, str):
                continue
            if wanted not in jobs:
                if not optional and not opaque:
                    problems.append(Problem(rel, line, "needs", f"job {name} needs {wanted}, which is not defined"))
                continue
            their = str(resolved(wanted).get("stage", "test"))
            if (
                their in known_stages
                and stage in known_stages
                and known_stages.index(their) > known_stages.index(stage)
            ):
                problems.append(
                    Problem(
                        rel,
                        line,
                        "needs",
                        f"job {name} (stage {stage}) needs {wanted}, which is in the later stage {their}",
                    )
                )
        deps = data.get("dependencies")
        for dep in deps if isinstance(deps, list) else []:
            if isinstance(dep, str) and dep not in jobs and not opaque:
                problems.append(
                    Problem(rel, line, "dependencies", f"job {name} depends on {dep}, which is not defined")
                )
    return sorted(set(problems), key=lambda p: (p.path, p.line, p.message))
