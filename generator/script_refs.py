"""Scripts of the repository that the pipeline runs and that do not exist.

A workflow step or a GitLab job that calls `.github/scripts/x.sh`, `.gitlab/scripts/x.sh` or `scripts/x.sh`
fails at run time when the file is missing (renamed, or left out of a render); no linter looks at that. This
reads every `run:` of the workflows and composite actions and every script line of `.gitlab-ci.yml` and its
local includes, and reports each repository script named at the start of a command that is not a file, and
each local action or reusable workflow (`uses: ./x`, `uses: $/x`) that is not in the tree.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

# A repository script at the start of a command (after `bash`/`sh`/`.`/`source`, or KEY=value assignments).
_CALL = re.compile(
    r"(?:^|[;&|(]\s*|\b(?:bash|sh|source|\.)\s+|[A-Za-z_][A-Za-z0-9_]*=\S*\s+)"
    r"(?P<path>(?:\./)?(?:\.github/|\.gitlab/|scripts/)[\w./-]*\.(?:sh|bash))\b",
    re.MULTILINE,
)
_SCRIPT_KEYS = ("before_script", "script", "after_script")


@dataclass(frozen=True)
class Missing:
    path: str  # the file that calls the script
    line: int
    script: str


def check(root: Path) -> list[Missing]:
    """Every call of a repository script, local action or local reusable workflow that is not under root."""
    found: dict[tuple[str, str], Missing] = {}

    def missing(rel: str, text: str, target: str) -> None:
        line = next((i for i, x in enumerate(text.splitlines(), 1) if target in x), 1)
        found.setdefault((rel, target), Missing(rel, line, target))

    for rel, text, data, gitlab in _sources(root):
        if not gitlab:
            for local in _local_uses(data):
                target = root / local
                if ".." in local.split("/") or any((target / f).is_file() for f in ("action.yml", "action.yaml")):
                    continue
                if not (local.endswith((".yml", ".yaml")) and target.is_file()):
                    missing(rel, text, local)
        for command in _gitlab_commands(data) if gitlab else _runs(data):
            for m in _CALL.finditer(command):
                script = m["path"].removeprefix("./")
                if ".." not in script.split("/") and not (root / script).is_file():
                    missing(rel, text, script)
    return sorted(found.values(), key=lambda m: (m.path, m.line, m.script))


def _sources(root: Path) -> Iterator[tuple[str, str, Any, bool]]:
    """(file, its text, its data, whether it is GitLab CI) for each CI file that can be read, each read once."""
    from generator import gitlab_lint

    github = sorted(root.glob(".github/workflows/*.y*ml")) + sorted(root.glob(".github/actions/**/action.y*ml"))
    github += sorted(root.glob("action.y*ml"))
    pending = [root / gitlab_lint.MAIN] if (root / gitlab_lint.MAIN).is_file() else []
    gitlab: list[Path] = []
    while pending:  # the main file, then its local includes (GitLab's loader: `!reference` tags read)
        path = pending.pop(0)
        if path in gitlab:
            continue
        gitlab.append(path)
        try:
            data = gitlab_lint._load(path)
        except (OSError, UnicodeDecodeError, yaml.YAMLError):
            continue
        if isinstance(data, dict):
            for local, _remote in gitlab_lint._local_includes(data):
                target = root / local.lstrip("/") if local and "*" not in local else None
                if target is not None and target.is_file():
                    pending.append(target)
    for path in github + gitlab:
        try:
            text = path.read_text(encoding="utf-8")
            data = gitlab_lint._load(path) if path in gitlab else yaml.safe_load(text)
        except (OSError, UnicodeDecodeError, yaml.YAMLError):
            continue  # the linters report an unreadable file
        yield path.relative_to(root).as_posix(), text, data, path in gitlab


def _runs(data: Any) -> Iterator[str]:
    """Every `run:` string anywhere in a workflow or action."""
    if isinstance(data, dict):
        for key, value in data.items():
            if key == "run" and isinstance(value, str):
                yield value
            else:
                yield from _runs(value)
    elif isinstance(data, list):
        for item in data:
            yield from _runs(item)


def _gitlab_commands(data: Any) -> Iterator[str]:
    """The script lines of every job (and of `default:`) of a GitLab CI file."""
    if not isinstance(data, dict):
        return
    for job in data.values():
        if not isinstance(job, dict):
            continue
        for key in _SCRIPT_KEYS:
            value = job.get(key)
            for item in value if isinstance(value, list) else [value]:
                if isinstance(item, str):
                    yield item


def _local_uses(data: Any) -> Iterator[str]:
    """The repository paths of `uses: ./x` and `uses: $/x` (GitHub's self-repository syntax)."""
    if isinstance(data, dict):
        for key, value in data.items():
            if key == "uses" and isinstance(value, str) and value.startswith(("./", "$/")):
                yield value[2:].split("@", 1)[0].rstrip("/")
            else:
                yield from _local_uses(value)
    elif isinstance(data, list):
        for item in data:
            yield from _local_uses(item)
