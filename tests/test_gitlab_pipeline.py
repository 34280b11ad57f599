"""The GitLab adapter: what GitLab does with `.gitlab-ci.yml`, modelled (issue 10).

Each test writes a small configuration and asserts the neutral model: which jobs exist, which pipeline sources
add them (runs / maybe / never), what they run and whether a failure can fail the pipeline.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from generator.pipeline import gitlab, gitlab_expr
from generator.pipeline.gitlab_expr import UNKNOWN
from generator.pipeline.model import MANUAL, PULL_REQUEST, PUSH, SCHEDULE, TAG, Pipeline
from generator.repo import Repo


def build(tmp_path: Path, files: dict[str, str], branch: str = "main") -> Pipeline:
    for rel, text in files.items():
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return gitlab.build(Repo(tmp_path), branch)


def job(pipeline: Pipeline, name: str) -> gitlab.GitLabJob:
    found = [j for j in pipeline.jobs if j.id == name]
    assert found, f"no job {name}: {[j.id for j in pipeline.jobs]}"
    assert isinstance(found[0], gitlab.GitLabJob)
    return found[0]


@pytest.mark.parametrize(
    ("expression", "variables", "truth"),
    [
        ('$CI_PIPELINE_SOURCE == "merge_request_event"', {"CI_PIPELINE_SOURCE": "merge_request_event"}, True),
        ("$CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH", {"CI_COMMIT_BRANCH": None, "CI_DEFAULT_BRANCH": "main"}, False),
        ("$CI_COMMIT_TAG", {"CI_COMMIT_TAG": None}, False),
        ("$CI_COMMIT_TAG =~ /^v\\d+/", {"CI_COMMIT_TAG": "v1.0.0"}, True),
        ("$CI_COMMIT_REF_NAME !~ /^release/i", {"CI_COMMIT_REF_NAME": "Release-1"}, False),
        ("$DEPLOY_ENABLED == 'true'", {}, None),  # a project variable: only the run knows
        ("$DEPLOY_ENABLED == 'true' || $CI_COMMIT_TAG", {"CI_COMMIT_TAG": "v1"}, True),
        ("($A || $B) && $C", {"A": UNKNOWN, "B": "x", "C": None}, False),
        ("$X == null", {"X": None}, True),
        ("!($X)", {"X": "1"}, False),
    ],
)
def test_expressions(expression: str, variables: dict[str, object], truth: bool | None) -> None:
    assert gitlab_expr.evaluate(expression, variables) is truth


def test_an_unreadable_expression_is_an_error() -> None:
    with pytest.raises(gitlab_expr.ExpressionError):
        gitlab_expr.evaluate("$A === 'x'", {})


def test_rules_decide_per_pipeline_source(tmp_path: Path) -> None:
    p = build(
        tmp_path,
        {
            ".gitlab-ci.yml": """
            scan:
              script: [semgrep scan --error]
              rules:
                - if: $CI_PIPELINE_SOURCE == "merge_request_event"
                - if: $CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH
            deploy:
              script: [./deploy.sh]
              rules:
                - if: $CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH && $CI_PIPELINE_SOURCE == "push"
                  when: manual
            release:
              script: [make release]
              rules:
                - if: $CI_COMMIT_TAG
            flagged:
              script: [echo x]
              rules:
                - if: $FEATURE_FLAG == "on"
            """
        },
    )
    assert job(p, "scan").reached == {e: "runs" for e in job(p, "scan").reached} | {TAG: "never"}
    deploy = job(p, "deploy")
    assert deploy.reached[PULL_REQUEST] == "never"
    assert deploy.reached[PUSH] == "maybe"  # manual: only when someone starts it
    assert "when: manual" in str(deploy.not_blocking(PUSH))
    assert job(p, "release").reached[TAG] == "runs"
    assert job(p, "release").reached[PUSH] == "never"
    assert job(p, "flagged").reached[PUSH] == "maybe"


def test_workflow_rules_and_the_default_only(tmp_path: Path) -> None:
    without = build(tmp_path / "a", {".gitlab-ci.yml": "test:\n  script: [pytest]\n"})
    # No workflow: a job without rules is `only: [branches, tags]`, so no MR pipeline exists and the branch
    # pipeline of the MR's source branch gates it.
    assert job(without, "test").reached[PULL_REQUEST] == "runs"
    with_workflow = build(
        tmp_path / "b",
        {
            ".gitlab-ci.yml": """
            workflow:
              rules:
                - if: $CI_PIPELINE_SOURCE == "merge_request_event"
                - if: $CI_COMMIT_BRANCH && $CI_OPEN_MERGE_REQUESTS
                  when: never
                - if: $CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH
            test:
              script: [pytest]
            """
        },
    )
    # With workflow:rules the default only: is dropped: the job is in the merge-request pipeline.
    assert job(with_workflow, "test").reached[PULL_REQUEST] == "runs"
    assert job(with_workflow, "test").reached[TAG] == "never"  # no workflow rule matches a tag pipeline
    except_mr = build(
        tmp_path / "c",
        {
            ".gitlab-ci.yml": """
            workflow:
              rules:
                - if: $CI_PIPELINE_SOURCE == "merge_request_event"
                - if: $CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH
            test:
              script: [pytest]
              except: [merge_requests]
            """
        },
    )
    assert job(except_mr, "test").reached[PULL_REQUEST] == "never"
    assert job(except_mr, "test").reached[PUSH] == "runs"


def test_includes_extends_reference_default_and_hidden_jobs(tmp_path: Path) -> None:
    p = build(
        tmp_path,
        {
            ".gitlab-ci.yml": """
            include:
              - local: /ci/*.yml
            default:
              image: python:3.12.4
              timeout: 10 minutes
            lint:
              extends: .strict
              variables:
                LEVEL: high
              script:
                - !reference [.commands, setup]
                - bandit -r src
            """,
            "ci/base.yml": """
            .base:
              variables:
                LEVEL: low
                KEEP: "1"
              rules:
                - if: $CI_PIPELINE_SOURCE == "push"
            .strict:
              extends: .base
              allow_failure: false
              rules:
                - if: $CI_PIPELINE_SOURCE == "merge_request_event"
            .commands:
              setup:
                - pip install bandit==1.7.9
                - pip --version
            """,
        },
    )
    assert [j.id for j in p.jobs] == ["lint"]  # hidden jobs are templates
    lint = job(p, "lint")
    assert lint.data["variables"] == {"LEVEL": "high", "KEEP": "1"}  # mappings merge, the job wins
    assert lint.data["rules"] == [{"if": '$CI_PIPELINE_SOURCE == "merge_request_event"'}]  # lists are replaced
    assert lint.data["image"] == "python:3.12.4" and lint.data["timeout"] == "10 minutes"
    assert lint.steps[0].run.splitlines() == ["pip install bandit==1.7.9", "pip --version", "bandit -r src"]
    assert lint.reached[PULL_REQUEST] == "runs" and lint.reached[PUSH] == "never"
    uses = [inv for inv in lint.invocations() if inv.tool.name == "bandit"]
    assert [inv.where for inv in uses] == [".gitlab-ci.yml:12"]
    assert [where for _text, where in lint.steps[0].lines] == ["ci/base.yml:14", "ci/base.yml:15", ".gitlab-ci.yml:12"]
    assert not p.opaque


def test_includes_the_audit_cannot_read(tmp_path: Path) -> None:
    p = build(
        tmp_path,
        {
            ".gitlab-ci.yml": """
            include:
              - remote: https://example.com/ci.yml
              - project: group/templates
                file: /scan.yml
              - local: missing.yml
            test:
              script: [pytest]
              extends: .from-remote
            """
        },
    )
    said = " | ".join(text for _where, text in p.opaque)
    assert "remote include https://example.com/ci.yml" in said
    assert "project include group/templates:/scan.yml@HEAD" in said
    assert "local include missing.yml does not exist" in said


def test_needs_on_a_job_the_pipeline_does_not_add_refuses_the_pipeline(tmp_path: Path) -> None:
    p = build(
        tmp_path,
        {
            ".gitlab-ci.yml": """
            workflow:
              rules:
                - if: $CI_PIPELINE_SOURCE == "merge_request_event"
                - if: $CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH
            build:
              script: [make]
              rules:
                - if: $CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH
            scan:
              needs: [build]
              script: [gitleaks git --exit-code 1 .]
            optional:
              needs: [{job: build, optional: true}]
              script: [echo ok]
            """
        },
    )
    scan = job(p, "scan")
    assert scan.reached[PULL_REQUEST] == "never"
    assert "creates no pipeline" in str(scan.not_blocking(PULL_REQUEST))
    assert scan.reached[PUSH] == "runs"


def test_a_job_without_needs_waits_for_the_earlier_stages(tmp_path: Path) -> None:
    p = build(
        tmp_path,
        {
            ".gitlab-ci.yml": """
            stages: [test, deploy]
            a:
              stage: test
              script: [pytest]
            b:
              stage: test
              script: [semgrep scan --error]
            ship:
              stage: deploy
              script: [./deploy.sh]
            fast:
              stage: deploy
              needs: [a]
              script: [./deploy.sh]
            """
        },
    )
    assert job(p, "ship").needs == ["a", "b"]
    assert job(p, "fast").needs == ["a"]


def test_what_lets_a_failure_pass(tmp_path: Path) -> None:
    p = build(
        tmp_path,
        {
            ".gitlab-ci.yml": """
            codes:
              script: [gitleaks git --exit-code 1 .]
              allow_failure:
                exit_codes: [1]
            other-codes:
              script: [trivy fs --exit-code 5 .]
              allow_failure:
                exit_codes: [3]
            manual:
              script: [pytest]
              when: manual
            after:
              script: [echo build]
              after_script: [semgrep scan --error]
            """
        },
    )

    def why(name: str) -> str | None:
        inv = next(job(p, name).invocations())
        return p.why_not_blocking(inv, (PUSH,))

    assert "exit_codes [1]" in str(why("codes"))
    assert why("other-codes") is None
    assert "when: manual" in str(job(p, "manual").not_blocking(PUSH))  # and allow_failure: true by default
    assert "after_script cannot fail" in str(why("after"))


def test_production_jobs(tmp_path: Path) -> None:
    p = build(
        tmp_path,
        {
            ".gitlab-ci.yml": """
            stages: [deploy, rollback]
            prod:
              stage: deploy
              environment: {name: live-eu, deployment_tier: production}
              script: [./deploy.sh]
            stop-prod:
              stage: deploy
              environment: {name: production, action: stop}
              script: [./teardown.sh]
              when: manual
            rollback:
              stage: rollback
              environment: {name: production}
              script: [./rollback.sh]
              when: on_failure
            staging:
              stage: deploy
              environment: staging
              script: [./deploy.sh staging]
            """
        },
    )
    assert [j.id for j in p.production_jobs()] == ["prod"]


def test_other_yaml_tags_are_still_refused(tmp_path: Path) -> None:
    p = build(tmp_path, {".gitlab-ci.yml": "a:\n  script: !!python/object:os.system [echo]\n"})
    assert not p.jobs
    assert [e.path for e in p.errors] == [".gitlab-ci.yml"]


def test_variables_and_reach_of_web_and_schedule(tmp_path: Path) -> None:
    p = build(
        tmp_path,
        {
            ".gitlab-ci.yml": """
            variables:
              RUN_DRILL: "yes"
            drill:
              script: [./rollback.sh]
              rules:
                - if: $CI_PIPELINE_SOURCE == "schedule" && $RUN_DRILL == "yes"
                - if: $CI_PIPELINE_SOURCE == "web"
                  when: manual
            """
        },
    )
    drill = job(p, "drill")
    assert drill.reached[SCHEDULE] == "runs"
    assert drill.reached[MANUAL] == "maybe"
    assert drill.reached[PUSH] == "never"


def test_an_include_with_a_spec_header_keeps_its_lines(tmp_path: Path) -> None:
    p = build(
        tmp_path,
        {
            ".gitlab-ci.yml": """
            include:
              - local: ci/scan.yml
                inputs:
                  stage: test
            """,
            "ci/scan.yml": """
            spec:
              inputs:
                stage:
                  default: test
            ---
            semgrep:
              stage: $[[ inputs.stage ]]
              script:
                - semgrep scan --error
            """,
        },
    )
    assert not p.errors
    [inv] = list(job(p, "semgrep").invocations())
    assert inv.where == "ci/scan.yml:9"


def test_workflow_changes_are_decided_only_without_a_push(tmp_path: Path) -> None:
    p = build(
        tmp_path,
        {
            ".gitlab-ci.yml": """
            workflow:
              rules:
                - changes: [src/**/*]
            test:
              script: [pytest]
            """
        },
    )
    test = job(p, "test")
    assert test.reached[PUSH] == "maybe"  # the diff decides
    assert test.reached[SCHEDULE] == "runs"  # no push: rules:changes is true


def test_a_configuration_gitlab_rejects_runs_nothing(tmp_path: Path) -> None:
    from generator.controls.judge import gate

    p = build(
        tmp_path,
        {
            ".gitlab-ci.yml": """
            stages: [test]
            secrets:
              stage: scan
              script: [gitleaks git --exit-code 1 .]
            """
        },
    )
    assert "stage 'scan', which stages: does not list" in str(job(p, "secrets").invalid)
    outcome = gate(p, "secrets", "secrets scanning")
    assert outcome.status == "fail"
    assert "rejected by GitLab" in outcome.findings[0].message


@pytest.mark.parametrize(
    ("variables", "status"),
    [
        ({"POSTGRES_PASSWORD": "postgres", "MYSQL_ROOT_PASSWORD": "root"}, "pass"),  # test-service defaults
        ({"SONAR_TOKEN": "sqp_3f9a0c7e1b2d4a6f8e0c"}, "fail"),
        ({"NOTES": "glpat-abcdefghij0123456789"}, "fail"),  # a GitLab token, whatever the name
        ({"API_TOKEN": "$VAULT_API_TOKEN"}, "pass"),  # a reference, not a value
    ],
)
def test_secrets_in_variables(tmp_path: Path, variables: dict[str, str], status: str) -> None:
    from generator.controls.hardening import PP_HARD_05

    lines = "".join(f"  {k}: {v!r}\n" for k, v in variables.items())
    p = build(tmp_path, {".gitlab-ci.yml": f"variables:\n{lines}test:\n  script: [pytest]\n"})
    assert PP_HARD_05.check(p).status == status


def test_only_and_except_refs_and_variables(tmp_path: Path) -> None:
    p = build(
        tmp_path,
        {
            ".gitlab-ci.yml": """
            variables:
              SCAN: "on"
            release:
              script: [make release]
              only: [/^v\\d+/]
            scan:
              script: [semgrep scan --error]
              only:
                refs: [merge_requests, main]
                variables: [$SCAN == "on"]
            nightly:
              script: [make soak]
              only: [schedules]
              except:
                variables: [$SKIP_SOAK]
            """
        },
    )
    assert job(p, "release").reached[TAG] == "runs" and job(p, "release").reached[PUSH] == "never"
    assert job(p, "scan").reached[PULL_REQUEST] == job(p, "scan").reached[PUSH] == "runs"
    assert job(p, "scan").reached[SCHEDULE] == "runs"  # a schedule on main: refs main matches
    assert job(p, "nightly").reached[SCHEDULE] == "maybe"  # $SKIP_SOAK is set where the schedule is
    assert job(p, "nightly").reached[PUSH] == "never"


def test_a_rule_can_allow_failure(tmp_path: Path) -> None:
    p = build(
        tmp_path,
        {
            ".gitlab-ci.yml": """
            workflow:
              rules:
                - if: $CI_PIPELINE_SOURCE == "merge_request_event"
                - if: $CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH
            scan:
              script: [checkov -d .]
              rules:
                - if: $CI_PIPELINE_SOURCE == "merge_request_event"
                  allow_failure: true
                - when: on_success
            """
        },
    )
    scan = job(p, "scan")
    assert "allow_failure: true" in str(scan.not_blocking(PULL_REQUEST))
    assert scan.not_blocking(PUSH) is None
