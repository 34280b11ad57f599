"""The Argo CD scripts of a rendered tree, run the way a runner runs them against the stand-in GitHub API: the
promotion pull request (gitops-propose.sh, as the GitOps GitHub App), the sync record (sync-record.sh), the
rollback by git revert (gitops-revert.sh) and the deployment record of a promotion. Each must fail closed.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fakes import github_api as gh
from tests.fakes.github_api import FakeGitHub
from tests.script_runner import REPO, GitRepo, Result, Runner, fake_github

SCENARIO = "argocd-team-private"
IMAGE_REPO = "ghcr.io/acme/argocd-team-private"
DIGEST = "sha256:" + "ab" * 32
IMAGE = f"{IMAGE_REPO}@{DIGEST}"
SOURCE = "3f786850e387550fdab836ed7e6dc881de23001b"
DAST_SHA = "a84d88e7554fc1fa21bcbc4efae3c782a70d2b9d"
APP_ID = "4242"
INSTALLATION = 77


@pytest.fixture(scope="module")
def runner(tmp_path_factory: pytest.TempPathFactory) -> Runner:
    return Runner.render(tmp_path_factory, SCENARIO)


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Two RSA key pairs: the app's, and a stranger's."""
    folder = tmp_path_factory.mktemp("keys")
    found = {}
    for name in ("app", "other"):
        key, pub = folder / f"{name}.pem", folder / f"{name}.pub"
        subprocess.run(["openssl", "genrsa", "-out", str(key), "2048"], check=True, capture_output=True)
        subprocess.run(
            ["openssl", "rsa", "-in", str(key), "-pubout", "-out", str(pub)], check=True, capture_output=True
        )
        found[name], found[name + ".pub"] = key.read_text(), pub.read_text()
    return found


@pytest.fixture
def api(keys: dict[str, str]) -> Iterator[FakeGitHub]:
    for fake in fake_github():
        fake.add_app(int(APP_ID), INSTALLATION, keys["app.pub"])
        yield fake


class Manifests:
    """This repository as the runner checks it out: the rendered argocd/ tree on main, pushed to a bare origin."""

    def __init__(self, root: Path, tree: Path) -> None:
        self.origin = root / "origin.git"
        subprocess.run(["git", "init", "--quiet", "--bare", "--initial-branch=main", str(self.origin)], check=True)
        self.repo = GitRepo(root / "work")
        files = {str(p.relative_to(tree)): p.read_text() for p in (tree / "argocd").rglob("*") if p.is_file()}
        self.base = self.repo.commit("pipeproof pipeline", files)
        self.repo.git("remote", "add", "origin", str(self.origin))
        self.repo.git("push", "--quiet", "origin", "main")

    def remote(self, *args: str) -> str:
        return subprocess.run(
            ["git", "--git-dir", str(self.origin), *args], check=True, capture_output=True, text=True
        ).stdout

    def branches(self) -> list[str]:
        return self.remote("for-each-ref", "--format=%(refname:short)", "refs/heads/").split()


@pytest.fixture
def manifests(runner: Runner, tmp_path: Path) -> Manifests:
    return Manifests(tmp_path, runner.tree)


def propose(runner: Runner, api: FakeGitHub, manifests: Manifests, keys: dict[str, str], **env: str | None) -> Result:
    values: dict[str, str | None] = {
        "GITHUB_API_URL": api.url,
        "REPO": REPO,
        "DEFAULT_BRANCH": "main",
        "ENVIRONMENT": "staging",
        "IMAGE": IMAGE,
        "SOURCE_SHA": SOURCE,
        "BUILD_RUN_ID": "901",
        "APP_ID": APP_ID,
        "APP_PRIVATE_KEY": keys["app"],
        "GITHUB_OUTPUT": str(manifests.repo.path.parent / "output"),
    }
    values.update(env)
    return runner.run(".github/scripts/gitops-propose.sh", cwd=manifests.repo.path, **values)


