"""The git questions update and retrofit ask of a repository, through the git command."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping
from pathlib import Path

from generator.errors import UserError

# Commits pipeproof makes in its own staged clones: no hooks, no signing, a fixed identity.
IDENTITY = {
    "GIT_AUTHOR_NAME": "pipeproof",
    "GIT_AUTHOR_EMAIL": "pipeproof@localhost",
    "GIT_COMMITTER_NAME": "pipeproof",
    "GIT_COMMITTER_EMAIL": "pipeproof@localhost",
}


class GitError(Exception):
    """A git command failed."""


def run(cwd: Path, *args: str, env: Mapping[str, str] | None = None) -> str:
    """stdout of `git args` in cwd (stripped of the final newline); GitError with git's message on failure."""
    return run_bytes(cwd, *args, env=env).decode(errors="surrogateescape").removesuffix("\n")


def run_bytes(cwd: Path, *args: str, env: Mapping[str, str] | None = None, input: bytes | None = None) -> bytes:
    """stdout of `git args` in cwd as bytes (file contents); GitError with git's message on failure."""
    proc = subprocess.run(
        ["git", *args],
        cwd=cwd,
        env={**os.environ, "GIT_TERMINAL_PROMPT": "0", **(env or {})},
        input=input,
        capture_output=True,
        check=False,
    )
    if proc.returncode != 0:
        message = proc.stderr.decode(errors="replace").strip() or f"exit {proc.returncode}"
        raise GitError(f"git {' '.join(args[:3])}: {message}")
    return proc.stdout


def work_tree(path: Path, *, what: str = "PATH") -> Path:
    """The top level of the git work tree at path; UserError when path is not one (or is a bare repository)."""
    if not path.is_dir():
        raise UserError(f"{what} {str(path)!r} is not a directory")
    try:
        bare = run(path, "rev-parse", "--is-bare-repository")
        if bare == "true":
            raise UserError(
                f"{what} {str(path)!r} is a bare git repository (no work tree): clone it and run pipeproof in the clone"
            )
        top = Path(run(path, "rev-parse", "--show-toplevel"))
    except GitError:
        raise UserError(
            f"{what} {str(path)!r} is not in a git repository: pipeproof needs git to show and undo what it "
            "changes (run `git init` and commit first)"
        ) from None
    if top.resolve() == Path(path).resolve():
        return top.resolve()
    if run(path, "rev-parse", "--is-inside-git-dir") == "true":
        raise UserError(f"{what} {str(path)!r} is inside a .git folder, not a work tree")
    return top.resolve()


def head(top: Path) -> str | None:
    """The commit checked out, or None in a repository without commits."""
    try:
        return run(top, "rev-parse", "--verify", "--quiet", "HEAD^{commit}")
    except GitError:
        return None


def dirty(top: Path) -> list[str]:
    """Uncommitted changes and untracked files, as `git status --porcelain` lines (ignored files excluded)."""
    return run(top, "status", "--porcelain", "--untracked-files=all").splitlines()


def default_branch(top: Path) -> str | None:
    """The remote's default branch when known, else the branch checked out."""
    try:
        return run(top, "symbolic-ref", "--quiet", "--short", "refs/remotes/origin/HEAD").removeprefix("origin/")
    except GitError:
        pass
    try:
        return run(top, "symbolic-ref", "--quiet", "--short", "HEAD")
    except GitError:
        return None


def remote_url(top: Path) -> str | None:
    """origin's URL, else the first remote's."""
    try:
        remotes = run(top, "remote").split()
    except GitError:
        return None
    for name in (["origin"] if "origin" in remotes else []) + remotes:
        try:
            return run(top, "remote", "get-url", name)
        except GitError:
            continue
    return None
