"""GitHub Actions expressions (`${{ }}` and `if:`): parsed once, evaluated with GitHub's coercions, three-valued.

The grammar, the coercions and the functions follow GitHub's own evaluator, `@actions/expressions`
(actions/languageservices), and `tests/test_expressions.py` runs generated expressions through both. A value the
caller does not know is `UNKNOWN`; it propagates (`UNKNOWN && false` is false, `UNKNOWN || true` is true, anything
else that touches it is `UNKNOWN`), so a caller can say "may run" instead of guessing.

Values are plain Python data: None, bool, int/float, str, list, dict (what `yaml.safe_load` and `json.loads` give).
A `Partial` dict is a context known in part: its missing keys are `UNKNOWN` rather than null.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Context, Decimal
from functools import lru_cache
from typing import Any, Final

from generator.errors import UserError

__all__ = [
    "STATUS_FUNCTIONS",
    "UNKNOWN",
    "EvaluationError",
    "Expression",
    "ExpressionError",
    "Filtered",
    "Partial",
    "Template",
    "Unknown",
    "condition",
    "evaluate",
    "parse",
    "template",
    "to_json",
    "to_string",
    "truthy",
]

# GitHub's limits (errors.ts in actions/languageservices).
MAX_LENGTH: Final = 21_000
MAX_DEPTH: Final = 50
STATUS_FUNCTIONS: Final = frozenset({"success", "failure", "cancelled", "always"})


class Unknown:
    """A value nobody can know before the run (a secret, a step output, a fork flag): it propagates."""

    __slots__ = ()
    _instance: Unknown | None = None

    def __new__(cls) -> Unknown:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "UNKNOWN"

    def __bool__(self) -> bool:
        raise TypeError("UNKNOWN has no truth value; use truthy() and compare with UNKNOWN")


UNKNOWN: Final[Unknown] = Unknown()


class Partial(dict[str, Any]):
    """A context known in part: a key it lacks is UNKNOWN, not null (e.g. an event payload we only half know)."""


class Filtered(list[Any]):
    """The array an object filter (`a.*`) yields: a further `.b` maps over its items, as GitHub does."""


class ExpressionError(UserError):
    """An expression GitHub rejects; `position` is 1-based within `text`."""

    def __init__(self, message: str, text: str, position: int) -> None:
        super().__init__(f"{message}. Located at position {position} within expression: {text}")
        self.reason = message
        self.text = text
        self.position = position


class EvaluationError(ExpressionError):
    """An expression that parses but fails at run time (bad JSON for fromJSON, a bad format string)."""


# --- numbers and strings, the way GitHub's evaluator (JavaScript numbers, UTF-16 strings) sees them -----------

# JavaScript's WhiteSpace and LineTerminator: what Number() trims and what the lexer's \s treats as a boundary.
_JS_SPACE: Final = "\t\n\v\f\r \xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"  # noqa: E501
_DECIMAL: Final = re.compile(r"[+-]?(?:Infinity|(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?)")
_RADIX: Final = re.compile(r"0(?:[xX][0-9a-fA-F]+|[oO][0-7]+|[bB][01]+)")
_BASES: Final = {"x": 16, "o": 8, "b": 2}
_FIXED: Final = Context(prec=80)


def _str_to_number(text: str) -> float:
    """JavaScript's Number(string): GitHub's docs say "any legal JSON number", the evaluator takes a bit more."""
    t = text.strip(_JS_SPACE)
    if not t:
        return 0.0  # the empty string is 0
    if _DECIMAL.fullmatch(t):
        return float(t)
    if _RADIX.fullmatch(t):
        try:
            return float(int(t[2:], _BASES[t[1].lower()]))
        except OverflowError:
            return math.inf
    return math.nan


def _js_number(x: float) -> str:
    """JavaScript's Number::toString: shortest round-trip digits, exponent form below 1e-6 and from 1e21."""
    if x != x:
        return "NaN"
    if x == 0:
        return "0"
    if x < 0:
        return "-" + _js_number(-x)
    if x == math.inf:
        return "Infinity"
    mantissa, _, exp = repr(x).partition("e")
    whole, _, frac = mantissa.partition(".")
    digits = whole + frac
    point = len(whole) + (int(exp) if exp else 0)
    stripped = digits.lstrip("0")
    point -= len(digits) - len(stripped)
    digits = stripped.rstrip("0")
    k, n = len(digits), point
    if k <= n <= 21:
        return digits + "0" * (n - k)
    if 0 < n <= 21:
        return digits[:n] + "." + digits[n:]
    if -6 < n <= 0:
        return "0." + "0" * -n + digits
    e = n - 1
    sign = "+" if e >= 0 else "-"
    head = digits if k == 1 else digits[0] + "." + digits[1:]
    return f"{head}e{sign}{abs(e)}"


