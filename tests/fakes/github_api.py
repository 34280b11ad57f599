"""A stand-in for the GitHub REST API on 127.0.0.1, to execute the generated scripts against.

It answers the way api.github.com does, for the endpoints the scripts call: payloads built from GitHub's own
examples (tests/fixtures/github-api/), page-number pagination with `Link` headers (a small `page_size` forces
several pages), cursor pagination for the audit log, error bodies whose `status` is a string, rate-limit
headers, and `/api/v3` in front of every path when it plays GHES. A test sets the state (plain dicts and
lists), injects faults per path (`fail`), and reads the request log (`requests`).

More endpoints register with `route` (the `pipeproof protect` settings endpoints will): a handler takes the
`Request` and the path's match and returns a `Response` or a `Page`.
"""

from __future__ import annotations

import base64
import json
import math
import re
import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "github-api"
DOCS = "https://docs.github.com/rest"
ACTIONS_APP = "github-actions"


@cache
def _fixture_text(name: str) -> str:
    return (FIXTURES / f"{name}.json").read_text(encoding="utf-8")


def fixture(name: str) -> Any:
    """A fresh copy of tests/fixtures/github-api/NAME.json."""
    return json.loads(_fixture_text(name))


# --- payload builders: GitHub's examples with the fields a test cares about replaced ------------------------


def user(login: str, uid: int | None = None) -> dict[str, Any]:
    return {
        "login": login,
        "id": uid if uid is not None else zlib.crc32(login.encode()) % 10**8,
        "node_id": "MDQ6VXNlcjE=",
        "type": "Bot" if login.endswith("[bot]") else "User",
        "site_admin": False,
    }


def workflow_run(run_id: int, head_sha: str, check_suite_id: int, *, actor: str = "octocat") -> dict[str, Any]:
    run = fixture("workflow-run")
    run.update(id=run_id, head_sha=head_sha, check_suite_id=check_suite_id, actor=user(actor))
    run["triggering_actor"] = user(actor)
    return run


def check_run(
    check_id: int,
    name: str,
    head_sha: str,
    check_suite_id: int,
    *,
    status: str = "completed",
    conclusion: str | None = "success",
    app_slug: str = ACTIONS_APP,
) -> dict[str, Any]:
    run = fixture("check-runs")["check_runs"][0]
    run.update(id=check_id, name=name, head_sha=head_sha, status=status, check_suite={"id": check_suite_id})
    run["conclusion"] = conclusion if status == "completed" else None
    run["completed_at"] = "2020-01-22T19:35:00Z" if status == "completed" else None
    if app_slug != ACTIONS_APP:
        run["app"] = {**run["app"], "id": 999, "slug": app_slug, "name": app_slug}
    return run


def approval(login: str, state: str = "approved", environments: tuple[str, ...] = ("production",)) -> dict[str, Any]:
    item = fixture("approvals")[0]
    template = item["environments"][0]
    item.update(state=state, user=user(login), comment=f"{state} by {login}")
    item["environments"] = [{**template, "name": env, "id": 161088068 + i} for i, env in enumerate(environments)]
    return item


def pull(
    number: int,
    *,
    author: str,
    head_sha: str,
    merge_commit_sha: str | None,
    base: str = "main",
    merged_by: str | None = "merger",
) -> dict[str, Any]:
    """A full pull request (GET pulls/N); `simple_pull` gives the list view."""
    pr = fixture("commit-pulls")[0]
    merged = merge_commit_sha is not None and merged_by is not None
    pr.update(
        number=number,
        id=number,
        title=f"Change {number}",
        url=f"https://api.github.com/repos/o/r/pulls/{number}",
        html_url=f"https://github.com/o/r/pull/{number}",
        user=user(author),
        merge_commit_sha=merge_commit_sha,
        merged_at="2024-05-01T10:00:00Z" if merged else None,
        state="closed" if merged else "open",
    )
    pr["head"] = {**pr["head"], "sha": head_sha, "user": user(author)}
    pr["base"] = {**pr["base"], "ref": base}
    pr.update(merged=merged, merged_by=user(merged_by) if merged and merged_by else None, mergeable=None)
    return pr


