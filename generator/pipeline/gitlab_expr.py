"""GitLab CI/CD variable expressions (`rules:if`, `only:variables`), evaluated with three-valued logic.

The grammar GitLab documents: `$VAR` (true when set and not empty), `==` / `!=` against a string, `null` or
another variable, `=~` / `!~` against a `/regex/flags` (or a variable holding one), `&&` binding tighter than
`||`, `!` and parentheses. A variable the pipeline context does not know (a project or group CI/CD variable,
the commit message, the MR's labels) is UNKNOWN, and so is whatever depends on it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

Truth = bool | None  # None: the files cannot decide


class Unknown:
    """The value of a variable only the run knows."""

    def __repr__(self) -> str:
        return "UNKNOWN"


UNKNOWN = Unknown()


class ExpressionError(ValueError):
    """An expression GitLab would reject."""


_TOKEN = re.compile(
    r"""\s*(?:
    (?P<var>\$\{?[A-Za-z_][A-Za-z0-9_]*\}?)
    |(?P<str>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
    |(?P<regex>/(?:[^/\\]|\\.)*/[a-z]*)
    |(?P<op>==|!=|=~|!~|&&|\|\||!|\(|\))
    |(?P<null>null\b)
    )""",
    re.VERBOSE,
)


@dataclass(frozen=True)
class _Tok:
    kind: str
    text: str


def _tokens(source: str) -> list[_Tok]:
    out: list[_Tok] = []
    pos = 0
    while pos < len(source):
        if source[pos:].strip() == "":
            break
        m = _TOKEN.match(source, pos)
        if m is None or m.end() == pos:
            raise ExpressionError(f"cannot read {source[pos:]!r}")
        kind = m.lastgroup or ""
        out.append(_Tok(kind, m[kind]))
        pos = m.end()
    return out


def _regex(literal: str) -> re.Pattern[str] | None:
    body, _, flags = literal[1:].rpartition("/")
    try:
        return re.compile(body, re.IGNORECASE if "i" in flags else 0)
    except re.error:
        return None  # RE2 syntax Python does not read: undecidable here


class _Parser:
    def __init__(self, tokens: list[_Tok], variables: Mapping[str, Any]) -> None:
        self.toks = tokens
        self.i = 0
        self.vars = variables

    def peek(self) -> _Tok | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def take(self) -> _Tok:
        tok = self.peek()
        if tok is None:
            raise ExpressionError("unexpected end of expression")
        self.i += 1
        return tok

    def parse(self) -> Truth:
        value = self.or_()
        if self.peek() is not None:
            raise ExpressionError(f"unexpected {self.peek().text!r}")  # type: ignore[union-attr]
        return value

    def or_(self) -> Truth:
        value = self.and_()
        while (tok := self.peek()) is not None and tok.text == "||":
            self.take()
            right = self.and_()
            value = True if value is True or right is True else (False if value is False and right is False else None)
        return value

    def and_(self) -> Truth:
        value = self.unary()
        while (tok := self.peek()) is not None and tok.text == "&&":
            self.take()
            right = self.unary()
            value = False if value is False or right is False else (True if value and right else None)
        return value

    def unary(self) -> Truth:
        tok = self.peek()
        if tok is not None and tok.text == "!":
            self.take()
            inner = self.unary()
            return None if inner is None else not inner
        if tok is not None and tok.text == "(":
            self.take()
            value = self.or_()
            if self.take().text != ")":
                raise ExpressionError("missing )")
            return value
        return self.comparison()

    def operand(self) -> Any:
        tok = self.take()
        if tok.kind == "var":
            name = tok.text.strip("${}")
            return self.vars.get(name, UNKNOWN)
        if tok.kind == "str":
            return tok.text[1:-1]
        if tok.kind == "null":
            return None
        if tok.kind == "regex":
            return ("regex", tok.text)
        raise ExpressionError(f"unexpected {tok.text!r}")

    def comparison(self) -> Truth:
        left = self.operand()
        tok = self.peek()
        if tok is None or tok.text not in {"==", "!=", "=~", "!~"}:
            if isinstance(left, Unknown):
                return None
            return bool(left) if not isinstance(left, tuple) else True
        op = self.take().text
        right = self.operand()
        if op in {"==", "!="}:
            if isinstance(left, Unknown) or isinstance(right, Unknown):
                return None
            equal = left == right
            return equal if op == "==" else not equal
        # A variable may hold the pattern (GitLab 15.0+).
        if isinstance(right, str) and right.startswith("/"):
            right = ("regex", right)
        if isinstance(left, Unknown) or isinstance(right, Unknown) or not isinstance(right, tuple):
            return None
        pattern = _regex(right[1])
        if pattern is None:
            return None
        found = left is not None and pattern.search(str(left)) is not None
        return found if op == "=~" else not found


_NAMES = re.compile(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)")
_MEMO: dict[tuple[Any, ...], Truth] = {}


def evaluate(expression: str, variables: Mapping[str, Any]) -> Truth:
    """True, False, or None when the variables the files cannot know decide it.

    `variables` maps a name to its value: a string, None (not set), or UNKNOWN. The same rule recurs in every
    job and pipeline source: each (expression, values of the variables it reads) is evaluated once.
    """
    key = (expression, *(variables.get(name, UNKNOWN) for name in _NAMES.findall(expression)))
    if key not in _MEMO:
        if len(_MEMO) > 65536:
            _MEMO.clear()
        _MEMO[key] = _Parser(_tokens(expression), variables).parse()
    return _MEMO[key]


__all__ = ["UNKNOWN", "ExpressionError", "Truth", "Unknown", "evaluate"]
