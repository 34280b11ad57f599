"""`pipeproof new DEST`: answer the questions, render the template into a new repository, summarise it."""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from generator import answers as answers_mod
from generator.answers import Question, Template
from generator.commands import add_data_argument
from generator.errors import UserError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "dest",
        type=Path,
        metavar="DEST",
        help="new repository folder (absent, empty, or holding only .git, README, licence)",
    )
    add_answer_arguments(parser, "take the default for every question not answered by --data")


def add_answer_arguments(parser: argparse.ArgumentParser, defaults_help: str) -> None:
    """--defaults, --data, --data-file (new and retrofit)."""
    parser.add_argument("--defaults", action="store_true", help=defaults_help)
    add_data_argument(parser)
    parser.add_argument("--data-file", type=Path, metavar="FILE", help="answers from a YAML mapping")


# What a freshly created repository holds before its first real commit: `new` renders beside these.
FRESH = re.compile(r"^(\.git|(readme|licen[cs]e|copying)(\.[a-z]+)?)$", re.IGNORECASE)


def check_dest(dest: Path) -> None:
    """DEST must be absent, empty, or hold only .git, a README or a licence: pipeproof never overwrites."""
    if dest.exists() and not dest.is_dir():
        raise UserError(f"DEST {str(dest)!r} exists and is not a folder")
    others = sorted(p.name for p in dest.iterdir() if not FRESH.match(p.name)) if dest.exists() else []
    if others:
        raise UserError(
            f"DEST {str(dest)!r} already holds {', '.join(others[:3])}{' ...' if len(others) > 3 else ''}; "
            "pipeproof new only writes into a new folder or one holding just .git, a README or a licence. "
            f"To add pipeproof to an existing repository run `pipeproof retrofit {dest}`."
        )


def interactive_prompt(template: Template) -> answers_mod.Prompt:
    """Ask with questionary, re-asking until copier.yml's validator accepts the answer."""
    import questionary

    def ask(question: Question, default: Any, scope: Mapping[str, Any]) -> Any:
        while True:
            value = _ask_once(questionary, question, default)
            try:
                value = answers_mod.cast(question, value)
                answers_mod.check(template, question, value, scope)
                return value
            except UserError as exc:
                print(f"  {exc}", file=sys.stderr)

    return ask


def _ask_once(questionary: Any, question: Question, default: Any) -> Any:
    text = f"{question.help} ({question.key})"
    if question.choices and question.multiselect:
        choices = [
            questionary.Choice(label, value, checked=value in (default or [])) for label, value in question.choices
        ]
        return questionary.checkbox(text, choices=choices).unsafe_ask()
    if question.choices:
        choices = [questionary.Choice(label, value) for label, value in question.choices]
        return questionary.select(
            text, choices=choices, default=next((c for c in choices if c.value == default), None)
        ).unsafe_ask()
    if question.type == "bool":
        return questionary.confirm(text, default=bool(default)).unsafe_ask()
    return questionary.text(text, default="" if default is None else str(default)).unsafe_ask()


def given_answers(args: argparse.Namespace) -> dict[str, Any]:
    """--data-file, then --data (which wins)."""
    given: dict[str, Any] = {}
    if args.data_file is not None:
        given.update(answers_mod.load_data_file(args.data_file))
    given.update(answers_mod.parse_data_args(args.data))
    return given


def gather(
    args: argparse.Namespace,
    template: Template,
    *,
    tty: bool,
    dest: Path | None = None,
    suggested: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Resolve every answer from --data-file, --data, the prompts or the defaults (`suggested` ones first);
    raise on anything bad."""
    given = given_answers(args)
    dest = dest or args.dest
    if args.defaults:
        return answers_mod.resolve(template, given, dest, suggested=suggested)
    if tty:
        return answers_mod.resolve(template, given, dest, prompt=interactive_prompt(template), suggested=suggested)
    unanswered: list[str] = []

    def note(question: Question, default: Any, scope: Mapping[str, Any]) -> Any:
        unanswered.append(question.key)
        return default

    answers_mod.resolve(template, given, dest, prompt=note, suggested=suggested)
    if unanswered:
        raise UserError(
            "no terminal to ask the questions, and these have no answer: "
            + ", ".join(unanswered)
            + ". Answer them with --data KEY=VALUE or --data-file FILE, or pass --defaults to take the defaults."
        )
    return answers_mod.resolve(template, given, dest, suggested=suggested)


def run(args: argparse.Namespace) -> int:
    from generator import nextsteps, render
    from generator.controls import applicable

    dest: Path = args.dest
    check_dest(dest)
    template = answers_mod.load_template(render.template_root())
    answers = gather(args, template, tty=sys.stdin.isatty() and sys.stdout.isatty())
    files = render.copy(dest, answers)

    full = {**answers, **answers_mod.derived(template, answers)}
    controls = applicable(full)
    by_file = controls_by_file(full)
    print(f"Rendered {len(files)} files into {dest}:")
    for path in files:
        print(f"  {path.as_posix():<44} {nextsteps.compact(by_file.get(path.as_posix(), []))}".rstrip())
    print(
        f"{len(controls)} controls apply; see {dest / 'compliance' / 'CONTROLS.md'} for what each one needs "
        "and the evidence it leaves."
    )
    print(nextsteps.render(nextsteps.next_steps(controls, full, str(dest))), end="")
    from generator.controls.evidence import retention_warnings

    for warning in retention_warnings(full):
        print(f"warning: {warning}", file=sys.stderr)
    if answers.get("evidence_store") == "none":
        print(
            "warning: no evidence store: evidence expires with the workflow artifacts (PP-EVID-02 does not apply)",
            file=sys.stderr,
        )
    return 0


def controls_by_file(answers: Mapping[str, Any]) -> dict[str, list[str]]:
    """Rendered file -> the ids of the applicable controls it implements (answers with the computed keys)."""
    from generator.controls import applicable

    by_file: dict[str, list[str]] = {}
    for control in applicable(answers):
        for target in control.implemented_by.get(answers["platform"], ()):
            by_file.setdefault(target.format_map(answers).split("#")[0], []).append(control.id)
    return by_file
