"""The settings endpoints `pipeproof protect` uses, on the stand-in GitHub API (tests/fakes/github_api.py), with
state: what a PUT stores, the next GET returns in GitHub's own (different) read shape.

Shapes follow GitHub's REST reference examples: GET .../protection answers `enforce_admins: {url, enabled}` and
`checks: [{context, app_id}]` where the PUT took booleans; rulesets carry `id`, `source_type`, `source` and
`_links`; GET rules/branches/{b} lists only the rules of *active* rulesets, each with its `ruleset_id`;
environments answer `protection_rules` (wait_timer, required_reviewers, branch_policy) and `can_admins_bypass`.
`plan="free-private"` answers 403 "Upgrade to GitHub Pro ..." to protection and rulesets, as GitHub Free does
for a private repository.
"""

from __future__ import annotations

import copy
import json
import re
from typing import Any

from tests.fakes.github_api import NOT_FOUND, FakeGitHub, Page, Request, Response, error, fixture, user

UPGRADE = "Upgrade to GitHub Pro or make this repository public to enable this feature."
WEB = "https://github.com"
API = "https://api.github.com"
MANDATORY = ("required_status_checks", "enforce_admins", "required_pull_request_reviews", "restrictions")


def team(slug: str, tid: int, org: str, permission: str = "pull") -> dict[str, Any]:
    return {
        "id": tid,
        "node_id": "MDQ6VGVhbTE=",
        "url": f"{API}/teams/{tid}",
        "html_url": f"{WEB}/orgs/{org}/teams/{slug}",
        "name": slug.replace("-", " ").title(),
        "slug": slug,
        "description": "",
        "privacy": "closed",
        "notification_setting": "notifications_enabled",
        "permission": permission,
        "members_url": f"{API}/teams/{tid}/members{{/member}}",
        "repositories_url": f"{API}/teams/{tid}/repos",
        "parent": None,
    }


