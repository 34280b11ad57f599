"""`pipeproof audit [PATH]`: check any repository against the control catalog."""

from __future__ import annotations

import argparse
import gc
import sys
from pathlib import Path

FORMATS = ("text", "json", "sarif", "markdown")
SEVERITIES = ("low", "medium", "high", "critical")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", nargs="?", type=Path, default=Path("."), metavar="PATH", help="repository (default: .)")
    parser.add_argument("--format", choices=FORMATS, default="text", help="report format (default: text)")
    parser.add_argument("--output", type=Path, metavar="FILE", help="write the report here instead of stdout")
    parser.add_argument(
        "--fail-on",
        choices=SEVERITIES,
        default="low",
        help="exit 1 when a control of this severity or higher fails (default: low, any failure)",
    )
    parser.add_argument(
        "--strict",
        action="store_true",
        help="count `unknown` (cannot be decided from the files) as failing for --fail-on",
    )
    parser.add_argument(
        "--profile",
        choices=("auto", "service", "library"),
        default="auto",
        help="what the repository is: service (deploys; deployment and evidence controls apply), library "
        "(publishes releases), or auto: detected from its pipeline (default)",
    )


def run(args: argparse.Namespace) -> int:
    from generator.answers_file import check_tree
    from generator.audit import audit
    from generator.controls import Severity
    from generator.report import FORMATS as RENDER
    from generator.report.text import summary_line

    # The process ends after one audit: the cyclic garbage collector would only rescan the parsed documents
    # (a fifth of the time on thousands of workflows), so it stays off.
    gc.disable()
    check_tree(args.path)  # answers from a newer template: refuse rather than judge by older, weaker defaults
    report = audit(args.path, profile=args.profile)
    platform = report.answers.get("platform")
    if not any(platform in r.control.platforms for r in report.results):
        print(f"warning: no control covers platform {platform!r} yet (planned); nothing was checked", file=sys.stderr)
    if report.empty:
        print(
            f"error: nothing to audit in {args.path}: no workflow, GitLab pipeline or settings file was found "
            "(is PATH the repository root?)",
            file=sys.stderr,
        )
    output = RENDER[args.format](report)
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(output, encoding="utf-8")
        print(summary_line(report), file=sys.stderr)
    else:
        sys.stdout.write(output)
    failing = report.failing(Severity[args.fail_on.upper()], strict=args.strict)
    return 1 if failing or report.errors or report.empty else 0
