"""A stand-in for the GitLab REST API v4 on 127.0.0.1, to execute the generated `.gitlab/scripts/` against.

It answers the way GitLab does for the endpoints those scripts call: the token in the PRIVATE-TOKEN header
(401 `{"message": "401 Unauthorized"}` otherwise), offset pagination with `page`/`per_page`, a `Link` header
(rel="next", "first", "last") and the `x-page`/`x-next-page`/`x-total` headers, error bodies with `message`
(or `error`), and payloads shaped like GitLab's (deployments with `deployable` and `approvals`, merge requests,
approvals with `approved_by`, system notes, diff versions, pipeline jobs, audit events, project events). A
test sets the state (plain dicts and lists), injects faults per path (`fail`), and reads the request log.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

API = "/api/v4"


def user(username: str, uid: int | None = None) -> dict[str, Any]:
    return {
        "id": uid if uid is not None else sum(map(ord, username)) * 7,
        "username": username,
        "name": username.title(),
        "state": "active",
        "avatar_url": None,
        "web_url": f"https://gitlab.example.com/{username}",
    }


def deployment(
    did: int,
    sha: str,
    *,
    job_id: int,
    environment: str = "production",
    status: str = "success",
    approvals: list[dict[str, Any]] | None = None,
    by: str = "deployer",
) -> dict[str, Any]:
    return {
        "id": did,
        "iid": did,
        "ref": "main",
        "sha": sha,
        "created_at": "2026-11-20T10:00:00.000Z",
        "updated_at": "2026-11-20T10:05:00.000Z",
        "status": status,
        "user": user(by),
        "environment": {"id": 7, "name": environment, "external_url": "https://app.example.com"},
        "deployable": {
            "id": job_id,
            "status": "running",
            "stage": "production",
            "name": "deploy-production",
            "ref": "main",
            "tag": False,
            "pipeline": {"id": 900, "sha": sha, "status": "running"},
        },
        "approvals": approvals or [],
        "pending_approval_count": 0,
        "approval_summary": {"rules": []},
    }


def approval_rule(group_id: int, required: int, *approvals: dict[str, Any]) -> dict[str, Any]:
    """One rule of a deployment's approval_summary (GitLab 16+), with the approvals given under it."""
    return {
        "user_id": None,
        "group_id": group_id,
        "access_level": None,
        "access_level_description": f"group-{group_id}",
        "required_approvals": required,
        "deployment_approvals": list(approvals),
    }


def deployment_approval(username: str, status: str = "approved") -> dict[str, Any]:
    return {"user": user(username), "status": status, "created_at": "2026-11-20T10:01:00.000Z", "comment": "ok"}


def merge_request(iid: int, sha: str, *, author: str, target: str = "main", state: str = "merged") -> dict[str, Any]:
    return {
        "id": 5000 + iid,
        "iid": iid,
        "project_id": 42,
        "title": f"change {iid}",
        "state": state,
        "target_branch": target,
        "source_branch": f"feature-{iid}",
        "author": user(author),
        "merged_by": user("maintainer") if state == "merged" else None,
        "merge_user": user("maintainer") if state == "merged" else None,
        "merged_at": "2026-11-19T12:00:00.000Z" if state == "merged" else None,
        "sha": sha,
        "merge_commit_sha": None,
        "squash_commit_sha": None,
        "web_url": f"https://gitlab.example.com/acme/shop/-/merge_requests/{iid}",
    }


def approvals(iid: int, *usernames: str) -> dict[str, Any]:
    return {
        "id": 5000 + iid,
        "iid": iid,
        "project_id": 42,
        "approved": bool(usernames),
        "approved_by": [{"user": user(u)} for u in usernames],
    }


def system_note(nid: int, username: str, body: str, created_at: str) -> dict[str, Any]:
    return {
        "id": nid,
        "type": None,
        "body": body,
        "author": user(username),
        "created_at": created_at,
        "updated_at": created_at,
        "system": True,
        "noteable_type": "MergeRequest",
    }


