"""Shared test helpers: render scenarios through the same code path as `pipeproof new`."""

from __future__ import annotations

import difflib
import os
import re
from pathlib import Path
from typing import Any

import yaml

from generator import answers as answers_mod
from generator import render

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = ROOT / "golden"
SCENARIOS: dict[str, dict[str, Any]] = yaml.safe_load((GOLDEN / "scenarios.yml").read_text(encoding="utf-8"))

# Values that change with the checkout or the commit, masked before comparing (and in golden/): the answers
# file's source and commit, and the commit of pipeproof's own action that the controls-drift job pins.
_VOLATILE = re.compile(r"^(_commit|_src_path): .*$", re.MULTILINE)
_ACTION_PIN = re.compile(r"(pipeproof/pipeproof(?:/protect)?@)[0-9a-f]{40}( # ).*$", re.MULTILINE)
MASKED_PIN = "0" * 40


def template() -> answers_mod.Template:
    return answers_mod.load_template(render.template_root())


def resolve(given: dict[str, Any], dest: Path) -> dict[str, Any]:
    return answers_mod.resolve(template(), given, dest)


def full_answers(given: dict[str, Any], dest: Path) -> dict[str, Any]:
    """The answers with the template's computed keys (approval_mode, deploys, ...), as copier renders with."""
    answers = resolve(given, dest)
    return {**answers, **answers_mod.derived(template(), answers)}


def render_scenario(name: str, dest: Path) -> dict[str, Any]:
    """Render a named scenario into dest (named after the scenario, so project_name defaults to it)."""
    answers = resolve(SCENARIOS[name]["answers"], dest)
    render.copy(dest, answers)
    mask(dest)
    return answers


def mask(tree: Path) -> None:
    answers_file = tree / ".copier-answers.yml"
    if answers_file.exists():
        text = answers_file.read_text(encoding="utf-8")
        answers_file.write_text(_VOLATILE.sub(lambda m: f"{m[1]}: <masked>", text), encoding="utf-8")
    for workflow in [*(tree / ".github" / "workflows").glob("*.yml"), *tree.glob(".gitlab-ci.yml")]:
        text = workflow.read_text(encoding="utf-8")
        masked = _ACTION_PIN.sub(lambda m: f"{m[1]}{MASKED_PIN}{m[2]}v0.0.0 (masked: the rendering commit)", text)
        if masked != text:
            workflow.write_text(masked, encoding="utf-8")


def tree_files(root: Path) -> dict[str, Path]:
    return {p.relative_to(root).as_posix(): p for p in sorted(root.rglob("*")) if p.is_file()}


def diff_trees(expected: Path, actual: Path) -> str:
    """A unified diff of every added, removed or changed file (empty when the trees match)."""
    want, got = tree_files(expected), tree_files(actual)
    out: list[str] = []
    for rel in sorted(set(want) | set(got)):
        a = want[rel].read_text(encoding="utf-8").splitlines(keepends=True) if rel in want else []
        b = got[rel].read_text(encoding="utf-8").splitlines(keepends=True) if rel in got else []
        if a != b:
            out.extend(difflib.unified_diff(a, b, f"golden/{rel}", f"rendered/{rel}"))
        elif rel in want and (want[rel].stat().st_mode & 0o111) != (got[rel].stat().st_mode & 0o111):
            out.append(f"mode of {rel} differs\n")
    return "".join(out)


# --- lifecycle: throw-away git template repositories and projects, the way copier's own tests build them ---

GIT_ENV = {
    "GIT_AUTHOR_NAME": "test",
    "GIT_AUTHOR_EMAIL": "test@example.invalid",
    "GIT_COMMITTER_NAME": "test",
    "GIT_COMMITTER_EMAIL": "test@example.invalid",
    "GIT_CONFIG_NOSYSTEM": "1",
}


def git(cwd: Path, *args: str) -> str:
    import os
    import subprocess

    proc = subprocess.run(
        ["git", "-c", "commit.gpgsign=false", "-c", "init.defaultBranch=main", *args],
        cwd=cwd,
        env={**os.environ, **GIT_ENV},
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, f"git {' '.join(args)}: {proc.stderr}"
    return proc.stdout


def build_file_tree(root: Path, spec: dict[str, str | bytes | None]) -> None:
    """Write (or with None, delete) files under root: {relative path: content}."""
    for rel, content in spec.items():
        path = root / rel
        if content is None:
            path.unlink()
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")


def git_save(root: Path, message: str = "save", tag: str | None = None) -> None:
    """Commit everything in root (a git repository, created if needed), and tag it."""
    if not (root / ".git").exists():
        git(root, "init", "-q")
    git(root, "add", "-A")
    git(root, "commit", "-q", "--allow-empty", "-m", message)
    if tag:
        git(root, "tag", tag)


def template_repo(dest: Path, tag: str = "v1.0.0") -> Path:
    """A git template repository holding this checkout's template (working tree), tagged."""
    import shutil

    dest.mkdir(parents=True)
    shutil.copy2(ROOT / "copier.yml", dest / "copier.yml")
    shutil.copytree(ROOT / "templates", dest / "templates")
    shutil.copytree(ROOT / "generator" / "data", dest / "generator" / "data")
    git_save(dest, "template v1", tag)
    return dest


def edit(path: Path, old: str, new: str, count: int = 1) -> None:
    """Replace old with new in a file, asserting it occurs (count times, or at least once with count=0)."""
    text = path.read_text(encoding="utf-8")
    found = text.count(old)
    assert found == count if count else found > 0, f"{old!r} occurs {found} times in {path}"
    path.write_text(text.replace(old, new), encoding="utf-8")


def render_project(template: Path, dest: Path, given: dict[str, Any] | None = None, ref: str = "v1.0.0") -> Path:
    """Render a template repository at ref into dest, with pipeproof's own answer resolution, and commit it."""
    from generator.source import Source

    answers = resolve(given or {}, dest)
    render.render(Source(str(template), ref), dest, answers)
    git_save(dest, "rendered")
    return dest


def snapshot(root: Path) -> dict[str, tuple[bytes, int]]:
    """Every file, folder and symlink under root (.git excluded) with its bytes (a symlink: its target) and
    mode: equal snapshots mean nothing was written, moved, created or left behind."""

    def content(p: Path) -> bytes:
        if p.is_symlink():
            return b"-> " + os.fsencode(os.readlink(p))
        if p.is_dir():
            return b"<folder>"
        try:
            return p.read_bytes()
        except OSError:
            return b"<unreadable>"

    return {
        p.relative_to(root).as_posix(): (content(p), p.lstat().st_mode)
        for p in sorted(root.rglob("*"))
        if ".git" not in p.relative_to(root).parts
    }
