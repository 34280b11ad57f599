"""`pipeproof validate` on a GitLab tree: the real linters plus pipeproof's semantic check of `.gitlab-ci.yml`
references and the JSON schemas of the `.gitlab/settings/` payloads. Each mutation must be reported with the
file, the rule and what is wrong; the golden GitLab trees report nothing (tests/test_golden.py)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from generator import gitlab_lint, validate
from tests.helpers import GOLDEN

SCENARIO = "gitlab-premium-python"


def tree(tmp_path: Path) -> Path:
    dest = tmp_path / SCENARIO
    shutil.copytree(GOLDEN / SCENARIO, dest)
    return dest


def edit_ci(old: str, new: str) -> Callable[[Path], None]:
    def apply(root: Path) -> None:
        path = root / ".gitlab-ci.yml"
        text = path.read_text()
        assert old in text, old
        path.write_text(text.replace(old, new, 1))

    return apply


def edit_json(rel: str, change: Callable[[dict], None]) -> Callable[[Path], None]:  # type: ignore[type-arg]
    def apply(root: Path) -> None:
        path = root / ".gitlab/settings" / rel
        data = json.loads(path.read_text())
        change(data)
        path.write_text(json.dumps(data, indent=2))

    return apply


MUTATIONS: dict[str, tuple[Callable[[Path], None], str, str]] = {
    "needs a job that does not exist": (
        edit_ci("    - deploy-staging\n    - dast\n", "    - deploy-stagin\n    - dast\n"),
        "gitlab-needs",
        "needs deploy-stagin, which is not defined",
    ),
    "needs a job of a later stage": (
        edit_ci("  stage: build\n  needs:\n    - tools\n", "  stage: build\n  needs:\n    - tools\n    - dast\n"),
        "gitlab-needs",
        "needs dast, which is in the later stage dast",
    ),
    "needs a job its pipeline does not add (rules resolved)": (
        edit_ci(
            "    - build\n  interruptible: true\n  timeout: 15 minutes\n",
            "    - build\n    - container\n  interruptible: true\n  timeout: 15 minutes\n",
        ),
        "gitlab-pipeline-refused",
        "default-branch pipelines: job evidence needs container, which this pipeline does not add",
    ),
    "a stage stages: does not list": (edit_ci("  stage: dast\n", "  stage: dynamic\n"), "gitlab-stage", "dynamic"),
    "extends a template that does not exist": (
        edit_ci("  stage: tools\n", "  stage: tools\n  extends: .hardened\n"),
        "gitlab-extends",
        "extends .hardened, which is not defined",
    ),
    "extends in a cycle": (
        edit_ci("  stage: tools\n", "  stage: tools\n  extends: .a\n.a:\n  extends: .b\n.b:\n  extends: .a\n"),
        "gitlab-extends",
        "in a cycle",
    ),
    "a local include that does not exist": (
        edit_ci("stages:\n", "include:\n  - local: /ci/missing.yml\n\nstages:\n"),
        "gitlab-include",
        "local include /ci/missing.yml does not exist",
    ),
    "the protected branch's response field name instead of the request's": (
        edit_json("protected-branch.json", lambda d: d["body"].update(push_access_levels=[{"access_level": 0}])),
        "protected-branch.schema.json",
        "'push_access_levels' was unexpected",
    ),
    "an access level GitLab does not have": (
        edit_json("protected-branch.json", lambda d: d["body"].update(merge_access_level=35)),
        "protected-branch.schema.json",
        "merge_access_level",
    ),
    "the deprecated required_approval_count": (
        edit_json("protected-environments/production.json", lambda d: d["body"].update(required_approval_count=1)),
        "protected-environment.schema.json",
        "required_approval_count",
    ),
    "an approval setting that is not a boolean": (
        edit_json("approval-settings.json", lambda d: d["body"].update(reset_approvals_on_push="yes")),
        "approval-settings.schema.json",
        "reset_approvals_on_push",
    ),
    "an approval rule without approvals_required": (
        edit_json("approval-rules/default.json", lambda d: d["body"].pop("approvals_required")),
        "approval-rule.schema.json",
        "approvals_required",
    ),
    "a group placeholder that is not a group path": (
        edit_json(
            "protected-environments/production.json",
            lambda d: d["body"]["approval_rules"][0].update(group_id={"$group": "@acme/security"}),
        ),
        "protected-environment.schema.json",
        "group_id",
    ),
    "a payload aimed at another endpoint": (
        edit_json("project.json", lambda d: d.update(path="/projects/:id/variables")),
        "project.schema.json",
        "path",
    ),
}


@pytest.mark.parametrize("name", sorted(MUTATIONS))
def test_validate_reports_the_mutation(tmp_path: Path, name: str) -> None:
    root = tree(tmp_path)
    mutate, rule, needle = MUTATIONS[name]
    mutate(root)
    findings = validate.run(root)
    hits = [f for f in findings if f.rule == rule and needle in f.message]
    assert hits, "\n".join(map(str, findings)) or "no findings"


def test_a_settings_file_no_schema_covers_is_reported(tmp_path: Path) -> None:
    root = tree(tmp_path)
    (root / ".gitlab/settings/variables.json").write_text("{}")
    findings = validate.run(root)
    assert any(f.path == ".gitlab/settings/variables.json" and f.rule == "gitlab-settings" for f in findings)


def test_the_tools_that_ran_are_named(tmp_path: Path) -> None:
    assert validate.tools(GOLDEN / SCENARIO) == [
        "yamllint",
        "check-jsonschema",
        "pipeproof gitlab-ci references",
        "pipeproof script references",
    ]


def test_local_includes_extends_and_optional_needs_resolve(tmp_path: Path) -> None:
    (tmp_path / "ci").mkdir()
    (tmp_path / ".gitlab-ci.yml").write_text(
        "include:\n  - local: ci/jobs.yml\nstages: [build, test]\n"
        ".base:\n  stage: test\n  script: [echo]\n"
        "unit:\n  extends: .base\n  needs: [compile, {job: lint, optional: true}]\n"
        "ref:\n  stage: test\n  script: !reference [.base, script]\n"
    )
    (tmp_path / "ci/jobs.yml").write_text("compile:\n  stage: build\n  script: [make]\n")
    assert gitlab_lint.check(tmp_path) == []


def test_a_remote_include_makes_names_unknown_not_missing(tmp_path: Path) -> None:
    (tmp_path / ".gitlab-ci.yml").write_text(
        "include:\n  - remote: https://example.com/ci.yml\nunit:\n  extends: .from-remote\n  needs: [remote-job]\n"
        "  script: [echo]\n"
    )
    assert gitlab_lint.check(tmp_path) == []
    # ... but a stage that does not exist is still wrong: stages: is this file's.
    (tmp_path / ".gitlab-ci.yml").write_text("stages: [a]\nunit:\n  stage: b\n  script: [echo]\n")
    assert [p.rule for p in gitlab_lint.check(tmp_path)] == ["stage"]


def test_real_world_shapes_raise_no_false_alarm(tmp_path: Path) -> None:
    # In our own words, shapes common in public projects: a template include with an override of its job, a
    # project include, YAML anchors merged into jobs, a parallel matrix, a child pipeline trigger, needs on a
    # parent pipeline's job, .pre/.post stages and a job with no stage (GitLab's default, test).
    (tmp_path / ".gitlab-ci.yml").write_text(
        "include:\n"
        "  - template: Jobs/SAST.gitlab-ci.yml\n"
        "  - project: acme/ci-templates\n"
        "    ref: 6f1e2d3c4b5a69788796a5b4c3d2e1f0a9b8c7d6\n"
        "    file: /python.yml\n"
        "stages: [lint, test, deploy]\n"
        ".defaults: &defaults\n"
        "  image: python:3.12.8\n"
        "  interruptible: true\n"
        "semgrep-sast:\n"
        "  variables:\n"
        "    SAST_EXCLUDED_PATHS: docs\n"
        "prepare:\n"
        "  stage: .pre\n"
        "  script: [echo prepare]\n"
        "lint:\n"
        "  <<: *defaults\n"
        "  stage: lint\n"
        "  script: [ruff check .]\n"
        "unit:\n"
        "  <<: *defaults\n"
        "  parallel:\n"
        "    matrix:\n"
        "      - PY: ['3.11', '3.12']\n"
        "  needs: [lint, {job: prepare, artifacts: false}]\n"
        "  script: [pytest]\n"
        "docs:\n"
        "  stage: deploy\n"
        "  trigger:\n"
        "    include: docs/.gitlab-ci.yml\n"
        "    strategy: depend\n"
        "report:\n"
        "  stage: .post\n"
        "  needs: [{pipeline: $PARENT_PIPELINE_ID, job: build}]\n"
        "  script: [echo done]\n"
    )
    assert gitlab_lint.check(tmp_path) == []
