"""`pipeproof update [PATH]`: bring a project to a newer template version, without losing a line or a control."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from generator.commands import add_data_argument, print_section
from generator.errors import UserError

if TYPE_CHECKING:
    from generator.update import Update


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "path", nargs="?", type=Path, default=Path("."), metavar="PATH", help="the project (default: .)"
    )
    parser.add_argument(
        "--to",
        metavar="VERSION",
        help="template version to update to (default: this pipeproof's own release for pipeproof's template, "
        "the newest version tag for a fork or a local template)",
    )
    parser.add_argument("--dry-run", action="store_true", help="print the diff the update would apply; write nothing")
    parser.add_argument(
        "--accept-weakening",
        action="store_true",
        help="apply even though a control that passes would fail, or an answer would change without being asked",
    )
    add_data_argument(parser, "change an answer on purpose (repeatable); lists in YAML flow form")
    parser.add_argument(
        "--src",
        metavar="PATH_OR_URL",
        help="update from this template instead of the one the answers record, and record it",
    )


def typed_data(items: list[str]) -> dict[str, Any]:
    """--data answers, cast and checked against this pipeproof's questions where it has the key."""
    from generator import answers, render

    given = answers.parse_data_args(items)
    template = answers.load_template(render.template_root())
    typed: dict[str, Any] = {}
    for key, value in given.items():
        if key in template.computed:
            raise UserError(f"answer {key!r} is computed by the template and cannot be set")
        typed[key] = answers.cast(template.question(key), value) if key in template.keys else value
    return typed


def run(args: argparse.Namespace) -> int:
    from generator import update

    result = update.prepare(args.path, to=args.to, data=typed_data(args.data), src=args.src)
    print(f"pipeproof update {result.project}")
    print(f"  template {result.url}: {result.old} -> {result.new}")
    for note in result.notes:
        print(f"  {note}")
    if not result.changes:
        print(f"Already up to date: nothing to change ({result.new}).")
        return 0
    show_changes(result)
    refused = refusal(result, accept=args.accept_weakening)
    if args.dry_run:
        print()
        print(result.diff)
        print(f"\ndry run: nothing written{' (the update would be refused)' if refused else ''}", file=sys.stderr)
        return 1 if refused or result.conflicts else 0
    if refused:
        return 1
    update.apply(result)
    if result.conflicts:
        print(f"\n{len(result.conflicts)} conflict{'s' if len(result.conflicts) > 1 else ''}; resolve each:")
        for conflict in result.conflicts:
            print(f"  {conflict.path} ({conflict.kind}): {conflict.how}")
        print("then run `pipeproof validate` and `pipeproof audit`, and commit.")
        added = " ".join(p for p, k in result.changes.items() if k == "added")
        undo = "git reset --hard" + (f" && git clean -f -- {added}" if added else "")
        print(f"To undo the whole update instead (the tree was clean before it): {undo}")
        return 1
    if result.validate_error:
        print(f"warning: validate did not run: {result.validate_error}", file=sys.stderr)
    if result.findings:
        print(f"\nvalidate: {len(result.findings)} finding(s) in the updated files:")
        for finding in result.findings:
            print(f"  {finding}")
        return 1
    print("\nUpdated. Review with `git diff`, then commit.")
    return 0


def show_changes(result: Update) -> None:
    print("files:")
    for path, kind in sorted(result.changes.items()):
        print(f"  {kind:<9} {path}")
    print_section("pins:", (f"{name} {old} -> {new}" for name, old, new in result.pins))
    print_section("answers:", map(str, result.answers))
    print_section("controls:", (f"{c.id} {c.before} -> {c.after}" for c in result.controls))


def refusal(result: Update, *, accept: bool) -> bool:
    """Print why the update is refused (answers or controls weakened), unless accepted; True when refused."""
    reasons = []
    for change in result.silent_answers:
        reasons.append(f"answer {change} without being asked (pass --data {change.key}=... to choose)")
    for control in result.weakened:
        reasons.append(f"{control.id} passes now and would {control.after}: {control.reason}")
    if not reasons:
        return False
    if accept:
        print("warning: --accept-weakening: applying although:", file=sys.stderr)
    else:
        print("\nrefused, nothing written:", file=sys.stderr)
    for reason in reasons:
        print(f"  {reason}", file=sys.stderr)
    if not accept:
        print("Pass --accept-weakening to apply it anyway.", file=sys.stderr)
    return not accept