def simple_pull(pr: dict[str, Any]) -> dict[str, Any]:
    """pull-request-simple, what commits/{sha}/pulls lists: no merged, no merged_by."""
    return {k: v for k, v in pr.items() if k not in {"merged", "merged_by", "mergeable", "comments", "commits"}}


def review(review_id: int, login: str, state: str, commit_id: str, *, pr: int = 1) -> dict[str, Any]:
    item = fixture("reviews")[0]
    item.update(id=review_id, user=user(login), state=state, commit_id=commit_id)
    item["submitted_at"] = None if state == "PENDING" else f"2024-05-01T09:{review_id % 60:02d}:00Z"
    item["pull_request_url"] = f"https://api.github.com/repos/o/r/pulls/{pr}"
    return item


def deployment(deployment_id: int, sha: str, environment: str = "production") -> dict[str, Any]:
    item = fixture("deployments")[0]
    item.update(id=deployment_id, sha=sha, environment=environment, original_environment=environment)
    item["statuses_url"] = f"https://api.github.com/repos/o/r/deployments/{deployment_id}/statuses"
    return item


def deployment_status(status_id: int, state: str, environment: str = "production") -> dict[str, Any]:
    item = fixture("deployment-statuses")[0]
    item.update(id=status_id, state=state, environment=environment)
    return item


def audit_event(timestamp_ms: int, action: str = "workflows.completed_workflow_run", **extra: Any) -> dict[str, Any]:
    item = fixture("audit-log")[0]
    item.update({"@timestamp": timestamp_ms, "created_at": timestamp_ms, "action": action, **extra})
    item["_document_id"] = f"doc-{timestamp_ms}"
    return item


