"""`pipeproof controls`: the control catalog as a table, JSON or Markdown."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--format", choices=("table", "json", "markdown"), default="table", help="default: table")
    parser.add_argument(
        "--platforms",
        action="store_true",
        help="the parity table: on which platform each control applies, and how it is met where the platforms differ",
    )


def run(args: argparse.Namespace) -> int:
    from generator.controls import all_controls
    from generator.controls.sync import catalog_entry

    controls = all_controls()
    if args.platforms:
        return _platforms(controls, args.format)
    if args.format == "json":
        json.dump(
            {"schema": "pipeproof/catalog/v1", "controls": [catalog_entry(c) for c in controls]}, sys.stdout, indent=2
        )
        print()
    elif args.format == "markdown":
        print("| Control | Title | Severity | SOC 2 | ISO 27001:2022 | Applies when |")
        print("|---|---|---|---|---|---|")
        for c in controls:
            print(
                f"| {c.id} | {c.title} | {c.severity} | {', '.join(c.soc2)} | {', '.join(c.iso27001)} | `{c.applies}` |"
            )
    else:
        for c in controls:
            refs = ", ".join([*c.soc2, *c.iso27001])
            print(f"{c.id:<13} {str(c.severity):<8} {c.title}  [{refs}]")
        print(f"{len(controls)} controls")
    return 0


PLATFORMS = ("github", "gitlab")


def parity(controls: list[Any]) -> list[dict[str, Any]]:
    """One row per control: where it applies, and the catalog's note for each platform that differs."""
    return [
        {
            "id": c.id,
            "title": c.title,
            **{p: p in c.platforms for p in PLATFORMS},
            "notes": {p: c.platform_notes[p] for p in PLATFORMS if p in c.platform_notes},
        }
        for c in controls
    ]


def _platforms(controls: list[Any], fmt: str) -> int:
    rows = parity(controls)
    if fmt == "json":
        json.dump({"schema": "pipeproof/parity/v1", "controls": rows}, sys.stdout, indent=2)
        print()
        return 0
    if fmt == "markdown":
        print("| Control | Title | GitHub | GitLab | Where the platforms differ |")
        print("|---|---|---|---|---|")
        for r in rows:
            notes = "<br>".join(r["notes"].values()) or "same check on both"
            print(f"| {r['id']} | {r['title']} | {_mark(r['github'])} | {_mark(r['gitlab'])} | {notes} |")
        return 0
    for r in rows:
        print(f"{r['id']:<13} github:{_mark(r['github']):<4} gitlab:{_mark(r['gitlab']):<4} {r['title']}")
        for platform, note in r["notes"].items():
            print(f"{'':<13} {platform}: {note}")
    both = sum(r["github"] and r["gitlab"] for r in rows)
    print(f"{len(rows)} controls: {both} on both platforms, {len(rows) - both} on one (the reason is its note)")
    return 0


def _mark(on: bool) -> str:
    return "yes" if on else "no"
