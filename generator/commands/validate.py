"""`pipeproof validate [PATH]`: the real linters over a rendered tree; exit 1 on any finding."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "path", nargs="?", type=Path, default=Path("."), metavar="PATH", help="tree to check (default: .)"
    )
    parser.add_argument(
        "--persona",
        choices=["regular", "pedantic", "auditor"],
        default="auditor",
        help="zizmor persona (default: auditor, the strictest)",
    )


def run(args: argparse.Namespace) -> int:
    from generator import validate

    findings = validate.run(args.path, persona=args.persona)
    for finding in findings:
        print(finding)
    tools = ", ".join(validate.tools(args.path))
    print(f"{len(findings)} finding{'s' if len(findings) != 1 else ''} ({tools})")
    return 1 if findings else 0
