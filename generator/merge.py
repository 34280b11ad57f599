"""Merging pipeproof's files into a team's own, as text, so every byte that was there stays.

`.pre-commit-config.yaml` gains the hooks it lacks at the end of its `repos:` list (its repos, hooks, comments
and order untouched); CODEOWNERS and `.gitignore` gain the lines they lack at their end. A file that cannot be
merged this way safely is not merged: MergeError, and retrofit proposes pipeproof's version beside it.
"""

from __future__ import annotations

from typing import Any

import yaml

from generator.errors import UserError

HEADER = "Added by pipeproof retrofit"


class MergeError(Exception):
    """The file cannot be merged as text without risk; the message says why."""


def _text(data: bytes, path: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UserError(f"{path}: not UTF-8 ({exc.reason} at byte {exc.start}); pipeproof never rewrites it") from None


def _newline(text: str) -> str:
    return "\r\n" if "\r\n" in text else "\n"


def _with(text: str, lines: list[str]) -> str:
    """Lines in the file's own newline style."""
    nl = _newline(text)
    return "".join(line + nl for line in lines)


def precommit(
    existing: bytes, template: bytes, path: str = ".pre-commit-config.yaml"
) -> tuple[bytes, list[str]] | None:
    """The existing config plus the template's repos whose hooks it lacks, and their hook ids; None when it
    lacks none. UserError when the existing file is not valid YAML (never fixed silently)."""
    text = _text(existing, path)
    try:
        data = yaml.safe_load(text)
        root = yaml.compose(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise UserError(
            f"{path}{where}: not valid YAML ({problem}); fix it first: pipeproof never rewrites a file it cannot read"
        ) from None
    if not isinstance(data, dict) or not isinstance(data.get("repos"), list) or not isinstance(root, yaml.MappingNode):
        raise MergeError("it has no `repos:` list")
    present = {
        h.get("id") for r in data["repos"] if isinstance(r, dict) for h in r.get("hooks") or [] if isinstance(h, dict)
    }
    wanted_text = template.decode("utf-8")
    wanted_node = yaml.compose(wanted_text)
    wanted_data = yaml.safe_load(wanted_text)
    assert isinstance(wanted_node, yaml.MappingNode)  # pipeproof's own template
    wanted_seq = next(v for k, v in wanted_node.value if k.value == "repos")
    wanted_lines = wanted_text.splitlines()
    blocks: list[str] = []
    added_repos: list[Any] = []
    ids: list[str] = []
    for item, entry in zip(wanted_seq.value, wanted_data["repos"], strict=True):
        hook_ids = [h["id"] for h in entry.get("hooks", [])]
        if any(h in present for h in hook_ids):
            continue
        dash = wanted_seq.start_mark.column
        end = _content_end(wanted_lines, item, dash)
        blocks += [line[dash:] for line in wanted_lines[item.start_mark.line : end]]
        added_repos.append(entry)
        ids += hook_ids
    if not added_repos:
        return None
    repos = next(v for k, v in root.value if isinstance(k, yaml.ScalarNode) and k.value == "repos")
    if not isinstance(repos, yaml.SequenceNode) or repos.flow_style or not repos.value:
        raise MergeError("its `repos:` list is empty or in flow style ([...])")
    parts = text.splitlines(keepends=True)
    at = _content_end([p.rstrip("\r\n") for p in parts], repos.value[-1], repos.start_mark.column)
    indent = " " * repos.start_mark.column
    insert = [f"{indent}# {HEADER}: {', '.join(ids)} (see compliance/CONTROLS.md)"]
    insert += [indent + line if line.strip() else line for line in blocks]
    head, tail = "".join(parts[:at]), "".join(parts[at:])
    if head and not head.endswith(("\n", "\r")):
        head += _newline(text)
    merged = head + _with(text, insert) + tail
    check = yaml.safe_load(merged)
    if check != {**data, "repos": [*data["repos"], *added_repos]}:
        raise MergeError("appending to its `repos:` list as text would change what else it says")
    return merged.encode("utf-8"), ids


def _content_end(lines: list[str], node: yaml.Node, dash: int) -> int:
    """The line after a sequence item's last line of content (trailing blank lines and comments that belong to
    what follows are not part of it)."""
    end = node.end_mark.line + (1 if node.end_mark.column else 0)
    while end > node.start_mark.line + 1:
        line = lines[end - 1] if end - 1 < len(lines) else ""
        stripped = line.strip()
        if stripped and not (stripped.startswith("#") and len(line) - len(line.lstrip()) <= dash):
            break
        end -= 1
    return end


def lines(existing: bytes, template: bytes, path: str) -> tuple[bytes, list[str]] | None:
    """The existing file plus the template's entries it lacks (CODEOWNERS rules, .gitignore patterns), appended
    under a comment; and those entries. None when it lacks none."""
    text = _text(existing, path)
    have = {" ".join(line.split()) for line in text.splitlines()}
    missing = [
        line
        for line in template.decode("utf-8").splitlines()
        if line.strip() and not line.lstrip().startswith("#") and " ".join(line.split()) not in have
    ]
    if not missing:
        return None
    nl = _newline(text)
    head = text if not text or text.endswith(("\n", "\r")) else text + nl
    block = [f"# {HEADER}: entries pipeproof's controls need (see compliance/CONTROLS.md)", *missing]
    return (head + (nl if head else "") + _with(text, block)).encode("utf-8"), missing