def test_propose_opens_a_pull_request_with_the_digest_as_the_app(
    runner: Runner, api: FakeGitHub, manifests: Manifests, keys: dict[str, str]
) -> None:
    result = propose(runner, api, manifests, keys)
    assert result.returncode == 0, result
    branch = f"pipeproof/promote-staging-{SOURCE[:12]}"
    assert manifests.branches() == sorted(["main", branch])
    assert manifests.remote("rev-parse", "main").strip() == manifests.base, "main itself is never written"
    kustomization = manifests.remote("show", f"{branch}:argocd/environments/staging/kustomization.yaml")
    assert f"digest: {DIGEST}  # pipeproof:digest" in kustomization
    release = json.loads(manifests.remote("show", f"{branch}:argocd/environments/staging/release.json"))
    assert release == {
        "schema": "pipeproof/gitops-release/v1",
        "environment": "staging",
        "image": IMAGE,
        "sha": SOURCE,
        "run_id": 901,
        "dast": None,
    }
    changed = manifests.remote("diff", "--name-only", "main", branch).split()
    assert changed == ["argocd/environments/staging/kustomization.yaml", "argocd/environments/staging/release.json"]
    # The pull request is the app's (its installation token, scoped to this repository and two permissions).
    (issued,) = api.issued
    assert issued["request"] == {
        "repositories": ["shop"],
        "permissions": {"contents": "write", "pull_requests": "write"},
    }
    (pull,) = api.created_pulls
    assert (pull["head"]["ref"], pull["base"]["ref"]) == (branch, "main")
    (post,) = [r for r in api.calls(f"/repos/{REPO}/pulls") if r.method == "POST"]
    assert post.headers["authorization"] == f"Bearer {issued['token']}"
    assert f"::add-mask::{issued['token']}" in result.stdout, "the minted token is masked in the log"
    assert (manifests.repo.path.parent / "output").read_text() == f"pull_request=100\nbranch={branch}\n"


def test_propose_production_records_the_dast_run(
    runner: Runner, api: FakeGitHub, manifests: Manifests, keys: dict[str, str]
) -> None:
    result = propose(runner, api, manifests, keys, ENVIRONMENT="production", DAST_SHA=DAST_SHA, DAST_RUN_ID="333")
    assert result.returncode == 0, result
    release = json.loads(
        manifests.remote(
            "show", f"pipeproof/promote-production-{SOURCE[:12]}:argocd/environments/production/release.json"
        )
    )
    assert release["dast"] == {"sha": DAST_SHA, "run_id": 333}


def test_propose_again_reuses_the_open_pull_request(
    runner: Runner, api: FakeGitHub, manifests: Manifests, keys: dict[str, str]
) -> None:
    assert propose(runner, api, manifests, keys).returncode == 0
    manifests.repo.git("checkout", "--quiet", "--force", "main")
    again = propose(runner, api, manifests, keys)
    assert again.returncode == 0, again
    assert len(api.created_pulls) == 1
    assert "already proposes" in again.stdout


def test_propose_nothing_when_the_environment_runs_the_image(
    runner: Runner, api: FakeGitHub, manifests: Manifests, keys: dict[str, str]
) -> None:
    first = propose(runner, api, manifests, keys)
    assert first.returncode == 0
    # Merge the promotion into main, as the reviewed pull request would.
    branch = f"pipeproof/promote-staging-{SOURCE[:12]}"
    manifests.repo.git("checkout", "--quiet", "--force", "main")
    manifests.repo.git("merge", "--quiet", "--ff-only", branch)
    before = len(api.requests)
    result = propose(runner, api, manifests, keys)
    assert result.returncode == 0, result
    assert "already runs" in result.stdout
    assert len(api.requests) == before, "no token minted, no pull request"


