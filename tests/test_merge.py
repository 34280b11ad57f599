"""merge.py: pipeproof's hooks, rules and lines join a team's files as text; the original bytes stay."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from generator import merge
from generator.errors import UserError
from tests.helpers import GOLDEN

TEMPLATE_HOOKS = (GOLDEN / "python-defaults/.pre-commit-config.yaml").read_bytes()
TEMPLATE_OWNERS = (GOLDEN / "python-defaults/.github/CODEOWNERS").read_bytes()


LOCAL = "  - repo: local\n    hooks:\n      - id: a\n        name: a\n        entry: a\n        language: system\n"
EXISTING = {
    "indented": f"repos:\n{LOCAL}".encode(),
    "indentless-no-final-newline": ("repos:\n" + "\n".join(line[2:] for line in LOCAL.splitlines())).encode(),
    "crlf": f"# ours\nrepos:\n{LOCAL}".replace("\n", "\r\n").encode(),
    "keys-after-repos": f"default_stages: [pre-commit]\nrepos:\n{LOCAL}\n# ci\nci:\n  skip: [a]\n".encode(),
}


@pytest.mark.parametrize("existing", EXISTING.values(), ids=EXISTING.keys())
def test_precommit_gains_gitleaks_and_keeps_everything(existing: bytes, tmp_path: Path) -> None:
    merged = merge.precommit(existing, TEMPLATE_HOOKS)
    assert merged is not None
    data, ids = merged
    assert ids == ["gitleaks"]
    old, new = yaml.safe_load(existing), yaml.safe_load(data)
    assert new["repos"][:-1] == old["repos"] and new["repos"][-1]["hooks"] == [{"id": "gitleaks"}]
    assert {k: v for k, v in new.items() if k != "repos"} == {k: v for k, v in old.items() if k != "repos"}
    kept = iter(data.splitlines())
    assert all(any(line == got for got in kept) for line in existing.splitlines()), "every original line, in order"
    if b"\r\n" in existing:
        assert data.count(b"\n") == data.count(b"\r\n")
    config = tmp_path / ".pre-commit-config.yaml"
    config.write_bytes(data)
    proc = subprocess.run([sys.executable, "-m", "pre_commit", "validate-config", str(config)], capture_output=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_precommit_with_gitleaks_already_is_left_alone() -> None:
    assert merge.precommit(TEMPLATE_HOOKS.replace(b"83d9cd", b"000000"), TEMPLATE_HOOKS) is None


@pytest.mark.parametrize(
    "existing",
    [
        pytest.param(b"repos: []\n", id="flow-style"),
        pytest.param(b"fail_fast: true\n", id="no-repos"),
    ],
)
def test_precommit_that_cannot_be_merged_as_text_is_a_merge_error(existing: bytes) -> None:
    with pytest.raises(merge.MergeError):
        merge.precommit(existing, TEMPLATE_HOOKS)


@pytest.mark.parametrize(
    ("existing", "needle"),
    [(b"repos:\n  - repo: [\n", ":3: not valid YAML"), (b"\xff\xfe", "not UTF-8")],
    ids=["invalid-yaml", "not-utf8"],
)
def test_precommit_that_is_not_readable_yaml_is_refused(existing: bytes, needle: str) -> None:
    with pytest.raises(UserError, match=needle.replace(".", r"\.")):
        merge.precommit(existing, TEMPLATE_HOOKS)


def test_codeowners_and_gitignore_gain_only_missing_lines() -> None:
    owners = b"* @acme/devs\n/.github/   @python-defaults/security\n"
    data, added = merge.lines(owners, TEMPLATE_OWNERS, "CODEOWNERS") or (b"", [])
    assert data.startswith(owners) and "/.github/ @python-defaults/security" not in added
    assert (
        "/compliance/ @python-defaults/security" in added and "/.copier-answers.yml @python-defaults/security" in added
    )
    assert data.endswith(TEMPLATE_OWNERS.splitlines(keepends=True)[-1])  # the template's last rule comes last
    ignore, added = merge.lines(b"*.pyc", b"# ours\n*.pyc\n.pipeproof/\n", ".gitignore") or (b"", [])
    assert ignore.startswith(b"*.pyc\n") and added == [".pipeproof/"]
    assert merge.lines(b"*.pyc\n.pipeproof/\n", b"*.pyc\n.pipeproof/\n", ".gitignore") is None
