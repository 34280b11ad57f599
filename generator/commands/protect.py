"""`pipeproof protect apply|check|export [PATH]`: branch protection, rulesets, environments and approvals through
the platform API, from the rendered settings files.

apply   make the live settings match the files (idempotent; --dry-run prints each request and sends none)
check   compare the live settings with the files; each drift is a control finding (exit 1 on drift)
export  write a timestamped JSON evidence snapshot: live, desired, diff, access review, SHA-256
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

FORMATS = ("text", "json", "sarif", "markdown")


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", nargs="?", type=Path, default=Path("."), metavar="PATH", help="repository (default: .)")
    parser.add_argument(
        "--repo",
        metavar="OWNER/NAME",
        help="the repository on the platform (default: GITHUB_REPOSITORY / CI_PROJECT_PATH, else the origin remote)",
    )
    parser.add_argument(
        "--api-url",
        metavar="URL",
        help="REST API base (default: https://api.github.com, https://HOST/api/v3 for GitHub Enterprise Server "
        "from the answers' github_host, https://HOST/api/v4 for GitLab)",
    )
    parser.add_argument(
        "--token-file",
        type=Path,
        metavar="FILE",
        help="read the token from FILE instead of GITHUB_TOKEN / GITLAB_TOKEN (never printed)",
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = __doc__
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    shown: dict[str, Any] = {"epilog": parser.epilog, "formatter_class": argparse.RawDescriptionHelpFormatter}
    apply = sub.add_parser("apply", help="make the live settings match the files", **shown)
    _common(apply)
    apply.add_argument("--dry-run", action="store_true", help="print every request (method, path, body); send none")
    check = sub.add_parser("check", help="compare the live settings with the files; exit 1 on drift", **shown)
    _common(check)
    check.add_argument("--format", choices=FORMATS, default="text", help="report format (default: text)")
    check.add_argument("--output", type=Path, metavar="FILE", help="write the report here instead of stdout")
    export = sub.add_parser("export", help="write a timestamped JSON evidence snapshot of the live settings", **shown)
    _common(export)
    export.add_argument(
        "--output", type=Path, required=True, metavar="DIR", help="folder the snapshot is written under"
    )


def run(args: argparse.Namespace) -> int:
    from generator.protect import session

    with session.open_session(args, dry_run=getattr(args, "dry_run", False)) as s:
        if args.action == "apply":
            return int(s.apply(_say(s)))
        if args.action == "check":
            return int(s.check(_say(s), args.format, args.output))
        return int(s.export(_say(s), args.output))


def _say(s: Any) -> Callable[..., None]:
    redact = s.redact

    def say(text: str, *, err: bool = False) -> None:
        # Every line goes through the redaction: a token must not leak through an echoed API message.
        print(redact(text), file=sys.stderr if err else sys.stdout)

    return say
