"""One error type for everything the user can fix; the CLI prints its message verbatim and exits 2."""

from __future__ import annotations


class UserError(Exception):
    """Bad input: the message names the file or key, the bad value and what is allowed."""

    exit_code = 2


def show(value: object, limit: int = 60) -> str:
    """A bad value as it appears in a message: repr, cut short when long."""
    text = repr(value)
    if len(text) <= limit:
        return text
    size = len(value) if isinstance(value, (str, bytes, list, dict)) else len(text)
    return f"{text[:limit]}... ({size} characters)"
