"""`pipeproof controls`: the control catalog as a table, JSON or Markdown."""

from __future__ import annotations

import argparse
import json
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--format", choices=("table", "json", "markdown"), default="table", help="default: table")


def run(args: argparse.Namespace) -> int:
    from generator.controls import all_controls
    from generator.controls.sync import catalog_entry

    controls = all_controls()
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