@pytest.mark.parametrize(
    ("env", "code", "error"),
    [
        ({"IMAGE": f"{IMAGE_REPO}:latest"}, 2, "image reference by digest"),
        ({"IMAGE": f"{IMAGE_REPO}@sha256:abc"}, 2, "image reference by digest"),
        ({"SOURCE_SHA": "main"}, 2, "40-character commit SHA"),
        ({"ENVIRONMENT": "qa"}, 2, "staging or production"),
        ({"ENVIRONMENT": "production"}, 2, "DAST_SHA DAST_RUN_ID"),
        ({"APP_PRIVATE_KEY": None}, 2, "APP_PRIVATE_KEY"),
        ({"BUILD_RUN_ID": "77; rm -rf /"}, 2, "whole number"),
        ({"IMAGE": "ghcr.io/evil/other@" + DIGEST}, 1, "no images entry named ghcr.io/evil/other"),
    ],
    ids=["tag", "short-digest", "sha", "environment", "production-without-dast", "no-key", "run-id", "other-image"],
)
def test_propose_refuses_bad_input_and_writes_nothing(
    runner: Runner,
    api: FakeGitHub,
    manifests: Manifests,
    keys: dict[str, str],
    env: dict[str, str],
    code: int,
    error: str,
) -> None:
    result = propose(runner, api, manifests, keys, **env)
    assert result.returncode == code, result
    assert any(error in e for e in result.errors), result.errors
    assert manifests.branches() == ["main"] and not api.created_pulls and not api.issued


def test_propose_needs_exactly_one_digest_marker(
    runner: Runner, api: FakeGitHub, manifests: Manifests, keys: dict[str, str]
) -> None:
    path = manifests.repo.path / "argocd/environments/staging/kustomization.yaml"
    path.write_text(path.read_text().replace("  # pipeproof:digest", ""))
    result = propose(runner, api, manifests, keys)
    assert result.returncode == 1, result
    assert any("exactly one 'digest: sha256:<64 hex>  # pipeproof:digest' line, found 0" in e for e in result.errors)
    assert manifests.branches() == ["main"] and not api.created_pulls


@pytest.mark.parametrize(
    ("setup", "error"),
    [
        (lambda api, keys: api.apps.clear(), "GET /repos/acme/shop/installation failed: HTTP 401"),
        (lambda api, keys: api.add_app(int(APP_ID), INSTALLATION, keys["other.pub"]), "HTTP 401"),
        (
            lambda api, keys: api.fail(r"/app/installations/\d+/access_tokens", 500, method="POST"),
            "access_tokens failed: HTTP 500",
        ),
        (
            lambda api, keys: api.fail(f"/repos/{REPO}/pulls", 500, method="POST"),
            f"POST /repos/{REPO}/pulls failed: HTTP 500",
        ),
        (
            lambda api, keys: api.fail(
                f"/repos/{REPO}/pulls", 403, "Resource not accessible by integration", method="POST"
            ),
            "Resource not accessible by integration",
        ),
        (
            lambda api, keys: api.fail(f"/repos/{REPO}/pulls", 502, times=None),
            f"GET /repos/{REPO}/pulls failed after 4 attempts",
        ),
    ],
    ids=["app-not-installed", "wrong-key", "token-500", "create-pull-500", "create-pull-403", "list-pulls-502"],
)
def test_propose_fails_closed_when_github_says_no(
    runner: Runner, api: FakeGitHub, manifests: Manifests, keys: dict[str, str], setup: Any, error: str
) -> None:
    setup(api, keys)
    result = propose(runner, api, manifests, keys)
    assert result.returncode == 1, result
    assert any(error in e for e in result.errors), result.errors
    assert not api.created_pulls
    assert manifests.remote("rev-parse", "main").strip() == manifests.base


def test_propose_fails_when_the_push_is_refused(
    runner: Runner, api: FakeGitHub, manifests: Manifests, keys: dict[str, str]
) -> None:
    shutil.rmtree(manifests.origin)
    result = propose(runner, api, manifests, keys)
    assert result.returncode == 1, result
    assert any("git push of pipeproof/promote-staging" in e for e in result.errors), result.errors
    assert not api.created_pulls


