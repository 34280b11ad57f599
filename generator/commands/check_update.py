"""`pipeproof check-update [PATH]`: is the project on the newest template version this pipeproof offers?

Exit 0 when it is, 2 when an update exists (2 is also bad input: the message on stderr says which). It reads
only the answers file and the template's tags, so it works in CI, offline for pipeproof's own template.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "path", nargs="?", type=Path, default=Path("."), metavar="PATH", help="the project (default: .)"
    )


def run(args: argparse.Namespace) -> int:
    from generator import update

    project, _, recorded = update.locate(args.path)
    with update.origin(recorded) as found:
        newest = found.source.ref or found.source.newest()
        if found.adopt is not None:
            print(f"update available: {found.adopt}; `pipeproof update` adopts it and updates to {newest}")
            return 2
        if newest is None or found.old == newest:
            print(f"up to date: {project} is on {found.old} of {found.source.url}")
            return 0
        print(f"update available: {found.old} -> {newest} ({found.source.url}); run `pipeproof update {args.path}`")
        return 2