def _number_string(x: float) -> str:
    """A number as a string: GitHub rounds to 15 decimals first (`(+x.toFixed(15)).toString()`), so 0.1+0.2 is 0.3."""
    if x == 0:
        return "0"
    if x != x or abs(x) >= 1e21:
        return _js_number(x)
    rounded = Decimal(x).quantize(Decimal("1e-15"), rounding=ROUND_HALF_UP, context=_FIXED)
    return _js_number(float(rounded))


def _upper(s: str) -> str:
    # GitHub upper-cases for case-insensitive comparison, except the dotless i (U+0131), which would become "I".
    if "ı" not in s:
        return s.upper()
    return "ı".join(part.upper() for part in s.split("ı"))


def _str_less(a: str, b: str) -> bool:
    # JavaScript compares UTF-16 code units; big-endian UTF-16 bytes order the same way.
    if a.isascii() and b.isascii():
        return a < b
    return a.encode("utf-16-be", "surrogatepass") < b.encode("utf-16-be", "surrogatepass")


# --- value kinds and coercions -------------------------------------------------------------------------------

_NULL, _BOOL, _NUMBER, _STRING, _ARRAY, _OBJECT = range(6)


def _kind(v: Any) -> int:
    if v is None:
        return _NULL
    if isinstance(v, bool):
        return _BOOL
    if isinstance(v, (int, float)):
        return _NUMBER
    if isinstance(v, str):
        return _STRING
    if isinstance(v, (list, tuple)):
        return _ARRAY
    if isinstance(v, Mapping):
        return _OBJECT
    return _STRING  # a YAML date or the like: GitHub's YAML reader would have given the text


def _primitive(v: Any) -> bool:
    return _kind(v) <= _STRING


def _number(v: Any) -> float:
    kind = _kind(v)
    if kind == _NULL:
        return 0.0
    if kind in (_BOOL, _NUMBER):
        try:
            return float(v)
        except OverflowError:
            return math.inf if v > 0 else -math.inf
    if kind == _STRING:
        return _str_to_number(str(v))
    return math.nan


def to_string(v: Any) -> str:
    """A value as GitHub turns it into a string (format, join, string templates, contains)."""
    kind = _kind(v)
    if kind == _NULL:
        return ""
    if kind == _BOOL:
        return "true" if v else "false"
    if kind == _NUMBER:
        return _number_string(_number(v))
    if kind == _STRING:
        return str(v)
    return "Array" if kind == _ARRAY else "Object"


def _falsy(v: Any) -> bool:
    kind = _kind(v)
    if kind == _NULL:
        return True
    if kind == _BOOL:
        return not v
    if kind == _NUMBER:
        x = _number(v)
        return x == 0 or x != x
    if kind == _STRING:
        return len(str(v)) == 0
    return False


def truthy(v: Any) -> bool | Unknown:
    """GitHub's truthiness: false, 0, -0, '', null and NaN are falsy; arrays and objects are truthy."""
    if isinstance(v, Unknown):
        return v
    return not _falsy(v)


def _coerce(left: Any, right: Any) -> tuple[Any, Any]:
    # Like JavaScript's loose equality, except that objects are never coerced (result.ts coerceTypes).
    lk, rk = _kind(left), _kind(right)
    if lk == rk:
        return left, right
    if lk == _NUMBER and rk == _STRING:
        return left, _number(right)
    if lk == _STRING and rk == _NUMBER:
        return _number(left), right
    if lk in (_NULL, _BOOL):
        return _coerce(_number(left), right)
    if rk in (_NULL, _BOOL):
        return _coerce(left, _number(right))
    return left, right


def _equals(left: Any, right: Any) -> bool:
    lv, rv = _coerce(left, right)
    kind = _kind(lv)
    if kind != _kind(rv):
        return False
    if kind == _NULL:
        return True
    if kind == _NUMBER:
        return float(lv) == float(rv)  # NaN equals nothing
    if kind == _STRING:
        return _upper(str(lv)) == _upper(str(rv))
    if kind == _BOOL:
        return bool(lv == rv)
    return lv is rv  # arrays and objects: the same object, never the same content