# --- the server ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Request:
    method: str
    path: str  # without the /api/v3 prefix and the query
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-case names
    target: str  # the request line's target, as sent
    body: bytes
    at: float  # time.monotonic()
    app_id: int | None = None  # the GitHub App whose JWT signed the request (app endpoints only)

    def arg(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[-1] if values else default


@dataclass(frozen=True)
class Response:
    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Page:
    """A list the server paginates: by page number, or by cursor (the audit log)."""

    items: list[Any]
    key: str | None = None  # wrap each page as {"total_count": N, key: [...]}, like check-runs
    cursor: bool = False


@dataclass
class Fault:
    method: str
    pattern: re.Pattern[str]
    status: int
    message: str
    headers: dict[str, str]
    times: int | None  # None: every matching request
    skip: int  # let this many matching requests through first
    seen: int = 0
    hits: int = 0


Handler = Callable[[Request, "re.Match[str]"], "Response | Page"]


def error(status: int, message: str) -> Response:
    return Response(status, {"message": message, "documentation_url": DOCS, "status": str(status)})


NOT_FOUND = error(404, "Not Found")


class FakeGitHub:
    """The REST API of one repository (owner/name) and its organization."""

    def __init__(
        self, *, repo: str = "acme/shop", page_size: int = 100, token: str = "ghs_test", prefix: str = ""
    ) -> None:
        self.repo = repo
        self.org = repo.split("/")[0]
        self.page_size = page_size
        self.token = token
        self.prefix = prefix  # "/api/v3" plays GHES
        self.requests: list[Request] = []
        self.faults: list[Fault] = []
        # State, keyed like the API. Tests fill these, or use the add_* helpers.
        self.runs: dict[int, dict[str, Any]] = {}
        self.approvals: dict[int, list[dict[str, Any]]] = {}
        self.check_runs: dict[str, list[dict[str, Any]]] = {}
        self.commit_pulls: dict[str, list[dict[str, Any]]] = {}
        self.pulls: dict[int, dict[str, Any]] = {}
        self.reviews: dict[int, list[dict[str, Any]]] = {}
        self.deployments: list[dict[str, Any]] = []
        self.deployment_statuses: dict[int, list[dict[str, Any]]] = {}
        self.audit_log: dict[str, list[dict[str, Any]]] = {}  # org -> events
        # GitHub Apps: app id -> {"installation": id, "public_key": PEM}; the installation tokens issued.
        self.apps: dict[int, dict[str, Any]] = {}
        self.issued: list[dict[str, Any]] = []  # {"token", "app", "installation", "request"} per token issued
        self.created_pulls: list[dict[str, Any]] = []
        self._routes: list[tuple[str, re.Pattern[str], Handler]] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._default_routes()

    # --- lifecycle ----------------------------------------------------------------------------------------

    def __enter__(self) -> FakeGitHub:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_class(self))
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    @property
    def url(self) -> str:
        """The value for GITHUB_API_URL."""
        assert self._server is not None, "start() the server first"
        return f"http://127.0.0.1:{self._server.server_address[1]}{self.prefix}"

    # --- set-up helpers -----------------------------------------------------------------------------------

    def route(self, method: str, pattern: str) -> Callable[[Handler], Handler]:
        """Register a handler for METHOD and a path regex (full match, named groups); later routes win."""

        def register(handler: Handler) -> Handler:
            self._routes.insert(0, (method, re.compile(pattern), handler))
            return handler

        return register

    def fail(
        self,
        pattern: str,
        status: int = 500,
        message: str | None = None,
        *,
        times: int | None = 1,
        skip: int = 0,
        headers: dict[str, str] | None = None,
        method: str = "GET",
    ) -> Fault:
        """Answer requests whose path fully matches PATTERN with an error, `times` times (None: always)."""
        fault = Fault(
            method,
            re.compile(pattern),
            status,
            message or _REASONS.get(status, "Error"),
            headers or {},
            times,
            skip,
        )
        self.faults.append(fault)
        return fault

    def add_pull(self, pr: dict[str, Any], commits: list[str], reviews: list[dict[str, Any]]) -> None:
        """A pull request, the commits GitHub associates with it (commits/{sha}/pulls), and its reviews."""
        self.pulls[pr["number"]] = pr
        self.reviews[pr["number"]] = reviews
        for sha in commits:
            self.commit_pulls.setdefault(sha, []).append(simple_pull(pr))

    def calls(self, pattern: str) -> list[Request]:
        """Logged requests whose path fully matches PATTERN."""
        rx = re.compile(pattern)
        return [r for r in self.requests if rx.fullmatch(r.path)]

    # --- the endpoints ------------------------------------------------------------------------------------

    def _default_routes(self) -> None:
        repo = r"/repos/(?P<owner>[^/]+)/(?P<name>[^/]+)"
        r = self.route

        @r("GET", repo + r"/actions/runs/(?P<run>\d+)")
        def get_run(req: Request, m: re.Match[str]) -> Response | Page:
            run = self.runs.get(int(m["run"]))
            return Response(body=run) if self._mine(m) and run else NOT_FOUND

        @r("GET", repo + r"/actions/runs/(?P<run>\d+)/approvals")
        def get_approvals(req: Request, m: re.Match[str]) -> Response | Page:
            # Not paginated: GitHub returns every approval of the run in one list.
            if not self._mine(m) or int(m["run"]) not in self.runs:
                return NOT_FOUND
            return Response(body=self.approvals.get(int(m["run"]), []))

        @r("GET", repo + r"/commits/(?P<sha>[^/]+)/check-runs")
        def get_check_runs(req: Request, m: re.Match[str]) -> Response | Page:
            if not self._mine(m):
                return NOT_FOUND
            runs = sorted(self.check_runs.get(m["sha"], []), key=lambda c: -c["id"])
            if req.arg("filter", "latest") == "latest":  # GitHub's default: the newest run per name
                newest: dict[str, dict[str, Any]] = {}
                for c in runs:
                    newest.setdefault(c["name"], c)
                runs = list(newest.values())
            if name := req.arg("check_name"):
                runs = [c for c in runs if c["name"] == name]
            return Page(runs, key="check_runs")

        @r("GET", repo + r"/commits/(?P<sha>[^/]+)/pulls")
        def get_commit_pulls(req: Request, m: re.Match[str]) -> Response | Page:
            return Page(self.commit_pulls.get(m["sha"], [])) if self._mine(m) else NOT_FOUND

        @r("GET", repo + r"/pulls/(?P<number>\d+)")
        def get_pull(req: Request, m: re.Match[str]) -> Response | Page:
            pr = self.pulls.get(int(m["number"]))
            return Response(body=pr) if self._mine(m) and pr else NOT_FOUND

        @r("GET", repo + r"/pulls/(?P<number>\d+)/reviews")
        def get_reviews(req: Request, m: re.Match[str]) -> Response | Page:
            if not self._mine(m) or int(m["number"]) not in self.pulls:
                return NOT_FOUND
            return Page(sorted(self.reviews.get(int(m["number"]), []), key=lambda v: v["id"]))

        @r("GET", repo + r"/deployments")
        def get_deployments(req: Request, m: re.Match[str]) -> Response | Page:
            if not self._mine(m):
                return NOT_FOUND
            items = sorted(self.deployments, key=lambda d: -d["id"])  # newest first
            for param in ("environment", "sha", "ref", "task"):
                if (value := req.arg(param)) is not None:
                    items = [d for d in items if d.get(param) == value]
            return Page(items)

        @r("GET", repo + r"/deployments/(?P<id>\d+)/statuses")
        def get_statuses(req: Request, m: re.Match[str]) -> Response | Page:
            if not self._mine(m) or not any(d["id"] == int(m["id"]) for d in self.deployments):
                return NOT_FOUND
            return Page(sorted(self.deployment_statuses.get(int(m["id"]), []), key=lambda s: -s["id"]))

        @r("GET", repo + r"/installation")
        def get_installation(req: Request, m: re.Match[str]) -> Response | Page:
            app = self.apps.get(req.app_id or 0)
            if not self._mine(m) or app is None:
                return NOT_FOUND
            return Response(body={"id": app["installation"], "app_id": req.app_id, "target_type": "Organization"})

        @r("POST", r"/app/installations/(?P<id>\d+)/access_tokens")
        def post_access_token(req: Request, m: re.Match[str]) -> Response | Page:
            app = self.apps.get(req.app_id or 0)
            if app is None or app["installation"] != int(m["id"]):
                return NOT_FOUND
            body = json.loads(req.body or b"{}")
            token = f"ghs_installation{len(self.issued):04d}{'x' * 20}"
            self.issued.append({"token": token, "app": req.app_id, "installation": int(m["id"]), "request": body})
            return Response(
                201, {"token": token, "expires_at": "2026-01-01T00:00:00Z", "permissions": body.get("permissions", {})}
            )

        @r("GET", repo + r"/pulls")
        def get_pulls(req: Request, m: re.Match[str]) -> Response | Page:
            if not self._mine(m):
                return NOT_FOUND
            items = [p for p in self.created_pulls if p["state"] == (req.arg("state") or "open")]
            if (head := req.arg("head")) is not None:
                items = [p for p in items if f"{self.org}:{p['head']['ref']}" == head]
            if (base := req.arg("base")) is not None:
                items = [p for p in items if p["base"]["ref"] == base]
            return Page(items)

        @r("POST", repo + r"/pulls")
        def post_pull(req: Request, m: re.Match[str]) -> Response | Page:
            if not self._mine(m):
                return NOT_FOUND
            body = json.loads(req.body or b"{}")
            missing = [k for k in ("title", "head", "base") if not body.get(k)]
            if missing:
                return error(422, f"Validation Failed: {missing[0]} is missing")
            if any(p["head"]["ref"] == body["head"] and p["state"] == "open" for p in self.created_pulls):
                return error(422, f"Validation Failed: A pull request already exists for {self.org}:{body['head']}.")
            number = 100 + len(self.created_pulls)
            pr = {
                "number": number,
                "state": "open",
                "title": body["title"],
                "body": body.get("body"),
                "head": {"ref": body["head"]},
                "base": {"ref": body["base"]},
                "html_url": f"https://github.com/{self.repo}/pull/{number}",
                "user": user("pipeproof-gitops[bot]"),
            }
            self.created_pulls.append(pr)
            return Response(201, pr)

        @r("GET", repo + r"/deployments/(?P<id>\d+)")
        def get_deployment(req: Request, m: re.Match[str]) -> Response | Page:
            found = [d for d in self.deployments if d["id"] == int(m["id"])]
            return Response(body=found[0]) if self._mine(m) and found else NOT_FOUND

        @r("GET", r"/orgs/(?P<org>[^/]+)/audit-log")
        def get_audit_log(req: Request, m: re.Match[str]) -> Response | Page:
            if m["org"] not in self.audit_log:
                return NOT_FOUND  # what a plan without the audit-log API answers
            events = sorted(self.audit_log[m["org"]], key=lambda e: -e["@timestamp"])
            phrase = req.arg("phrase", "") or ""
            if since := re.search(r"created:>=(\d{4}-\d{2}-\d{2})", phrase):
                start = datetime.strptime(since[1], "%Y-%m-%d").replace(tzinfo=UTC).timestamp() * 1000
                events = [e for e in events if e["@timestamp"] >= start]
            return Page(events, cursor=True)

    def _mine(self, m: re.Match[str]) -> bool:
        return f"{m['owner']}/{m['name']}" == self.repo

    # --- request handling ---------------------------------------------------------------------------------

    def handle(self, req: Request, host: str) -> Response:
        with self._lock:
            self.requests.append(req)
            fault = self._fault(req)
        if fault is not None:
            body = {"message": fault.message, "documentation_url": DOCS, "status": str(fault.status)}
            return Response(fault.status, body, dict(fault.headers))
        auth = req.headers.get("authorization", "")
        if not auth:
            return error(401, "Requires authentication")
        tokens = [self.token, *(t["token"] for t in self.issued)]
        app_endpoint = re.fullmatch(r"/app/installations/\d+/access_tokens|/repos/[^/]+/[^/]+/installation", req.path)
        if app_endpoint:
            # Only a GitHub App's JWT reaches these: signed RS256 by the app's key, unexpired, iss the app id.
            object.__setattr__(req, "app_id", self._verify_jwt(auth.removeprefix("Bearer ")))
            if req.app_id is None:
                return error(401, "A JSON web token could not be decoded")
        elif auth not in {f"Bearer {t}" for t in tokens} | {f"token {t}" for t in tokens}:
            return error(401, "Bad credentials")
        for method, pattern, handler in self._routes:
            if method == req.method and (m := pattern.fullmatch(req.path)):
                result = handler(req, m)
                return self._page(req, host, result) if isinstance(result, Page) else result
        return NOT_FOUND

    def _verify_jwt(self, jwt: str) -> int | None:
        """The app id of a valid app JWT, else None (the signature is checked with openssl, as GitHub checks it)."""
        import subprocess
        import tempfile

        parts = jwt.split(".")
        if len(parts) != 3:
            return None

        def unb64(text: str) -> bytes:
            return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))

        try:
            header, claims = json.loads(unb64(parts[0])), json.loads(unb64(parts[1]))
            signature = unb64(parts[2])
            app_id = int(claims["iss"])
        except (ValueError, KeyError, TypeError):
            return None
        app = self.apps.get(app_id)
        now = time.time()
        if app is None or header.get("alg") != "RS256" or not claims.get("iat", now + 1) <= now < claims.get("exp", 0):
            return None
        if claims["exp"] - claims["iat"] > 600:  # GitHub refuses JWTs valid for more than 10 minutes
            return None
        with tempfile.TemporaryDirectory() as tmp:
            key, sig = Path(tmp) / "key.pem", Path(tmp) / "sig"
            key.write_text(app["public_key"])
            sig.write_bytes(signature)
            ok = subprocess.run(
                ["openssl", "dgst", "-sha256", "-verify", str(key), "-signature", str(sig)],
                input=f"{parts[0]}.{parts[1]}".encode(),
                capture_output=True,
                check=False,
            )
        return app_id if ok.returncode == 0 else None

    def add_app(self, app_id: int, installation: int, public_key: str) -> None:
        """A GitHub App installed on this repository, whose JWTs are checked against PUBLIC_KEY (PEM)."""
        self.apps[app_id] = {"installation": installation, "public_key": public_key}

    def _fault(self, req: Request) -> Fault | None:
        for fault in self.faults:
            if fault.method != req.method or not fault.pattern.fullmatch(req.path):
                continue
            fault.seen += 1
            if fault.seen <= fault.skip or (fault.times is not None and fault.hits >= fault.times):
                continue
            fault.hits += 1
            return fault
        return None

    def _page(self, req: Request, host: str, page: Page) -> Response:
        per_page = min(max(int(req.arg("per_page", "30") or 30), 1), 100, self.page_size)
        base = f"http://{host}{self.prefix}{req.path}"

        def link(**params: str) -> str:
            query = {k: v[-1] for k, v in req.query.items() if k not in {"page", "after", "before"}}
            query.update(params)
            return f"{base}?{urlencode(query)}"

        links: list[tuple[str, str]] = []
        if page.cursor:
            offset = _uncursor(req.arg("after"))
            chunk = page.items[offset : offset + per_page]
            if offset > 0:
                links.append(("prev", link(before=_cursor(offset))))
            if offset + per_page < len(page.items):
                links.append(("next", link(after=_cursor(offset + per_page))))
            if offset > 0:
                links.append(("first", link()))
        else:
            number = max(int(req.arg("page", "1") or 1), 1)
            last = max(math.ceil(len(page.items) / per_page), 1)
            chunk = page.items[(number - 1) * per_page : number * per_page]
            if number > 1:
                links.append(("prev", link(page=str(number - 1))))
            if number < last:
                links += [("next", link(page=str(number + 1))), ("last", link(page=str(last)))]
            if number > 1:
                links.append(("first", link(page="1")))
        body: Any = {"total_count": len(page.items), page.key: chunk} if page.key else chunk
        headers = {"Link": ", ".join(f'<{u}>; rel="{rel}"' for rel, u in links)} if links else {}
        return Response(200, body, headers)


