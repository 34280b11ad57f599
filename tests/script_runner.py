"""Run the scripts of a rendered tree the way a runner does: bash, a clean environment, the token a secret.

Every run asserts that the token appears neither in the script's output nor on curl's command line (a
wrapper on PATH logs curl's arguments, where `ps` would show them).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.fakes.github_api import FakeGitHub
from tests.helpers import render_scenario

TOKEN = "ghs_pipeproofTestToken0000000000000000000"
SCENARIO = "python-defaults"
REPO = "acme/shop"
API_SH = ".github/scripts/api.sh"


@dataclass(frozen=True)
class Result:
    returncode: int
    stdout: str
    stderr: str

    def lines(self, command: str) -> list[str]:
        """The messages of every ::COMMAND:: workflow command the script printed."""
        prefix = f"::{command}::"
        return [line[len(prefix) :] for line in (self.stdout + self.stderr).splitlines() if line.startswith(prefix)]

    @property
    def errors(self) -> list[str]:
        return self.lines("error")

    @property
    def warnings(self) -> list[str]:
        return self.lines("warning")

    def __str__(self) -> str:
        return f"exit {self.returncode}\n--- stdout\n{self.stdout}\n--- stderr\n{self.stderr}"


class Runner:
    """The scripts of one rendered scenario, and a sandbox to run them in."""

    def __init__(self, tree: Path, sandbox: Path) -> None:
        self.tree = tree
        self.sandbox = sandbox
        self.home = sandbox / "home"
        self.home.mkdir()
        self.bin = sandbox / "bin"
        self.bin.mkdir()
        self.curl_log = sandbox / "curl-argv.log"
        real_curl = shutil.which("curl")
        assert real_curl, "curl is needed to run the scripts"
        wrapper = self.bin / "curl"
        wrapper.write_text(f'#!/bin/sh\nprintf "%s\\n" "$*" >>"{self.curl_log}"\nexec "{real_curl}" "$@"\n')
        wrapper.chmod(0o755)

    @classmethod
    def render(cls, factory: pytest.TempPathFactory, scenario: str = SCENARIO) -> Runner:
        """A golden scenario rendered by the project's own code path, once per session; a fresh sandbox per
        caller. Scripts ship only with the workflows that call them, so each test names a scenario that has its
        script."""
        tree = factory.getbasetemp() / "rendered-scripts" / scenario
        if not tree.exists():
            render_scenario(scenario, tree)
        return cls(tree, factory.mktemp("sandbox"))

    def script(self, rel: str) -> Path:
        path = self.tree / rel
        assert path.is_file(), f"{rel} is not in the rendered tree"
        return path

    def env(self, **extra: str | None) -> dict[str, str]:
        env = {
            "PATH": f"{self.bin}{os.pathsep}{os.environ['PATH']}",
            "HOME": str(self.home),
            "LANG": "C.UTF-8",
            "TMPDIR": str(self.sandbox),
            "GITHUB_TOKEN": TOKEN,
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_CONFIG_GLOBAL": os.devnull,
            # Retries without real waits, unless a test asks for them.
            "PIPEPROOF_API_BACKOFF": "0",
            "PIPEPROOF_API_MAX_WAIT": "5",
            "PIPEPROOF_API_TIMEOUT": "10",
        }
        for key, value in extra.items():
            if value is None:
                env.pop(key, None)
            else:
                env[key] = value
        return env

    def run(self, rel: str, *args: str, cwd: Path | None = None, timeout: float = 60, **env: str | None) -> Result:
        """Run SCRIPT (a path in the rendered tree) under bash with the sandbox environment plus ENV."""
        return self.run_path(self.script(rel), *args, cwd=cwd, timeout=timeout, **env)

    def library(self, function: str, *args: str, **env: str | None) -> Result:
        """Call a function of the rendered .github/scripts/api.sh, as a script that sources it would."""
        driver = self.sandbox / "driver.sh"
        driver.write_text(f'set -euo pipefail\n. "{self.script(API_SH)}"\n"$@"\n')
        return self.run_path(driver, function, *args, **env)

    def run_path(
        self, script: Path, *args: str, cwd: Path | None = None, timeout: float = 60, **env: str | None
    ) -> Result:
        self.curl_log.unlink(missing_ok=True)
        proc = subprocess.run(
            ["bash", str(script), *args],
            env=self.env(**env),
            cwd=cwd or self.sandbox,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        result = Result(proc.returncode, proc.stdout, proc.stderr)
        assert TOKEN not in result.stdout + result.stderr, f"the token leaked into the output of {script.name}"
        if self.curl_log.exists():
            assert TOKEN not in self.curl_log.read_text(), f"the token was on curl's command line in {script.name}"
        return result


def fake_github(page_size: int = 2) -> Iterator[FakeGitHub]:
    """The stand-in API for REPO, small pages so lists span several; after the test, no URL held the token."""
    with FakeGitHub(repo=REPO, page_size=page_size, token=TOKEN) as fake:
        yield fake
    for req in fake.requests:
        assert TOKEN not in req.target, f"the token was in a URL: {req.target}"


class GitRepo:
    """A throw-away repository with real git, for the scripts that read history."""

    def __init__(self, path: Path, branch: str = "main") -> None:
        self.path = path
        path.mkdir(parents=True)
        self.git("init", "--quiet", f"--initial-branch={branch}")
        self.count = 0

    def git(self, *args: str) -> str:
        env = {
            "PATH": os.environ["PATH"],
            "HOME": str(self.path),
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_CONFIG_GLOBAL": os.devnull,
            "GIT_AUTHOR_NAME": "Dev",
            "GIT_AUTHOR_EMAIL": "dev@example.com",
            "GIT_COMMITTER_NAME": "Dev",
            "GIT_COMMITTER_EMAIL": "dev@example.com",
        }
        proc = subprocess.run(["git", *args], cwd=self.path, env=env, capture_output=True, text=True, check=True)
        return proc.stdout.strip()

    def commit(self, message: str | None = None, files: dict[str, str] | None = None) -> str:
        self.count += 1
        for rel, text in (files or {f"file{self.count}.txt": f"change {self.count}\n"}).items():
            target = self.path / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)
            self.git("add", rel)
        self.git("commit", "--quiet", "-m", message or f"change {self.count}")
        return self.git("rev-parse", "HEAD")
