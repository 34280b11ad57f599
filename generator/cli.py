"""The command line. The only place that prints errors and exits; each command returns an exit code."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from generator import __version__
from generator.errors import UserError

EXIT_CODES = """\
exit codes:
  0    success
  1    findings (validate, audit), drift (protect check), a failed or partial apply (protect), conflicts
       or a refused weakening (update), or a failure while running
  2    usage error or bad input (nothing was written); check-update: an update is available
  130  interrupted
"""

# name -> (module in generator.commands, one-line help). Modules are imported only when their command runs,
# so `pipeproof --help` stays fast.
COMMANDS: dict[str, tuple[str, str]] = {
    "new": ("new", "render a hardened pipeline into a new repository"),
    "validate": (
        "validate",
        "run yamllint, actionlint, check-jsonschema, zizmor, kubernetes-validate and the Argo CD RBAC check",
    ),
    "audit": ("audit", "check any repository against the control catalog"),
    "controls": ("controls", "list the control catalog"),
    "update": ("update", "bring a project to a newer template version, keeping your edits and every control"),
    "check-update": ("check_update", "exit 0 when the project's template is current, 2 when an update exists"),
    "retrofit": ("retrofit", "add the pipeline to an existing repository without overwriting anything"),
    "protect": (
        "protect",
        "apply, check (exit 1 on drift) and export branch protection, rulesets and environments through the "
        "platform API",
    ),
}


def build_parser(selected: str | None = None) -> argparse.ArgumentParser:
    """The parser; only the selected command's module is imported to declare its arguments."""
    parser = argparse.ArgumentParser(
        prog="pipeproof",
        description=(
            "Generate, harden, prove and audit a CI/CD pipeline for SOC 2 (CC6.1, CC7.1, CC8.1) and "
            "ISO 27001:2022 Annex A change management."
        ),
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"pipeproof {__version__}")
    parser.add_argument("--debug", action="store_true", help="show a traceback for unexpected errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (module, help_text) in COMMANDS.items():
        command = sub.add_parser(
            name,
            help=help_text,
            description=help_text[0].upper() + help_text[1:] + ".",
            epilog=EXIT_CODES,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        command.set_defaults(module=module)
        if name == selected:
            importlib.import_module(f"generator.commands.{module}").add_arguments(command)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(next((a for a in argv if a in COMMANDS), None))
    args = parser.parse_args(argv)
    try:
        module = importlib.import_module(f"generator.commands.{args.module}")
        return int(module.run(args))
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # the one boundary for surprises
        if args.debug:
            raise
        print(f"error: unexpected {type(exc).__name__}: {exc} (run with --debug for a traceback)", file=sys.stderr)
        return 1