def version(vid: int, head_sha: str, created_at: str) -> dict[str, Any]:
    return {
        "id": vid,
        "head_commit_sha": head_sha,
        "base_commit_sha": "0" * 40,
        "start_commit_sha": "0" * 40,
        "created_at": created_at,
        "merge_request_id": 1,
        "state": "collected",
        "real_size": "1",
    }


def file_diff(
    path: str,
    diff: str,
    *,
    old_path: str | None = None,
    new_file: bool = False,
    deleted_file: bool = False,
    mode: str = "100644",
    too_large: bool = False,
) -> dict[str, Any]:
    """One entry of a diff version's `diffs` (GET .../versions/:version_id), as GitLab's Entities::Diff shows it.
    (review-gate.sh, feat-gl-gate)"""
    return {
        "diff": diff,
        "collapsed": False,
        "too_large": too_large,
        "new_path": path,
        "old_path": old_path or path,
        "a_mode": "0" if new_file else mode,
        "b_mode": "0" if deleted_file else mode,
        "new_file": new_file,
        "renamed_file": (old_path or path) != path,
        "deleted_file": deleted_file,
        "generated_file": False,
    }


def job(jid: int, name: str, stage: str, status: str = "success") -> dict[str, Any]:
    return {
        "id": jid,
        "name": name,
        "stage": stage,
        "status": status,
        "allow_failure": False,
        "web_url": f"https://gitlab.example.com/acme/shop/-/jobs/{jid}",
        "finished_at": "2026-11-20T10:00:00.000Z",
        "user": user("deployer"),
    }


def pipeline(pid: int, sha: str, *, ref: str = "main", source: str = "push", tag: bool = False) -> dict[str, Any]:
    return {
        "id": pid,
        "iid": pid - 800,
        "project_id": 42,
        "sha": sha,
        "ref": ref,
        "tag": tag,
        "status": "success",
        "source": source,
        "created_at": "2026-11-20T09:00:00.000Z",
        "web_url": f"https://gitlab.example.com/acme/shop/-/pipelines/{pid}",
    }


def approval_state_rule(name: str, required: int, *usernames: str, rule_type: str = "code_owner") -> dict[str, Any]:
    """One rule of GET .../merge_requests/:iid/approval_state (GitLab Premium)."""
    return {
        "id": sum(map(ord, name)),
        "name": name,
        "rule_type": rule_type,
        "approvals_required": required,
        "approved_by": [user(u) for u in usernames],
        "approved": len(usernames) >= required,
    }


def audit_event(eid: int, created_at: str, change: str = "protected branch") -> dict[str, Any]:
    return {
        "id": eid,
        "author_id": 1,
        "entity_id": 42,
        "entity_type": "Project",
        "details": {"change": change, "author_name": "Admin", "target_type": "ProtectedBranch"},
        "created_at": created_at,
    }


