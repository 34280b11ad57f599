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
    for rel, text, data in _workflows(root):
        for local in _local_uses(data):
            target = root / local
            if ".." in local.split("/") or (target / "action.yml").is_file() or (target / "action.yaml").is_file():
                continue
            if local.endswith((".yml", ".yaml")) and target.is_file():
                continue
            line = next((i for i, x in enumerate(text.splitlines(), 1) if local in x), 1)
            found.setdefault((rel, local), Missing(rel, line, local))
    for rel, text, commands in _sources(root):
        for command in commands:
            for m in _CALL.finditer(command):
                script = m["path"].removeprefix("./")
                if ".." in script.split("/") or (root / script).is_file():
                    continue
                line = next((i for i, x in enumerate(text.splitlines(), 1) if script in x), 1)
                found.setdefault((rel, script), Missing(rel, line, script))
    return sorted(found.values(), key=lambda m: (m.path, m.line, m.script))


def _sources(root: Path) -> Iterator[tuple[str, str, list[str]]]:
    """(file, its text, the shell commands it runs) for each CI file that can be read."""
    files = sorted(root.glob(".github/workflows/*.y*ml")) + sorted(root.glob(".github/actions/**/action.y*ml"))
    files += sorted(root.glob("action.y*ml"))
    gitlab = [root / ".gitlab-ci.yml"] if (root / ".gitlab-ci.yml").is_file() else []
    gitlab += _gitlab_includes(root, gitlab)
    for path in files + gitlab:
        try:
            text = path.read_text(encoding="utf-8")
            data = yaml.safe_load(text)
        except (OSError, UnicodeDecodeError, yaml.YAMLError):
            continue  # the linters report an unreadable file
        commands = list(_gitlab_commands(data)) if path in gitlab else list(_runs(data))
        yield path.relative_to(root).as_posix(), text, commands


def _workflows(root: Path) -> Iterator[tuple[str, str, Any]]:
    files = sorted(root.glob(".github/workflows/*.y*ml")) + sorted(root.glob(".github/actions/**/action.y*ml"))
    for path in files + sorted(root.glob("action.y*ml")):
        try:
            text = path.read_text(encoding="utf-8")
            yield path.relative_to(root).as_posix(), text, yaml.safe_load(text)
        except (OSError, UnicodeDecodeError, yaml.YAMLError):
            continue


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


def _gitlab_includes(root: Path, main: list[Path]) -> list[Path]:
    if not main:
        return []
    try:
        data = yaml.safe_load(main[0].read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return []
    include = data.get("include") if isinstance(data, dict) else None
    items = include if isinstance(include, list) else [include] if include else []
    locals_ = [i if isinstance(i, str) else i.get("local") for i in items if isinstance(i, (str, dict))]
    return [
        root / str(p).lstrip("/") for p in locals_ if p and "*" not in str(p) and (root / str(p).lstrip("/")).is_file()
    ]


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