def _greater(left: Any, right: Any) -> bool:
    lv, rv = _coerce(left, right)
    kind = _kind(lv)
    if kind != _kind(rv):
        return False
    if kind == _NUMBER:
        return float(lv) > float(rv)
    if kind == _STRING:
        return _str_less(_upper(str(rv)), _upper(str(lv)))
    if kind == _BOOL:
        return bool(lv and not rv)
    return False


def _less(left: Any, right: Any) -> bool:
    return _greater(right, left)


# --- JSON, as JSON.stringify / JSON.parse in GitHub's evaluator produce it ----------------------------------


def _index_key(key: str) -> bool:
    # A JavaScript array index ("0", "17"): JS objects list these keys first, in numeric order.
    return key.isdigit() and key.isascii() and (key == "0" or key[0] != "0") and int(key) < 2**32 - 1


def _js_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object as GitHub's evaluator holds it: last duplicate wins, index keys first, keys case-insensitive."""
    raw: dict[str, Any] = {}
    for key, value in pairs:
        raw[key] = value
    keys = list(raw)
    if any(_index_key(k) for k in keys):
        keys = sorted((k for k in keys if _index_key(k)), key=int) + [k for k in keys if not _index_key(k)]
    out: dict[str, Any] = {}
    seen: set[str] = set()
    for key in keys:
        if key.lower() not in seen:  # the first spelling of a key wins, as in a case-insensitive dictionary
            seen.add(key.lower())
            out[key] = raw[key]
    return out


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


_LONE_SURROGATE: Final = re.compile("[\ud800-\udfff]")


def _json_string(s: str) -> str:
    text = json.dumps(s, ensure_ascii=False)
    if _LONE_SURROGATE.search(text):
        text = _LONE_SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)
    return text


def _contains_unknown(v: Any) -> bool:
    if v is UNKNOWN or isinstance(v, Partial):
        return True
    kind = _kind(v)
    if kind == _ARRAY:
        return any(_contains_unknown(x) for x in v)
    if kind == _OBJECT:
        return any(_contains_unknown(x) for x in v.values())
    return False


def to_json(v: Any) -> str | Unknown:
    """toJSON: two-space indented JSON; numbers as JavaScript prints them, NaN and Infinity as null."""
    if _contains_unknown(v):
        return UNKNOWN
    return _dump(v, "")


def _dump(v: Any, indent: str) -> str:
    kind = _kind(v)
    if kind == _NULL:
        return "null"
    if kind == _BOOL:
        return "true" if v else "false"
    if kind == _NUMBER:
        x = _number(v)
        return _js_number(x) if math.isfinite(x) else "null"
    if kind == _STRING:
        return _json_string(str(v))
    inner = indent + "  "
    if kind == _ARRAY:
        if not v:
            return "[]"
        return "[\n" + ",\n".join(inner + _dump(x, inner) for x in v) + "\n" + indent + "]"
    obj = _js_object([(str(k), x) for k, x in v.items()])
    if not obj:
        return "{}"
    items = (f"{inner}{_json_string(k)}: {_dump(x, inner)}" for k, x in obj.items())
    return "{\n" + ",\n".join(items) + "\n" + indent + "}"


# --- lexer ------------------------------------------------------------------------------------------------

_BOUNDARY: Final = frozenset("()[],.!><=&|" + _JS_SPACE)
_IDENTIFIER: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")
_Token = tuple[str, str, Any, int]  # kind, lexeme, value, 0-based start