def test_the_private_key_is_signed_with_never_shown(
    runner: Runner, api: FakeGitHub, manifests: Manifests, keys: dict[str, str]
) -> None:
    result = propose(runner, api, manifests, keys, APP_PRIVATE_KEY="not a key")
    assert result.returncode == 1, result
    assert any("not the GitHub App's private key" in e for e in result.errors)
    body = keys["app"].splitlines()[1]
    assert body not in result.stdout + result.stderr
    assert not list(runner.sandbox.rglob("app-key.pem")), "the key file is removed"


# --- sync-record.sh -------------------------------------------------------------------------------------


def sync_record(runner: Runner, api: FakeGitHub, tmp_path: Path, deployment: str = "5") -> tuple[Result, Path]:
    out = tmp_path / "sync-record.json"
    result = runner.run(
        ".github/scripts/sync-record.sh",
        GITHUB_API_URL=api.url,
        REPO=REPO,
        DEPLOYMENT_ID=deployment,
        RECORD_OUT=str(out),
        GITHUB_OUTPUT=str(tmp_path / "output"),
    )
    return result, out


def test_sync_record_keeps_argo_cds_whole_history_of_the_deployment(
    runner: Runner, api: FakeGitHub, tmp_path: Path
) -> None:
    api.deployments = [gh.deployment(5, SOURCE, "production")]
    api.deployment_statuses[5] = [
        gh.deployment_status(i, state) for i, state in ((1, "failure"), (2, "success"), (3, "error"))
    ]
    result, out = sync_record(runner, api, tmp_path)
    assert result.returncode == 0, result
    record = json.loads(out.read_text())
    assert (record["environment"], record["revision"], record["state"]) == ("production", SOURCE, "error")
    assert [s["state"] for s in record["history"]] == ["failure", "success", "error"], "every page, oldest first"
    assert (tmp_path / "output").read_text() == "state=error\n"


@pytest.mark.parametrize(
    ("setup", "error"),
    [
        (lambda api: api.deployment_statuses.__setitem__(5, []), "has no statuses"),
        (lambda api: api.fail(f"/repos/{REPO}/deployments/5/statuses", 500, times=None), "failed after 4 attempts"),
        (lambda api: api.deployments.clear(), "HTTP 404"),
    ],
    ids=["no-statuses", "statuses-500", "unknown-deployment"],
)
def test_sync_record_fails_closed_and_writes_nothing(
    runner: Runner, api: FakeGitHub, tmp_path: Path, setup: Any, error: str
) -> None:
    api.deployments = [gh.deployment(5, SOURCE, "production")]
    api.deployment_statuses[5] = [gh.deployment_status(1, "success")]
    setup(api)
    result, out = sync_record(runner, api, tmp_path)
    assert result.returncode == 1, result
    assert any(error in e for e in result.errors), result.errors
    assert not out.exists()


def test_sync_record_refuses_a_deployment_id_that_is_not_a_number(
    runner: Runner, api: FakeGitHub, tmp_path: Path
) -> None:
    result, out = sync_record(runner, api, tmp_path, "5/../../x")
    assert result.returncode == 2 and not out.exists() and not api.requests


# --- gitops-revert.sh -------------------------------------------------------------------------------------


def promote_commit(manifests: Manifests, digest: str = DIGEST) -> str:
    root = manifests.repo.path / "argocd/environments/production"
    kustomization = (root / "kustomization.yaml").read_text()
    old = kustomization.split("digest: ", 1)[1].split()[0]
    return manifests.repo.commit(
        "Promote to production",
        {
            "argocd/environments/production/kustomization.yaml": kustomization.replace(old, digest),
            "argocd/environments/production/release.json": json.dumps(
                {"image": f"{IMAGE_REPO}@{digest}", "sha": SOURCE}
            ),
        },
    )


def revert(
    runner: Runner, api: FakeGitHub, manifests: Manifests, keys: dict[str, str], commit: str | None
) -> tuple[Result, Path]:
    out = manifests.repo.path.parent / "rollback-record.json"
    result = runner.run(
        ".github/scripts/gitops-revert.sh",
        cwd=manifests.repo.path,
        GITHUB_API_URL=api.url,
        REPO=REPO,
        DEFAULT_BRANCH="main",
        COMMIT=commit,
        ENVIRONMENT="production",
        ACTOR="oncall-ana",
        APP_ID=APP_ID,
        APP_PRIVATE_KEY=keys["app"],
        RECORD_OUT=str(out),
    )
    return result, out


