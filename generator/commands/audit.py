"""`pipeproof audit [PATH]`: check any repository against the control catalog."""

from __future__ import annotations

import argparse
import dataclasses
import gc
import sys
from pathlib import Path
from typing import Any

from generator.errors import UserError

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
    live = parser.add_argument_group("live settings (GitHub, GitLab)")
    live.add_argument(
        "--live",
        action="store_true",
        help="read the live settings from the platform API and judge those controls on what it enforces: "
        "GitHub branch protection, rulesets, environments, CODEOWNERS errors and secret scanning (GITHUB_TOKEN "
        "or --token-file, read access); GitLab the .gitlab/settings/ payloads and pipeline schedules "
        "(GITLAB_TOKEN or --token-file, read_api)",
    )
    live.add_argument("--repo", metavar="OWNER/NAME", help="with --live: the repository (default: the origin remote)")
    live.add_argument("--api-url", metavar="URL", help="with --live: the REST API base (default: from the answers)")
    live.add_argument("--token-file", type=Path, metavar="FILE", help="with --live: read the token from FILE")


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
    if args.live:
        _live(report, args)
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


def _live_gitlab(report: Any, args: argparse.Namespace) -> None:
    """GitLab: each control a `.gitlab/settings/` payload or a pipeline schedule serves fails on live drift from
    the files, and otherwise keeps the files' verdict, now known to hold live."""
    import datetime as dt

    from generator.audit import Result
    from generator.protect import gitlab
    from generator.protect.verdicts import stamp

    with gitlab.open_session(args.path, args, dict(report.answers), dry_run=False) as s:
        at = dt.datetime.now(dt.UTC).replace(microsecond=0)
        found = s.drift(s.read())
    when = f"live API at {stamp(at)}"
    served = s.served(found)
    for i, r in enumerate(report.results):
        if r.control.id not in served or r.status in {"not-applicable", "waived"}:
            continue
        findings = found.get(r.control.id, [])
        if findings:
            reason = f"{when}: drift from the files: {findings[0].message} (the files alone: {r.status})"
            where = tuple(f.where for f in findings)
            report.results[i] = Result(r.control, "fail", reason, where, tuple(findings))
        else:
            report.results[i] = dataclasses.replace(r, reason=f"{r.reason} ({when}: the live settings match the files)")
    report.read = dict(report.read) | {"live API snapshot": 1}


def _live(report: Any, args: argparse.Namespace) -> None:
    """Judge the live-decidable controls on the live settings; without a token or an answer, say why and keep
    the verdicts the files give (`unknown` where they cannot decide)."""
    from generator.protect import session, verdicts
    from generator.protect.client import ApiError

    def degrade(why: str) -> None:
        print(
            f"warning: --live: {why}; the live settings were not read, so verdicts stay as the files decide",
            file=sys.stderr,
        )
        for i, r in enumerate(report.results):
            if r.control.id in verdicts.LIVE_CONTROLS and r.status == "unknown":
                report.results[i] = dataclasses.replace(r, reason=f"{r.reason} (no live check: {why})")

    if report.answers.get("platform", "github") == "gitlab":
        try:
            _live_gitlab(report, args)
        except (ApiError, UserError) as exc:
            degrade(str(exc))
        return
    try:
        with session.open_session(args, allow_empty=True) as s:
            from generator.protect import github

            live = github.read_live(s.client, s.want)
            verdicts.overlay(report, s.pipeline, s.want, live, session._now())
    except ApiError as exc:
        degrade(str(exc))
    except UserError as exc:
        degrade(str(exc))
