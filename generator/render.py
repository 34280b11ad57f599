"""The only place that renders files: copier's run_copy, into a fresh directory that replaces DEST at the end."""

from __future__ import annotations

import os
import shutil
import tempfile
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

PACKAGE = Path(__file__).resolve().parent


def template_root() -> Path:
    """The copier template: bundled in the wheel, or the source checkout this package lives in."""
    bundled = PACKAGE / "_template"
    if (bundled / "copier.yml").is_file():
        return bundled
    return PACKAGE.parent


def _is_git_root(path: Path) -> bool:
    return (path / ".git").exists()


def copy(dst: Path, answers: Mapping[str, Any], *, src: Path | None = None) -> list[Path]:
    """Render the template with `answers` into `dst` (absent or empty) and return the files written.

    Rendering happens in a sibling temporary directory which is renamed to `dst` only when copier
    succeeded, so a failure leaves `dst` as it was.
    """
    import copier  # lazy: importing copier costs more than `pipeproof --help` may take

    src = (src or template_root()).resolve()
    dst = dst.absolute()
    dst.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{dst.name}.pipeproof-", dir=dst.parent))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # copier warns about dirty template checkouts
            copier.run_copy(
                str(src),
                staging,
                data=dict(answers),
                defaults=True,
                overwrite=True,
                quiet=True,
                unsafe=False,
                # A source checkout is a git repository: without HEAD copier takes the newest tag.
                vcs_ref="HEAD" if _is_git_root(src) else None,
            )
        if dst.exists():
            dst.rmdir()  # the caller checked it is empty
        os.replace(staging, dst)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return sorted(p.relative_to(dst) for p in dst.rglob("*") if p.is_file())
