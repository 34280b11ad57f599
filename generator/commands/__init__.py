"""One module per subcommand: `add_arguments(parser)` and `run(args) -> int`."""

from __future__ import annotations

import argparse
from collections.abc import Iterable

DATA_HELP = "answer a question (repeatable); lists in YAML flow form, e.g. --data 'iac=[terraform, kubernetes]'"


def add_data_argument(parser: argparse.ArgumentParser, help: str = DATA_HELP) -> None:
    """`--data KEY=VALUE`, as copier takes it (new, retrofit, update)."""
    parser.add_argument("-d", "--data", action="append", default=[], metavar="KEY=VALUE", help=help)


def print_section(title: str, lines: Iterable[str], prefix: str = "  ") -> None:
    """A titled, indented list on stdout; nothing when it is empty."""
    shown = list(lines)
    if shown:
        print(title)
        for line in shown:
            print(prefix + line)
