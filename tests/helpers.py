"""Shared test helpers: render scenarios through the same code path as `pipeproof new`."""

from __future__ import annotations

import difflib
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
_ACTION_PIN = re.compile(r"(pipeproof/pipeproof@)[0-9a-f]{40}( # ).*$", re.MULTILINE)
MASKED_PIN = "0" * 40


def template() -> answers_mod.Template:
    return answers_mod.load_template(render.template_root())


def resolve(given: dict[str, Any], dest: Path) -> dict[str, Any]:
    return answers_mod.resolve(template(), given, dest)


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
    for workflow in (tree / ".github" / "workflows").glob("*.yml"):
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
