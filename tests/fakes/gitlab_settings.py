"""A stand-in for the GitLab REST API v4 settings endpoints `pipeproof protect` uses, on 127.0.0.1, with state.

It answers as GitLab does (doc/api/protected_branches.md, merge_request_approvals.md, protected_environments.md):
POST protected_branches takes the singular `push_access_level` integers and GET answers the plural
`push_access_levels: [{id, access_level, access_level_description}]`; PATCH takes only allow_force_push,
code_owner_approval_required and the `allowed_to_*` arrays (422 for a singular level); a second POST of a
protected name is 409 "Protected branch 'main' already exists"; errors are `{"message": ...}` (a string, or
field -> [messages] for 400); the token travels in `PRIVATE-TOKEN`. `tier="free"` answers 403 to the
Premium endpoints the way gitlab.com does for a Free namespace.
"""

from __future__ import annotations

import copy
import json
import re
from typing import Any
from urllib.parse import unquote

from tests.fakes.github_api import FakeGitHub, Page, Request, Response

LEVELS = {0: "No one", 30: "Developers + Maintainers", 40: "Maintainers", 60: "Admins"}
FREE_403 = "403 Forbidden - Your current license does not have access to this feature (Premium)"


def message(status: int, text: Any) -> Response:
    return Response(status, {"message": text})