def test_revert_proposes_the_revert_and_records_it(
    runner: Runner, api: FakeGitHub, manifests: Manifests, keys: dict[str, str]
) -> None:
    first = promote_commit(manifests, "sha256:" + "11" * 32)
    bad = promote_commit(manifests)
    manifests.repo.git("push", "--quiet", "origin", "main")
    result, out = revert(runner, api, manifests, keys, bad)
    assert result.returncode == 0, result
    branch = f"pipeproof/rollback-production-{bad[:12]}"
    release = json.loads(manifests.remote("show", f"{branch}:argocd/environments/production/release.json"))
    assert release["image"] == f"{IMAGE_REPO}@sha256:{'11' * 32}", "the revert restores the previous image"
    assert manifests.remote("rev-parse", f"{branch}~1").strip() == bad
    record = json.loads(out.read_text())
    assert record["reverted_commit"] == bad and record["environment"] == "production"
    assert (record["image_from"], record["image_to"]) == (IMAGE, f"{IMAGE_REPO}@sha256:{'11' * 32}")
    assert record["requested_by"] == "oncall-ana" and record["pull_request"]["number"] == 100
    assert first != bad


def test_revert_refuses_a_commit_that_is_not_a_promotion(
    runner: Runner, api: FakeGitHub, manifests: Manifests, keys: dict[str, str]
) -> None:
    code = manifests.repo.commit("feature", {"src/app.py": "print(1)\n"})
    result, out = revert(runner, api, manifests, keys, code)
    assert result.returncode == 1, result
    assert any("outside argocd/environments/" in e for e in result.errors), result.errors
    assert not out.exists() and not api.requests and manifests.branches() == ["main"]


def test_revert_refuses_a_conflicting_revert(
    runner: Runner, api: FakeGitHub, manifests: Manifests, keys: dict[str, str]
) -> None:
    older = promote_commit(manifests, "sha256:" + "11" * 32)
    promote_commit(manifests)  # a later promotion changed the same lines
    result, out = revert(runner, api, manifests, keys, older)
    assert result.returncode == 1, result
    assert any("does not apply cleanly" in e for e in result.errors), result.errors
    assert not out.exists() and not api.created_pulls


@pytest.mark.parametrize("commit", ["HEAD", "abc", "e" * 40])
def test_revert_refuses_what_is_not_a_commit_of_main(
    runner: Runner, api: FakeGitHub, manifests: Manifests, keys: dict[str, str], commit: str
) -> None:
    result, out = revert(runner, api, manifests, keys, commit)
    assert result.returncode in {1, 2}, result
    assert not out.exists() and not api.requests


# --- deployment-record.sh for a promotion -----------------------------------------------------------------


def record(runner: Runner, tmp_path: Path, gates: str, **env: str) -> tuple[Result, dict[str, Any]]:
    for name, data in {
        "approvals.json": {"pull_request": 12, "approvals": [{"user": "sec-bob"}]},
        "prs.json": [],
        "checks.json": [],
        "manifest.json": {"files": []},
    }.items():
        (tmp_path / name).write_text(json.dumps(data))
    (tmp_path / "sbom.json").write_text("{}")
    out = tmp_path / "record.json"
    values = {
        "RECORD_OUT": str(out),
        "SHA": SOURCE,
        "ENVIRONMENT": "production",
        "IMAGE": IMAGE,
        "DEPLOY_MODEL": "argocd",
        "GATES_OUTCOME": gates,
        "PROMOTION_SHA": DAST_SHA,
        "APPLICATION": "argocd-team-private-production",
        "APPROVALS": str(tmp_path / "approvals.json"),
        "PRS": str(tmp_path / "prs.json"),
        "CHECKS": str(tmp_path / "checks.json"),
        "MANIFEST": str(tmp_path / "manifest.json"),
        "SBOM": str(tmp_path / "sbom.json"),
    }
    result = runner.run(".github/scripts/deployment-record.sh", **{**values, **env})
    return result, json.loads(out.read_text()) if out.exists() else {}


