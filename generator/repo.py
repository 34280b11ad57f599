"""A repository as the audit sees it: parsed configuration with line numbers, and answers (given or detected).

Parsing is defensive: any file may be malformed, not UTF-8, huge, an alias bomb or nested 10,000 deep. Each
such file becomes a per-file error and the audit goes on.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Any

import yaml

MAX_FILE = 5 * 1024 * 1024  # bytes; CI configuration is never this large
MAX_NODES = 1_000_000  # expanded YAML nodes: an alias bomb expands far past this

_Loader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml: fast, depth-limited


class Map(dict[Any, Any]):
    """A YAML mapping that remembers the line of each key and where each text value starts (1-based)."""

    line: int = 0
    key_lines: dict[Any, int]
    text_lines: dict[Any, int]  # a `key: |` block's text starts on the next line, `key: text` on the same one
    file: str  # set by the GitLab adapter: the file the mapping came from (includes are merged)
    key_files: dict[Any, str]  # set by the GitLab adapter: the file each key came from


class Seq(list[Any]):
    """A YAML sequence that remembers the line of each item (1-based)."""

    line: int = 0
    item_lines: list[int]
    file: str  # set by the GitLab adapter
    item_files: list[str]  # set by the GitLab adapter where `!reference` spliced items of another file in


class _LineLoader(_Loader):  # type: ignore[misc, valid-type]
    pass


def _map(loader: yaml.SafeLoader, node: yaml.MappingNode) -> Iterator[Map]:
    result = Map()
    result.line = node.start_mark.line + 1
    result.key_lines = {}
    result.text_lines = {}
    yield result
    loader.flatten_mapping(node)
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if isinstance(key, (list, dict)):
            key = str(key)
        result[key] = loader.construct_object(value_node, deep=True)
        result.key_lines[key] = key_node.start_mark.line + 1
        if isinstance(value_node, yaml.ScalarNode):
            result.text_lines[key] = value_node.start_mark.line + (2 if value_node.style in ("|", ">") else 1)


def _seq(loader: yaml.SafeLoader, node: yaml.SequenceNode) -> Iterator[Seq]:
    result = Seq()
    result.line = node.start_mark.line + 1
    result.item_lines = [n.start_mark.line + 1 for n in node.value]
    yield result
    result.extend(loader.construct_object(n, deep=True) for n in node.value)


_LineLoader.add_constructor("tag:yaml.org,2002:map", _map)
_LineLoader.add_constructor("tag:yaml.org,2002:seq", _seq)


class Reference(Seq):
    """GitLab's `!reference [job, key, ...]` tag: the path of the value it stands for."""


def _reference(loader: yaml.SafeLoader, node: yaml.Node) -> Reference:
    result = Reference()
    result.line = node.start_mark.line + 1
    if isinstance(node, yaml.SequenceNode):
        result.item_lines = [n.start_mark.line + 1 for n in node.value]
        result.extend(str(loader.construct_object(n, deep=True)) for n in node.value)
    else:
        result.item_lines = []
    return result


class _GitLabLoader(_LineLoader):
    pass


# `!reference` is GitLab's own tag; any other unknown tag is still an error (safe loading).
_GitLabLoader.add_constructor("!reference", _reference)


class ParseError(Exception):
    """A file the audit could not read; reported as a per-file error finding."""


def _expanded_size(value: Any, limit: int) -> int:
    """Nodes the value would have with every alias copied out; stops counting past `limit`."""
    memo: dict[int, int] = {}

    def size(v: Any) -> int:
        if not isinstance(v, (list, dict)):
            return 1
        key = id(v)
        if key in memo:
            return memo[key]
        memo[key] = limit  # a cycle counts as too big
        children = v.values() if isinstance(v, dict) else v
        total = 1
        for child in children:
            total += size(child)
            if total > limit:
                break
        memo[key] = total
        return total

    return size(value)


