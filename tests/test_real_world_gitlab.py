"""The audit on small GitLab projects that reproduce the patterns of public `.gitlab-ci.yml` files (issue 10).

Each `tests/fixtures/real-world-gitlab/<name>/` is a project written for pipeproof, never copied, with its
`expected.yml` in the format of tests/test_real_world.py (about:, control id -> status, mentions:, errors:).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from generator.audit import audit
from tests.test_real_world import expected as _unused  # noqa: F401  (same format, same checker)
from tests.test_real_world import mismatches

FIXTURES = Path(__file__).parent / "fixtures" / "real-world-gitlab"
NAMES = sorted(p.name for p in FIXTURES.iterdir() if (p / "expected.yml").is_file())


def _expected(name: str) -> dict[str, object]:
    import yaml

    data = yaml.safe_load((FIXTURES / name / "expected.yml").read_text(encoding="utf-8"))
    assert isinstance(data, dict) and isinstance(data.get("about"), str), f"{name}/expected.yml needs about:"
    return data


def test_there_are_at_least_six_gitlab_fixtures() -> None:
    assert len(NAMES) >= 6, NAMES


@pytest.mark.parametrize("name", NAMES)
def test_gitlab_fixture_statuses(name: str, tmp_path: Path) -> None:
    source = FIXTURES / name
    tree = tmp_path / name
    shutil.copytree(source, tree, ignore=lambda folder, _names: ["expected.yml"] if Path(folder) == source else [])
    report = audit(tree)
    assert report.answers["platform"] == "gitlab"
    want = _expected(name)
    problems = mismatches(report, want)
    assert not problems, f"{name} ({want['about']}):\n" + "\n".join(problems)
