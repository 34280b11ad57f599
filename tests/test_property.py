"""Random valid answers always render a tree that parses and passes every validator."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from generator import render, validate
from generator.controls import applicable
from tests.helpers import resolve

SLUG = st.from_regex(r"\A[a-z][a-z0-9-]{1,18}[a-z0-9]\Z")


@st.composite
def answers(draw: st.DrawFn) -> dict[str, Any]:
    store = draw(st.sampled_from(["aws", "gcp", "azure", "none"]))
    data: dict[str, Any] = {
        "project_name": draw(SLUG),
        "language": draw(st.sampled_from(["python", "node", "go", "java"])),
        "iac": draw(st.lists(st.sampled_from(["terraform", "kubernetes", "cloudformation"]), unique=True)),
        "containers": draw(st.booleans()),
        "default_branch": draw(st.sampled_from(["main", "master", "trunk", "release/v2", "dev_branch.1"])),
        "required_approvals": draw(st.integers(1, 6)),
        "security_team": "@" + draw(SLUG) + "/" + draw(SLUG),
        "visibility": draw(st.sampled_from(["private", "public"])),
        "frameworks": draw(st.lists(st.sampled_from(["soc2", "iso27001"]), unique=True, min_size=1)),
        "evidence_store": store,
    }
    if store == "gcp":
        data["evidence_role"] = (
            f"writer-{draw(st.integers(10, 99))}@{data['project_name'][:20]}-x1.iam.gserviceaccount.com"
        )
    if store == "azure":
        data["evidence_bucket"] = "acct" + str(draw(st.integers(100, 999))) + "/evidence"
        data["evidence_role"] = "12345678-90ab-cdef-1234-567890abcdef"
    return data


# Each example renders and runs four linters (about 4 s), so a failure is reported as found, not shrunk:
# shrinking would take CI minutes.
@settings(
    max_examples=8,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
)
@given(answers())
def test_random_valid_answers_render_clean_trees(given_answers: dict[str, Any]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        dest = Path(tmp) / given_answers["project_name"]
        final = resolve(given_answers, dest)
        render.copy(dest, final)
        for path in dest.rglob("*"):
            if path.suffix in {".yml", ".yaml"}:
                assert yaml.safe_load(path.read_text()) is not None or path.stat().st_size == 0, path
            elif path.suffix == ".json":
                json.loads(path.read_text())
        findings = validate.run(dest)
        assert not findings, "\n".join(map(str, findings))
        workflow = yaml.safe_load((dest / ".github/workflows/pr-checks.yml").read_text())
        ids = {c.id for c in applicable(final)}
        assert ("iac" in workflow["jobs"]) == ("PP-SCAN-07" in ids) == bool(final["iac"])
        assert ("container" in workflow["jobs"]) == final["containers"]
