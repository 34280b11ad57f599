"""The built wheel, installed outside the source tree, with no network: it renders from the template bundle it
carries, records the canonical repository (no machine path), and updates projects offline, 0.1.0 wheel renders
included.

The wheel is built once for the module. Network access is shut for every pipeproof call: git may use only
local transports (GIT_ALLOW_PROTOCOL=file) and HTTP goes to a closed port.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

from generator import __version__, project, releases
from tests.helpers import ROOT, edit, git, git_save

OFFLINE = {
    "GIT_ALLOW_PROTOCOL": "file",
    "http_proxy": "http://127.0.0.1:9",
    "https_proxy": "http://127.0.0.1:9",
    "HTTP_PROXY": "http://127.0.0.1:9",
    "HTTPS_PROXY": "http://127.0.0.1:9",
    "ALL_PROXY": "http://127.0.0.1:9",
}
OWN_TAG = releases.tag(__version__)


def build_wheel(source: Path, dist: Path) -> Path:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "--quiet",
            "-w",
            str(dist),
            str(source),
        ],
        check=True,
        timeout=300,
    )
    (wheel,) = dist.glob("pipeproof-*.whl")
    return wheel


def install(wheel: Path, site: Path) -> dict[str, str]:
    """Install a wheel into its own folder; the environment that runs it from there (offline)."""
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-deps",
            "--no-index",
            "--quiet",
            "--target",
            str(site),
            str(wheel),
        ],
        check=True,
        timeout=300,
    )
    return {**os.environ, **OFFLINE, "PYTHONPATH": str(site)}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """This checkout's wheel, installed: (the wheel, the environment that runs it)."""
    base = tmp_path_factory.mktemp("wheel")
    built = build_wheel(ROOT, base / "dist")
    return built, install(built, base / "site")


def as_public_repository(built: Path, tmp_path: Path) -> dict[str, str]:
    """An environment in which the canonical URL answers from the wheel's bundle, as the public repository
    would (copier alone, no pipeproof)."""
    bundle = tmp_path / "public.bundle"
    bundle.write_bytes(zipfile.ZipFile(built).read("generator/_template.bundle"))
    return {
        **os.environ,
        "GIT_CONFIG_COUNT": "1",
        "GIT_CONFIG_KEY_0": f"url.{bundle}.insteadOf",
        "GIT_CONFIG_VALUE_0": project.repository() + ".git",
        "COPIER_CACHE_DIR": str(tmp_path / "copier-cache"),
    }


def pipeproof(env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "generator", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )


def test_wheel_carries_the_template_and_a_bundle_of_its_releases(
    wheel: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    built, _ = wheel
    names = zipfile.ZipFile(built).namelist()
    assert "generator/_template/copier.yml" in names
    assert "generator/_template/generator/data/pins.yml" in names
    assert any(n.startswith("generator/_template/templates/") for n in names)
    bundle = tmp_path / "template.bundle"
    bundle.write_bytes(zipfile.ZipFile(built).read("generator/_template.bundle"))
    tags = releases.bundle_tags(bundle)
    assert list(tags) == [releases.tag(v) for v in releases.releases()] + [OWN_TAG]
    assert tags["v0.1.0"] == releases.releases()["0.1.0"]  # the real commit 0.1.0 wheels rendered
    # This build is a real commit (vcs_ref_hash): HEAD, or a commit of the uncommitted changes on top of it.
    head = git(ROOT, "rev-parse", "HEAD").strip()
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", "--bare", str(bundle), str(clone))
    assert head in (tags[OWN_TAG], git(clone, "rev-parse", f"{tags[OWN_TAG]}^").strip())
    assert bundle.stat().st_size < 2_000_000


def test_wheel_renders_offline_and_records_no_machine_path(wheel: tuple[Path, dict[str, str]], tmp_path: Path) -> None:
    _, env = wheel
    where = pipeproof(env, tmp_path, "--version")
    assert where.returncode == 0 and __version__ in where.stdout
    proc = pipeproof(env, tmp_path, "new", "demo", "--defaults")
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "demo/.github/workflows/deploy.yml").is_file()
    answers = (tmp_path / "demo/.copier-answers.yml").read_text()
    assert f"_src_path: {project.repository()}\n" in answers and f"_commit: {OWN_TAG}\n" in answers
    # The audit action runs the very commit that rendered the project, pinned by its SHA.
    bundle = tmp_path / "template.bundle"
    bundle.write_bytes(zipfile.ZipFile(wheel[0]).read("generator/_template.bundle"))
    commit = releases.bundle_tags(bundle)[OWN_TAG]
    drift = (tmp_path / "demo/.github/workflows/pr-checks.yml").read_text()
    assert f"uses: {project.action()}@{commit} # {OWN_TAG}\n" in drift
    site = env["PYTHONPATH"]
    for path in (tmp_path / "demo").rglob("*"):
        assert not path.is_file() or site not in path.read_text(), f"{path} names the install folder"


