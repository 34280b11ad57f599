"""Where a template comes from: this pipeproof's own releases, or the repository a project's answers record.

copier records `_src_path` and `_commit` in the answers, and an update re-renders both the recorded version and
the new one from `_src_path`. pipeproof therefore renders from the canonical repository URL (declared once in
data/project.yml) and maps that URL onto the release bundle it ships (releases.py) with git's
`url.<bundle>.insteadOf`, set through the environment for the copier call only, with a private copier cache.
The answers then hold no machine path, updates work offline, and plain `copier update` works wherever the
public repository is reachable. Any other recorded source (a fork, a local clone) is used as it is.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from packaging.version import Version

from generator import __version__, project, releases
from generator.errors import UserError

PACKAGE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Source:
    """A template copier can read: the URL it records, the version to render, the versions it has."""

    url: str
    ref: str | None  # None: copier takes the newest tag
    tags: Mapping[str, str] = field(default_factory=dict)  # release tag -> commit, oldest first
    bundle: Path | None = None  # the canonical URL is mapped onto this bundle

    @property
    def canonical(self) -> bool:
        return self.bundle is not None

    def newest(self) -> str | None:
        """The newest version tag this source offers (never newer than this pipeproof for its own releases)."""
        return list(self.tags)[-1] if self.tags else None

    def resolve(self, wanted: str) -> str:
        """`--to` as a tag of this source (0.2.0 and v0.2.0 both name v0.2.0); raise UserError if it has none.
        A fork or a local clone may also be updated to a branch or a commit (HEAD, main, a SHA)."""
        for name in (wanted, releases.tag(wanted)):
            if name in self.tags:
                return name
        if not self.canonical and releases.parse(wanted) is None:
            return wanted  # copier resolves it, or says it does not exist
        allowed = ", ".join(self.tags) or "none"
        newer = "" if not self.canonical else f" (this pipeproof {__version__} updates up to {self.newest()})"
        raise UserError(f"--to {wanted!r} is not a version of {self.url}; available: {allowed}{newer}")


def _normal(url: str) -> str:
    url = url.strip().removeprefix("git+").rstrip("/").removesuffix(".git").lower()
    for prefix, https in (("gh:", "https://github.com/"), ("git@github.com:", "https://github.com/")):
        if url.startswith(prefix):
            url = https + url[len(prefix) :].lstrip("/")
    return url.replace("ssh://git@github.com/", "https://github.com/")


def is_canonical(url: object) -> bool:
    """Whether a recorded `_src_path` names pipeproof's canonical repository (in any spelling copier accepts)."""
    return isinstance(url, str) and _normal(url) == _normal(project.repository())


def _aliases(url: str) -> list[str]:
    """The spellings of the canonical URL that git is asked to fetch once copier normalised it (it adds .git)."""
    base = url.rstrip("/").removesuffix(".git")
    aliases = [f"{base}.git"]
    if base.startswith("https://github.com/"):
        path = base.removeprefix("https://github.com/")
        aliases += [f"git@github.com:{path}.git", f"ssh://git@github.com/{path}.git"]
    return aliases


def checkout() -> Path | None:
    """The source checkout this package runs from (development), or None when installed from a wheel."""
    root = PACKAGE.parent
    if releases.BUNDLE.is_file() or not (root / "copier.yml").is_file() or not (root / ".git").exists():
        return None
    return root


@contextmanager
def own() -> Iterator[Source]:
    """This pipeproof's releases under the canonical URL: the wheel's bundle, or one built from the checkout."""
    if releases.BUNDLE.is_file():
        yield _own_source(releases.BUNDLE)
        return
    root = checkout()
    if root is None:
        raise UserError(
            f"this pipeproof install has no template bundle ({releases.BUNDLE}): it was built from a shallow "
            "clone (as pre-commit makes), which can audit and validate but not render; install pipeproof from "
            "PyPI or a full git clone"
        )
    with tempfile.TemporaryDirectory(prefix="pipeproof-bundle-") as tmp:
        bundle = Path(tmp, "template.bundle")
        try:
            releases.build_bundle(root, bundle, __version__)
        except releases.BundleError as exc:
            raise UserError(f"cannot bundle the template from the checkout {root}: {exc}") from None
        yield _own_source(bundle)


def _own_source(bundle: Path) -> Source:
    mine = Version(__version__)
    tags = {t: c for t, c in releases.bundle_tags(bundle).items() if (releases.parse(t) or mine) <= mine}
    return Source(project.repository(), releases.tag(__version__), tags, bundle)


@contextmanager
def for_new() -> Iterator[Source]:
    """The template `new` and `retrofit` render: the checkout itself during development (uncommitted edits
    included, as the goldens need), else this release from the bundle."""
    root = checkout()
    if root is not None:
        yield Source(str(root), "HEAD")
        return
    with own() as source:
        yield source


@contextmanager
def recorded(url: str) -> Iterator[Source]:
    """The source a project's answers record: pipeproof's own releases for the canonical URL, else that
    repository (a fork, a local clone), which must be reachable."""
    if is_canonical(url):
        with own() as source:
            yield source
        return
    yield Source(url, None, remote_tags(url))


def remote_tags(url: str) -> dict[str, str]:
    """Version tags of a fork or local template, oldest first; UserError if it cannot be reached."""
    target = url
    if not url.startswith(("http://", "https://", "git@", "ssh://", "git://", "git+", "gh:", "gl:", "file://")):
        path = Path(url).expanduser()
        if not path.exists():
            raise UserError(f"the template {url!r} does not exist on this machine; pass --src with where it is now")
        target = str(path.resolve())
    target = target.removeprefix("git+")
    for alias, base in (("gh:", "https://github.com/"), ("gl:", "https://gitlab.com/")):
        if target.startswith(alias):
            target = base + target[len(alias) :]
    proc = subprocess.run(
        ["git", "ls-remote", "--tags", "--refs", "--", target],
        capture_output=True,
        text=True,
        env={**os.environ, "GIT_TERMINAL_PROMPT": "0"},
        timeout=120,
    )
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["no answer"])[-1]
        raise UserError(f"cannot reach the template {url!r}: {last}")
    tags = {}
    for line in proc.stdout.splitlines():
        commit, _, ref = line.partition("\t")
        name = ref.removeprefix("refs/tags/")
        if releases.parse(name) is not None:
            tags[name] = commit
    return dict(sorted(tags.items(), key=lambda item: releases.parse(item[0]) or Version("0")))


@contextmanager
def activated(source: Source) -> Iterator[None]:
    """Make copier's git calls reach the source: insteadOf mapping and a private copier cache, for this call only.

    copier runs git through plumbum, whose environment is a copy taken at import: both are set.
    """
    from plumbum import local

    if source.bundle is None:
        yield
        return
    count = int(os.environ.get("GIT_CONFIG_COUNT", "0") or 0)
    env = {}
    for i, alias in enumerate(_aliases(source.url), start=count):
        env[f"GIT_CONFIG_KEY_{i}"] = f"url.{source.bundle}.insteadOf"
        env[f"GIT_CONFIG_VALUE_{i}"] = alias
    env["GIT_CONFIG_COUNT"] = str(count + len(_aliases(source.url)))
    cache = tempfile.mkdtemp(prefix="pipeproof-copier-cache-")
    env["COPIER_CACHE_DIR"] = cache
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        with local.env(**env):
            yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        shutil.rmtree(cache, ignore_errors=True)