def read_text(path: Path) -> str:
    size = path.stat().st_size
    if size > MAX_FILE:
        raise ParseError(f"{size} bytes is larger than the {MAX_FILE} bytes a CI configuration file may have")
    try:
        return path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ParseError(f"not UTF-8 ({exc.reason} at byte {exc.start})") from None


_CONFLICT = re.compile(r"^(<{7}|={7}|>{7})(?: |$)", re.MULTILINE)


def conflict_line(text: str) -> int | None:
    """The first line of an unresolved merge-conflict marker (what `copier update` leaves), or None."""
    m = _CONFLICT.search(text)
    return text.count("\n", 0, m.start()) + 1 if m else None


class ConflictError(ParseError):
    """A file with merge-conflict markers: nothing in it can be judged until the conflict is resolved."""

    def __init__(self, line: int) -> None:
        super().__init__(f"unresolved merge conflict (marker at line {line}): resolve it, then audit again")
        self.line = line


def load_yaml(path: Path, loader: type[yaml.SafeLoader] = _LineLoader) -> Any:
    """Parse one YAML file with line numbers, or raise ParseError saying why not."""
    return load_yaml_text(read_text(path), loader)


def load_yaml_text(text: str, loader: type[yaml.SafeLoader] = _LineLoader) -> Any:
    """Parse YAML text with line numbers, or raise ParseError saying why not."""
    if (line := conflict_line(text)) is not None:
        raise ConflictError(line)
    try:
        data = yaml.load(text, Loader=loader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ParseError(f"invalid YAML: {where}{problem}") from None
    except RecursionError:
        raise ParseError("invalid YAML: nested too deeply") from None
    if _expanded_size(data, MAX_NODES) > MAX_NODES:
        raise ParseError(f"YAML expands to more than {MAX_NODES} nodes through aliases (an alias bomb?)")
    return data


@dataclass
class Doc:
    """One parsed configuration file."""

    path: str  # relative to the repository root, POSIX form
    data: Any

    def line(self, *keys: Any) -> int:
        """The line of a nested key path (as far as it exists), 1 when unknown."""
        node, line = self.data, getattr(self.data, "line", 1)
        for key in keys:
            if isinstance(node, Map) and key in node:
                line, node = node.key_lines.get(key, line), node[key]
            elif isinstance(node, Seq) and isinstance(key, int) and 0 <= key < len(node):
                line, node = node.item_lines[key], node[key]
            else:
                break
        return line

    def at(self, *keys: Any) -> str:
        return f"{self.path}:{self.line(*keys)}"


@dataclass(frozen=True)
class FileError:
    path: str
    message: str
    line: int = 1
    conflict: bool = False  # an unresolved merge conflict: the controls reading this file are unknown


@dataclass
class Repo:
    """Lazily parsed configuration of the repository at `root`; every loader is cached."""

    root: Path
    errors: list[FileError] = field(default_factory=list)
    # Follow symlinked folders and files out of the root: only for retrofit's overlay (the repository as a plan
    # leaves it, made of links to the real one), never for a repository as found.
    follow_links: bool = False
    _texts: dict[tuple[str, int], str | None] = field(default_factory=dict, repr=False)
    _gitlab: dict[str, Doc | None] = field(default_factory=dict, repr=False)

    def _rel(self, path: Path) -> str:
        return path.relative_to(self.root).as_posix()

    def _load(self, path: Path, loader: Any = load_yaml) -> Doc | None:
        try:
            return Doc(self._rel(path), loader(path))
        except ConflictError as exc:
            self.errors.append(FileError(self._rel(path), str(exc), exc.line, conflict=True))
        except ParseError as exc:
            self.errors.append(FileError(self._rel(path), str(exc)))
        except OSError as exc:
            self.errors.append(FileError(self._rel(path), f"cannot read: {exc.strerror or exc}"))
        return None

    def _first(self, *candidates: str, loader: Any = load_yaml) -> Doc | None:
        for rel in candidates:
            path = self.root / rel
            if path.is_file():
                return self._load(path, loader)
        return None

    def _glob(self, *patterns: str) -> list[Path]:
        return sorted({p for pattern in patterns for p in self.root.glob(pattern) if p.is_file()})

    @cached_property
    def workflows(self) -> list[Doc]:
        docs = (self._load(p) for p in self._glob(".github/workflows/*.yml", ".github/workflows/*.yaml"))
        return [d for d in docs if d is not None and isinstance(d.data, dict)]

    @cached_property
    def actions(self) -> list[Doc]:
        docs = (self._load(p) for p in self._glob(".github/actions/*/action.yml", ".github/actions/*/action.yaml"))
        return [d for d in docs if d is not None and isinstance(d.data, dict)]

    @cached_property
    def settings(self) -> Doc | None:
        return self._first(".github/settings.yml", ".github/settings.yaml")

    @cached_property
    def rulesets(self) -> list[Doc]:
        docs = (self._load(p, _load_json) for p in self._glob(".github/rulesets/*.json"))
        return [d for d in docs if d is not None and isinstance(d.data, dict)]

    @cached_property
    def dependabot(self) -> Doc | None:
        return self._first(".github/dependabot.yml", ".github/dependabot.yaml")

    @cached_property
    def precommit(self) -> Doc | None:
        return self._first(".pre-commit-config.yaml", ".pre-commit-config.yml")

    @cached_property
    def gitleaks(self) -> Doc | None:
        return self._first(".gitleaks.toml", loader=_load_toml)

    @cached_property
    def codeowners(self) -> Doc | None:
        return self._first(".github/CODEOWNERS", "CODEOWNERS", "docs/CODEOWNERS", loader=_load_codeowners)

    @cached_property
    def gitlab_codeowners(self) -> Doc | None:
        """GitLab uses the first of CODEOWNERS, docs/CODEOWNERS, .gitlab/CODEOWNERS (ee/lib/gitlab/code_owners.rb)."""
        return self._first("CODEOWNERS", "docs/CODEOWNERS", ".gitlab/CODEOWNERS", loader=_load_gitlab_codeowners)

    def gitlab_ci(self, rel: str) -> Doc | None:
        """A GitLab CI file (`.gitlab-ci.yml` or a local include), `!reference` tags kept; read once."""
        if rel not in self._gitlab:
            path = self.root / rel
            inside = self.follow_links or path.resolve().is_relative_to(self.root.resolve())
            doc = self._load(path, load_gitlab_yaml) if inside and path.is_file() else None
            self._gitlab[rel] = doc if doc is not None and isinstance(doc.data, dict) else None
        return self._gitlab[rel]

    def json_doc(self, rel: str) -> Doc | None:
        """A JSON file (a settings payload) with line numbers, or None when absent or unreadable."""
        return self._first(rel, loader=_load_json)

    @cached_property
    def answers_file(self) -> Doc | None:
        from generator.answers_file import NAMES

        return self._first(*NAMES)

    @cached_property
    def all_files(self) -> tuple[str, ...]:
        """Every file (POSIX path relative to root), walked once, outside .git and dependency folders."""
        return walk(self.root, follow_links=self.follow_links)

    def files(self, *patterns: str) -> Iterator[Path]:
        """Repository files matching any glob (`**/` matches any depth, including none)."""
        if not patterns:
            return
        match = re.compile("|".join(f"(?:{_glob_regex(p).pattern})" for p in patterns)).match
        for rel in self.all_files:
            if match(rel):
                yield self.root / rel

    def text(self, rel: str, limit: int = MAX_FILE) -> str | None:
        """A repository file's text (a script a step runs), or None when absent, outside the root or unreadable.
        Read once: many steps run the same script."""
        if (rel, limit) not in self._texts:
            self._texts[rel, limit] = self._read_text(rel, limit)
        return self._texts[rel, limit]

    def _read_text(self, rel: str, limit: int) -> str | None:
        path = (self.root / rel).resolve()
        inside = self.follow_links or path.is_relative_to(self.root.resolve())
        if not inside or not path.is_file():
            return None
        try:
            if path.stat().st_size > limit:
                return None
            return path.read_bytes().decode("utf-8", "replace")
        except OSError:
            return None


SKIP_DIRS = frozenset({".git", "node_modules", ".venv", "venv", "vendor", ".terraform", "__pycache__", ".tox"})


def walk(root: Path, *, follow_links: bool = False) -> tuple[str, ...]:
    """Every file under root (sorted POSIX paths relative to it), outside .git and dependency folders;
    through symlinked folders too with follow_links (each real folder once)."""
    found: list[str] = []
    seen: set[str] = set()
    for folder, dirs, names in os.walk(root, followlinks=follow_links):
        if follow_links:
            real = os.path.realpath(folder)
            if real in seen:
                dirs[:] = []
                continue
            seen.add(real)
        dirs[:] = [d for d in dirs if d not in SKIP_DIRS and not d.startswith(".venv")]
        rel = os.path.relpath(folder, root)
        prefix = "" if rel == "." else rel.replace(os.sep, "/") + "/"
        found.extend(prefix + name for name in names)
    return tuple(sorted(found))


@lru_cache(maxsize=256)
def _glob_regex(pattern: str) -> re.Pattern[str]:
    out = ""
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out += "(?:.*/)?"
            i += 3
        elif pattern.startswith("**", i):
            out += ".*"
            i += 2
        elif pattern[i] == "*":
            out += "[^/]*"
            i += 1
        elif pattern[i] == "?":
            out += "[^/]"
            i += 1
        else:
            out += re.escape(pattern[i])
            i += 1
    return re.compile(out + r"\Z")


_SPEC_END = re.compile(r"^---[ \t]*$", re.MULTILINE)


def load_gitlab_yaml(path: Path) -> Any:
    """A GitLab CI file. An includable file may start with a `spec:` header document (inputs) before `---`: the
    configuration is the document after it (the header's lines are blanked so line numbers stay true)."""
    text = read_text(path)
    m = _SPEC_END.search(text)
    if m and re.match(r"\A(?:\s*#[^\n]*\n|\s*\n)*spec:", text):
        head = text[: m.end()]
        return load_yaml_text(("\n" * head.count("\n")) + text[m.end() :], _GitLabLoader)
    return load_yaml(path, _GitLabLoader)


def _load_json(path: Path) -> Any:
    # JSON is YAML; the YAML loader gives the same line numbers and limits.
    return load_yaml(path)


def _load_toml(path: Path) -> Any:
    try:
        return tomllib.loads(read_text(path))
    except tomllib.TOMLDecodeError as exc:
        raise ParseError(f"invalid TOML: {exc}") from None


_SECTION = re.compile(r"^\s*\^?\[[^\]]+\](?:\[\d+\])?\s*(.*?)\s*$")


def _load_gitlab_codeowners(path: Path) -> list[tuple[int, str, list[str]]]:
    """GitLab's CODEOWNERS: `[Section][N] @owners` headers whose owners a path line without owners inherits."""
    rules = []
    default: list[str] = []
    for number, line in enumerate(read_text(path).splitlines(), 1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if m := _SECTION.match(line):
            default = [o for o in m[1].split() if not o.startswith("#")]
            continue
        words = stripped.split("#", 1)[0].split() if not stripped.startswith("\\#") else stripped.split()
        if not words:
            continue
        rules.append((number, words[0], words[1:] or list(default)))
    return rules


_OWNER_LINE = re.compile(r"^\s*([^#\s]\S*)\s+(.+?)\s*$")


def _load_codeowners(path: Path) -> list[tuple[int, str, list[str]]]:
    """(line, pattern, owners) for every rule in a CODEOWNERS file."""
    rules = []
    for number, line in enumerate(read_text(path).splitlines(), 1):
        if m := _OWNER_LINE.match(line):
            owners = [o for o in m[2].split() if not o.startswith("#")]
            rules.append((number, m[1], owners))
    return rules