_REASONS = {
    401: "Bad credentials",
    403: "Forbidden",
    404: "Not Found",
    422: "Validation Failed",
    429: "Too Many Requests",
    500: "Server Error",
    502: "Server Error",
    503: "Service Unavailable",
}


def _cursor(offset: int) -> str:
    # Opaque like GitHub's: base64 with padding, so the next link carries %3D.
    return base64.b64encode(f"{offset}|{offset * 7919:x}".encode()).decode()


def _uncursor(cursor: str | None) -> int:
    if not cursor:
        return 0
    return int(base64.b64decode(cursor).decode().split("|")[0])


def _handler_class(fake: FakeGitHub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "GitHub.com"

        def _serve(self) -> None:
            target = urlsplit(self.path)
            path = target.path
            length = int(self.headers.get("Content-Length") or 0)
            req = Request(
                method=self.command,
                path=path[len(fake.prefix) :] if fake.prefix and path.startswith(fake.prefix) else path,
                query=parse_qs(target.query, keep_blank_values=True),
                headers={k.lower(): v for k, v in self.headers.items()},
                target=self.path,
                body=self.rfile.read(length) if length else b"",
                at=time.monotonic(),
            )
            if fake.prefix and not path.startswith(fake.prefix + "/"):
                resp = NOT_FOUND
            else:
                resp = fake.handle(req, self.headers.get("Host", "127.0.0.1"))
            if isinstance(resp.body, bytes):  # a raw body, for a server that misbehaves
                payload = resp.body
            else:
                payload = b"" if resp.body is None and resp.status == 204 else json.dumps(resp.body).encode()
            self.send_response(resp.status)
            # Lower-case names, as GitHub sends them over HTTP/2; a response's own headers replace these.
            headers = {
                "content-type": "application/json; charset=utf-8",
                "x-github-api-version-selected": "2022-11-28",
                "x-github-request-id": "0000:0000:0000000:0000000:00000000",
                "x-ratelimit-limit": "5000",
                "x-ratelimit-remaining": "4999",
                "x-ratelimit-reset": str(int(time.time()) + 3600),
                "x-ratelimit-resource": "core",
            }
            headers.update({k.lower(): v for k, v in resp.headers.items()})
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's signature
            pass

    return Handler
