"""Parity (issue 10): for the same answers, the controls that apply on GitHub and on GitLab are the same, and
every exception is declared in the catalog (`platform_notes` of the platform that lacks it, with its reason)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from generator.cli import main
from generator.controls import all_controls
from generator.controls.base import applicable
from tests.helpers import SCENARIOS, full_answers

# Answers only one platform has; the rest is the same question asked on both.
_PLATFORM_KEYS = ("platform", "github_plan", "github_host", "gitlab_tier", "gitlab_host", "approval_mode")
_PAIRS = {  # a GitHub plan and the GitLab tier that buys the same features
    "free": "free",
    "team": "premium",
    "enterprise": "ultimate",
}


def _variants(name: str, tmp_path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    given = {k: v for k, v in SCENARIOS[name]["answers"].items() if k not in _PLATFORM_KEYS}
    if str(given.get("security_team", "")).count("/") > 1:
        given["security_team"] = "@acme/security"  # a GitLab subgroup has no GitHub counterpart: ask the same team
    source = SCENARIOS[name]["answers"]
    plan = source.get("github_plan") or {"free": "free", "premium": "team", "ultimate": "enterprise"}.get(
        str(source.get("gitlab_tier", "")), "team"
    )
    github = full_answers({**given, "platform": "github", "github_plan": plan}, tmp_path / name)
    gitlab = full_answers({**given, "platform": "gitlab", "gitlab_tier": _PAIRS[plan]}, tmp_path / name)
    return github, gitlab


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_same_answers_same_controls_except_the_declared_ones(name: str, tmp_path: Path) -> None:
    github, gitlab = _variants(name, tmp_path)
    on = {"github": {c.id for c in applicable(github)}, "gitlab": {c.id for c in applicable(gitlab)}}
    by_id = {c.id: c for c in all_controls()}
    undeclared = [
        f"{cid} applies on {have} but not on {lacks}, and the catalog gives no reason (platform_notes[{lacks!r}])"
        for have, lacks in (("github", "gitlab"), ("gitlab", "github"))
        for cid in sorted(on[have] - on[lacks])
        if lacks not in by_id[cid].platform_notes
    ]
    assert not undeclared, "\n".join(undeclared)
    assert len(on["github"] & on["gitlab"]) >= 25


def test_a_control_missing_on_a_platform_says_why() -> None:
    for control in all_controls():
        for platform in {"github", "gitlab"} - set(control.platforms):
            assert len(control.platform_notes.get(platform, "")) > 40, (control.id, platform)


def test_controls_platforms_prints_the_parity_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["controls", "--platforms", "--format", "json"]) == 0
    rows = {r["id"]: r for r in json.loads(capsys.readouterr().out)["controls"]}
    assert len(rows) == len(all_controls())
    assert rows["PP-HARD-04"]["github"] and not rows["PP-HARD-04"]["gitlab"]
    assert "job token" in rows["PP-HARD-04"]["notes"]["gitlab"]
    assert "sast" in rows["PP-SCAN-01"]["notes"]["gitlab"]  # code scanning is GitHub-only; GitLab's counterpart
    assert main(["controls", "--platforms"]) == 0
    table = capsys.readouterr().out
    assert "PP-BRANCH-04  github:yes  gitlab:yes" in table
    assert "on one (the reason is its note)" in table