def _lex(text: str) -> list[_Token]:
    if len(text) > MAX_LENGTH:
        raise ExpressionError(f"Exceeded max expression length {MAX_LENGTH}", text[:80] + "...", 1)
    tokens: list[_Token] = []
    n = len(text)
    i = 0

    def bad(start: int, end: int | None = None) -> ExpressionError:
        return ExpressionError(f"Unexpected symbol: '{text[start:end]}'", text, start + 1)

    def previous() -> str:
        return tokens[-1][0] if tokens else "eof"

    while i < n:
        start, c = i, text[i]
        i += 1
        if c in "()[],*":
            tokens.append((c, c, None, start))
        elif c in " \t\r\n":
            continue
        elif c == "." and previous() in ("id", "]", ")", "*"):
            tokens.append((".", c, None, start))
        elif c in ".-+" or "0" <= c <= "9":
            # A number runs to the next boundary character, dots included, then must be a JavaScript number.
            while i < n and (text[i] not in _BOUNDARY or text[i] == "."):
                i += 1
            value = _str_to_number(text[start:i])
            if value != value:
                raise bad(start, i)
            tokens.append(("num", text[start:i], value, start))
        elif c in "!<>" or (c in "=&|" and text[i : i + 1] == ("=" if c == "=" else c)):
            double = c in "=&|" or text[i : i + 1] == "="
            i += double
            tokens.append((text[start:i], text[start:i], None, start))
        elif c == "'":
            while i < n and (text[i] != "'" or text[i + 1 : i + 2] == "'"):
                i += 2 if text[i] == "'" else 1
            if i >= n:
                raise bad(start)
            i += 1
            # GitHub's runner and docs unescape every '' ("'It''s open'"); @actions/expressions 0.3.61 only the
            # first one (String.replace with a string): we follow GitHub.
            tokens.append(("str", text[start:i], text[start + 1 : i - 1].replace("''", "'"), start))
        else:
            while i < n and text[i] not in _BOUNDARY:
                i += 1
            lexeme = text[start:i]
            kind, value = "id", None
            if previous() != ".":  # after a dot, `true` and `NaN` are property names
                if lexeme in ("true", "false", "null"):
                    kind = lexeme
                elif lexeme in ("NaN", "Infinity"):
                    kind, value = "num", math.nan if lexeme == "NaN" else math.inf
            if not _IDENTIFIER.fullmatch(lexeme):
                raise bad(start, i)
            tokens.append((kind, lexeme, value, start))
    tokens.append(("eof", "", None, n))
    return tokens


# --- syntax tree ------------------------------------------------------------------------------------------


class _Env:
    __slots__ = ("contexts", "status")

    def __init__(self, contexts: dict[str, Any], status: Mapping[str, Any]) -> None:
        self.contexts = contexts
        self.status = status


class _Node:
    __slots__ = ()

    def ev(self, env: _Env) -> Any:
        raise NotImplementedError


class _Literal(_Node):
    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def ev(self, env: _Env) -> Any:
        return self.value


class _Group(_Node):
    __slots__ = ("inner",)

    def __init__(self, inner: _Node) -> None:
        self.inner = inner

    def ev(self, env: _Env) -> Any:
        return self.inner.ev(env)


class _Context(_Node):
    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def ev(self, env: _Env) -> Any:
        return env.contexts[self.name]


_MISSING: Final = object()


def _lookup(obj: Mapping[str, Any], key: str) -> Any:
    # Property names are case-insensitive (`github.Event_Name`).
    if key in obj:
        return obj[key]
    lower = key.lower()
    for k in obj:
        if str(k).lower() == lower:  # YAML may give a number or a bool as a key; GitHub's reader gives text
            return obj[k]
    return UNKNOWN if isinstance(obj, Partial) else _MISSING


class _Index(_Node):
    __slots__ = ("obj", "index")

    def __init__(self, obj: _Node, index: _Node | None) -> None:
        self.obj = obj
        self.index = index  # None: the object filter `*`

    def ev(self, env: _Env) -> Any:
        star = self.index is None
        key: str | None = None
        pos: int | None = None
        if self.index is not None:
            iv = self.index.ev(env)  # GitHub evaluates the index before the object
            if iv is UNKNOWN:
                return UNKNOWN
            if _primitive(iv):
                key = to_string(iv)
            f = _number(iv)
            if math.isfinite(f) and f >= 0:
                pos = math.floor(f)  # so a[null], a[''] and a[false] are a[0]
        obj = self.obj.ev(env)
        if obj is UNKNOWN:
            return UNKNOWN
        kind = _kind(obj)
        if isinstance(obj, Filtered):
            return _filtered_access(obj, star, key, pos)
        if kind == _ARRAY:
            if star:
                return Filtered(obj)
            return obj[pos] if pos is not None and pos < len(obj) else None
        if kind == _OBJECT:
            if star:
                return UNKNOWN if isinstance(obj, Partial) else Filtered(obj.values())
            found = _lookup(obj, key) if key is not None else _MISSING
            return None if found is _MISSING else found
        return Filtered() if star else None