@dataclass(frozen=True)
class Request:
    method: str
    target: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes = b""

    def arg(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[0] if values else default


@dataclass
class Fault:
    pattern: str
    status: int
    times: int | None = None  # None: every time
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    method: str | None = None  # None: every method


Handler = Callable[[Request, "re.Match[str]"], Any]


class FakeGitLab:
    """GitLab REST v4 for one project id. State: deployments, merge requests (with approvals, notes,
    versions), commit -> merge request iids, pipeline jobs, audit events, project events."""

    def __init__(self, project_id: int = 42, *, token: str, page_size: int = 2) -> None:
        self.project_id = project_id
        self.token = token
        self.page_size = page_size
        self.deployments: list[dict[str, Any]] = []
        self.merge_requests: dict[int, dict[str, Any]] = {}
        self.mr_approvals: dict[int, dict[str, Any]] = {}
        self.mr_notes: dict[int, list[dict[str, Any]]] = {}
        self.mr_versions: dict[int, list[dict[str, Any]]] = {}
        self.commit_mrs: dict[str, list[int]] = {}
        self.jobs: dict[int, list[dict[str, Any]]] = {}
        self.audit_events: list[dict[str, Any]] = []
        self.events: list[dict[str, Any]] = []
        self.requests: list[Request] = []
        self.faults: list[Fault] = []
        self._routes: list[tuple[re.Pattern[str], Handler]] = []
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_class(self))
        self._server.daemon_threads = True
        self._default_routes()
        self._gitops_routes()
        self._gitops_verify_routes()
        self._review_gate_routes()

    def __enter__(self) -> FakeGitLab:
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    @property
    def url(self) -> str:
        """GITLAB_API_URL for the scripts."""
        return f"http://127.0.0.1:{self._server.server_address[1]}{API}"

    def fail(
        self,
        pattern: str,
        status: int,
        *,
        times: int | None = None,
        body: Any = None,
        headers: dict[str, str] | None = None,
        method: str | None = None,
    ) -> None:
        """Answer requests whose path matches the regex (and method, when given) with this status (and GitLab's
        error body)."""
        self.faults.append(Fault(pattern, status, times, body, headers or {}, method))

    def calls(self, pattern: str) -> list[Request]:
        return [r for r in self.requests if re.search(pattern, r.path)]

    def add_merge_request(
        self,
        mr: dict[str, Any],
        commits: list[str],
        approved_by: list[str],
        notes: list[dict[str, Any]],
        versions: list[dict[str, Any]],
    ) -> None:
        iid = mr["iid"]
        self.merge_requests[iid] = mr
        self.mr_approvals[iid] = approvals(iid, *approved_by)
        self.mr_notes[iid] = notes
        self.mr_versions[iid] = versions
        for sha in commits:
            self.commit_mrs.setdefault(sha, []).append(iid)

    def route(self, pattern: str) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            self._routes.append((re.compile(f"^{API}/projects/{self.project_id}{pattern}$"), handler))
            return handler

        return register

    def _default_routes(self) -> None:
        @self.route(r"/deployments")
        def deployments(req: Request, m: re.Match[str]) -> Any:
            items = [
                d
                for d in self.deployments
                if req.arg("environment") in (None, d["environment"]["name"])
                and req.arg("status") in (None, d["status"])
                # Both bounds inclusive here: a script keeps exactly its own day whatever GitLab's bounds are.
                and (req.arg("updated_after") or "") <= d["updated_at"][:19] + "Z"
                and d["updated_at"][:19] + "Z" <= (req.arg("updated_before") or "9999")
            ]
            items.sort(key=lambda d: d[req.arg("order_by") or "id"], reverse=req.arg("sort", "asc") == "desc")
            return items

        @self.route(r"/deployments/(\d+)")
        def one_deployment(req: Request, m: re.Match[str]) -> Any:
            found = [d for d in self.deployments if d["id"] == int(m[1])]
            return found[0] if found else (404, {"message": "404 Not found"})

        @self.route(r"/repository/commits/([0-9a-f]+)/merge_requests")
        def commit_mrs(req: Request, m: re.Match[str]) -> Any:
            return [self.merge_requests[i] for i in self.commit_mrs.get(m[1], [])]

        @self.route(r"/merge_requests/(\d+)")
        def mr(req: Request, m: re.Match[str]) -> Any:
            return self.merge_requests.get(int(m[1])) or (404, {"message": "404 Not found"})

        @self.route(r"/merge_requests/(\d+)/approvals")
        def mr_approvals(req: Request, m: re.Match[str]) -> Any:
            return self.mr_approvals.get(int(m[1])) or (404, {"message": "404 Not found"})

        @self.route(r"/merge_requests/(\d+)/notes")
        def notes(req: Request, m: re.Match[str]) -> Any:
            items = sorted(self.mr_notes.get(int(m[1]), []), key=lambda n: n["created_at"])
            return items if req.arg("sort", "desc") == "asc" else items[::-1]

        @self.route(r"/merge_requests/(\d+)/versions")
        def versions(req: Request, m: re.Match[str]) -> Any:
            return sorted(self.mr_versions.get(int(m[1]), []), key=lambda v: v["id"], reverse=True)

        @self.route(r"/pipelines/(\d+)/jobs")
        def jobs(req: Request, m: re.Match[str]) -> Any:
            return self.jobs.get(int(m[1]), [])

        @self.route(r"/audit_events")
        def audit(req: Request, m: re.Match[str]) -> Any:
            after, before = req.arg("created_after") or "", req.arg("created_before") or "9999"
            return [e for e in self.audit_events if after <= e["created_at"] < before]

        @self.route(r"/events")
        def events(req: Request, m: re.Match[str]) -> Any:
            after, before = req.arg("after") or "", req.arg("before") or "9999"
            return [e for e in self.events if e["created_at"][:10] > after and e["created_at"][:10] < before]

    # --- GitOps promotion and rollback (gitops-propose.sh, gitops-revert.sh): merge requests listed and opened ---

    def _gitops_routes(self) -> None:
        """GET merge_requests filtered by state/source_branch/target_branch; POST merge_requests as GitLab
        validates it (400 for a missing field, 409 for a second open merge request from one source branch).
        Opened merge requests join `merge_requests` (iids from 100) and their bodies `created_merge_requests`."""
        self.created_merge_requests: list[dict[str, Any]] = []

        @self.route(r"/merge_requests")
        def merge_requests(req: Request, m: re.Match[str]) -> Any:
            if req.method == "POST":
                return self._open_merge_request(json.loads(req.body or b"{}"))
            return [
                mr
                for mr in self.merge_requests.values()
                if all(req.arg(k) in (None, mr[k]) for k in ("state", "source_branch", "target_branch"))
            ]

    def _open_merge_request(self, body: dict[str, Any]) -> Any:
        for name in ("source_branch", "target_branch", "title"):
            if not isinstance(body.get(name), str) or not body[name]:
                return 400, {"error": f"{name} is missing"}
        for mr in self.merge_requests.values():
            if mr["state"] == "opened" and mr["source_branch"] == body["source_branch"]:
                return 409, {
                    "message": [f"Another open merge request already exists for this source branch: !{mr['iid']}"]
                }
        iid = max([99, *self.merge_requests]) + 1
        mr = merge_request(iid, "0" * 40, author="project_42_bot", target=body["target_branch"], state="opened")
        mr.update(title=body["title"], source_branch=body["source_branch"], description=body.get("description"))
        self.merge_requests[iid] = mr
        self.created_merge_requests.append(body)
        return 201, mr

    # --- Argo CD promotion verification (promotion-check.sh): pipelines, job artifacts, approval rules -------

    pipelines: dict[int, dict[str, Any]]
    artifacts: dict[tuple[int, str], Any]
    mr_approval_state: dict[int, dict[str, Any]]

    def _gitops_verify_routes(self) -> None:
        self.pipelines = {}
        self.artifacts = {}  # (job id, path) -> the file: JSON-able, or str for raw bytes
        self.mr_approval_state = {}  # absent: 404, as GitLab Free answers (the endpoint is Premium's)

        @self.route(r"/pipelines/(\d+)")
        def one_pipeline(req: Request, m: re.Match[str]) -> Any:
            return self.pipelines.get(int(m[1])) or (404, {"message": "404 Not found"})

        @self.route(r"/jobs/(\d+)/artifacts/(.+)")
        def artifact(req: Request, m: re.Match[str]) -> Any:
            found = self.artifacts.get((int(m[1]), m[2]))
            return (404, {"message": "404 Not Found"}) if found is None else (200, found)

        @self.route(r"/merge_requests/(\d+)/approval_state")
        def approval_state(req: Request, m: re.Match[str]) -> Any:
            return self.mr_approval_state.get(int(m[1])) or (404, {"error": "404 Not Found"})

    # --- review-gate.sh (feat-gl-gate): users (bot or not) and single diff versions with their diffs ----------

    bot_usernames: set[str]
    version_diffs: dict[tuple[int, int], list[dict[str, Any]]]

    def _review_gate_routes(self) -> None:
        """GET /users/:id for every user the state names (authors, mergers, approvers, deployers), with GitLab's
        `bot` flag: true for the names in `bot_usernames` and for GitLab's own bot names (project_N_bot...,
        group_N_bot..., service_account...); 404 for an id nobody has. GET .../versions/:version_id: a version
        of `mr_versions` with `commits` and `diffs` (`version_diffs[(iid, version id)]`, made with
        `file_diff`); a version given no diffs changes a file of its own, so two of them never compare equal."""
        self.bot_usernames = set()
        self.version_diffs = {}
        users = re.compile(f"^{API}/users/(\\d+)$")

        def one_user(req: Request, m: re.Match[str]) -> Any:
            for known in self._known_users():
                if known["id"] == int(m[1]):
                    bot = known["username"] in self.bot_usernames or bool(
                        re.match(r"(project|group)_\d+_bot|service_account", known["username"])
                    )
                    return {**known, "created_at": "2026-01-01T00:00:00.000Z", "bio": "", "bot": bot}
            return 404, {"message": "404 User Not Found"}

        self._routes.append((users, one_user))

        @self.route(r"/merge_requests/(\d+)/versions/(\d+)")
        def one_version(req: Request, m: re.Match[str]) -> Any:
            iid, vid = int(m[1]), int(m[2])
            found = [v for v in self.mr_versions.get(iid, []) if v["id"] == vid]
            if not found:
                return 404, {"message": "404 Not found"}
            diffs = self.version_diffs.get((iid, vid))
            if diffs is None:
                diffs = [file_diff(f"version-{vid}.txt", f"@@ -0,0 +1 @@\n+version {vid}\n", new_file=True)]
            return {**found[0], "commits": [], "diffs": diffs}

    def _known_users(self) -> list[dict[str, Any]]:
        found = [
            mr[k] for mr in self.merge_requests.values() for k in ("author", "merged_by", "merge_user") if mr.get(k)
        ]
        found += [a["user"] for state in self.mr_approvals.values() for a in state.get("approved_by", [])]
        found += [d["user"] for d in self.deployments if d.get("user")]
        return found

    def handle(self, req: Request, host: str) -> tuple[int, dict[str, str], Any]:
        self.requests.append(req)
        if req.headers.get("private-token") != self.token:
            return 401, {}, {"message": "401 Unauthorized"}
        for fault in self.faults:
            if re.search(fault.pattern, req.path) and fault.times != 0 and fault.method in (None, req.method):
                if fault.times is not None:
                    fault.times -= 1
                body = fault.body if fault.body is not None else {"message": f"{fault.status} fault"}
                return fault.status, fault.headers, body
        for pattern, handler in self._routes:
            if m := pattern.match(req.path):
                result = handler(req, m)
                if isinstance(result, tuple):
                    return result[0], {}, result[1]
                if isinstance(result, list):
                    return self._page(req, host, result)
                return 200, {}, result
        return 404, {}, {"error": "404 Not Found"}

    def _page(self, req: Request, host: str, items: list[Any]) -> tuple[int, dict[str, str], Any]:
        per_page = min(int(req.arg("per_page", "20") or 20), self.page_size)
        page = int(req.arg("page", "1") or 1)
        pages = max(1, -(-len(items) // per_page))
        chunk = items[(page - 1) * per_page : page * per_page]

        def link(n: int) -> str:
            query = {k: v[0] for k, v in req.query.items()}
            query.update(page=str(n), per_page=str(per_page))
            return f"http://{host}{req.path}?{urlencode(query)}"

        links = [f'<{link(1)}>; rel="first"', f'<{link(pages)}>; rel="last"']
        headers = {
            "x-page": str(page),
            "x-per-page": str(per_page),
            "x-total": str(len(items)),
            "x-total-pages": str(pages),
            "x-next-page": str(page + 1) if page < pages else "",
        }
        if page < pages:
            links.insert(0, f'<{link(page + 1)}>; rel="next"')
        headers["Link"] = ", ".join(links)
        return 200, headers, chunk


def _handler_class(fake: FakeGitLab) -> type[BaseHTTPRequestHandler]:
    class H(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
            parts = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            req = Request(
                self.command,
                self.path,
                parts.path,
                parse_qs(parts.query),
                {k.lower(): v for k, v in self.headers.items()},
                self.rfile.read(length) if length else b"",
            )
            status, headers, body = fake.handle(req, self.headers.get("Host", "127.0.0.1"))
            payload = body.encode() if isinstance(body, str) else json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_POST = do_PUT = do_GET

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's signature
            pass

    return H
