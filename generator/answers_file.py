"""pipeproof's answers file in a project: which file it is, what it records, and whether this pipeproof can read it.

`new` writes `.copier-answers.yml`, as copier does. `retrofit` writes `.pipeproof-answers.yml` when another
template already owns `.copier-answers.yml`, so both templates keep updating. `update`, `check-update` and
`audit` look for pipeproof's own name first.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from packaging.version import Version

from generator import __version__, releases, source
from generator.errors import UserError

OWN = ".pipeproof-answers.yml"
COPIER = ".copier-answers.yml"
NAMES = (OWN, COPIER)
# Questions every pipeproof template version has asked; another template's answers lack them.
_SIGNATURE = {"project_name", "platform", "language"}


@dataclass(frozen=True)
class Recorded:
    """An answers file: its name relative to the project, and its content."""

    name: str
    data: dict[str, Any]

    @property
    def src(self) -> str | None:
        value = self.data.get("_src_path")
        return value if isinstance(value, str) else None

    @property
    def commit(self) -> str | None:
        value = self.data.get("_commit")
        return str(value) if value is not None else None

    @property
    def version(self) -> Version | None:
        return releases.parse(self.commit)

    @property
    def answers(self) -> dict[str, Any]:
        return {k: v for k, v in self.data.items() if not str(k).startswith("_")}


def is_pipeproof(data: object) -> bool:
    """Whether answers come from pipeproof's template (its canonical URL, a fork or a local clone of it)."""
    return isinstance(data, dict) and (source.is_canonical(data.get("_src_path")) or set(data) >= _SIGNATURE)


def load(path: Path) -> dict[str, Any]:
    """An answers file as a mapping; UserError naming the file and line when it is not one."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: cannot read it ({getattr(exc, 'strerror', None) or exc})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}" if mark is not None else ""
        raise UserError(f"{path}{where}: not valid YAML ({getattr(exc, 'problem', None) or exc})") from None
    if not isinstance(data, dict):
        raise UserError(f"{path}: must be a mapping of answers, as copier writes it")
    return data


def find(root: Path) -> Recorded | None:
    """pipeproof's answers file in the project at root, if any."""
    for name in NAMES:
        path = root / name
        if path.is_file() or path.is_symlink():
            data = load(path)
            if name == OWN or is_pipeproof(data):
                return Recorded(name, data)
    return None


def foreign(root: Path) -> bool:
    """Whether `.copier-answers.yml` belongs to another copier template."""
    path = root / COPIER
    return (path.is_file() or path.is_symlink()) and not is_pipeproof(load(path))


def check_version(recorded: Recorded) -> None:
    """Refuse answers rendered by a newer pipeproof template than this pipeproof: it would judge and update the
    project against weaker, older defaults."""
    if not source.is_canonical(recorded.src) or recorded.version is None:
        return
    if recorded.version > Version(__version__):
        raise UserError(
            f"{recorded.name} was rendered by pipeproof template {recorded.commit} (_commit), newer than this "
            f"pipeproof {__version__}: upgrade pipeproof to {recorded.version} or newer "
            f"(pip install --upgrade 'pipeproof>={recorded.version}') and run it again"
        )


def check_tree(root: Path) -> None:
    """check_version for the project at root; a malformed answers file is left to the caller's own reporting."""
    try:
        recorded = find(root)
    except UserError:
        return
    if recorded is not None:
        check_version(recorded)