def _filtered_access(items: Filtered, star: bool, key: str | None, pos: int | None) -> Any:
    out = Filtered()
    for item in items:
        if item is UNKNOWN:
            return UNKNOWN
        kind = _kind(item)
        if kind == _OBJECT:
            if star:
                if isinstance(item, Partial):
                    return UNKNOWN
                out.extend(item.values())
            elif key is not None:
                found = _lookup(item, key)
                if found is UNKNOWN:
                    return UNKNOWN
                if found is not _MISSING:
                    out.append(found)
        elif kind == _ARRAY:
            if star:
                out.extend(item)
            elif pos is not None and pos < len(item):
                out.append(item[pos])
    return out


class _Not(_Node):
    __slots__ = ("inner",)

    def __init__(self, inner: _Node) -> None:
        self.inner = inner

    def ev(self, env: _Env) -> Any:
        v = self.inner.ev(env)
        return UNKNOWN if v is UNKNOWN else _falsy(v)


class _Compare(_Node):
    __slots__ = ("op", "left", "right")

    def __init__(self, op: str, left: _Node, right: _Node) -> None:
        self.op, self.left, self.right = op, left, right

    def ev(self, env: _Env) -> Any:
        lv, rv = self.left.ev(env), self.right.ev(env)
        if lv is UNKNOWN or rv is UNKNOWN:
            return UNKNOWN
        op = self.op
        if op == "==":
            return _equals(lv, rv)
        if op == "!=":
            return not _equals(lv, rv)
        if op == ">":
            return _greater(lv, rv)
        if op == "<":
            return _less(lv, rv)
        if op == ">=":
            return _equals(lv, rv) or _greater(lv, rv)
        return _equals(lv, rv) or _less(lv, rv)


class _Logical(_Node):
    __slots__ = ("is_and", "args")

    def __init__(self, is_and: bool, args: list[_Node]) -> None:
        self.is_and, self.args = is_and, args

    def ev(self, env: _Env) -> Any:
        # && and || return an operand, not a boolean. After an UNKNOWN operand the truthiness of the result is
        # still exact (a definite falsy operand decides &&, a definite truthy one decides ||), the value may not be.
        unknown = False
        result: Any = None
        for arg in self.args:
            try:
                v = arg.ev(env)
            except ExpressionError:
                if unknown:  # GitHub may never have evaluated it: the UNKNOWN operand could have decided
                    return UNKNOWN
                raise
            if v is UNKNOWN:
                unknown = True
                continue
            if _falsy(v) == self.is_and:
                return v
            result = v
        return UNKNOWN if unknown else result


class _Call(_Node):
    __slots__ = ("name", "args", "text", "start")

    def __init__(self, name: str, args: list[_Node], text: str, start: int) -> None:
        self.name, self.args, self.text, self.start = name, args, text, start

    def ev(self, env: _Env) -> Any:
        args = [a.ev(env) for a in self.args]
        name = self.name
        if name in STATUS_FUNCTIONS:
            return env.status.get(name, True if name == "always" else UNKNOWN)
        if name == "hashfiles":
            return UNKNOWN  # depends on the files in the runner's workspace
        try:
            return _FUNCTIONS[name](*args)
        except EvaluationError as e:
            raise EvaluationError(e.reason, self.text, self.start + 1) from None


# --- functions ----------------------------------------------------------------------------------------------


def _fail(message: str) -> EvaluationError:
    return EvaluationError(message, "", 0)  # _Call adds the expression and the position


def _contains(search: Any, item: Any) -> Any:
    if search is UNKNOWN or item is UNKNOWN:
        return UNKNOWN
    if _primitive(search):
        return _primitive(item) and to_string(item).lower() in to_string(search).lower()
    if _kind(search) == _ARRAY:
        unknown = False
        for v in search:
            if v is UNKNOWN:
                unknown = True
            elif _equals(item, v):
                return True
        return UNKNOWN if unknown else False
    return False


def _affix(start: bool) -> Any:
    def affix(text: Any, part: Any) -> Any:
        if text is UNKNOWN:
            return UNKNOWN
        if not _primitive(text):
            return False
        if part is UNKNOWN:
            return UNKNOWN
        if not _primitive(part):
            return False
        t, p = _upper(to_string(text)), _upper(to_string(part))
        return t.startswith(p) if start else t.endswith(p)

    return affix


