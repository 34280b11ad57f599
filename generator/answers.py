"""The typed view of the answers. copier.yml is the source: its questions, choices, defaults and validators.

pipeproof validates every answer here, before anything is written, with the same Jinja validators copier
runs, so `pipeproof new` and plain `copier copy` accept exactly the same answers.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path, PurePath
from typing import Any

import yaml
from jinja2.sandbox import SandboxedEnvironment

from generator.errors import UserError, show

MAX_TEXT = 1000  # characters; no legitimate answer comes close
MAX_DATA_FILE = 1 << 20  # bytes


@dataclass(frozen=True)
class Question:
    """One question of copier.yml."""

    key: str
    type: str
    help: str
    default: Any
    choices: tuple[tuple[str, Any], ...] = ()  # (label, value)
    multiselect: bool = False
    when: Any = True
    validator: str = ""

    @property
    def values(self) -> list[Any]:
        return [value for _, value in self.choices]


@dataclass(frozen=True)
class Template:
    """What pipeproof needs from copier.yml: the questions in order, the computed keys and Jinja options."""

    root: Path
    questions: tuple[Question, ...]
    computed: Mapping[str, Any]
    envops: Mapping[str, Any] = field(default_factory=dict)

    def question(self, key: str) -> Question:
        for q in self.questions:
            if q.key == key:
                return q
        raise KeyError(key)

    @property
    def keys(self) -> list[str]:
        return [q.key for q in self.questions]


class _IncludeLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """copier.yml's loader: `!include path` pulls in more YAML documents from the template root."""


def _load_copier_yml(root: Path) -> dict[str, Any]:
    def include(loader: yaml.Loader, node: yaml.Node) -> list[Any]:
        docs: list[Any] = []
        for path in sorted(root.glob(str(loader.construct_scalar(node)))):  # type: ignore[arg-type]
            docs.extend(yaml.load_all(path.read_text(encoding="utf-8"), Loader=_IncludeLoader))
        return docs

    _IncludeLoader.add_constructor("!include", include)
    merged: dict[str, Any] = {}
    for doc in yaml.load_all((root / "copier.yml").read_text(encoding="utf-8"), Loader=_IncludeLoader):
        for part in doc if isinstance(doc, list) else [doc]:
            merged.update(part or {})
    return merged


@cache
def load_template(root: Path) -> Template:
    data = _load_copier_yml(root)
    questions: list[Question] = []
    computed: dict[str, Any] = {}
    for key, spec in data.items():
        if key.startswith("_"):
            continue
        if spec.get("when") is False:
            computed[key] = spec.get("default")
            continue
        raw_choices = spec.get("choices") or ()
        choices = tuple(raw_choices.items() if isinstance(raw_choices, dict) else ((str(c), c) for c in raw_choices))
        questions.append(
            Question(
                key=key,
                type=spec.get("type", "str"),
                help=spec.get("help", key),
                default=spec.get("default"),
                choices=choices,
                multiselect=bool(spec.get("multiselect")),
                when=spec.get("when", True),
                validator=spec.get("validator", ""),
            )
        )
    return Template(root=root, questions=tuple(questions), computed=computed, envops=data.get("_envops", {}))


@cache
def _jinja(envops: tuple[tuple[str, Any], ...]) -> SandboxedEnvironment:
    # copier loads the Ansible filters (regex_search, regex_replace, basename) by default.
    return SandboxedEnvironment(extensions=["jinja2_ansible_filters.AnsibleCoreFiltersExtension"], **dict(envops))


def _render(template: Template, text: str, context: Mapping[str, Any]) -> str:
    env = _jinja(tuple(sorted(template.envops.items())))
    return env.from_string(text).render(**context).strip()


def _truthy(rendered: str) -> bool:
    return rendered.strip().lower() not in {"", "false", "no", "off", "0", "n", "none", "null"}


# Computed keys that are plain data or are computed from other computed keys; everything else with a string
# default is a Jinja expression over the answers (e.g. approval_mode), rendered by `derived`.
_DATA_KEYS = frozenset({"pins", "catalog", "controls", "needs_met", "pipeproof"})


def derived(template: Template, answers: Mapping[str, Any]) -> dict[str, Any]:
    """The computed keys that depend on the answers (copier renders them the same way), as typed values.

    Plain Jinja (no copier extensions), so `pipeproof audit` can use it where only PyYAML and Jinja2 are
    installed (the GitHub Action).
    """
    from jinja2 import Environment, Undefined

    env = Environment(autoescape=False, undefined=Undefined, **dict(template.envops))
    values: dict[str, Any] = {}
    for key, default in template.computed.items():
        if key in _DATA_KEYS or not isinstance(default, str):
            continue
        values[key] = yaml.safe_load(env.from_string(default).render(**{**answers, **values}).strip())
    for key, default in template.computed.items():
        if isinstance(default, bool):
            values[key] = default
    return values


def is_asked(template: Template, question: Question, answers: Mapping[str, Any]) -> bool:
    """Whether copier would ask this question given the answers so far (its `when:`)."""
    if isinstance(question.when, bool):
        return question.when
    return _truthy(_render(template, str(question.when), answers))


def default_for(template: Template, question: Question, answers: Mapping[str, Any]) -> Any:
    """The question's default, rendered with the answers so far, as a typed value."""
    default = question.default
    if isinstance(default, str):
        default = _render(template, default, answers)
        if question.multiselect or question.type in {"yaml", "json"}:
            return yaml.safe_load(default)
    return cast(question, default)


