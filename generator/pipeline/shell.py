"""What a shell script does with the exit status of each command it runs.

A scanner that reports findings through its exit status fails the CI step only if the script lets that status
through. Bash lets it through when errexit (`set -e`) is on and the command is not in a position where bash
ignores failures: the left side of `||` or of a non-final `&&`, the condition of `if`/`while`/`until`, a
negated command, a pipeline stage other than the last without `pipefail`. A script that runs `exit 0` before
the scanner never runs it; one that turns errexit off (`set +e`) ignores it unless the status is checked.

This module splits a script into simple commands with those facts attached. It is a careful approximation of
bash's grammar (quotes, `$(...)`, line continuations, here-documents, `if`/`then`/`fi`, `case`), not a full
parser; anything it cannot follow is reported as such, never as "blocks".
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

_HEREDOC = re.compile(r"<<-?\s*(['\"]?)([A-Za-z_][A-Za-z0-9_]*)\1")
_SET = re.compile(r"^set\s+(.*)$")
_EXIT_ZERO = re.compile(r"^(?:exit|return)(?:\s+0)?\s*$")
_FAILS = re.compile(r"^(?:exit\s+(?:[1-9]\d*|\$\?|\"\$\?\"|\$\{?\w+\}?)|false|return\s+[1-9]\d*)\s*$")


@dataclass(frozen=True)
class Command:
    """One simple command of a script and whether its failure fails the script."""

    text: str  # the command as written (one line, continuations joined)
    line: int  # 0-based line of the script where it starts
    ignored: str | None  # why bash ignores its exit status, or None when a failure stops the script
    unreachable: str | None = None  # why it never runs (an earlier top-level `exit 0`)


@dataclass
class _State:
    errexit: bool
    pipefail: bool
    exited: str | None = None


def _join_continuations(script: str) -> list[tuple[int, str]]:
    """(first line number, logical line): a newline inside quotes, `$(...)` or after a backslash does not end
    a command (a multi-line jq or awk program is one word); here-document bodies are dropped."""
    out: list[tuple[int, str]] = []
    lines = script.split("\n")
    i = 0
    while i < len(lines):
        start = i
        logical = lines[i]
        while i + 1 < len(lines) and (logical.endswith("\\") or _open(logical)):
            i += 1
            logical = (logical[:-1] + " " + lines[i].lstrip()) if logical.endswith("\\") else logical + "\n" + lines[i]
        out.append((start, logical))
        terminators = [m[2] for m in _HEREDOC.finditer(_strip_quotes(logical))]
        i += 1
        while terminators and i < len(lines):
            if lines[i].strip() == terminators[0]:
                terminators.pop(0)
            i += 1
    return out


def _open(text: str) -> bool:
    """Whether `text` ends inside a quote or a `$(...)` (so the command goes on on the next line)."""
    quote = ""
    depth = 0
    i = 0
    while i < len(text):
        ch = text[i]
        if quote == "'":
            quote = "" if ch == "'" else quote
        elif quote == '"':
            if ch == "\\":
                i += 2
                continue
            quote = "" if ch == '"' else quote
        elif ch == "\\":
            i += 2
            continue
        elif ch in "'\"":
            quote = ch
        elif text.startswith("$(", i):
            depth += 1
            i += 2
            continue
        elif ch == ")" and depth:
            depth -= 1
        elif ch == "#" and (i == 0 or text[i - 1] in " \t;") and not depth:
            break
        i += 1
    return bool(quote) or depth > 0


def _strip_quotes(text: str) -> str:
    """The text with quoted parts blanked (so operators inside quotes are not split on)."""
    out = []
    quote = ""
    depth = 0
    i = 0
    while i < len(text):
        ch = text[i]
        if quote == "'":
            out.append(" " if ch != "'" else ch)
            quote = "" if ch == "'" else quote
        elif quote == '"':
            if ch == "\\" and i + 1 < len(text):
                out.append("  ")
                i += 2
                continue
            out.append(" " if ch != '"' else ch)
            quote = "" if ch == '"' else quote
        elif depth:
            if text.startswith("$(", i):
                depth += 1
                out.append("  ")
                i += 2
                continue
            if ch == ")":
                depth -= 1
            out.append(" " if depth else ")")
        elif ch in "'\"":
            quote = ch
            out.append(ch)
        elif text.startswith("$(", i):
            depth = 1
            out.append("$(")
            i += 2
            continue
        elif ch == "#" and (i == 0 or text[i - 1] in " \t;"):
            break  # a comment: the rest of the line is not code
        else:
            out.append(ch)
        i += 1
    return "".join(out)


_SPLIT = re.compile(r"(\|\||&&|;;|;|\||(?<![<>])&(?![>&])|\n)")


_TEST = re.compile(r"\[\[.*?\]\]|\(\(.*?\)\)", re.DOTALL)


def _segments(line: str) -> list[tuple[str, str]]:
    """(command text, operator that follows it) for one logical line; operators outside quotes only (and
    outside `[[ ]]` and `(( ))`, where && and || are test operators)."""
    masked = _TEST.sub(lambda m: m[0][:2] + " " * (len(m[0]) - 4) + m[0][-2:], _strip_quotes(line))
    parts: list[tuple[str, str]] = []
    pos = 0
    for m in _SPLIT.finditer(masked):
        if m[0] == "|" and masked[m.start() - 1 : m.start()] == ">":
            continue  # `>|` redirection
        parts.append((line[pos : m.start()].strip(), m[0]))
        pos = m.end()
    parts.append((line[pos : len(masked)].strip(), ""))
    return [(text, op) for text, op in parts if text or op]


_KEYWORD = re.compile(r"^(if|elif|while|until|then|else|do|fi|done|case|esac|\{|\}|!)(?=\s|$)\s*")
_CASE_LABEL = re.compile(r"^\(?[^()]*\)\s*")


@dataclass
class _Segment:
    line: int
    text: str
    op: str  # the operator after it: && || | ; & ;; or "" at the end of a line
    condition: bool = False
    negated: bool = False


def _flatten(script: str) -> list[_Segment]:
    """Every simple command with the operator after it, compound-command keywords stripped."""
    flat: list[_Segment] = []
    condition_depth = 0
    case_depth = 0
    for number, line in _join_continuations(script):
        if case_depth and not line.strip().startswith("esac"):
            # Inside `case ... in`: `pattern)` labels (which may hold `|`) start a branch.
            masked = _strip_quotes(line)
            label = _CASE_LABEL.match(masked.strip())
            if label and not masked.strip().startswith("case "):
                offset = len(line) - len(line.lstrip()) + label.end()
                line = line[offset:]
        for text, op in _segments(line):
            body = text
            negated = False
            while m := _KEYWORD.match(body):
                word = m[1]
                if word in {"if", "elif", "while", "until"}:
                    condition_depth += 1
                elif word in {"then", "do"}:
                    condition_depth = max(0, condition_depth - 1)
                elif word == "case":
                    case_depth += 1
                    break  # `case WORD in` is kept as text: its WORD may read a captured status
                elif word == "esac":
                    case_depth = max(0, case_depth - 1)
                elif word == "!":
                    negated = True
                body = body[m.end() :]
            if body.startswith("#"):
                body = ""
            if body or op in {"&&", "||", "|"}:
                flat.append(_Segment(number, body, op, condition_depth > 0, negated))
    return [s for s in flat if s.text]


@lru_cache(maxsize=4096)
def commands(script: str, errexit: bool = True, pipefail: bool = False) -> tuple[Command, ...]:
    """Every simple command of `script`, given the shell's starting errexit and pipefail state.

    GitHub runs `run:` with `bash -e {0}` when no shell is named (errexit, no pipefail) and with
    `bash --noprofile --norc -eo pipefail {0}` for `shell: bash`; GitLab's runner uses errexit and pipefail.
    """
    state = _State(errexit, pipefail)
    flat = _flatten(script)
    found: list[Command] = []
    for index, seg in enumerate(flat):
        if m := _SET.match(seg.text):
            _apply_set(state, m[1])
        ignored = _ignored(state, flat, index)
        found.append(Command(seg.text, seg.line, ignored, state.exited))
        previous = flat[index - 1].op if index else ""
        if (
            state.exited is None
            and not seg.condition
            and _EXIT_ZERO.match(seg.text)
            and previous not in {"&&", "||"}
            and seg.op not in {"&&", "||"}
        ):
            state.exited = f"an earlier `{seg.text}` (line {seg.line + 1}) ends the script before it"
    return tuple(found)


def _apply_set(state: _State, args: str) -> None:
    tokens = args.split()
    for i, token in enumerate(tokens):
        following = tokens[i + 1] if i + 1 < len(tokens) else ""
        if token.startswith("-") and not token.startswith("--"):
            if "e" in token[1:]:
                state.errexit = True
            if "o" in token[1:] and following == "pipefail":
                state.pipefail = True
        elif token.startswith("+"):
            if "e" in token[1:]:
                state.errexit = False
            if "o" in token[1:] and following == "pipefail":
                state.pipefail = False


def _ignored(state: _State, flat: list[_Segment], index: int) -> str | None:
    seg = flat[index]
    if seg.condition:
        return "it is the condition of an if/while/until, whose status is only tested"
    if seg.negated:
        return "it is negated with !"
    if seg.op == "||":
        fallback = flat[index + 1].text if index + 1 < len(flat) else ""
        if _FAILS.match(fallback.strip()):
            return None
        captured = _CAPTURE.match(fallback.strip())
        if captured and any(_uses_var(later.text, captured[1]) for later in flat[index + 2 :]):
            return None  # `|| rc=$?`, then the script decides on $rc
        return f"`|| {fallback}` replaces its failure"
    if seg.op == "&":
        return "it runs in the background, so nothing waits for its status"
    if seg.op == "|" and not state.pipefail:
        return "its output is piped on without pipefail, so the pipe's status is the last command's"
    if seg.op == "&&":
        end = index
        while end < len(flat) and flat[end].op in {"&&", "||"}:
            end += 1
        if end < len(flat) - 1:
            return "it is on the left of && in a list that is not the script's last command, which bash -e ignores"
    if not state.errexit and index < len(flat) - 1:
        return "errexit is off (`set +e`, or a shell without -e), so the script goes on after it fails"
    return None


_CAPTURE = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)=\$\?$")


def _uses_var(text: str, name: str) -> bool:
    return re.search(rf"\$\{{?{name}\b", text) is not None
