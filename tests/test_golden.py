"""Golden snapshots: every scenario renders exactly as committed in golden/, and the output proves itself."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from generator import validate
from tests.helpers import GOLDEN, ROOT, SCENARIOS, diff_trees, mask, render_scenario


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_scenario_matches_golden(name: str, tmp_path: Path, update_golden: bool) -> None:
    rendered = tmp_path / name
    render_scenario(name, rendered)
    golden = GOLDEN / name
    if update_golden:
        shutil.rmtree(golden, ignore_errors=True)
        shutil.copytree(rendered, golden)
        return
    assert golden.is_dir(), f"golden/{name} is missing: run pytest --update-golden"
    diff = diff_trees(golden, rendered)
    assert not diff, f"golden/{name} is stale (pytest --update-golden rewrites it):\n{diff}"


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_golden_tree_passes_validate(name: str) -> None:
    findings = validate.run(GOLDEN / name)
    assert not findings, "\n".join(map(str, findings))


def test_scenarios_cover_every_answer_value() -> None:
    from tests.helpers import resolve, template

    seen: dict[str, set[str]] = {}
    for name, scenario in SCENARIOS.items():
        answers = resolve(scenario["answers"], Path("/tmp") / name)
        for key, value in answers.items():
            for item in value if isinstance(value, list) else [value]:
                seen.setdefault(key, set()).add(str(item))
    for question in template().questions:
        wanted = {str(v) for v in question.values} or ({"True", "False"} if question.type == "bool" else set())
        assert wanted <= seen.get(question.key, set()), (
            f"{question.key}: no scenario uses {wanted - seen[question.key]}"
        )


def test_plain_copier_renders_the_same_tree(tmp_path: Path) -> None:
    """The repository is a copier template on its own: copier without pipeproof gives the golden tree."""
    import copier

    dest = tmp_path / "python-defaults"
    copier.run_copy(str(ROOT), dest, defaults=True, quiet=True, unsafe=False, vcs_ref="HEAD")
    mask(dest)
    diff = diff_trees(GOLDEN / "python-defaults", dest)
    assert not diff, diff