def test_update_from_the_installed_wheel_offline(wheel: tuple[Path, dict[str, str]], tmp_path: Path) -> None:
    """A project plain copier rendered from the public repository at v0.1.0 updates from the wheel alone."""
    built, env = wheel
    dest = tmp_path / "shop"
    copier = [sys.executable, "-m", "copier", "copy", "--defaults", "--quiet", "--vcs-ref", "v0.1.0"]
    public = as_public_repository(built, tmp_path)
    subprocess.run([*copier, project.repository(), str(dest)], env=public, check=True, timeout=300)
    assert "_commit: v0.1.0" in (dest / ".copier-answers.yml").read_text()
    git_save(dest, "rendered by copier from the public repository")

    check = pipeproof(env, dest, "check-update")
    assert check.returncode == 2 and f"v0.1.0 -> {OWN_TAG}" in check.stdout, check.stderr
    proc = pipeproof(env, dest, "update")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    answers = (dest / ".copier-answers.yml").read_text()
    assert f"_commit: {OWN_TAG}\n" in answers and f"_src_path: {project.repository()}\n" in answers
    git_save(dest, "updated")
    assert pipeproof(env, dest, "check-update").returncode == 0
    again = pipeproof(env, dest, "update")
    assert again.returncode == 0 and "Already up to date" in again.stdout


def test_a_0_1_0_wheel_render_is_adopted_and_updated(wheel: tuple[Path, dict[str, str]], tmp_path: Path) -> None:
    """0.1.0 wheels recorded their site-packages path and no commit; its render is recognised as 0.1.0."""
    _, env = wheel
    old_source = tmp_path / "v0.1.0"
    archive = tmp_path / "v0.1.0.tar"
    git(ROOT, "archive", "--format=tar", "-o", str(archive), releases.releases()["0.1.0"])  # tags may be gone
    with tarfile.open(archive) as tar:
        tar.extractall(old_source, filter="data")
    old_env = install(build_wheel(old_source, tmp_path / "dist-0.1.0"), tmp_path / "site-0.1.0")
    rendered = pipeproof(old_env, tmp_path, "new", "legacy", "--defaults", "--data", "required_approvals=4")
    assert rendered.returncode == 0, rendered.stderr
    dest = tmp_path / "legacy"
    answers = (dest / ".copier-answers.yml").read_text()
    assert "_commit" not in answers and "site-0.1.0" in answers  # what 0.1.0 wheels wrote
    git_save(dest, "rendered by pipeproof 0.1.0")
    edit(dest / "scripts/deploy.sh", "exit 1", './ops/deploy.sh "$@"  # ours', count=0)
    git_save(dest, "our deploy")

    assert pipeproof(env, dest, "check-update").returncode == 2
    proc = pipeproof(env, dest, "update")
    # The deploy hook's contract gained the image argument since 0.1.0, next to the line the team replaced: the
    # update stops on that file alone, keeps both sides, and says so (exit 1), with everything else applied.
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "adopted as v0.1.0" in proc.stdout and "1 conflict" in proc.stdout
    assert "scripts/deploy.sh (unmerged)" in proc.stdout
    answers = (dest / ".copier-answers.yml").read_text()
    assert f"_src_path: {project.repository()}\n" in answers and f"_commit: {OWN_TAG}\n" in answers
    assert "required_approvals: 4" in answers and "site-0.1.0" not in answers
    ours = (dest / "scripts/deploy.sh").read_text()
    assert "# ours" in ours and "IMAGE" in ours and "<<<<<<<" in ours


def test_plain_copier_update_works_on_a_wheel_render(wheel: tuple[Path, dict[str, str]], tmp_path: Path) -> None:
    """Where the public repository is reachable (here: the bundle under its URL), copier alone updates."""
    built, env = wheel
    assert pipeproof(env, tmp_path, "new", "demo", "--defaults").returncode == 0
    git_save(tmp_path / "demo", "rendered")
    public = as_public_repository(built, tmp_path)
    proc = subprocess.run(
        [sys.executable, "-m", "copier", "update", "--defaults", "--vcs-ref", OWN_TAG],
        cwd=tmp_path / "demo",
        env=public,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert not git(tmp_path / "demo", "status", "--porcelain")


def test_an_sdist_carries_the_bundle_so_its_wheel_needs_no_git(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "hatchling", "build", "-t", "sdist", "-d", str(tmp_path)],
        cwd=ROOT,
        check=True,
        capture_output=True,
        timeout=300,
    )
    (sdist,) = tmp_path.glob("pipeproof-*.tar.gz")
    with tarfile.open(sdist) as tar:
        tar.extractall(tmp_path / "unpacked", filter="data")
    (source,) = (tmp_path / "unpacked").iterdir()
    assert not (source / ".git").exists() and (source / "generator/_template.bundle").is_file()
    built = build_wheel(source, tmp_path / "dist")
    bundle = tmp_path / "template.bundle"
    bundle.write_bytes(zipfile.ZipFile(built).read("generator/_template.bundle"))
    assert list(releases.bundle_tags(bundle)) == [releases.tag(v) for v in releases.releases()] + [OWN_TAG]
