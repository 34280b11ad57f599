"""All-or-nothing file changes: stage every new file, then move them into place; undo everything on any failure.

Every file is first written into one staging folder at the root (same file system, so moves are renames).
Then each target is renamed aside (if it exists) and the staged file renamed into place. An exception or
Ctrl-C at any point renames the originals back and removes what was added, so the tree is as it was, byte for
byte (the originals are the same inodes: modes and times included). Ctrl-C is held back while files move and
acted on after, so it cannot interrupt the undo.
"""

from __future__ import annotations

import os
import shutil
import signal
import stat
import tempfile
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Write:
    """A file to write at `path` (relative, POSIX) with `data`, and its permission bits."""

    path: str
    data: bytes
    mode: int = 0o644

    @classmethod
    def from_file(cls, src: Path, rel: str) -> Write:
        return cls(rel, src.read_bytes(), stat.S_IMODE(src.stat().st_mode))


def _unsafe_parent(root: Path, rel: str) -> str | None:
    """The first component of rel (itself included) that is a symlink: never written through."""
    current = root
    for part in Path(rel).parts:
        current = current / part
        if current.is_symlink():
            return current.relative_to(root).as_posix()
    return None


@contextmanager
def _held_interrupts() -> Iterator[list[Any]]:
    """Defer SIGINT until the block ends (only the main thread can set handlers)."""
    pending: list[Any] = []
    if threading.current_thread() is not threading.main_thread():
        yield pending
        return
    previous = signal.signal(signal.SIGINT, lambda signum, frame: pending.append(signum))
    try:
        yield pending
    finally:
        signal.signal(signal.SIGINT, previous)
    if pending:
        raise KeyboardInterrupt


def apply(
    root: Path,
    writes: Sequence[Write],
    deletes: Sequence[str] = (),
    *,
    step: Callable[[str], None] | None = None,
) -> None:
    """Write and delete files under root, all or nothing. `step(path)` runs after each move (tests inject
    failures there)."""
    root = root.absolute()
    for rel in [w.path for w in writes] + list(deletes):
        link = _unsafe_parent(root, rel)
        if link is not None:
            raise RuntimeError(f"refusing to write through the symlink {link}")
    staging = Path(tempfile.mkdtemp(prefix=".pipeproof-staging-", dir=root))
    created: list[Path] = []  # folders this call made, outermost first
    moves: list[tuple[Path, Path | None]] = []  # (target, its original's backup or None if it was new)
    try:
        staged: list[tuple[Path, Path]] = []
        for i, write in enumerate(writes):
            target = root / write.path
            for parent in reversed(Path(write.path).parents[:-1]):
                folder = root / parent
                if not folder.exists():
                    folder.mkdir()
                    created.append(folder)
            temp = staging / f"new-{i}"
            temp.write_bytes(write.data)
            os.chmod(temp, write.mode)
            staged.append((temp, target))
        with _held_interrupts():
            try:
                for i, (temp, target) in enumerate(staged):
                    backup = None
                    if target.exists():
                        backup = staging / f"old-{i}"
                        os.replace(target, backup)
                    moves.append((target, backup))
                    os.replace(temp, target)
                    if step:
                        step(target.relative_to(root).as_posix())
                for i, rel in enumerate(deletes):
                    target, backup = root / rel, staging / f"deleted-{i}"
                    os.replace(target, backup)
                    moves.append((target, backup))
                    if step:
                        step(rel)
            except BaseException:
                _undo(moves, created)
                created.clear()
                raise
    except BaseException:
        for folder in reversed(created):
            shutil.rmtree(folder, ignore_errors=True)
        raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _undo(moves: list[tuple[Path, Path | None]], created: list[Path]) -> None:
    for target, backup in reversed(moves):
        if backup is None:
            target.unlink(missing_ok=True)
        elif backup.exists() or backup.is_symlink():
            os.replace(backup, target)
    for folder in reversed(created):
        shutil.rmtree(folder, ignore_errors=True)
