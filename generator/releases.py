"""Template versions: the releases pipeproof knows, and the git bundle of them that the wheel carries.

copier merges an update by rendering the project's recorded template version and the new one, so both must be
reachable where the update runs, offline too. The wheel carries a git bundle of every release plus its own
version (real commits of the public repository, so `_copier_conf.vcs_ref_hash` names one). The list of releases
lives in data/releases.yml as well as in tags, because tags do not always survive a push.
"""

from __future__ import annotations

import re
import subprocess
import tempfile
from collections.abc import Mapping
from functools import cache
from pathlib import Path

import yaml
from packaging.version import InvalidVersion, Version

from generator import git

PACKAGE = Path(__file__).resolve().parent
RELEASES = PACKAGE / "data" / "releases.yml"
BUNDLE = PACKAGE / "_template.bundle"  # only in a built wheel (hatch_build.py writes it)

_DESCRIBE = re.compile(r"^(?P<tag>.+)-(?P<count>\d+)-g(?P<sha>[0-9a-f]{4,64})$")


class BundleError(Exception):
    """The bundle cannot be built from this checkout (history missing, a tag that contradicts releases.yml)."""


def tag(version: str) -> str:
    """The git tag of a release: v0.1.0."""
    return f"v{version}"


def parse(ref: object) -> Version | None:
    """A template ref as copier records it in `_commit` (v0.1.0, or v0.1.0-3-gabc1234 past a tag) as a version."""
    if not isinstance(ref, str):
        return None
    match = _DESCRIBE.match(ref)
    try:
        return Version((match["tag"] if match else ref).removeprefix("v"))
    except InvalidVersion:
        return None


@cache
def releases() -> dict[str, str]:
    """Released version -> the commit its wheel renders, oldest first."""
    data = yaml.safe_load(RELEASES.read_text(encoding="utf-8")) or {}
    found = {str(v): str(sha) for v, sha in (data.get("releases") or {}).items()}
    return dict(sorted(found.items(), key=lambda item: Version(item[0])))


def _git(cwd: Path, *args: str, env: Mapping[str, str] | None = None) -> str:
    try:
        return git.run(cwd, *args, env=env)
    except git.GitError as exc:
        raise BundleError(f"{exc} (in {cwd})") from None


def build_bundle(checkout: Path, out: Path, version: str) -> dict[str, str]:
    """Write a git bundle of every release and of the checkout tagged v<version>; return tag -> commit.

    Uncommitted changes in the checkout (tracked, and untracked files git does not ignore) go into a commit on
    top of HEAD, so a wheel built from a work tree renders what its files say. Nothing is written into the
    checkout's repository: the bundle is assembled in a temporary one that borrows its objects.
    """
    checkout = checkout.resolve()
    if Path(_git(checkout, "rev-parse", "--show-toplevel")).resolve() != checkout:
        raise BundleError(f"{checkout} is not the top level of a git checkout")
    own, own_tag = Version(version), tag(version)
    wanted = {tag(v): sha for v, sha in releases().items()}
    listing = _git(checkout, "for-each-ref", "refs/tags/v*", "--format=%(refname:strip=2) %(objectname) %(*objectname)")
    for line in filter(None, listing.splitlines()):
        name, obj, peeled = (line.split() + [""])[:3]
        found = parse(name)
        if found is None or found > own or name != tag(str(found)):
            continue
        commit = peeled or obj
        if wanted.setdefault(name, commit) != commit:
            raise BundleError(f"tag {name} is {commit[:12]} but data/releases.yml says {wanted[name][:12]}")
    head = _git(checkout, "rev-parse", "HEAD")
    dirty = bool(_git(checkout, "status", "--porcelain"))
    if own_tag in wanted and (wanted[own_tag] != head or dirty):
        raise BundleError(
            f"version {version} is already released at {wanted[own_tag][:12]}, but this checkout is "
            f"{head[:12]}{' with uncommitted changes' if dirty else ''}: bump __version__ in generator/__init__.py"
        )
    for name, commit in wanted.items():
        if subprocess.run(["git", "cat-file", "-e", f"{commit}^{{commit}}"], cwd=checkout).returncode != 0:
            raise BundleError(f"{name}'s commit {commit} is not in this clone (shallow?): fetch the full history")
    objects = Path(checkout, _git(checkout, "rev-parse", "--git-common-dir"), "objects").resolve()
    with tempfile.TemporaryDirectory(prefix="pipeproof-bundle-") as tmp:
        bare = Path(tmp, "template.git")
        _git(Path(tmp), "init", "--quiet", "--bare", str(bare))
        (bare / "objects" / "info" / "alternates").write_text(f"{objects}\n", encoding="utf-8")
        current = head
        if dirty:
            date = _git(checkout, "log", "-1", "--format=%cI", "HEAD")
            env = {
                **git.IDENTITY,
                "GIT_AUTHOR_DATE": date,
                "GIT_COMMITTER_DATE": date,
                "GIT_DIR": str(bare),
                "GIT_WORK_TREE": str(checkout),
                "GIT_INDEX_FILE": str(Path(tmp, "index")),
            }
            _git(checkout, "read-tree", head, env=env)
            _git(checkout, "add", "--all", env=env)
            tree = _git(checkout, "write-tree", env=env)
            message = f"pipeproof {version} (the build tree)"
            current = _git(checkout, "commit-tree", tree, "-p", head, "-m", message, env=env)
        refs = {f"refs/tags/{name}": commit for name, commit in wanted.items()}
        refs[f"refs/tags/{own_tag}"] = current
        refs["refs/heads/main"] = current
        for ref, commit in refs.items():
            _git(bare, "update-ref", ref, commit)
        _git(bare, "symbolic-ref", "HEAD", "refs/heads/main")
        out.parent.mkdir(parents=True, exist_ok=True)
        _git(bare, "bundle", "create", "--quiet", str(out.resolve()), "--all")
    return {ref.removeprefix("refs/tags/"): commit for ref, commit in refs.items() if ref.startswith("refs/tags/")}


def bundle_tags(bundle: Path) -> dict[str, str]:
    """Release tag -> commit for every v* tag in a bundle, oldest release first."""
    out = _git(bundle.parent, "bundle", "list-heads", str(bundle))
    found = {}
    for line in out.splitlines():
        commit, _, ref = line.partition(" ")
        name = ref.removeprefix("refs/tags/")
        if ref.startswith("refs/tags/") and parse(name) is not None:
            found[name] = commit
    return dict(sorted(found.items(), key=lambda item: parse(item[0]) or Version("0")))