def _format(fmt: Any, *args: Any) -> Any:
    if fmt is UNKNOWN or any(a is UNKNOWN for a in args):
        return UNKNOWN
    fs = to_string(fmt)
    out: list[str] = []
    i = 0
    while i < len(fs):
        lb, rb = fs.find("{", i), fs.find("}", i)
        if lb >= 0 and (rb < 0 or rb > lb):
            if fs[lb + 1 : lb + 2] == "{":  # {{ is a literal {
                out.append(fs[i : lb + 1])
                i = lb + 2
                continue
            digits = re.match(r"[0-9]+", fs[lb + 1 :]) if rb > lb + 1 else None
            if digits:
                # GitHub's evaluator reads the digits and jumps to the next }, so "{0:x}" is "{0}".
                index = int(digits.group())
                if index >= len(args):
                    raise _fail(f"The following format string references more arguments than were supplied: {fs}")
                out.append(fs[i:lb])
                out.append(to_string(args[index]))
                i = rb + 1
                continue
            raise _fail(f"The following format string is invalid: {fs}")
        if rb >= 0:
            if fs[rb + 1 : rb + 2] != "}":
                raise _fail(f"The following format string is invalid: {fs}")
            out.append(fs[i : rb + 1])  # }} is a literal }
            i = rb + 2
        else:
            out.append(fs[i:])
            break
    return "".join(out)


def _join(items: Any, separator: Any = ",") -> Any:
    if items is UNKNOWN:
        return UNKNOWN
    if _primitive(items):
        return to_string(items)
    if _kind(items) != _ARRAY:
        return ""
    if separator is UNKNOWN or any(v is UNKNOWN for v in items):
        return UNKNOWN
    sep = to_string(separator) if _primitive(separator) else ","
    return sep.join(to_string(v) for v in items)


def _from_json(value: Any) -> Any:
    if value is UNKNOWN:
        return UNKNOWN
    text = to_string(value)
    if not text.strip(_JS_SPACE):
        raise _fail("empty input")
    try:
        return json.loads(text, object_pairs_hook=_js_object, parse_int=float, parse_constant=_no_constant)
    except (ValueError, RecursionError) as e:
        raise _fail(f"Error parsing JSON when evaluating fromJson: {e}") from None


def _case(*args: Any) -> Any:
    for i in range(0, len(args) - 1, 2):
        predicate = args[i]
        if predicate is UNKNOWN:
            return UNKNOWN
        if not isinstance(predicate, bool):
            raise _fail("case predicate must evaluate to a boolean value")
        if predicate:
            return args[i + 1]
    return args[-1]


_FUNCTIONS: Final[dict[str, Any]] = {
    "contains": _contains,
    "startswith": _affix(start=True),
    "endswith": _affix(start=False),
    "format": _format,
    "join": _join,
    "tojson": to_json,
    "fromjson": _from_json,
    "case": _case,
}
# Arity: (fewest, most). Status functions and hashFiles are GitHub's extension functions.
_ARITY: Final[dict[str, tuple[int, float]]] = {
    "contains": (2, 2),
    "startswith": (2, 2),
    "endswith": (2, 2),
    "format": (1, 255),
    "join": (1, 2),
    "tojson": (1, 1),
    "fromjson": (1, 1),
    "case": (3, math.inf),
    "hashfiles": (1, math.inf),
    **{name: (0, 0) for name in STATUS_FUNCTIONS},
}


