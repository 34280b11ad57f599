"""The REST client `pipeproof protect` talks to the platforms with: httpx, a timeout on every request, bounded
retries that honour Retry-After and x-ratelimit-reset, errors that say what to do, and a dry run that sends
nothing. The token is held here and nowhere else; `redact` removes it from any text before it is shown.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpx

from generator.errors import UserError

TIMEOUT = httpx.Timeout(30.0, connect=10.0)
RETRIES = 3  # attempts after the first, for rate limits, 5xx answers and network errors
MAX_WAIT = 120.0  # the longest single wait for a rate limit; a later reset is reported instead of waited for
# Only these are retried after a network error: a POST may have been applied before the connection broke.
_IDEMPOTENT = {"GET", "PUT", "DELETE", "PATCH"}


class ApiError(UserError):
    """An answer of the platform API that stops the command; the message says what happened and what to do."""

    exit_code = 1

    def __init__(self, message: str, status: int = 0, kind: str = "error") -> None:
        super().__init__(message)
        self.status = status
        self.kind = kind  # auth | permission | not-found | plan | validation | rate-limit | network | error


@dataclass(frozen=True)
class Sent:
    """A request as the dry run prints it (and as `--dry-run` promises: method, path and body)."""

    method: str
    path: str
    body: Any = None

    def show(self) -> str:
        text = f"{self.method} {self.path}"
        if self.body is not None:
            text += " " + json.dumps(self.body, sort_keys=True)
        return text


@dataclass
class Client:
    """One platform API base (https://api.github.com, https://HOST/api/v3, https://HOST/api/v4)."""

    base: str
    token: str = field(repr=False)  # never in a repr, a traceback's message or a log line
    platform: str = "github"  # github | gitlab
    dry_run: bool = False
    sleep: Callable[[float], None] | None = None  # tests replace it; None: time.sleep
    planned: list[Sent] = field(default_factory=list)  # what the dry run would have sent
    _http: httpx.Client | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.base = self.base.rstrip("/")
        if not self.dry_run:
            headers = {"User-Agent": "pipeproof-protect"}
            if self.platform == "github":
                headers |= {
                    "Accept": "application/vnd.github+json",
                    "X-GitHub-Api-Version": "2022-11-28",
                    "Authorization": f"Bearer {self.token}",
                }
            else:
                headers |= {"Accept": "application/json", "PRIVATE-TOKEN": self.token}
            self._http = httpx.Client(base_url=self.base, headers=headers, timeout=TIMEOUT, follow_redirects=False)

    def _wait(self, seconds: float) -> None:
        (self.sleep or time.sleep)(seconds)

    def close(self) -> None:
        if self._http is not None:
            self._http.close()

    def redact(self, text: str) -> str:
        """TEXT with the token (and its URL-encoded form) replaced, wherever it came from."""
        if not self.token:
            return text
        for form in {self.token, quote(self.token, safe="")}:
            text = text.replace(form, "***")
        return text

    # --- requests -----------------------------------------------------------------------------------------

    def get(self, path: str, *, missing_ok: bool = False, params: dict[str, Any] | None = None) -> Any:
        """The decoded body; None for a 404 when missing_ok (and always in a dry run, which reads nothing)."""
        return self.request("GET", path, params=params, missing_ok=missing_ok)

    def pages(self, path: str, *, key: str | None = None, missing_ok: bool = False) -> list[Any]:
        """Every item of a paginated list (GitHub `Link` rel=next, GitLab the same header or X-Next-Page)."""
        items: list[Any] = []
        for body in self._pages(path, missing_ok=missing_ok):
            chunk = body.get(key, []) if key and isinstance(body, dict) else body
            if isinstance(chunk, list):
                items.extend(chunk)
        return items

    def _pages(self, path: str, *, missing_ok: bool) -> Iterator[Any]:
        url: str | None = path
        params: dict[str, Any] | None = {"per_page": 100}
        for _ in range(100):  # 10,000 items: far beyond any settings list, and never an endless loop
            if url is None:
                return
            response = self._send("GET", url, params=params, missing_ok=missing_ok)
            if response is None:
                return
            yield _decode(response)
            nxt = response.links.get("next", {}).get("url")
            url, params = (self._relative(nxt), None) if nxt else (None, None)

    def _relative(self, url: str) -> str:
        # A next link is absolute; it must stay on the same API base, so the token never goes elsewhere.
        if not url.startswith(self.base + "/"):
            raise ApiError(f"the API's next-page link leaves {self.base}: {url}")
        return url[len(self.base) :]

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        params: dict[str, Any] | None = None,
        missing_ok: bool = False,
    ) -> Any:
        response = self._send(method, path, body=body, params=params, missing_ok=missing_ok)
        return None if response is None else _decode(response)

    def _send(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        params: dict[str, Any] | None = None,
        missing_ok: bool = False,
    ) -> httpx.Response | None:
        if self.dry_run:
            self.planned.append(Sent(method, path, body))
            return None
        assert self._http is not None
        waited = 0
        for attempt in range(RETRIES + 1):
            last = attempt == RETRIES
            try:
                response = self._http.request(method, path, json=body, params=params)
            except httpx.TimeoutException as exc:
                if last or method not in _IDEMPOTENT:
                    raise ApiError(
                        f"{method} {path}: no answer from {self.base} within the timeout ({type(exc).__name__}); "
                        "check the network and --api-url, then run again",
                        kind="network",
                    ) from None
                self._wait(min(2**attempt, 8))
                continue
            except httpx.TransportError as exc:
                if last or method not in _IDEMPOTENT:
                    raise ApiError(
                        f"{method} {path}: cannot reach {self.base}: {self.redact(str(exc)) or type(exc).__name__}; "
                        "check the network and --api-url, then run again",
                        kind="network",
                    ) from None
                self._wait(min(2**attempt, 8))
                continue
            wait = _retry_after(response)
            if wait is not None and not last:
                if wait > MAX_WAIT:
                    raise ApiError(
                        f"{method} {path}: rate limited for another {int(wait)} seconds (longer than pipeproof "
                        "waits); run again after the reset",
                        response.status_code,
                        "rate-limit",
                    )
                waited += 1
                self._wait(wait)
                continue
            if response.status_code >= 500 and not last and method in _IDEMPOTENT:
                self._wait(min(2**attempt, 8))
                continue
            if response.status_code == 404 and missing_ok:
                return None
            if response.status_code >= 400:
                raise self._error(method, path, response, waited)
            return response
        raise AssertionError("unreachable")  # pragma: no cover

    def _error(self, method: str, path: str, response: httpx.Response, retried: int) -> ApiError:
        status = response.status_code
        message = self.redact(_message(response))
        what = f"{method} {path} answered {status}"
        if status == 401:
            variable = "GITHUB_TOKEN" if self.platform == "github" else "GITLAB_TOKEN"
            return ApiError(
                f"{what} ({message}): the token is missing, invalid or expired; set {variable} or --token-file "
                "to a valid token",
                status,
                "auth",
            )
        if _rate_limited(response):
            return ApiError(
                f"{what} ({message}): still rate limited after {retried} retries; run again after the reset",
                status,
                "rate-limit",
            )
        if status == 403:
            if _PLAN.search(message):
                return ApiError(f"{what}: the feature is not available on this plan ({message})", status, "plan")
            accepted = response.headers.get("x-accepted-github-permissions")
            if accepted:
                return ApiError(
                    f"{what} ({message}): the token lacks a permission this endpoint needs; GitHub accepts "
                    f"{accepted.replace(';', ' or ')} (give the token that permission, then run again)",
                    status,
                    "permission",
                )
            scopes = response.headers.get("x-accepted-oauth-scopes")
            need = f"; a classic token needs the scope {scopes}" if scopes else ""
            return ApiError(
                f"{what} ({message}): the token may not do this; it needs administration (admin) access to the "
                f"repository{need}",
                status,
                "permission",
            )
        if status == 404:
            return ApiError(
                f"{what} ({message}): the repository (or the object) does not exist, or the token cannot see it "
                "(the API answers 404, not 403, to a token without access); check --repo, --api-url and the "
                "token's repository access",
                status,
                "not-found",
            )
        if status == 422:
            return ApiError(f"{what}: the API rejected the request: {message}", status, "validation")
        return ApiError(f"{what}: {message}", status)


