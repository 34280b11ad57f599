"""`pipeproof protect`: apply the rendered protection settings through the platform APIs, check the live settings
against them, and export timestamped evidence of both (and of who has access).
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path
from typing import Any

from generator.errors import UserError, show

TOKEN_VARIABLES = {"github": "GITHUB_TOKEN", "gitlab": "GITLAB_TOKEN"}


def read_token(platform: str, token_file: Path | None, *, required: bool) -> str:
    """The token from --token-file, else GITHUB_TOKEN / GITLAB_TOKEN; '' when not required and absent."""
    variable = TOKEN_VARIABLES[platform]
    if token_file is not None:
        try:
            token = token_file.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise UserError(f"--token-file {str(token_file)!r}: cannot read it ({exc.strerror or exc})") from None
        if not token or "\n" in token:
            raise UserError(f"--token-file {str(token_file)!r}: must hold one token on one line")
        return token
    token = os.environ.get(variable, "").strip()
    if not token and required:
        raise UserError(
            f"no token: set {variable} or pass --token-file FILE (a token with admin access for apply, "
            "read access for check and export)"
        )
    return token


def default_api(platform: str, answers: dict[str, Any]) -> str:
    if platform == "gitlab":
        host = str(answers.get("gitlab_host") or "gitlab.com")
        return f"https://{host}/api/v4"
    host = str(answers.get("github_host") or "github.com")
    return "https://api.github.com" if host == "github.com" else f"https://{host}/api/v3"


def repository(root: Path, given: str | None, platform: str) -> tuple[str, str]:
    """owner/name from --repo, else GITHUB_REPOSITORY / CI_PROJECT_PATH, else the git remote `origin`."""
    value = given or os.environ.get("GITHUB_REPOSITORY" if platform == "github" else "CI_PROJECT_PATH")
    where = "--repo"
    if not value:
        try:
            url = subprocess.run(
                ["git", "-C", str(root), "remote", "get-url", "origin"],
                capture_output=True,
                text=True,
                timeout=10,
                check=False,
            ).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            url = ""
        value = _remote_path(url)
        where = "the origin remote"
        if not value:
            raise UserError(
                "cannot tell which repository to work on: pass --repo OWNER/NAME (or run inside a clone whose "
                "`origin` remote names it)"
            )
    parts = value.strip("/").split("/")
    if len(parts) < 2 or not all(re.fullmatch(r"[A-Za-z0-9_.-]+", p) for p in parts):
        raise UserError(f"{where} {show(value)} is not allowed: give OWNER/NAME, e.g. acme/shop")
    if platform == "github" and len(parts) != 2:
        raise UserError(f"{where} {show(value)} is not allowed: a GitHub repository is OWNER/NAME")
    return "/".join(parts[:-1]), parts[-1]


def check_api_url(url: str) -> str:
    if not re.fullmatch(r"https?://[A-Za-z0-9.-]+(?::\d{1,5})?(?:/[A-Za-z0-9._~/-]*)?", url):
        raise UserError(
            f"--api-url {show(url)} is not allowed: give the REST API base, e.g. https://api.github.com, "
            "https://github.example.com/api/v3 or https://gitlab.example.com/api/v4"
        )
    return url.rstrip("/")


def _remote_path(url: str) -> str:
    """owner/name of a git remote URL (https://host/o/n.git, git@host:o/n.git, ssh://git@host/o/n)."""
    from urllib.parse import urlsplit

    url = url.strip()
    if not url:
        return ""
    path = urlsplit(url).path if "://" in url else url.split(":", 1)[-1]
    return path.strip("/").removesuffix(".git")