class FakeGitHubSettings(FakeGitHub):
    """A repository whose protection, rulesets, environments and access are state the tests can read and change."""

    def __init__(self, *, repo: str = "acme/shop", plan: str = "enterprise", private: bool = True, **kw: Any) -> None:
        super().__init__(repo=repo, **kw)
        self.plan = plan
        self.private = private
        self.default_branch = "main"
        self.protection: dict[str, dict[str, Any]] = {}  # branch -> the PUT body as stored
        self.rulesets: dict[int, dict[str, Any]] = {}
        self.org_rulesets: dict[int, dict[str, Any]] = {}
        self.environments: dict[str, dict[str, Any]] = {}
        self.branch_policies: dict[str, list[dict[str, Any]]] = {}
        self.security = {
            "secret_scanning": "disabled",
            "secret_scanning_push_protection": "disabled",
            "dependabot_security_updates": "disabled",
        }
        self.org_teams: dict[str, dict[str, Any]] = {}
        self.repo_teams: dict[str, str] = {}  # slug -> permission on the repository
        self.collaborators: list[dict[str, Any]] = []
        self.codeowners_file = True
        self.codeowners_errors: list[dict[str, Any]] = []
        self.login = "release-bot"
        self.actions_app_id = 15368  # github.com's; another number on each GitHub Enterprise Server
        self._next_id = 1000
        self._settings_routes()

    # --- set-up ----------------------------------------------------------------------------------------

    def add_team(self, slug: str, permission: str | None = "push") -> dict[str, Any]:
        found = team(slug, 4_200_000 + len(self.org_teams), self.org)
        self.org_teams[slug] = found
        if permission:
            self.repo_teams[slug] = permission
        return found

    def add_collaborator(self, login: str, role: str) -> None:
        levels = ["pull", "triage", "push", "maintain", "admin"]
        rank = levels.index({"read": "pull", "write": "push"}.get(role, role))
        person = user(login)
        person["permissions"] = {level: i <= rank for i, level in enumerate(levels)}
        person["role_name"] = role
        self.collaborators.append(person)

    def writes(self) -> list[Request]:
        return [r for r in self.requests if r.method != "GET"]

    def _id(self) -> int:
        self._next_id += 1
        return self._next_id

    # --- read shapes -----------------------------------------------------------------------------------

    def protection_view(self, branch: str) -> dict[str, Any]:
        body = self.protection[branch]
        url = f"{API}/repos/{self.repo}/branches/{branch}/protection"
        out: dict[str, Any] = {"url": url}
        status = body.get("required_status_checks")
        if status is not None:
            checks = [{"context": c["context"], "app_id": c.get("app_id")} for c in status.get("checks") or []]
            checks += [{"context": c, "app_id": None} for c in status.get("contexts") or []]
            out["required_status_checks"] = {
                "url": url + "/required_status_checks",
                "strict": bool(status.get("strict")),
                "contexts": [c["context"] for c in checks],
                "contexts_url": url + "/required_status_checks/contexts",
                "checks": checks,
            }
        reviews = body.get("required_pull_request_reviews")
        if reviews is not None:
            out["required_pull_request_reviews"] = {
                "url": url + "/required_pull_request_reviews",
                "dismiss_stale_reviews": bool(reviews.get("dismiss_stale_reviews")),
                "require_code_owner_reviews": bool(reviews.get("require_code_owner_reviews")),
                "required_approving_review_count": int(reviews.get("required_approving_review_count", 1)),
                "require_last_push_approval": bool(reviews.get("require_last_push_approval")),
            }
        out["required_signatures"] = {"url": url + "/required_signatures", "enabled": False}
        out["enforce_admins"] = {"url": url + "/enforce_admins", "enabled": bool(body.get("enforce_admins"))}
        for key in (
            "required_linear_history",
            "allow_force_pushes",
            "allow_deletions",
            "block_creations",
            "required_conversation_resolution",
            "lock_branch",
            "allow_fork_syncing",
        ):
            out[key] = {"enabled": bool(body.get(key))}
        restrictions = body.get("restrictions")
        if restrictions is not None:
            out["restrictions"] = {
                "url": url + "/restrictions",
                "users": [user(u) for u in restrictions.get("users") or []],
                "teams": [self.org_teams.get(t, team(t, 1, self.org)) for t in restrictions.get("teams") or []],
                "apps": [],
            }
        return out

    def ruleset_view(self, rid: int, org: bool = False) -> dict[str, Any]:
        data = (self.org_rulesets if org else self.rulesets)[rid]
        source = self.org if org else self.repo
        return {
            "id": rid,
            "name": data["name"],
            "target": data.get("target", "branch"),
            "source_type": "Organization" if org else "Repository",
            "source": source,
            "enforcement": data.get("enforcement", "disabled"),
            "conditions": data.get("conditions") or {},
            "rules": copy.deepcopy(data.get("rules") or []),
            "bypass_actors": copy.deepcopy(data.get("bypass_actors") or []),
            "current_user_can_bypass": "never",
            "node_id": "RRS_lACkVXNlcgQB",
            "_links": {
                "self": {"href": f"{API}/repos/{self.repo}/rulesets/{rid}"},
                "html": {"href": f"{WEB}/{self.repo}/rules/{rid}"},
            },
            "created_at": "2024-05-01T10:00:00.000Z",
            "updated_at": "2024-05-01T10:00:00.000Z",
        }

    def env_view(self, name: str) -> dict[str, Any]:
        env = self.environments[name]
        rules: list[dict[str, Any]] = []
        if env.get("wait_timer"):
            rules.append(
                {"id": 3515, "node_id": "MDQ6R2F0ZTM1MTU=", "type": "wait_timer", "wait_timer": env["wait_timer"]}
            )
        if env.get("reviewers"):
            by_id = {t["id"]: t for t in self.org_teams.values()}
            rules.append(
                {
                    "id": 3755,
                    "node_id": "MDQ6R2F0ZTM3NTU=",
                    "prevent_self_review": bool(env.get("prevent_self_review")),
                    "type": "required_reviewers",
                    "reviewers": [
                        {
                            "type": r["type"],
                            "reviewer": by_id.get(r["id"]) if r["type"] == "Team" else user("u", r["id"]),
                        }
                        for r in env["reviewers"]
                    ],
                }
            )
        if env.get("deployment_branch_policy"):
            rules.append({"id": 3756, "node_id": "MDQ6R2F0ZTM3NTY=", "type": "branch_policy"})
        return {
            "id": env["id"],
            "node_id": "MDExOkVudmlyb25tZW50NTY3ODA0Mjg=",
            "name": name,
            "url": f"{API}/repos/{self.repo}/environments/{name}",
            "html_url": f"{WEB}/{self.repo}/deployments/activity_log?environments_filter={name}",
            "created_at": "2024-05-01T10:00:00Z",
            "updated_at": "2024-05-01T10:00:00Z",
            "can_admins_bypass": env.get("can_admins_bypass", True),
            "protection_rules": rules,
            "deployment_branch_policy": env.get("deployment_branch_policy"),
        }

    def repo_view(self) -> dict[str, Any]:
        owner, name = self.repo.split("/")
        return {
            "id": 1296269,
            "node_id": "MDEwOlJlcG9zaXRvcnkxMjk2MjY5",
            "name": name,
            "full_name": self.repo,
            "owner": {**user(owner), "type": "Organization"},
            "private": self.private,
            "visibility": "private" if self.private else "public",
            "html_url": f"{WEB}/{self.repo}",
            "default_branch": self.default_branch,
            "permissions": {"admin": True, "maintain": True, "push": True, "triage": True, "pull": True},
            "security_and_analysis": {k: {"status": v} for k, v in self.security.items()},
        }

    def _matches(self, data: dict[str, Any], branch: str) -> bool:
        include = ((data.get("conditions") or {}).get("ref_name") or {}).get("include") or []
        exclude = ((data.get("conditions") or {}).get("ref_name") or {}).get("exclude") or []
        names = {"~ALL", f"refs/heads/{branch}"} | ({"~DEFAULT_BRANCH"} if branch == self.default_branch else set())
        return data.get("target", "branch") == "branch" and bool(names & set(include)) and not names & set(exclude)

    # --- the endpoints ---------------------------------------------------------------------------------

    def _settings_routes(self) -> None:
        repo = r"/repos/(?P<owner>[^/]+)/(?P<name>[^/]+)"
        r = self.route
        paid = lambda: not (self.plan == "free" and self.private)  # noqa: E731

        def body(req: Request) -> Any:
            return json.loads(req.body or b"{}")

        @r("GET", repo)
        def get_repo(req: Request, m: re.Match[str]) -> Response | Page:
            return Response(body=self.repo_view()) if self._mine(m) else NOT_FOUND

        @r("PATCH", repo)
        def patch_repo(req: Request, m: re.Match[str]) -> Response | Page:
            if not self._mine(m):
                return NOT_FOUND
            for feature, value in (body(req).get("security_and_analysis") or {}).items():
                if feature not in self.security or value.get("status") not in {"enabled", "disabled"}:
                    return error(422, f"Invalid security_and_analysis setting: {feature}")
                self.security[feature] = value["status"]
            return Response(body=self.repo_view())

        @r("GET", repo + r"/branches/(?P<branch>[^/]+)/protection")
        def get_protection(req: Request, m: re.Match[str]) -> Response | Page:
            if not self._mine(m):
                return NOT_FOUND
            if not paid():
                return error(403, UPGRADE)
            if m["branch"] not in self.protection:
                return error(404, "Branch not protected")
            return Response(body=self.protection_view(m["branch"]))

        @r("PUT", repo + r"/branches/(?P<branch>[^/]+)/protection")
        def put_protection(req: Request, m: re.Match[str]) -> Response | Page:
            if not self._mine(m):
                return NOT_FOUND
            if not paid():
                return error(403, UPGRADE)
            data = body(req)
            for key in MANDATORY:
                if key not in data:
                    return error(422, f'Invalid request.\n\n"{key}" wasn\'t supplied.')
            self.protection[m["branch"]] = data
            return Response(body=self.protection_view(m["branch"]))

        @r("DELETE", repo + r"/branches/(?P<branch>[^/]+)/protection")
        def delete_protection(req: Request, m: re.Match[str]) -> Response | Page:
            self.protection.pop(m["branch"], None)
            return Response(204)

        @r("GET", repo + r"/rulesets")
        def list_rulesets(req: Request, m: re.Match[str]) -> Response | Page:
            if not self._mine(m):
                return NOT_FOUND
            if not paid():
                return error(403, UPGRADE)
            views = [self.ruleset_view(i) for i in sorted(self.rulesets)]
            if req.arg("includes_parents", "true") == "true":
                views += [self.ruleset_view(i, org=True) for i in sorted(self.org_rulesets)]
            # The list is a summary: no rules, conditions or bypass actors.
            return Page(
                [{k: v for k, v in view.items() if k not in {"rules", "conditions", "bypass_actors"}} for view in views]
            )

        @r("POST", repo + r"/rulesets")
        def create_ruleset(req: Request, m: re.Match[str]) -> Response | Page:
            if not self._mine(m):
                return NOT_FOUND
            if not paid():
                return error(403, UPGRADE)
            data = body(req)
            if any(d["name"] == data.get("name") for d in self.rulesets.values()):
                return Response(
                    422,
                    {
                        "message": "Validation Failed",
                        "errors": ["Name must be unique"],
                        "documentation_url": "https://docs.github.com/rest/repos/rules#create-a-repository-ruleset",
                        "status": "422",
                    },
                )
            rid = self._id()
            self.rulesets[rid] = data
            return Response(201, self.ruleset_view(rid))

        @r("GET", repo + r"/rulesets/(?P<id>\d+)")
        def get_ruleset(req: Request, m: re.Match[str]) -> Response | Page:
            rid = int(m["id"])
            if rid in self.rulesets:
                return Response(body=self.ruleset_view(rid))
            if rid in self.org_rulesets:
                return Response(body=self.ruleset_view(rid, org=True))
            return NOT_FOUND

        @r("PUT", repo + r"/rulesets/(?P<id>\d+)")
        def put_ruleset(req: Request, m: re.Match[str]) -> Response | Page:
            rid = int(m["id"])
            if rid not in self.rulesets:
                return NOT_FOUND
            self.rulesets[rid] = {**self.rulesets[rid], **body(req)}
            return Response(body=self.ruleset_view(rid))

        @r("GET", repo + r"/rules/branches/(?P<branch>[^/]+)")
        def branch_rules(req: Request, m: re.Match[str]) -> Response | Page:
            if not self._mine(m):
                return NOT_FOUND
            rules = []
            for org, store in ((False, self.rulesets), (True, self.org_rulesets)):
                for rid, data in sorted(store.items()):
                    if data.get("enforcement") != "active" or not self._matches(data, m["branch"]):
                        continue  # evaluate and disabled rulesets are not returned
                    for rule in data.get("rules") or []:
                        item = {"type": rule["type"]}
                        if "parameters" in rule:
                            item["parameters"] = copy.deepcopy(rule["parameters"])
                        item |= {
                            "ruleset_source_type": "Organization" if org else "Repository",
                            "ruleset_source": self.org if org else self.repo,
                            "ruleset_id": rid,
                        }
                        rules.append(item)
            return Page(rules)

        @r("GET", repo + r"/environments")
        def list_envs(req: Request, m: re.Match[str]) -> Response | Page:
            if not self._mine(m):
                return NOT_FOUND
            return Page([self.env_view(n) for n in sorted(self.environments)], key="environments")

        @r("GET", repo + r"/environments/(?P<env>[^/]+)")
        def get_env(req: Request, m: re.Match[str]) -> Response | Page:
            return Response(body=self.env_view(m["env"])) if m["env"] in self.environments else NOT_FOUND

        @r("PUT", repo + r"/environments/(?P<env>[^/]+)")
        def put_env(req: Request, m: re.Match[str]) -> Response | Page:
            data = body(req)
            ids = {t["id"] for t in self.org_teams.values()}
            for reviewer in data.get("reviewers") or []:
                if reviewer.get("type") == "Team" and reviewer.get("id") not in ids:
                    return error(422, f"Reviewer {reviewer.get('id')!r} is not a team with access to this repository")
            if data.get("reviewers") and self.private and self.plan != "enterprise":
                return error(
                    422, "Failed to create the environment protection rule: required reviewers are not available"
                )
            env = self.environments.setdefault(m["env"], {"id": self._id()})
            env.update(
                {
                    k: v
                    for k, v in data.items()
                    if k
                    in {
                        "wait_timer",
                        "prevent_self_review",
                        "reviewers",
                        "deployment_branch_policy",
                        "can_admins_bypass",
                    }
                }
            )
            if "deployment_branch_policy" in data and not data["deployment_branch_policy"]:
                self.branch_policies.pop(m["env"], None)
            return Response(body=self.env_view(m["env"]))

        @r("GET", repo + r"/environments/(?P<env>[^/]+)/deployment-branch-policies")
        def list_policies(req: Request, m: re.Match[str]) -> Response | Page:
            if m["env"] not in self.environments:
                return NOT_FOUND
            return Page(self.branch_policies.get(m["env"], []), key="branch_policies")

        @r("POST", repo + r"/environments/(?P<env>[^/]+)/deployment-branch-policies")
        def add_policy(req: Request, m: re.Match[str]) -> Response | Page:
            env = self.environments.get(m["env"])
            if env is None:
                return NOT_FOUND
            if not (env.get("deployment_branch_policy") or {}).get("custom_branch_policies"):
                return error(404, "Not Found")
            data = body(req)
            item = {
                "id": self._id(),
                "node_id": "MDE2OkdhdGVCcmFuY2hQb2xpY3kz",
                "name": data["name"],
                "type": data.get("type", "branch"),
            }
            self.branch_policies.setdefault(m["env"], []).append(item)
            return Response(200, item)

        @r("DELETE", repo + r"/environments/(?P<env>[^/]+)/deployment-branch-policies/(?P<id>\d+)")
        def delete_policy(req: Request, m: re.Match[str]) -> Response | Page:
            items = self.branch_policies.get(m["env"], [])
            self.branch_policies[m["env"]] = [p for p in items if p["id"] != int(m["id"])]
            return Response(204)

        @r("GET", repo + r"/codeowners/errors")
        def codeowners_errors(req: Request, m: re.Match[str]) -> Response | Page:
            if not self._mine(m) or not self.codeowners_file:
                return NOT_FOUND
            return Response(body={"errors": self.codeowners_errors})

        @r("GET", repo + r"/teams")
        def repo_teams(req: Request, m: re.Match[str]) -> Response | Page:
            if not self._mine(m):
                return NOT_FOUND
            return Page([{**self.org_teams[s], "permission": p} for s, p in sorted(self.repo_teams.items())])

        @r("GET", repo + r"/collaborators")
        def collaborators(req: Request, m: re.Match[str]) -> Response | Page:
            return Page(self.collaborators) if self._mine(m) else NOT_FOUND

        @r("GET", r"/orgs/(?P<org>[^/]+)/teams/(?P<slug>[^/]+)")
        def get_team(req: Request, m: re.Match[str]) -> Response | Page:
            found = self.org_teams.get(m["slug"]) if m["org"] == self.org else None
            return Response(body={**found, "members_count": 3, "repos_count": 10}) if found else NOT_FOUND

        @r("GET", r"/apps/github-actions")
        def actions_app(req: Request, m: re.Match[str]) -> Response | Page:
            return Response(body=fixture("app-github-actions") | {"id": self.actions_app_id})

        @r("GET", r"/user")
        def get_user(req: Request, m: re.Match[str]) -> Response | Page:
            return Response(body=user(self.login))