def _decode(response: httpx.Response) -> Any:
    if response.status_code == 204 or not response.content:
        return {}
    try:
        return response.json()
    except ValueError:
        raise ApiError(
            f"{response.request.method} {response.request.url.path} answered {response.status_code} with a body "
            "that is not JSON: is --api-url the REST API base (https://api.github.com, https://HOST/api/v3, "
            "https://HOST/api/v4)?"
        ) from None


def _message(response: httpx.Response) -> str:
    """The API's own message: GitHub's message plus its validation errors, GitLab's message or error."""
    try:
        body = response.json()
    except ValueError:
        return response.reason_phrase or "no message"
    if not isinstance(body, dict):
        return str(body)[:300]
    text = body.get("message") or body.get("error") or response.reason_phrase
    if not isinstance(text, str):
        text = json.dumps(text, sort_keys=True)
    details = []
    for item in body.get("errors") or []:
        if isinstance(item, dict):
            details.append(str(item.get("message") or item.get("code") or json.dumps(item, sort_keys=True)))
        else:
            details.append(str(item))
    return text + (f": {'; '.join(details)}" if details else "")


def _rate_limited(response: httpx.Response) -> bool:
    if response.status_code == 429:
        return True
    if response.status_code != 403:
        return False
    # GitHub answers 403 to the primary limit (remaining 0) and to a secondary limit (Retry-After).
    return response.headers.get("x-ratelimit-remaining") == "0" or "retry-after" in response.headers


def _retry_after(response: httpx.Response) -> float | None:
    """Seconds to wait before retrying a rate-limited request, or None when it is not rate limited."""
    if not _rate_limited(response):
        return None
    after = response.headers.get("retry-after")
    if after is not None:
        try:
            return max(float(after), 0.0)
        except ValueError:
            return 60.0
    reset = response.headers.get("x-ratelimit-reset") or response.headers.get("ratelimit-reset")
    if reset is not None:
        try:
            return max(float(reset) - time.time(), 0.0) + 1.0
        except ValueError:
            return 60.0
    return 60.0  # GitHub: wait at least a minute when no header says how long


_PLAN = re.compile(
    r"upgrade to github|make this repository public|not available (?:for|on|in) (?:this|your) (?:plan|tier)|"
    r"feature is not available|requires? (?:github )?(?:pro|team|enterprise)|premium|ultimate",
    re.IGNORECASE,
)