def cast(question: Question, value: Any) -> Any:
    """Turn a value from --data, a data file or a prompt into the question's type, or explain why not."""
    key = question.key
    if question.multiselect:
        if isinstance(value, str):
            value = _parse_yaml_value(key, value)
        if value is None:
            return []
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise UserError(
                f"answer {key!r} = {show(value)} is not allowed: give a list such as "
                f"'{key}=[{', '.join(map(str, question.values[:2]))}]' (YAML flow form); "
                f"choose from {', '.join(map(str, question.values))}"
            )
        return value
    if question.type == "bool":
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in {"true", "yes", "y", "on", "1"}:
            return True
        if text in {"false", "no", "n", "off", "0"}:
            return False
        raise UserError(f"answer {key!r} = {show(value)} is not allowed: give true or false")
    if question.type == "int":
        if isinstance(value, bool):
            raise UserError(f"answer {key!r} = {show(value)} is not allowed: give an integer")
        try:
            return int(str(value).strip(), 10) if not isinstance(value, int) else value
        except ValueError:
            raise UserError(f"answer {key!r} = {show(value)} is not allowed: give an integer") from None
    if not isinstance(value, str):
        raise UserError(f"answer {key!r} = {show(value)} is not allowed: give a text value")
    return value


def _parse_yaml_value(key: str, text: str) -> Any:
    try:
        return yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - no aliases, no duplicate keys
    except yaml.YAMLError as exc:
        raise UserError(f"answer {key!r} = {show(text)} is not valid YAML: {exc}".splitlines()[0]) from None


def check(template: Template, question: Question, value: Any, answers: Mapping[str, Any]) -> None:
    """Raise UserError unless `value` is allowed for `question` (choices and copier.yml's validator)."""
    key = question.key
    for text in value if isinstance(value, list) else [value]:
        if isinstance(text, str) and len(text) > MAX_TEXT:
            raise UserError(f"answer {key!r} = {show(text)} is not allowed: at most {MAX_TEXT} characters")
    if question.choices:
        allowed = question.values
        bad = [v for v in (value if question.multiselect else [value]) if v not in allowed]
        if bad:
            raise UserError(
                f"answer {key!r} = {show(bad[0])} is not allowed: choose "
                f"{'any' if question.multiselect else 'one'} of {', '.join(map(str, allowed))}"
            )
    if question.validator:
        message = _render(template, question.validator, {**answers, key: value})
        if message:
            raise UserError(f"answer {key!r} = {show(value)} is not allowed: {' '.join(message.split())}")
    # Checks Jinja cannot make (a time zone known to zoneinfo, cron fields in range); copier.yml checks the shape.
    from generator.argocd import ANSWER_CHECKS

    if key in ANSWER_CHECKS and isinstance(value, str) and (problem := ANSWER_CHECKS[key](value)):
        raise UserError(f"answer {key!r} = {show(value)} is not allowed: {problem}")


Prompt = Callable[[Question, Any, Mapping[str, Any]], Any]


def resolve(
    template: Template,
    given: Mapping[str, Any],
    dst_path: Path,
    prompt: Prompt | None = None,
    suggested: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Answer every question in copier.yml order: given values, else the prompt, else the default (a
    suggested value, such as what retrofit detected in the repository, replaces copier.yml's default).

    Every answer is cast and validated; the first bad one raises UserError.
    """
    unknown = [k for k in given if k not in template.keys]
    if unknown:
        key = unknown[0]
        what = "is computed by the template and cannot be set" if key in template.computed else "is not a question"
        raise UserError(f"answer {key!r} {what}; the questions are: {', '.join(template.keys)}")
    context: dict[str, Any] = {"_copier_conf": {"dst_path": PurePath(dst_path)}}
    answers: dict[str, Any] = {}
    for question in template.questions:
        scope = {**context, **answers}
        if not is_asked(template, question, scope):
            continue
        if question.key in given:
            value = cast(question, given[question.key])
        else:
            if suggested is not None and question.key in suggested:
                default = suggested[question.key]
            else:
                default = default_for(template, question, scope)
            value = cast(question, prompt(question, default, scope)) if prompt else default
        check(template, question, value, scope)
        answers[question.key] = value
    return answers


# --- --data and --data-file ------------------------------------------------------------------------


def parse_data_args(items: Sequence[str]) -> dict[str, str]:
    """`--data KEY=VALUE` (repeatable), as copier takes it; values are cast per question later."""
    data: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UserError(f"--data {show(item)} is not allowed: write KEY=VALUE, e.g. --data language=go")
        data[key.strip()] = value
    return data


class _StrictLoader(yaml.SafeLoader):
    """Safe YAML that refuses duplicate keys and aliases (no billion-laughs expansion)."""

    def compose_node(self, parent: yaml.Node | None, index: object) -> yaml.Node | None:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()  # type: ignore[no-untyped-call]
            raise yaml.constructor.ConstructorError(
                None, None, "aliases (*name) are not allowed in a data file", event.start_mark
            )
        return super().compose_node(parent, index)  # type: ignore[arg-type]

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def load_data_file(path: Path) -> dict[str, Any]:
    """Answers from a YAML file (copier's --data-file): a mapping of question keys to values."""
    try:
        size = os.stat(path).st_size
        if size > MAX_DATA_FILE:
            raise UserError(f"--data-file {path}: {size} bytes is too large (at most {MAX_DATA_FILE} bytes)")
        text = path.read_bytes().decode("utf-8")
    except UserError:
        raise
    except UnicodeDecodeError as exc:
        raise UserError(f"--data-file {path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise UserError(f"--data-file {path}: cannot read it ({exc.strerror or exc})") from None
    try:
        data = yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise UserError(f"--data-file {path}{where}: {problem}") from None
    if data is None:
        return {}
    if not isinstance(data, dict) or not all(isinstance(k, str) for k in data):
        raise UserError(f"--data-file {path}: must be a mapping of question keys to answers")
    return data
