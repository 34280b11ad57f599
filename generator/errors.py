"""One error type for everything the user can fix; the CLI prints its message verbatim and exits 2."""

from __future__ import annotations


class UserError(Exception):
    """Bad input: the message names the file or key, the bad value and what is allowed."""

    exit_code = 2


def show(value: object, limit: int = 60) -> str:
    """A bad value as it appears in a message: repr, cut short when long (never expanded in full)."""
    import reprlib

    short = reprlib.Repr()
    short.maxstring = short.maxother = limit + 10
    short.maxlist = short.maxdict = 6
    short.maxlevel = 3
    text = short.repr(value) if isinstance(value, (list, dict, tuple)) else repr(value)
    if len(text) <= limit:
        return text
    if isinstance(value, (list, dict, tuple)):
        return f"{text[:limit]}... ({len(value)} items)"
    size = len(value) if isinstance(value, (str, bytes)) else len(text)
    return f"{text[:limit]}... ({size} characters)"
