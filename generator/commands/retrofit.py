"""`pipeproof retrofit [PATH]`: add the pipeline to an existing repository without overwriting anything."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from generator import source
from generator.commands import print_section
from generator.errors import UserError
from generator.source import Source


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from generator.commands.new import add_answer_arguments

    parser.add_argument(
        "path", nargs="?", type=Path, default=Path("."), metavar="PATH", help="the repository's top level (default: .)"
    )
    add_answer_arguments(parser, "take what was detected in the repository, else the default, for every question")
    parser.add_argument(
        "--dry-run", action="store_true", help="print the whole plan (add, merge, propose); write nothing"
    )
    parser.add_argument(
        "--src",
        metavar="PATH_OR_URL",
        help="render this template (a fork or a local clone) instead of this pipeproof's own",
    )
    parser.add_argument(
        "--to", metavar="VERSION", help="with --src: the template version to render (default: newest tag)"
    )


def run(args: argparse.Namespace) -> int:
    from generator import answers as answers_mod
    from generator import detect, render, retrofit
    from generator.commands.new import controls_by_file, gather
    from generator.nextsteps import compact

    root, name = retrofit.repository(args.path)
    found = detect.suggest(root)
    answers_mod.parse_data_args(args.data)  # a bad --data is refused before anything is printed
    tty = sys.stdin.isatty() and sys.stdout.isatty()
    print(f"pipeproof retrofit {root}{' (dry run: nothing is written)' if args.dry_run else ''}")
    print("detected:")
    for key, why in found.why.items():
        value = found.answers.get(key, "")
        shown = (
            ", ".join(value) if isinstance(value, list) else str(value).lower() if isinstance(value, bool) else value
        )
        print(f"  {key:<15} {shown or '-':<14} {why}")
    if len(found.languages) > 1:
        primary = found.languages[0][0]
        print(f"  several languages: {primary} is the primary one (most source files); --data language=... changes it")
    template = answers_mod.load_template(render.template_root())
    answers = gather(args, template, tty=tty and not args.defaults, dest=root, suggested=found.answers)
    with retrofit.workspace() as work, _template(args.src, args.to) as src:
        plan = retrofit.plan(root, answers, name, src, work)
    by_file = controls_by_file({**answers, **answers_mod.derived(template, answers)})
    print("plan:")
    for step in plan.steps:
        ids = compact(by_file.get(step.source, []))
        print(f"  {step.action:<8} {step.path:<48} {step.note or ids}".rstrip())
    print_section("existing CI already covering controls (found by the audit):", plan.covered)
    print_section("needs your decision:", plan.decisions, "  - ")
    print(coverage(plan.before, plan.after))
    print_section("still failing after it (your own files; see `pipeproof audit`):", plan.remaining)
    if args.dry_run:
        return 0
    if tty and not args.defaults and not _confirm():
        print("nothing written", file=sys.stderr)
        return 1
    retrofit.apply(plan)
    written = sum(s.action != "keep" for s in plan.steps)
    print(f"Wrote {written} files; answers recorded in {name}, so `pipeproof update` works from now on. Commit them.")
    return 0


@contextmanager
def _template(src: str | None, to: str | None) -> Iterator[Source]:
    """This pipeproof's own template, or --src (a fork, a local clone) at --to or its newest tag."""
    if src is None:
        if to is not None:
            raise UserError("--to needs --src (without it, retrofit renders this pipeproof's own release)")
        with source.for_new() as own:
            yield own
        return
    with source.recorded(src) as found:
        yield Source(found.url, found.resolve(to) if to else found.ref or found.newest(), found.tags, found.bundle)


def _shown(value: Any) -> str:
    if isinstance(value, list):
        return ", ".join(map(str, value)) or "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value or "-")


def coverage(before: dict[str, str], after: dict[str, str]) -> str:
    """controls passing: 3 of 12 applicable -> 30 of 31 applicable."""

    def count(statuses: dict[str, str]) -> str:
        applicable = [s for s in statuses.values() if s != "not-applicable"]
        return f"{sum(s == 'pass' for s in applicable)} of {len(applicable)} applicable"

    return f"controls passing: {count(before)} before -> {count(after)} after"


def _confirm() -> bool:
    import questionary

    return bool(questionary.confirm("Write these changes?", default=True).unsafe_ask())