# --- parser: recursive descent with GitHub's precedence and depth limit ---------------------------------------


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _lex(text)
        self.at = 0
        self.depth = 0
        self.contexts: dict[str, int] = {}  # lower-cased name -> 1-based position of its first use
        self.functions: set[str] = set()

    def error(self, message: str, token: _Token) -> ExpressionError:
        kind, lexeme, value, start = token
        shown = "EOF" if kind == "eof" else (value if kind == "str" else lexeme)
        return ExpressionError(f"{message}: '{shown}'", self.text, start + 1)

    def peek(self) -> _Token:
        return self.tokens[self.at]

    def check(self, *kinds: str) -> bool:
        return self.tokens[self.at][0] in kinds

    def match(self, *kinds: str) -> _Token | None:
        token = self.tokens[self.at]
        if token[0] in kinds and token[0] != "eof":
            self.at += 1
            return token
        return None

    def deeper(self) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise self.error(f"Exceeded max expression depth {MAX_DEPTH}", self.peek())

    def parse(self) -> _Node:
        if self.check("eof"):
            raise self.error("Unexpected end of expression", self.peek())
        node = self.expression()
        if not self.check("eof"):
            raise self.error("Unexpected symbol", self.peek())
        return node

    def expression(self) -> _Node:
        self.deeper()
        node = self.logical("||", self.logical_and)
        self.depth -= 1
        return node

    def logical_and(self) -> _Node:
        return self.logical("&&", self.equality)

    def logical(self, op: str, operand: Any) -> _Node:
        # && binds tighter than ||; a chain is one node, evaluated left to right with short-circuit.
        node: _Node = operand()
        if self.check(op):
            self.deeper()
            args = [node]
            while self.match(op):
                args.append(operand())
            self.depth -= 1
            node = _Logical(op == "&&", args)
        return node

    def equality(self) -> _Node:
        node = self.comparison()
        while op := self.match("==", "!="):
            node = _Compare(op[0], node, self.comparison())
        return node

    def comparison(self) -> _Node:
        node = self.unary()
        while op := self.match(">", ">=", "<", "<="):
            node = _Compare(op[0], node, self.unary())
        return node

    def unary(self) -> _Node:
        if self.match("!"):
            self.deeper()
            node = _Not(self.unary())
            self.depth -= 1
            return node
        return self.index()

    def index(self) -> _Node:
        node = self.call()
        if not isinstance(node, (_Group, _Call, _Context)):
            return node  # a literal takes no index: `'abc'[0]` is an error
        levels = 0
        while True:
            if self.match("["):
                index = None if self.match("*") else self.expression()
                if not self.match("]"):
                    raise self.error("Unexpected symbol", self.peek())
                node = _Index(node, index)
            elif self.match("."):
                if prop := self.match("id"):
                    node = _Index(node, _Literal(prop[1]))
                elif self.match("*"):
                    node = _Index(node, None)
                else:
                    raise self.error("Unexpected symbol", self.peek())
            else:
                break
            self.deeper()
            levels += 1
        self.depth -= levels
        return node

    def call(self) -> _Node:
        identifier = self.match("id")
        if identifier is None:
            return self.primary()
        name = identifier[1].lower()
        if not self.match("("):
            self.contexts.setdefault(name, identifier[3] + 1)
            return _Context(name)
        args: list[_Node] = []
        while not self.match(")"):
            args.append(self.expression())
            if not self.check(")") and not self.match(","):
                raise self.error("Unexpected symbol", self.peek())
        fewest, most = _ARITY.get(name, (-1, -1))
        if fewest < 0:
            raise self.error("Unrecognized function", identifier)
        if len(args) < fewest:
            raise self.error("Too few parameters supplied", identifier)
        if len(args) > most:
            raise self.error("Too many parameters supplied", identifier)
        if name == "case" and len(args) % 2 == 0:
            raise self.error("Even number of parameters supplied, requires an odd number of parameters", identifier)
        self.functions.add(name)
        return _Call(name, args, self.text, identifier[3])

    def primary(self) -> _Node:
        token = self.peek()
        kind = token[0]
        if kind in ("true", "false", "null", "num", "str"):
            self.at += 1
            literal = {"true": True, "false": False, "null": None}.get(kind, token[2])
            return _Literal(literal)
        if self.match("("):
            inner = self.expression()
            if self.check("eof"):
                raise self.error("Unexpected end of expression", self.tokens[self.at - 1])
            if not self.match(")"):
                raise self.error("Unexpected symbol", self.peek())
            return _Group(inner)
        if kind == "eof":
            raise self.error("Unexpected end of expression", self.tokens[max(self.at - 1, 0)])
        raise self.error("Unexpected symbol", token)


