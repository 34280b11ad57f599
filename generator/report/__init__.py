"""Audit report formats: one function per format, each turning a Report into text."""

from __future__ import annotations

from collections.abc import Callable

from generator.audit import Report
from generator.report import json_format, markdown, sarif, text

FORMATS: dict[str, Callable[[Report], str]] = {
    "text": text.render,
    "json": json_format.render,
    "sarif": sarif.render,
    "markdown": markdown.render,
}
