from __future__ import annotations

from pathlib import Path

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-golden",
        action="store_true",
        default=False,
        help="rewrite golden/<scenario>/ from the current templates instead of comparing",
    )


@pytest.fixture
def update_golden(request: pytest.FixtureRequest) -> bool:
    return bool(request.config.getoption("--update-golden"))


@pytest.fixture(scope="session")
def template_v2(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A throw-away template repository: this template as v1.0.0; v2.0.0 adds SECURITY.md and bumps
    actions/checkout (the update the lifecycle tests pull in)."""
    from tests.helpers import build_file_tree, edit, git_save, template_repo

    tpl = template_repo(tmp_path_factory.mktemp("template") / "pipeproof-template")
    build_file_tree(tpl, {"templates/SECURITY.md.jinja": "Report vulnerabilities of [[ project_name ]] privately.\n"})
    edit(
        tpl / "generator/data/pins.yml",
        "actions/checkout: {sha: 3d3c42e5aac5ba805825da76410c181273ba90b1, version: v7.0.1}",
        "actions/checkout: {sha: 1111111111111111111111111111111111111111, version: v7.0.2}",
    )
    git_save(tpl, "v2", "v2.0.0")
    return tpl
