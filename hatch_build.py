"""Build hook: put a git bundle of the template's releases into the wheel (and the sdist).

`pipeproof update` re-renders a project's recorded release and the new one from this bundle, offline; see
generator/releases.py. An sdist carries the bundle it was built with, so a wheel built from it needs no git.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

TARGET = "generator/_template.bundle"


class TemplateBundleHook(BuildHookInterface):  # type: ignore[type-arg]
    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        if version == "editable":
            return  # an editable install renders from the checkout itself
        root = Path(self.root)
        shipped = root / TARGET
        if not (root / ".git").exists():
            if not shipped.is_file():
                raise RuntimeError(
                    f"building pipeproof needs its git history (to bundle the template releases) or {TARGET} "
                    "from an sdist; build from a full git clone"
                )
            return  # an unpacked sdist: the bundle is already in the package folder
        shallow = subprocess.run(
            ["git", "rev-parse", "--is-shallow-repository"], cwd=root, capture_output=True, text=True, check=False
        )
        if shallow.stdout.strip() == "true":
            # pre-commit installs hooks from a shallow clone: the release history is not there to bundle. Such an
            # install audits and validates; rendering and updating say to reinstall from a full clone or PyPI.
            self.app.display_warning("shallow clone: the wheel carries no template bundle (audit and validate only)")
            return
        sys.path.insert(0, str(root))
        try:
            from generator import releases
        finally:
            sys.path.pop(0)
        self._tmp = tempfile.mkdtemp(prefix="pipeproof-build-")
        out = Path(self._tmp, "template.bundle")
        tags = releases.build_bundle(root, out, self.metadata.version)
        self.app.display_info(f"template bundle: {', '.join(f'{t} {c[:12]}' for t, c in tags.items())}")
        build_data["force_include"][str(out)] = TARGET

    def finalize(self, version: str, build_data: dict[str, Any], artifact_path: str) -> None:
        if getattr(self, "_tmp", None):
            shutil.rmtree(self._tmp, ignore_errors=True)