@pytest.mark.parametrize(
    ("gates", "status"), [("success", "promoted"), ("failure", "gate_failed"), ("cancelled", "gate_failed")]
)
def test_the_promotion_record_ties_commit_approvers_digest_and_sbom(
    runner: Runner, tmp_path: Path, gates: str, status: str
) -> None:
    result, data = record(runner, tmp_path, gates)
    assert result.returncode == 0, result
    assert data["status"] == status
    assert data["gitops"] == {
        "deployed_by": "argocd",
        "promotion_commit": DAST_SHA,
        "application": "argocd-team-private-production",
    }
    assert data["image"] == IMAGE and data["approval"]["approvals"]["approvals"] == [{"user": "sec-bob"}]
    assert data["sbom"]["sha256"] and data["missing"] == []


def test_the_promotion_record_refuses_a_promotion_commit_that_is_not_a_sha(runner: Runner, tmp_path: Path) -> None:
    result, data = record(runner, tmp_path, "success", PROMOTION_SHA="main")
    assert result.returncode == 2 and not data


def test_revert_without_a_commit_reverts_the_last_production_promotion(
    runner: Runner, api: FakeGitHub, manifests: Manifests, keys: dict[str, str]
) -> None:
    promote_commit(manifests, "sha256:" + "11" * 32)
    last = promote_commit(manifests)
    manifests.repo.commit("feature", {"src/app.py": "print(2)\n"})
    result, out = revert(runner, api, manifests, keys, None)
    assert result.returncode == 0, result
    assert json.loads(out.read_text())["reverted_commit"] == last
    # Reverting again would revert the rollback and bring the bad image back: refused.
    manifests.repo.git("checkout", "--quiet", "--force", "main")
    manifests.repo.git("merge", "--quiet", "--ff-only", f"pipeproof/rollback-production-{last[:12]}")
    again, _ = revert(runner, api, manifests, keys, None)
    assert again.returncode == 1, again
    assert any("already a revert" in e for e in again.errors), again.errors
    assert len(api.created_pulls) == 1


def test_revert_without_a_commit_refuses_a_change_that_is_not_one_promotion(
    runner: Runner, api: FakeGitHub, manifests: Manifests, keys: dict[str, str]
) -> None:
    # The only change to production is the first commit, which added every environment at once.
    result, out = revert(runner, api, manifests, keys, None)
    assert result.returncode == 1, result
    assert any("is the first commit" in e for e in result.errors), result.errors
    both_envs = manifests.repo.commit(
        "touch both",
        {f"argocd/environments/{env}/release.json": '{"image": null}' for env in ("staging", "production")},
    )
    result, out = revert(runner, api, manifests, keys, None)
    assert result.returncode == 1, result
    assert any(f"commit {both_envs} changes both" in e for e in result.errors), result.errors
    assert not out.exists() and not api.requests


@pytest.mark.parametrize("scenario", ["argocd-team-private", "argocd-enterprise-automated"])
def test_every_script_of_an_argocd_tree_is_called_and_no_cluster_script_ships(scenario: str) -> None:
    from tests.helpers import GOLDEN

    tree = GOLDEN / scenario
    workflows = "".join(p.read_text() for p in (tree / ".github").rglob("*.yml"))
    for folder in (".github/scripts", "scripts"):
        scripts = {p.name: p.read_text() for p in (tree / folder).iterdir()}
        for name in scripts:
            # A library is sourced by its siblings: . "$(dirname -- "${BASH_SOURCE[0]}")/api.sh"
            sourced = any(f'")/{name}"' in text for other, text in scripts.items() if other != name)
            assert sourced or f"{folder}/{name}" in workflows, f"{folder}/{name} ships but nothing calls it"
    assert not (tree / "scripts/deploy.sh").exists() and not (tree / "scripts/rollback.sh").exists()
    assert not (tree / ".github/workflows/rollback-drill.yml").exists()