@dataclass(frozen=True, eq=False)
class Expression:
    """A parsed expression: the context names and functions it uses, and `evaluate`."""

    text: str
    contexts: frozenset[str]  # lower-cased
    functions: frozenset[str]  # lower-cased
    _root: _Node
    _positions: Mapping[str, int]

    @property
    def uses_status(self) -> bool:
        """Whether it calls success(), failure(), cancelled() or always() (then GitHub adds no success() &&)."""
        return bool(self.functions & STATUS_FUNCTIONS)

    def evaluate(self, contexts: Mapping[str, Any], status: Mapping[str, Any] | None = None) -> Any:
        """The value, or UNKNOWN; `status` gives success/failure/cancelled/always (missing: UNKNOWN, always true)."""
        env = {name.lower(): value for name, value in contexts.items()}
        for name in self.contexts:
            if name not in env:
                raise ExpressionError(f"Unrecognized named-value: '{name}'", self.text, self._positions[name])
        return self._root.ev(_Env(env, status or {}))


@lru_cache(maxsize=8192)
def parse(text: str) -> Expression:
    """Parse an expression (the text inside `${{ }}`); raises ExpressionError with the position."""
    parser = _Parser(text)
    root = parser.parse()
    return Expression(text, frozenset(parser.contexts), frozenset(parser.functions), root, parser.contexts)


def evaluate(text: str, contexts: Mapping[str, Any], status: Mapping[str, Any] | None = None) -> Any:
    """Parse (cached) and evaluate one expression."""
    return parse(text).evaluate(contexts, status)


# --- `${{ }}` templates and `if:` conditions ------------------------------------------------------------------


@dataclass(frozen=True)
class Template:
    """A YAML value with `${{ }}` in it: literal text and expressions, or one expression alone."""

    source: str
    parts: tuple[str | Expression, ...]

    @property
    def expression(self) -> Expression | None:
        """The expression when the whole value is one (an `if:` without text around its `${{ }}`)."""
        if len(self.parts) == 1 and isinstance(self.parts[0], Expression):
            return self.parts[0]
        return None

    @property
    def expressions(self) -> tuple[Expression, ...]:
        return tuple(p for p in self.parts if isinstance(p, Expression))

    @property
    def uses_status(self) -> bool:
        return any(e.uses_status for e in self.expressions)

    @property
    def contexts(self) -> frozenset[str]:
        return frozenset().union(*(e.contexts for e in self.expressions))

    def evaluate(self, contexts: Mapping[str, Any], status: Mapping[str, Any] | None = None) -> Any:
        """One expression gives its value; text with expressions gives a string (or UNKNOWN)."""
        if (single := self.expression) is not None:
            return single.evaluate(contexts, status)
        out: list[str] = []
        for part in self.parts:
            value = part if isinstance(part, str) else part.evaluate(contexts, status)
            if value is UNKNOWN:
                return UNKNOWN
            out.append(to_string(value))
        return "".join(out)

    def truth(self, contexts: Mapping[str, Any], status: Mapping[str, Any] | None = None) -> bool | Unknown:
        """As an `if:`: text around `${{ }}` makes a non-empty string, always true (actionlint's if-cond)."""
        if self.expression is None and any(isinstance(p, str) and p for p in self.parts):
            return True
        return truthy(self.evaluate(contexts, status))


def _split(text: str) -> tuple[str | Expression, ...] | None:
    """Literal text and parsed `${{ }}` parts; None when the text has no `${{`."""
    if "${{" not in text:
        return None
    parts: list[str | Expression] = []
    i = 0
    while (start := text.find("${{", i)) >= 0:
        if start > i:
            parts.append(text[i:start])
        k, quoted = start + 3, False
        while k < len(text) and (quoted or not text.startswith("}}", k)):
            quoted ^= text[k] == "'"  # a '}}' inside a string literal does not close the expression
            k += 1
        if k >= len(text):
            raise ExpressionError("Unclosed '${{'", text, start + 1)
        parts.append(parse(text[start + 3 : k]))
        i = k + 2
    if i < len(text):
        parts.append(text[i:])
    return tuple(parts)


@lru_cache(maxsize=8192)
def template(text: str) -> Template:
    """A string value such as a job `name:`: literal unless it has `${{ }}`."""
    return Template(text, _split(text) or (text,))


@lru_cache(maxsize=8192)
def _condition(text: str) -> Template:
    return Template(text, _split(text) or (parse(text),))


def condition(value: str | bool | int | float) -> Template:
    """An `if:` value: an expression with or without `${{ }}`; text around `${{ }}` makes it a string."""
    if isinstance(value, bool):
        value = "true" if value else "false"  # `if: false` in YAML is the expression false
    elif not isinstance(value, str):
        value = to_string(value)
    return _condition(value)
