"""GitLab: the rendered `.gitlab/settings/*.json` payloads (one request each: api, method, path, tier, upsert,
body; /work/coord/gitlab-settings-format.md) applied, checked and exported through the REST API v4.

Facts this relies on (/work/shared/reference/platform-facts.md c):
- protected branches: POST takes the singular `push_access_level` integers, GET answers the plural
  `push_access_levels[].access_level` arrays, and PATCH cannot change the levels (Free has only PATCH for
  allow_force_push), so a changed level means DELETE (the branch is briefly unprotected) and POST again;
- approval settings are POST /projects/:id/approvals, rules are found by name and PUT to their id;
- ids unknown at render time are placeholders ({"$group": path}, {"$user": name}) resolved before sending;
  one that does not resolve stops everything (fail closed).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from generator import __version__
from generator.audit import Report, Result
from generator.controls import all_controls
from generator.controls.base import Finding
from generator.errors import UserError, show
from generator.protect import check_api_url, read_token, repository
from generator.protect.client import ApiError, Client

SETTINGS = Path(".gitlab/settings")
ORDER = ("project.json", "protected-branch.json", "approval-settings.json", "approval-rules", "protected-environments")
KINDS = ("update", "replace", "by-name")
# Which control a drifted field belongs to; anything else goes to the first control the file's $comment names.
FIELD_CONTROL = {
    "push_access_level": "PP-BRANCH-01",
    "merge_access_level": "PP-BRANCH-01",
    "unprotect_access_level": "PP-BRANCH-02",
    "allow_force_push": "PP-BRANCH-05",
    "code_owner_approval_required": "PP-BRANCH-06",
    "only_allow_merge_if_pipeline_succeeds": "PP-BRANCH-04",
    "allow_merge_on_skipped_pipeline": "PP-BRANCH-04",
    "only_allow_merge_if_all_discussions_are_resolved": "PP-BRANCH-03",
    "merge_method": "PP-BRANCH-05",
    "reset_approvals_on_push": "PP-BRANCH-03",
    "merge_requests_author_approval": "PP-BRANCH-03",
    "merge_requests_disable_committers_approval": "PP-BRANCH-03",
    "approvals_required": "PP-BRANCH-01",
    "deploy_access_levels": "PP-DEPLOY-01",
    "approval_rules": "PP-DEPLOY-01",
    "allow_pipeline_trigger_approve_deployment": "PP-DEPLOY-01",
}
_LEVELS = ("push_access_level", "merge_access_level", "unprotect_access_level")
# The pipeline schedules the rendered .gitlab-ci.yml expects (the contract's "Pipeline schedules"): each runs
# the default branch with PIPEPROOF_SCHEDULE set to its name, and serves the control named here.
SCHEDULES = {
    "audit-export": ("17 3 * * *", "PP-EVID-04"),  # daily
    "rollback-drill": ("0 9 1 */3 *", "PP-DEPLOY-05"),  # quarterly
}
SCHEDULE_VARIABLE = "PIPEPROOF_SCHEDULE"


@dataclass(frozen=True)
class Payload:
    """One settings file: one request, and how to apply it when the object exists."""

    file: str
    method: str
    path: str
    tier: str
    upsert: dict[str, Any]
    body: dict[str, Any]
    controls: tuple[str, ...]

    @property
    def name(self) -> str:
        return str(self.body.get("name", ""))


def load(root: Path) -> tuple[list[Payload], str]:
    """The payloads in the order the contract applies them, and their API base; a bad file is a UserError."""
    folder = root / SETTINGS
    files: list[Path] = []
    for entry in ORDER:
        path = folder / entry
        files += sorted(path.glob("*.json")) if path.is_dir() else [path] if path.is_file() else []
    payloads, apis = [], set()
    for path in files:
        rel = path.relative_to(root).as_posix()
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise UserError(f"{rel}: not a JSON settings payload ({exc})") from None
        if not isinstance(data, dict):
            raise UserError(f"{rel}: must be a JSON object with api, method, path, tier, upsert and body")
        for key in ("method", "path", "upsert", "body"):
            if key not in data:
                raise UserError(f"{rel}: `{key}` is missing (needs api, method, path, tier, upsert and body)")
        if data["method"] not in {"POST", "PUT"}:
            raise UserError(f"{rel}: method {show(data['method'])} is not allowed: POST or PUT")
        if not isinstance(data["path"], str) or not data["path"].startswith("/projects/:id"):
            raise UserError(f"{rel}: path {show(data['path'])} is not allowed: it starts with /projects/:id")
        upsert = data["upsert"]
        if not isinstance(upsert, dict) or upsert.get("kind") not in KINDS:
            raise UserError(f"{rel}: upsert.kind {show((upsert or {}).get('kind'))} is not allowed: {', '.join(KINDS)}")
        if not isinstance(data["body"], dict):
            raise UserError(f"{rel}: body must be an object of REST fields")
        if isinstance(data.get("api"), str):
            apis.add(data["api"])
        controls = tuple(re.findall(r"PP-[A-Z]+-\d+", str(data.get("$comment", "")))) or ("PP-BRANCH-01",)
        payloads.append(
            Payload(rel, data["method"], data["path"], str(data.get("tier", "free")), upsert, data["body"], controls)
        )
    if len(apis) > 1:
        raise UserError(
            f"{SETTINGS}: the payloads name different APIs ({', '.join(sorted(apis))}); one project, one API"
        )
    return payloads, next(iter(apis), "https://gitlab.com/api/v4")


@dataclass(frozen=True)
class Step:
    """One request of the plan."""

    what: str
    method: str
    path: str
    body: Any
    schedule: str = ""  # the pipeline schedule a step creates or whose id its path needs ({schedule})


@dataclass
class State:
    """Per payload: the live object (None: absent) and the differences from the body."""

    live: dict[str, Any] = field(default_factory=dict)
    diffs: dict[str, list[tuple[str, str]]] = field(default_factory=dict)  # file -> [(field, message)]
    schedules: dict[str, Any] = field(default_factory=dict)  # name -> the live schedule (with variables), or None


def _levels(items: Any) -> list[int]:
    return sorted(
        int(i["access_level"]) for i in items or [] if isinstance(i, Mapping) and i.get("access_level") is not None
    )


def _differences(p: Payload, body: dict[str, Any], have: Any) -> list[tuple[str, str]]:
    """The fields whose live value differs from the body (GitLab's plural read shapes compared as such)."""
    if have is None:
        return [("", f"{p.name or p.file} does not exist")]
    out = []
    for key, value in body.items():
        if key in _LEVELS:
            got = _levels(have.get(key + "s"))
            if got != [value]:
                out.append((key, f"{key + 's'} is {got}, not [{value}]"))
        elif key == "deploy_access_levels":
            want = sorted(int(i["access_level"]) for i in value if "access_level" in i)
            if _levels(have.get(key)) != want:
                out.append((key, f"{key} is {_levels(have.get(key))}, not {want}"))
        elif key == "approval_rules":
            got_rules = sorted(
                (r.get("group_id"), r.get("user_id"), r.get("access_level"), r.get("required_approvals"))
                for r in have.get(key) or []
            )
            want_rules = sorted(
                (r.get("group_id"), r.get("user_id"), r.get("access_level"), r.get("required_approvals")) for r in value
            )
            if got_rules != want_rules:
                out.append((key, f"approval_rules are {got_rules}, not {want_rules} (group, user, level, approvals)"))
        elif key == "name" or key not in have:
            continue  # a field this GitLab does not return cannot be compared (an older version, or Free)
        elif have.get(key) != value:
            out.append((key, f"{key} is {json.dumps(have.get(key))}, not {json.dumps(value)}"))
    return out


class GitLabSession:
    def __init__(self, root: Path, client: Client, project: str, payloads: list[Payload], answers: dict[str, Any]):
        self.root, self.client, self.project, self.payloads, self.answers = root, client, project, payloads, answers
        self.pid = quote(project, safe="")
        self._ids: dict[tuple[str, str], Any] = {}
        self._created: dict[str, Any] = {}  # schedule name -> the id GitLab just gave it
        self.schedules = wanted_schedules(root)
        self.branch = next(
            (str(p.body["default_branch"]) for p in payloads if "default_branch" in p.body),
            str(answers.get("default_branch") or "main"),
        )

    @property
    def redact(self) -> Any:
        return self.client.redact

    def _path(self, template: str, p: Payload) -> str:
        return template.replace(":id", self.pid, 1).replace("{name}", quote(p.name, safe=""))

    def resolve(self, value: Any) -> Any:
        """The body with every placeholder replaced by the id it names; an unresolvable one stops everything."""
        if isinstance(value, list):
            return [self.resolve(v) for v in value]
        if not isinstance(value, dict):
            return value
        if len(value) == 1 and next(iter(value)) in {"$group", "$user"}:
            kind, name = next(iter(value.items()))
            key = (kind, str(name))
            if key not in self._ids:
                self._ids[key] = self._lookup(kind, str(name))
            return self._ids[key]
        return {k: self.resolve(v) for k, v in value.items()}

    def _lookup(self, kind: str, name: str) -> Any:
        if kind == "$group":
            group = self.client.get(f"/groups/{quote(name, safe='')}", missing_ok=True)
            if self.client.dry_run:
                return f"<id of group {name}>"
            if not group or "id" not in group:
                raise UserError(f"group {name!r} does not exist or the token cannot see it: nothing more is applied")
            return group["id"]
        users = self.client.get("/users", params={"username": name})
        if self.client.dry_run:
            return f"<id of user {name}>"
        if not isinstance(users, list) or len(users) != 1:
            raise UserError(f"user {name!r} matches {len(users or [])} users, not one: nothing more is applied")
        return users[0]["id"]

    def read(self) -> State:
        state = State()
        for p in self.payloads:
            kind = p.upsert["kind"]
            body = self.resolve(p.body)
            have: Any
            if kind == "update":
                read = self._path(p.path, p)  # PUT /projects/:id reads at the same path; approvals likewise
                have = self.client.get(read, missing_ok=True)
            elif kind == "replace":
                have = self.client.get(self._path(str(p.upsert.get("get")), p), missing_ok=True)
            else:
                items = self.client.pages(self._path(str(p.upsert.get("list")), p), missing_ok=True)
                have = next((i for i in items if isinstance(i, Mapping) and i.get("name") == p.name), None)
            state.live[p.file] = have
            state.diffs[p.file] = _differences(p, body, have) if not self.client.dry_run else [("", "not read")]
        if self.schedules:
            listed = self.client.pages(f"/projects/{self.pid}/pipeline_schedules", missing_ok=True)
            for name in self.schedules:
                found = next((s for s in listed if s.get("description") == _describe(name)), None)
                # The list leaves out the variables: the schedule itself has them.
                state.schedules[name] = (
                    self.client.get(f"/projects/{self.pid}/pipeline_schedules/{found['id']}", missing_ok=True)
                    if found
                    else None
                )
        return state

    def schedule_differences(self, name: str, have: Any) -> list[str]:
        if have is None:
            return [f"pipeline schedule {_describe(name)!r} does not exist"]
        cron, _ = SCHEDULES[name]
        diffs = [
            f"pipeline schedule {_describe(name)!r}: {key} is {json.dumps(have.get(key))}, not {json.dumps(value)}"
            for key, value in (("cron", cron), ("ref", self.branch), ("active", True))
            if have.get(key) != value and not (key == "ref" and have.get(key) == f"refs/heads/{self.branch}")
        ]
        variables = {v.get("key"): v.get("value") for v in have.get("variables") or []}
        if variables.get(SCHEDULE_VARIABLE) != name:
            diffs.append(f"pipeline schedule {_describe(name)!r}: {SCHEDULE_VARIABLE} is not {name!r}")
        return diffs

    def schedule_steps(self, state: State) -> list[Step]:
        steps: list[Step] = []
        base = f"/projects/{self.pid}/pipeline_schedules"
        for name in self.schedules:
            have = state.schedules.get(name)
            if not self.client.dry_run and not self.schedule_differences(name, have):
                continue
            cron, _ = SCHEDULES[name]
            settings = {
                "description": _describe(name),
                "ref": self.branch,
                "cron": cron,
                "cron_timezone": "UTC",
                "active": True,
            }
            variable = {"key": SCHEDULE_VARIABLE, "value": name}
            if have is None:
                steps.append(Step(f"pipeline schedule {name}: create", "POST", base, settings, schedule=name))
                steps.append(
                    Step(
                        f"pipeline schedule {name}: {SCHEDULE_VARIABLE}={name}",
                        "POST",
                        base + "/{schedule}/variables",
                        variable,
                        schedule=name,
                    )
                )
                continue
            steps.append(Step(f"pipeline schedule {name}: update", "PUT", f"{base}/{have['id']}", settings))
            variables = {v.get("key"): v.get("value") for v in have.get("variables") or []}
            if variables.get(SCHEDULE_VARIABLE) != name:
                method, path = (
                    ("PUT", f"{base}/{have['id']}/variables/{SCHEDULE_VARIABLE}")
                    if SCHEDULE_VARIABLE in variables
                    else ("POST", f"{base}/{have['id']}/variables")
                )
                steps.append(Step(f"pipeline schedule {name}: {SCHEDULE_VARIABLE}={name}", method, path, variable))
        return steps

    def plan(self, state: State) -> list[Step]:
        steps: list[Step] = []
        for p in self.payloads:
            if not state.diffs[p.file]:
                continue
            body = self.resolve(p.body)
            have = state.live.get(p.file)
            kind = p.upsert["kind"]
            if kind == "replace" and have is not None:
                steps.append(
                    Step(
                        f"{p.file}: unprotect {p.name} (GitLab cannot change its levels in place) ...",
                        "DELETE",
                        self._path(str(p.upsert.get("delete")), p),
                        None,
                    )
                )
                steps.append(Step(f"{p.file}: ... and protect it again at once", p.method, self._path(p.path, p), body))
            elif kind == "by-name" and have is not None:
                method, _, template = str(p.upsert.get("update", "")).partition(" ")
                steps.append(
                    Step(
                        f"{p.file}: update {p.name}",
                        method or "PUT",
                        self._path(template, p).replace("{id}", str(have["id"])),
                        body,
                    )
                )
            else:
                steps.append(Step(f"{p.file}", p.method, self._path(p.path, p), body))
        return steps + self.schedule_steps(state)

    def apply(self, say: Any) -> int:
        from generator.protect.session import _apply_changes

        try:
            state = self.read()
            steps = self.plan(state)
        except UserError as exc:
            say(f"nothing was applied: {exc}", err=True)
            return 1
        if self.client.dry_run:
            for step in steps:
                self.client.request(step.method, step.path, step.body)
            say(f"dry run for {self.project} at {self.client.base}: {len(self.client.planned)} requests, none sent")
            for sent in self.client.planned:
                say("  " + sent.show())
            return 0

        def before(step: Step) -> Step:
            if "{schedule}" not in step.path:
                return step
            return dataclasses.replace(step, path=step.path.replace("{schedule}", str(self._created[step.schedule])))

        def after(step: Step, answer: Any) -> None:
            if step.schedule and step.method == "POST" and "{schedule}" not in step.path:
                self._created[step.schedule] = (answer or {}).get("id")

        return _apply_changes(self.client, steps, [], self.project, say, before=before, after=after)

    def drift(self, state: State) -> dict[str, list[Finding]]:
        found: dict[str, list[Finding]] = {}
        for p in self.payloads:
            for key, message in state.diffs[p.file]:
                control = FIELD_CONTROL.get(key) or p.controls[0]
                found.setdefault(control, []).append(Finding(f"{p.file}:1", f"live: {message}"))
        for name in self.schedules:
            for message in self.schedule_differences(name, state.schedules.get(name)):
                found.setdefault(SCHEDULES[name][1], []).append(Finding(".gitlab-ci.yml:1", f"live: {message}"))
        return found

    def served(self, found: Mapping[str, list[Finding]]) -> set[str]:
        """The controls the settings payloads and the pipeline schedules serve, and any that drifted."""
        return {c for p in self.payloads for c in p.controls} | {SCHEDULES[n][1] for n in self.schedules} | set(found)

    def check(self, say: Any, fmt: str, output: Path | None) -> int:
        from generator.protect.verdicts import stamp
        from generator.report import FORMATS

        at = dt.datetime.now(dt.UTC).replace(microsecond=0)
        found = self.drift(self.read())
        when = f"live API at {stamp(at)}"
        served = sorted(self.served(found))
        catalog = {c.id: c for c in all_controls()}
        results = []
        for cid in served:
            if cid not in catalog:
                continue
            findings = found.get(cid, [])
            if findings:
                results.append(
                    Result(
                        catalog[cid],
                        "fail",
                        f"drift ({when}): {findings[0].message}",
                        tuple(f.where for f in findings),
                        tuple(findings),
                    )
                )
            else:
                files = [p.file + ":1" for p in self.payloads if cid in p.controls]
                files += [".gitlab-ci.yml:1" for n in self.schedules if SCHEDULES[n][1] == cid]
                results.append(Result(catalog[cid], "pass", f"matches the files ({when})", tuple(files)))
        report = Report(
            self.root, dict(self.answers), results, read={"live API snapshot": 1}, profile=f"{when}, {self.project}"
        )
        text = FORMATS[fmt](report)
        if output:
            output.parent.mkdir(parents=True, exist_ok=True)
            output.write_text(self.redact(text), encoding="utf-8")
        else:
            say(text.rstrip("\n"))
        drifted = [r for r in results if r.status == "fail"]
        say(
            f"{len(drifted)} control(s) drifted from the files"
            if drifted
            else "no drift: the live settings match the files",
            err=True,
        )
        return 1 if drifted else 0

    def export(self, say: Any, out_dir: Path) -> int:
        from generator.protect.session import write_snapshot
        from generator.protect.verdicts import stamp

        at = dt.datetime.now(dt.UTC).replace(microsecond=0)
        state = self.read()
        found = self.drift(state)
        members = self.client.pages(f"/projects/{self.pid}/members/all", missing_ok=True)
        me = self.client.get("/user", missing_ok=True) or {}
        branches = [v for p, v in state.live.items() if p.endswith("protected-branch.json") and v]
        snapshot = {
            "schema": "pipeproof/protect-snapshot/v1",
            "taken_at": stamp(at),
            "pipeproof": __version__,
            "platform": "gitlab",
            "api": self.client.base,
            "account": str(me.get("username") or "unknown"),
            "repository": self.project,
            "desired": {p.file: p.body for p in self.payloads},
            "live": {**state.live, "pipeline_schedules": state.schedules},
            "diff": {
                "drift": {c: [f.message for f in fs] for c, fs in sorted(found.items())},
                "changes_apply_would_make": [
                    {"what": s.what, "method": s.method, "path": s.path, "body": s.body} for s in self.plan(state)
                ],
            },
            "access_review": {
                "members": [
                    {"username": m.get("username"), "access_level": m.get("access_level"), "state": m.get("state")}
                    for m in members
                    if isinstance(m, Mapping)
                ],
                "admins": [
                    m.get("username") for m in members if isinstance(m, Mapping) and (m.get("access_level") or 0) >= 50
                ],
                "maintainers": [
                    m.get("username") for m in members if isinstance(m, Mapping) and m.get("access_level") == 40
                ],
                # Who may push, merge or unprotect past the merge-request flow on the protected branch.
                "bypass_actors": [
                    {"branch": b.get("name"), "right": right, **{k: v for k, v in level.items() if k != "id"}}
                    for b in branches
                    for right in ("push_access_levels", "unprotect_access_levels")
                    for level in b.get(right) or []
                    if level.get("access_level") not in (0, None) or level.get("user_id") or level.get("group_id")
                ],
            },
        }
        snapshot = json.loads(self.redact(json.dumps(snapshot)))  # API answers are redacted like printed lines
        namespace, name = self.project.rsplit("/", 1)
        path = write_snapshot(out_dir, "gitlab", namespace, name, at, snapshot)
        say(f"wrote {path} (sha256 {snapshot['sha256']})")
        return 0


def _describe(name: str) -> str:
    return f"pipeproof {name}"


def wanted_schedules(root: Path) -> list[str]:
    """The schedules the project's pipeline asks for: those whose PIPEPROOF_SCHEDULE value .gitlab-ci.yml tests."""
    try:
        text = (root / ".gitlab-ci.yml").read_text(encoding="utf-8")
    except OSError:
        return []
    return [
        name
        for name in SCHEDULES
        if re.search(rf"\$\{{?{SCHEDULE_VARIABLE}\}}?\s*==\s*[\"']{re.escape(name)}[\"']", text)
    ]


@contextmanager
def open_session(
    root: Path, args: argparse.Namespace, answers: dict[str, Any], *, dry_run: bool
) -> Iterator[GitLabSession]:
    payloads, api = load(root)
    if not payloads:
        raise UserError(f"nothing to protect: {SETTINGS}/ holds no settings payloads")
    token = read_token("gitlab", getattr(args, "token_file", None), required=not dry_run)
    owner, name = repository(root, getattr(args, "repo", None), "gitlab")
    base = check_api_url(args.api_url) if getattr(args, "api_url", None) else api
    client = Client(base, token, "gitlab", dry_run=dry_run)
    try:
        yield GitLabSession(root, client, f"{owner}/{name}", payloads, answers)
    except ApiError:
        raise
    finally:
        client.close()
