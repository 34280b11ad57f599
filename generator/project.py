"""pipeproof's own identity (canonical repository, action name), read from generator/data/project.yml."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import yaml

DATA = Path(__file__).resolve().parent / "data" / "project.yml"


@cache
def _identity() -> dict[str, Any]:
    data = yaml.safe_load(DATA.read_text(encoding="utf-8"))
    default: dict[str, Any] = data["pipeproof"]["default"]
    return default


def repository() -> str:
    """The canonical template repository URL (https)."""
    return str(_identity()["repository"])


def action() -> str:
    """The repository as a GitHub Action reference, owner/name."""
    return str(_identity()["action"])