class FakeGitLab(FakeGitHub):
    """One project (namespace/name, numeric id 42) of a GitLab instance."""

    def __init__(
        self, *, project: str = "acme/platform/shop", token: str = "glpat-test", tier: str = "premium"
    ) -> None:
        super().__init__(repo=project, token=token)
        self._routes = []  # none of the GitHub endpoints
        self.project = project
        self.tier = tier
        self.settings: dict[str, Any] = {
            "id": 42,
            "path_with_namespace": project,
            "default_branch": "main",
            "visibility": "private",
            "only_allow_merge_if_pipeline_succeeds": False,
            "allow_merge_on_skipped_pipeline": True,
            "only_allow_merge_if_all_discussions_are_resolved": False,
            "merge_method": "merge",
            "remove_source_branch_after_merge": False,
            "restrict_user_defined_variables": False,
            # gitlab.com gives new projects no_one_allowed: not even a schedule's or a run's variables apply.
            "ci_pipeline_variables_minimum_override_role": "no_one_allowed",
            "ci_forward_deployment_enabled": True,
            "allow_pipeline_trigger_approve_deployment": True,
        }
        self.approvals = {
            "approvals_before_merge": 0,
            "reset_approvals_on_push": False,
            "selective_code_owner_removals": False,
            "disable_overriding_approvers_per_merge_request": False,
            "merge_requests_author_approval": True,
            "merge_requests_disable_committers_approval": False,
            "require_password_to_approve": False,
            "require_reauthentication_to_approve": False,
        }
        self.protected: dict[str, dict[str, Any]] = {}
        self.rules: dict[int, dict[str, Any]] = {}
        self.environments: dict[str, dict[str, Any]] = {}
        self.groups: dict[str, dict[str, Any]] = {}
        self.members: list[dict[str, Any]] = []
        self.schedules: dict[int, dict[str, Any]] = {}
        self._next = 100
        self._gitlab_routes()

    def add_group(self, path: str) -> int:
        gid = 9000 + len(self.groups)
        self.groups[path] = {
            "id": gid,
            "name": path.rsplit("/", 1)[-1],
            "path": path.rsplit("/", 1)[-1],
            "full_path": path,
        }
        return gid

    def add_member(self, username: str, level: int) -> None:
        self.members.append(
            {
                "id": len(self.members) + 1,
                "username": username,
                "name": username.title(),
                "state": "active",
                "access_level": level,
            }
        )

    def writes(self) -> list[Request]:
        return [r for r in self.requests if r.method != "GET"]

    def _id(self) -> int:
        self._next += 1
        return self._next

    def _levels(self, level: int) -> list[dict[str, Any]]:
        return [{"id": self._id(), "access_level": level, "access_level_description": LEVELS.get(level, str(level))}]

    def handle(self, req: Request, host: str) -> Response:
        with self._lock:
            self.requests.append(req)
            fault = self._fault(req)
        if fault is not None:
            return Response(fault.status, {"message": fault.message}, dict(fault.headers))
        if req.headers.get("private-token") != self.token:
            return message(401, "401 Unauthorized")
        for method, pattern, handler in self._routes:
            if method == req.method and (m := pattern.fullmatch(req.path)):
                result = handler(req, m)
                return self._page(req, host, result) if isinstance(result, Page) else result
        return message(404, "404 Not Found")

    def _gitlab_routes(self) -> None:
        project = r"/projects/(?P<pid>[^/]+)"
        r = self.route

        def mine(m: re.Match[str]) -> bool:
            return unquote(m["pid"]) in {self.project, "42"}

        def body(req: Request) -> dict[str, Any]:
            return json.loads(req.body or b"{}")

        def premium() -> Response | None:
            return message(403, FREE_403) if self.tier == "free" else None

        @r("GET", project)
        def get_project(req: Request, m: re.Match[str]) -> Response | Page:
            return Response(body=self.settings) if mine(m) else message(404, "404 Project Not Found")

        @r("PUT", project)
        def put_project(req: Request, m: re.Match[str]) -> Response | Page:
            if not mine(m):
                return message(404, "404 Project Not Found")
            data = body(req)
            if data.get("merge_method") not in {None, "merge", "rebase_merge", "ff"}:
                return message(400, {"merge_method": ["does not have a valid value"]})
            self.settings.update({k: v for k, v in data.items() if k in self.settings})
            return Response(body=self.settings)

        @r("GET", project + r"/protected_branches/(?P<name>[^/]+)")
        def get_branch(req: Request, m: re.Match[str]) -> Response | Page:
            found = self.protected.get(unquote(m["name"]))
            return Response(body=found) if mine(m) and found else message(404, "404 Not found")

        @r("POST", project + r"/protected_branches")
        def protect(req: Request, m: re.Match[str]) -> Response | Page:
            data = body(req)
            name = data.get("name")
            if name in self.protected:
                return message(409, f"Protected branch '{name}' already exists")
            if "code_owner_approval_required" in data and self.tier == "free":
                return message(403, FREE_403)
            self.protected[name] = {
                "id": self._id(),
                "name": name,
                "push_access_levels": self._levels(int(data.get("push_access_level", 40))),
                "merge_access_levels": self._levels(int(data.get("merge_access_level", 40))),
                "unprotect_access_levels": self._levels(int(data.get("unprotect_access_level", 40))),
                "allow_force_push": bool(data.get("allow_force_push", False)),
                "code_owner_approval_required": bool(data.get("code_owner_approval_required", False)),
            }
            return Response(201, self.protected[name])

        @r("PATCH", project + r"/protected_branches/(?P<name>[^/]+)")
        def patch_branch(req: Request, m: re.Match[str]) -> Response | Page:
            data = body(req)
            if any(k.endswith("_access_level") for k in data):
                return message(422, "push_access_level is not allowed: use allowed_to_push")
            found = self.protected.get(unquote(m["name"]))
            if found is None:
                return message(404, "404 Not found")
            found.update({k: v for k, v in data.items() if k in {"allow_force_push", "code_owner_approval_required"}})
            return Response(body=found)

        @r("DELETE", project + r"/protected_branches/(?P<name>[^/]+)")
        def unprotect(req: Request, m: re.Match[str]) -> Response | Page:
            return Response(204) if self.protected.pop(unquote(m["name"]), None) else message(404, "404 Not found")

        @r("GET", project + r"/approvals")
        def get_approvals(req: Request, m: re.Match[str]) -> Response | Page:
            return premium() or Response(body=self.approvals)

        @r("POST", project + r"/approvals")
        def set_approvals(req: Request, m: re.Match[str]) -> Response | Page:
            if denied := premium():
                return denied
            self.approvals.update({k: v for k, v in body(req).items() if k in self.approvals})
            return Response(201, self.approvals)

        @r("GET", project + r"/approval_rules")
        def list_rules(req: Request, m: re.Match[str]) -> Response | Page:
            return premium() or Page([self.rules[i] for i in sorted(self.rules)])

        @r("POST", project + r"/approval_rules")
        def add_rule(req: Request, m: re.Match[str]) -> Response | Page:
            if denied := premium():
                return denied
            data = body(req)
            if not data.get("name") or "approvals_required" not in data:
                return message(
                    400, {"name": ["can't be blank"]} if not data.get("name") else "approvals_required is missing"
                )
            if any(rule["name"] == data["name"] for rule in self.rules.values()):
                return message(400, {"name": ["has already been taken"]})
            rid = self._id()
            self.rules[rid] = {
                "id": rid,
                "eligible_approvers": [],
                "users": [],
                "groups": [],
                "contains_hidden_groups": False,
                **data,
            }
            return Response(201, self.rules[rid])

        @r("PUT", project + r"/approval_rules/(?P<id>\d+)")
        def put_rule(req: Request, m: re.Match[str]) -> Response | Page:
            rule = self.rules.get(int(m["id"]))
            if rule is None:
                return message(404, "404 Not found")
            rule.update(body(req))
            return Response(body=rule)

        @r("GET", project + r"/protected_environments/(?P<name>[^/]+)")
        def get_env(req: Request, m: re.Match[str]) -> Response | Page:
            if denied := premium():
                return denied
            found = self.environments.get(unquote(m["name"]))
            return Response(body=found) if found else message(404, "404 Not found")

        @r("POST", project + r"/protected_environments")
        def add_env(req: Request, m: re.Match[str]) -> Response | Page:
            if denied := premium():
                return denied
            data = body(req)
            if data.get("name") in self.environments:
                return message(409, "Protected environment already exists")
            ids = {g["id"] for g in self.groups.values()}
            for rule in data.get("approval_rules") or []:
                if "group_id" in rule and rule["group_id"] not in ids:
                    return message(422, {"approval_rules.group": ["can't be blank"]})
            self.environments[data["name"]] = {
                "name": data["name"],
                "deploy_access_levels": [
                    {
                        "id": self._id(),
                        "access_level": lv["access_level"],
                        "access_level_description": LEVELS.get(lv["access_level"]),
                        "user_id": None,
                        "group_id": None,
                        "group_inheritance_type": 0,
                    }
                    for lv in data.get("deploy_access_levels") or []
                ],
                "required_approval_count": 0,
                "approval_rules": [
                    {
                        "id": self._id(),
                        "user_id": None,
                        "group_id": None,
                        "access_level": None,
                        "access_level_description": "",
                        "required_approvals": 1,
                        "group_inheritance_type": 0,
                        **copy.deepcopy(rule),
                    }
                    for rule in data.get("approval_rules") or []
                ],
            }
            return Response(201, self.environments[data["name"]])

        @r("DELETE", project + r"/protected_environments/(?P<name>[^/]+)")
        def delete_env(req: Request, m: re.Match[str]) -> Response | Page:
            return Response(204) if self.environments.pop(unquote(m["name"]), None) else message(404, "404 Not found")

        @r("GET", r"/groups/(?P<path>[^/]+)")
        def get_group(req: Request, m: re.Match[str]) -> Response | Page:
            found = self.groups.get(unquote(m["path"]))
            return Response(body=found) if found else message(404, "404 Group Not Found")

        @r("GET", project + r"/members/all")
        def members(req: Request, m: re.Match[str]) -> Response | Page:
            return Page(self.members)

        @r("GET", project + r"/pipeline_schedules")
        def list_schedules(req: Request, m: re.Match[str]) -> Response | Page:
            # The list leaves out variables and the last pipeline, as GitLab's does.
            return Page([{k: v for k, v in s.items() if k != "variables"} for _, s in sorted(self.schedules.items())])

        @r("GET", project + r"/pipeline_schedules/(?P<id>\d+)")
        def get_schedule(req: Request, m: re.Match[str]) -> Response | Page:
            found = self.schedules.get(int(m["id"]))
            return Response(body={**found, "last_pipeline": None}) if found else message(404, "404 Not found")

        @r("POST", project + r"/pipeline_schedules")
        def add_schedule(req: Request, m: re.Match[str]) -> Response | Page:
            data = body(req)
            missing = [k for k in ("description", "ref", "cron") if not data.get(k)]
            if missing:
                return message(400, f"{missing[0]} is missing")
            sid = self._id()
            self.schedules[sid] = {
                "id": sid,
                "description": data["description"],
                "ref": data["ref"],
                "cron": data["cron"],
                "cron_timezone": data.get("cron_timezone", "UTC"),
                "next_run_at": "2026-11-28T03:17:00.000Z",
                "active": data.get("active", True),
                "created_at": "2026-11-27T07:00:00.000Z",
                "updated_at": "2026-11-27T07:00:00.000Z",
                "owner": {"id": 7, "username": "protect-bot", "state": "active"},
                "variables": [],
            }
            return Response(201, {k: v for k, v in self.schedules[sid].items() if k != "variables"})

        @r("PUT", project + r"/pipeline_schedules/(?P<id>\d+)")
        def put_schedule(req: Request, m: re.Match[str]) -> Response | Page:
            found = self.schedules.get(int(m["id"]))
            if found is None:
                return message(404, "404 Not found")
            found.update(
                {k: v for k, v in body(req).items() if k in {"description", "ref", "cron", "cron_timezone", "active"}}
            )
            return Response(body=found)

        @r("POST", project + r"/pipeline_schedules/(?P<id>\d+)/variables")
        def add_variable(req: Request, m: re.Match[str]) -> Response | Page:
            found = self.schedules.get(int(m["id"]))
            if found is None:
                return message(404, "404 Not found")
            data = body(req)
            if any(v["key"] == data.get("key") for v in found["variables"]):
                return message(400, {"key": ["has already been taken"]})
            item = {"key": data["key"], "variable_type": "env_var", "value": data["value"], "raw": False}
            found["variables"].append(item)
            return Response(201, item)

        @r("PUT", project + r"/pipeline_schedules/(?P<id>\d+)/variables/(?P<key>[^/]+)")
        def put_variable(req: Request, m: re.Match[str]) -> Response | Page:
            found = self.schedules.get(int(m["id"]))
            item = next((v for v in (found or {}).get("variables", []) if v["key"] == m["key"]), None)
            if item is None:
                return message(404, "404 Variable Not found")
            item["value"] = body(req).get("value")
            return Response(body=item)

        @r("GET", r"/user")
        def me(req: Request, m: re.Match[str]) -> Response | Page:
            return Response(body={"id": 7, "username": "protect-bot", "state": "active"})
