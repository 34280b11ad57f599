"""The only place that calls copier: run_copy into a fresh directory, and run_update in a staged clone."""

from __future__ import annotations

import os
import shutil
import tempfile
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from generator import source as sources
from generator.answers_file import COPIER
from generator.errors import UserError
from generator.source import Source

PACKAGE = Path(__file__).resolve().parent


def template_root() -> Path:
    """The copier template's files: bundled in the wheel, or the source checkout this package lives in."""
    bundled = PACKAGE / "_template"
    if (bundled / "copier.yml").is_file():
        return bundled
    return PACKAGE.parent


@contextmanager
def _quiet() -> Iterator[None]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # copier warns about dirty template checkouts
        yield


@contextmanager
def _fresh_destination() -> Iterator[None]:
    """Skip copier's per-file git index sync while it renders into a directory that did not exist.

    copier runs `git config core.fileMode` once per rendered file to keep an index's executable bits in
    sync; its own docstring says that is a no-op for untracked files, and nothing in a fresh directory is
    tracked. Forty subprocesses were a fifth of a retrofit's time.
    """
    from copier._main import Worker

    original = getattr(Worker, "_sync_git_index_executable_bit", None)
    if original is None:  # another copier version: nothing to skip
        yield
        return
    Worker._sync_git_index_executable_bit = lambda self, dst_relpath, src_mode: None  # type: ignore[method-assign]
    try:
        yield
    finally:
        Worker._sync_git_index_executable_bit = original  # type: ignore[method-assign]


def render(
    src: Source, dst: Path, answers: Mapping[str, Any], *, answers_file: str = COPIER, ref: str | None = None
) -> None:
    """Render `src` at `ref` (default: the source's own) with `answers` into `dst`, which must not exist yet."""
    import copier  # lazy: importing copier costs more than `pipeproof --help` may take

    if dst.exists():
        raise FileExistsError(dst)
    with sources.activated(src), _quiet(), _fresh_destination():
        copier.run_copy(
            src.url,
            dst,
            data=dict(answers),
            answers_file=answers_file,
            defaults=True,
            overwrite=True,
            quiet=True,
            unsafe=False,
            vcs_ref=ref or src.ref,
        )


def copy(dst: Path, answers: Mapping[str, Any]) -> list[Path]:
    """Render the template with `answers` into `dst` and return the files written.

    `dst` is absent, empty, or holds only what a fresh repository holds (.git, a README, a licence; see
    commands/new.py). Rendering happens in a sibling temporary directory; its files are moved into place only
    when copier succeeded, so a failure leaves `dst` as it was.
    """
    from generator import transaction

    dst = dst.absolute()
    dst.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{dst.name}.pipeproof-", dir=dst.parent))
    out = staging / "tree"
    try:
        with sources.for_new() as chosen:
            render(chosen, out, answers)
        files = sorted(p.relative_to(out) for p in out.rglob("*") if p.is_file())
        if not dst.exists() or not any(dst.iterdir()):
            if dst.exists():
                dst.rmdir()
            os.replace(out, dst)
        else:
            clash = [rel.as_posix() for rel in files if (dst / rel).exists() or (dst / rel).is_symlink()]
            if clash:
                raise UserError(f"{dst / clash[0]} already exists; run `pipeproof retrofit {dst}` to merge instead")
            transaction.apply(dst, [transaction.Write.from_file(out / rel, rel.as_posix()) for rel in files])
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return files


def update(
    src: Source,
    project: Path,
    *,
    ref: str | None,
    answers_file: str,
    data: Mapping[str, Any],
) -> None:
    """copier update of the git work tree `project` (a staged clone: see update.py) to `ref` of `src`."""
    import copier

    with sources.activated(src), _quiet():
        copier.run_update(
            project,
            data=dict(data),
            answers_file=answers_file,
            vcs_ref=ref,
            defaults=True,
            overwrite=True,
            quiet=True,
            unsafe=False,
            conflict="inline",
            skip_answered=True,
        )
