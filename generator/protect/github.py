"""GitHub: the desired settings from the rendered files, the live settings from the REST API, and the requests
that turn one into the other.

Facts this relies on (/work/shared/reference/platform-facts.md d, e, h):
- `.github/settings.yml` `branches[].protection` is exactly the body of PUT .../branches/{b}/protection; GET
  answers another shape (`enforce_admins: {enabled}`), normalised here before comparing;
- rulesets and classic protection layer: GitHub enforces both, so what protects a branch is the stricter of
  the two (GET rules/branches/{b} lists the active ruleset rules at every level, repository and organisation);
- required reviewers, prevent_self_review and the admin bypass of environments exist on public repositories and
  on GitHub Enterprise; environments themselves need a public repository or a paid plan;
- a CODEOWNERS team that does not exist or lacks write access is ignored without a word: the codeowners/errors
  endpoint and the repository's team list say so.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from generator.errors import UserError
from generator.protect.client import ApiError, Client
from generator.repo import Repo

WRITE_PERMISSIONS = {"push", "maintain", "admin"}
RULESET_SUMMARY_KEYS = ("name", "target", "enforcement", "conditions", "bypass_actors", "rules")


@dataclass(frozen=True)
class Change:
    """One write request and what it changes, for the plan, the dry run and the partial-apply report."""

    what: str
    method: str
    path: str
    body: Any
    controls: tuple[str, ...]


@dataclass(frozen=True)
class DesiredEnv:
    name: str
    where: str
    branches: tuple[str, ...] | None  # deployment branches; None leaves the policy as it is
    wait_timer: int | None
    reviewer_teams: tuple[str, ...]  # team slugs (of the repository's organisation)
    reviewer_ids: tuple[tuple[str, int], ...]  # (type, id) given as the settings app takes them
    prevent_self_review: bool | None
    can_admins_bypass: bool | None


@dataclass
class Desired:
    """What the repository's files say GitHub should enforce."""

    owner: str
    name: str
    branch: str
    answers: dict[str, Any]
    classic: dict[str, Any] | None = None
    classic_where: str = ""
    rulesets: list[tuple[dict[str, Any], str]] = field(default_factory=list)
    environments: list[DesiredEnv] = field(default_factory=list)
    security: dict[str, str] | None = None  # security_and_analysis feature -> enabled
    security_why: str = ""
    codeowners: str | None = None  # the CODEOWNERS path
    team: str | None = None  # org/slug of the security team
    notes: list[str] = field(default_factory=list)  # what the plan leaves out, said once

    @property
    def repo(self) -> str:
        return f"{self.owner}/{self.name}"

    @property
    def base(self) -> str:
        return f"/repos/{self.owner}/{self.name}"


def _plain(value: Any) -> Any:
    """The parsed YAML/JSON (line-tracking subclasses) as plain dicts and lists, for request bodies."""
    return json.loads(json.dumps(value))


def desired(repo: Repo, answers: dict[str, Any], owner: str, name: str, branch: str) -> Desired:
    """The desired settings from .github/settings.yml, .github/rulesets/*.json, CODEOWNERS and the answers."""
    want = Desired(owner, name, branch, answers)
    doc = repo.settings
    data = doc.data if doc is not None and isinstance(doc.data, Mapping) else {}
    for i, entry in enumerate(data.get("branches") or []):
        if isinstance(entry, Mapping) and entry.get("name") == branch and isinstance(entry.get("protection"), Mapping):
            assert doc is not None
            want.classic = _plain(entry["protection"])
            want.classic_where = doc.at("branches", i, "protection")
    for rdoc in repo.rulesets:
        body = _plain(rdoc.data)
        if not isinstance(body.get("name"), str) or not body["name"]:
            raise UserError(f"{rdoc.path}: a ruleset needs a `name` (protect finds it by name on GitHub)")
        want.rulesets.append(({k: body[k] for k in RULESET_SUMMARY_KEYS if k in body}, rdoc.at()))
    team = str(answers.get("security_team") or "")
    if team.startswith("@") and "/" in team:
        want.team = team[1:]
    reviewers_allowed = answers.get("visibility") == "public" or answers.get("github_plan") == "enterprise"
    if not reviewers_allowed:
        want.notes.append(
            "environment reviewers, prevent_self_review and the admin bypass are not set: GitHub offers them on a "
            "private repository only on GitHub Enterprise (production is promoted by a reviewed pull request)"
        )
    for i, env in enumerate(data.get("environments") or []):
        if not isinstance(env, Mapping) or not isinstance(env.get("name"), str):
            continue
        assert doc is not None
        policy = env.get("deployment_branch_policy")
        branches: tuple[str, ...] | None = None
        if isinstance(policy, Mapping) and isinstance(policy.get("custom_branches"), list):
            branches = tuple(str(b.get("name") if isinstance(b, Mapping) else b) for b in policy["custom_branches"])
        ids = tuple(
            (str(r.get("type")), int(r["id"]))
            for r in env.get("reviewers") or []
            if isinstance(r, Mapping) and isinstance(r.get("id"), int)
        )
        production = env["name"].lower() == "production"
        teams = (
            (want.team.split("/", 1)[1],)
            if production and want.team and reviewers_allowed and want.team.split("/", 1)[0] == owner
            else ()
        )
        approved = bool(teams or ids) and reviewers_allowed
        wait = env.get("wait_timer")
        want.environments.append(
            DesiredEnv(
                env["name"],
                doc.at("environments", i),
                branches,
                wait if isinstance(wait, int) and not isinstance(wait, bool) else None,
                teams,
                ids,
                True if approved else None,
                False if approved else None,
            )
        )
        if production and reviewers_allowed and want.team and not teams:
            want.notes.append(
                f"production gets no team reviewer: the security team {want.team} is not in the organisation "
                f"{owner} that owns the repository"
            )
    declared = (data.get("repository") or {}).get("security_and_analysis") if isinstance(data, Mapping) else None
    if isinstance(declared, Mapping):
        want.security = {
            k: str(v.get("status")) for k, v in declared.items() if isinstance(v, Mapping) and v.get("status")
        }
        want.security_why = "declared in .github/settings.yml"
    elif answers.get("visibility") == "public" or answers.get("code_security"):
        want.security = {"secret_scanning": "enabled", "secret_scanning_push_protection": "enabled"}
        want.security_why = "public repository" if answers.get("visibility") == "public" else "code security"
    else:
        want.notes.append(
            "secret scanning and push protection are not turned on: a private repository needs GitHub Secret "
            "Protection (answer code_security: true when the organisation has it)"
        )
    if repo.codeowners is not None:
        want.codeowners = repo.codeowners.path
    return want


# --- the live state --------------------------------------------------------------------------------------


@dataclass
class Live:
    """The live settings as the API returned them (kept verbatim for the evidence snapshot)."""

    repository: Any = None
    classic: Any = None  # None: the branch is not protected
    classic_unavailable: str = ""
    rulesets: list[Any] = field(default_factory=list)  # full rulesets (repository and organisation level)
    rulesets_unavailable: str = ""
    branch_rules: list[Any] = field(default_factory=list)  # GET rules/branches/{b}: the active rules
    environments: dict[str, Any] = field(default_factory=dict)
    branch_policies: dict[str, list[Any]] = field(default_factory=dict)
    codeowners_errors: Any = None  # None: no CODEOWNERS file on the default branch
    teams: list[Any] = field(default_factory=list)
    team: Any = None  # the security team (GET /orgs/{org}/teams/{slug})
    collaborators: list[Any] = field(default_factory=list)
    actions_app: int | None = None  # the GitHub Actions app's id on this server (15368 on github.com)
    account: str = ""
    read: bool = False  # False in a dry run: nothing was read

    def document(self) -> dict[str, Any]:
        return {
            "repository": self.repository,
            "branch_protection": self.classic,
            "branch_protection_unavailable": self.classic_unavailable or None,
            "rulesets": self.rulesets,
            "rulesets_unavailable": self.rulesets_unavailable or None,
            "branch_rules": self.branch_rules,
            "environments": self.environments,
            "deployment_branch_policies": self.branch_policies,
            "codeowners_errors": self.codeowners_errors,
            "teams": self.teams,
            "security_team": self.team,
            "github_actions_app_id": self.actions_app,
        }


def read_live(client: Client, want: Desired, *, access: bool = False) -> Live:
    """Every live setting protect compares; with access, the collaborators and account for the access review."""
    live = Live(read=not client.dry_run)
    base = want.base
    live.repository = client.get(base)
    try:
        live.classic = client.get(f"{base}/branches/{quote(want.branch, safe='')}/protection", missing_ok=True)
    except ApiError as exc:
        if exc.kind != "plan":
            raise
        live.classic_unavailable = str(exc)
    try:
        summaries = client.pages(f"{base}/rulesets?includes_parents=true", missing_ok=True)
        for summary in summaries:
            if isinstance(summary, Mapping) and "id" in summary:
                full = client.get(f"{base}/rulesets/{summary['id']}", missing_ok=True)
                if full is not None:
                    live.rulesets.append(full)
        live.branch_rules = client.pages(f"{base}/rules/branches/{quote(want.branch, safe='')}", missing_ok=True)
    except ApiError as exc:
        if exc.kind != "plan":
            raise
        live.rulesets_unavailable = str(exc)
    envs = client.pages(f"{base}/environments", key="environments", missing_ok=True)
    live.environments = {str(e.get("name")).lower(): e for e in envs if isinstance(e, Mapping)}
    for env in want.environments:
        found = live.environments.get(env.name.lower())
        policy = (found or {}).get("deployment_branch_policy") or {}
        if found is not None and policy.get("custom_branch_policies"):
            live.branch_policies[env.name.lower()] = client.pages(
                f"{base}/environments/{quote(env.name, safe='')}/deployment-branch-policies",
                key="branch_policies",
                missing_ok=True,
            )
    live.codeowners_errors = client.get(f"{base}/codeowners/errors", missing_ok=True)
    # Required checks are pinned to this id; it differs on each GitHub Enterprise Server.
    app = client.get("/apps/github-actions", missing_ok=True)
    live.actions_app = app.get("id") if isinstance(app, Mapping) and isinstance(app.get("id"), int) else None
    live.teams = client.pages(f"{base}/teams", missing_ok=True)
    if want.team and want.team.split("/", 1)[0] == want.owner:
        org, slug = want.team.split("/", 1)
        live.team = client.get(f"/orgs/{org}/teams/{slug}", missing_ok=True)
    if access:
        live.collaborators = client.pages(f"{base}/collaborators?affiliation=all", missing_ok=True)
        live.account = account(client)
    return live


def account(client: Client) -> str:
    """The login the token acts as, or what the API said instead (an app installation has no user)."""
    try:
        user = client.get("/user")
    except ApiError as exc:
        if exc.kind in {"permission", "auth"}:
            return f"unknown (GET /user answered {exc.status}: a GitHub App installation token has no user)"
        raise
    return str((user or {}).get("login") or "unknown")


# --- normalising the live shapes into the request shapes ------------------------------------------------


def _enabled(value: Any) -> bool:
    return bool(value.get("enabled")) if isinstance(value, Mapping) else bool(value)


def classic_as_request(live: Any) -> dict[str, Any] | None:
    """GET .../protection in the PUT body's shape (what settings.yml holds)."""
    if not isinstance(live, Mapping):
        return None
    status = live.get("required_status_checks")
    reviews = live.get("required_pull_request_reviews")
    restrictions = live.get("restrictions")
    out: dict[str, Any] = {
        "required_status_checks": None
        if not isinstance(status, Mapping)
        else {
            "strict": bool(status.get("strict")),
            # GET lists every check's context under `contexts` too: only those without a `checks` entry are
            # unpinned ones.
            "contexts": [
                c
                for c in status.get("contexts") or []
                if c not in {k.get("context") for k in status.get("checks") or [] if isinstance(k, Mapping)}
            ],
            "checks": [
                {"context": c.get("context"), "app_id": c.get("app_id")}
                for c in status.get("checks") or []
                if isinstance(c, Mapping)
            ],
        },
        "enforce_admins": _enabled(live.get("enforce_admins")),
        "required_pull_request_reviews": None
        if not isinstance(reviews, Mapping)
        else {
            k: reviews.get(k)
            for k in (
                "dismiss_stale_reviews",
                "require_code_owner_reviews",
                "required_approving_review_count",
                "require_last_push_approval",
            )
        },
        "restrictions": None
        if not isinstance(restrictions, Mapping)
        else {
            "users": [u.get("login") for u in restrictions.get("users") or []],
            "teams": [t.get("slug") for t in restrictions.get("teams") or []],
            "apps": [a.get("slug") for a in restrictions.get("apps") or []],
        },
    }
    for key in (
        "required_linear_history",
        "allow_force_pushes",
        "allow_deletions",
        "required_conversation_resolution",
        "block_creations",
        "lock_branch",
        "allow_fork_syncing",
        "required_signatures",
    ):
        out[key] = _enabled(live.get(key))
    return out


def classic_differences(want: Mapping[str, Any], live: Mapping[str, Any] | None) -> list[str]:
    """The desired keys the live protection does not match ('' list when it matches)."""
    if live is None:
        return ["the branch is not protected"]
    diffs: list[str] = []
    for key, value in want.items():
        have = live.get(key)
        if key == "required_status_checks":
            if value is None or have is None:
                if (value is None) != (have is None):
                    diffs.append(f"{key}: {_show(have)}, not {_show(value)}")
                continue
            if bool(value.get("strict")) != bool(have.get("strict")):
                diffs.append(f"required_status_checks.strict: {have.get('strict')}, not {value.get('strict')}")
            if "checks" in value:
                wanted = {(c.get("context"), c.get("app_id")) for c in value.get("checks") or []}
                got = {(c.get("context"), c.get("app_id")) for c in have.get("checks") or []}
                if wanted != got:
                    diffs.append(
                        f"required_status_checks.checks: {sorted(got, key=str)}, not {sorted(wanted, key=str)}"
                    )
            if "contexts" in value and set(value.get("contexts") or []) - set(have.get("contexts") or []):
                diffs.append(f"required_status_checks.contexts: {have.get('contexts')}, not {value.get('contexts')}")
        elif key == "required_pull_request_reviews":
            if value is None or have is None:
                if (value is None) != (have is None):
                    diffs.append(f"{key}: {_show(have)}, not {_show(value)}")
                continue
            for sub, wanted_value in value.items():
                if sub in have and have.get(sub) != wanted_value:
                    diffs.append(f"{key}.{sub}: {_show(have.get(sub))}, not {_show(wanted_value)}")
        elif key == "restrictions":
            if (value is None) != (have is None):
                diffs.append(f"restrictions: {_show(have)}, not {_show(value)}")
        elif key in live and bool(have) != bool(value):
            diffs.append(f"{key}: {_show(have)}, not {_show(value)}")
    return diffs


def _show(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


def _covers(want: Any, have: Any) -> bool:
    """Whether the live value holds everything the desired one says (live may add defaults)."""
    if isinstance(want, Mapping):
        return isinstance(have, Mapping) and all(_covers(v, have.get(k)) for k, v in want.items())
    if isinstance(want, list):
        return isinstance(have, list) and len(want) == len(have) and all(map(_covers, want, have))
    return bool(want == have)


def ruleset_differences(want: Mapping[str, Any], live: Mapping[str, Any]) -> list[str]:
    diffs = []
    for key in ("target", "enforcement", "conditions"):
        if key in want and not _covers(want[key], live.get(key)):
            diffs.append(f"{key}: {_show(live.get(key))}, not {_show(want[key])}")
    actors = [{k: a.get(k) for k in ("actor_id", "actor_type", "bypass_mode")} for a in live.get("bypass_actors") or []]
    if "bypass_actors" in want and actors != [
        {k: a.get(k) for k in ("actor_id", "actor_type", "bypass_mode")} for a in want["bypass_actors"]
    ]:
        diffs.append(f"bypass_actors: {_show(actors)}, not {_show(want['bypass_actors'])}")
    have_rules = {r.get("type"): r for r in live.get("rules") or [] if isinstance(r, Mapping)}
    for rule in want.get("rules") or []:
        have = have_rules.get(rule.get("type"))
        if have is None:
            diffs.append(f"rule {rule.get('type')} is missing")
        elif not _covers(rule.get("parameters") or {}, have.get("parameters") or {}):
            diffs.append(
                f"rule {rule.get('type')}: {_show(have.get('parameters'))}, not {_show(rule.get('parameters'))}"
            )
    return diffs


def env_as_request(live: Mapping[str, Any]) -> dict[str, Any]:
    """GET environments/{name} in the PUT body's shape."""
    out: dict[str, Any] = {"wait_timer": 0, "prevent_self_review": False, "reviewers": []}
    for rule in live.get("protection_rules") or []:
        if rule.get("type") == "wait_timer":
            out["wait_timer"] = rule.get("wait_timer") or 0
        elif rule.get("type") == "required_reviewers":
            out["prevent_self_review"] = bool(rule.get("prevent_self_review"))
            out["reviewers"] = sorted(
                [str(r.get("type")), int((r.get("reviewer") or {}).get("id") or 0)] for r in rule.get("reviewers") or []
            )
    out["deployment_branch_policy"] = live.get("deployment_branch_policy")
    out["can_admins_bypass"] = live.get("can_admins_bypass", True)
    return out


# --- the plan ----------------------------------------------------------------------------------------


@dataclass
class Plan:
    changes: list[Change] = field(default_factory=list)
    problems: list[tuple[str, str]] = field(default_factory=list)  # (control, what protect cannot fix)
    notes: list[str] = field(default_factory=list)


def plan(client: Client, want: Desired, live: Live) -> Plan:
    """The write requests that bring the live settings to the desired ones (none when they match)."""
    out = Plan(notes=list(want.notes))
    base = want.base
    branch = quote(want.branch, safe="")
    if want.classic is not None:
        if live.classic_unavailable:
            out.problems.append(("PP-BRANCH-01", f"classic branch protection not applied: {live.classic_unavailable}"))
        elif not live.read or classic_differences(want.classic, classic_as_request(live.classic)):
            out.changes.append(
                Change(
                    f"classic branch protection of {want.branch} ({want.classic_where})",
                    "PUT",
                    f"{base}/branches/{branch}/protection",
                    want.classic,
                    ("PP-BRANCH-01", "PP-BRANCH-02", "PP-BRANCH-03", "PP-BRANCH-04", "PP-BRANCH-05"),
                )
            )
    by_name = {
        r.get("name"): r
        for r in live.rulesets
        if isinstance(r, Mapping) and r.get("source_type", "Repository") == "Repository"
    }
    for ruleset, where in want.rulesets:
        if live.rulesets_unavailable:
            out.problems.append(("PP-BRANCH-01", f"ruleset {ruleset['name']} not applied: {live.rulesets_unavailable}"))
            continue
        found = by_name.get(ruleset["name"])
        if found is None:
            out.changes.append(
                Change(
                    f"ruleset {ruleset['name']} ({where}): create",
                    "POST",
                    f"{base}/rulesets",
                    ruleset,
                    ("PP-BRANCH-01",),
                )
            )
        elif ruleset_differences(ruleset, found):
            out.changes.append(
                Change(
                    f"ruleset {ruleset['name']} ({where}): update",
                    "PUT",
                    f"{base}/rulesets/{found['id']}",
                    ruleset,
                    ("PP-BRANCH-01",),
                )
            )
    team_ids: dict[str, Any] = {}
    for env in want.environments:
        for slug in env.reviewer_teams:
            if slug not in team_ids:
                known = live.read and want.team == f"{want.owner}/{slug}"
                found_team = live.team if known else client.get(f"/orgs/{want.owner}/teams/{slug}", missing_ok=True)
                if found_team is None and live.read:
                    out.problems.append(
                        ("PP-DEPLOY-01", f"team {want.owner}/{slug} does not exist: it cannot review {env.name}")
                    )
                team_ids[slug] = (found_team or {}).get("id", f"<id of team {want.owner}/{slug}>")
        reviewers = [{"type": "Team", "id": team_ids[s]} for s in env.reviewer_teams if team_ids.get(s) is not None]
        reviewers += [{"type": t, "id": i} for t, i in env.reviewer_ids]
        body: dict[str, Any] = {}
        if env.wait_timer is not None:
            body["wait_timer"] = env.wait_timer
        if env.prevent_self_review is not None:
            body["prevent_self_review"] = env.prevent_self_review
        if reviewers:
            body["reviewers"] = reviewers
        if env.can_admins_bypass is not None:
            # Not in the REST reference, but the PUT accepts it and GET returns it (go-github #2722, #2725).
            body["can_admins_bypass"] = env.can_admins_bypass
        if env.branches is not None:
            body["deployment_branch_policy"] = {"protected_branches": False, "custom_branch_policies": True}
        path = f"{base}/environments/{quote(env.name, safe='')}"
        have = live.environments.get(env.name.lower())
        if not live.read or have is None or _env_differs(body, env_as_request(have)):
            out.changes.append(Change(f"environment {env.name} ({env.where})", "PUT", path, body, ("PP-DEPLOY-01",)))
        if env.branches is None:
            continue
        policies = live.branch_policies.get(env.name.lower(), [])
        names = {p.get("name") for p in policies if p.get("type", "branch") == "branch"}
        for name in env.branches:
            if name not in names:
                out.changes.append(
                    Change(
                        f"environment {env.name}: allow deployments from {name}",
                        "POST",
                        f"{path}/deployment-branch-policies",
                        {"name": name, "type": "branch"},
                        ("PP-DEPLOY-01",),
                    )
                )
        for policy in policies:
            if policy.get("name") not in env.branches or policy.get("type", "branch") != "branch":
                out.changes.append(
                    Change(
                        f"environment {env.name}: remove deployments from {policy.get('type', 'branch')} "
                        f"{policy.get('name')}",
                        "DELETE",
                        f"{path}/deployment-branch-policies/{policy.get('id')}",
                        None,
                        ("PP-DEPLOY-01",),
                    )
                )
    if want.security:
        have_security = (live.repository or {}).get("security_and_analysis") or {}
        wrong = {k: v for k, v in want.security.items() if (have_security.get(k) or {}).get("status") != v}
        if not live.read or wrong:
            out.changes.append(
                Change(
                    f"secret scanning and push protection ({want.security_why})",
                    "PATCH",
                    base,
                    {"security_and_analysis": {k: {"status": v} for k, v in want.security.items()}},
                    ("PP-SCAN-04",),
                )
            )
    if live.read:
        out.problems += codeowners_problems(want, live) + app_problems(want, live)
    return out


def app_problems(want: Desired, live: Live) -> list[tuple[str, str]]:
    """Required checks pinned to an app id that is not this server's GitHub Actions: no run can satisfy them."""
    if live.actions_app is None:
        return []
    pinned = [
        (c.get("context"), c.get("app_id"))
        for c in ((want.classic or {}).get("required_status_checks") or {}).get("checks") or []
    ]
    for body, _ in want.rulesets:
        for rule in body.get("rules") or []:
            if rule.get("type") == "required_status_checks":
                params = rule.get("parameters") or {}
                pinned += [
                    (c.get("context"), c.get("integration_id")) for c in params.get("required_status_checks") or []
                ]
    wrong = sorted({str(app) for _, app in pinned if app is not None and app != live.actions_app})
    if not wrong:
        return []
    return [
        (
            "PP-BRANCH-04",
            f"required checks are pinned to app {', '.join(wrong)}, but the GitHub Actions app here is "
            f"{live.actions_app}: no check run can satisfy them and every merge would wait forever (answer "
            f"github_actions_app_id: {live.actions_app} and render again)",
        )
    ]


def _env_differs(body: Mapping[str, Any], have: Mapping[str, Any]) -> bool:
    for key, value in body.items():
        if key == "reviewers":
            if sorted([str(r["type"]), r["id"]] for r in value) != have.get("reviewers"):
                return True
        elif key == "deployment_branch_policy":
            if not _covers(value, have.get(key)):
                return True
        elif have.get(key) != value:
            return True
    return False


def codeowners_problems(want: Desired, live: Live) -> list[tuple[str, str]]:
    """Why code-owner review would silently not work: no file, errors in it, a team missing or without write."""
    problems: list[tuple[str, str]] = []
    if want.codeowners is None:
        problems.append(("PP-BRANCH-06", "no CODEOWNERS file: code-owner review requires nobody"))
    errors = (live.codeowners_errors or {}).get("errors") if isinstance(live.codeowners_errors, Mapping) else None
    for error in errors or []:
        first = (str(error.get("message") or "").strip().splitlines() or [""])[0]
        where = f"{error.get('path', 'CODEOWNERS')}:{error.get('line')}"
        problems.append(("PP-BRANCH-06", f"GitHub reports a CODEOWNERS error at {where}: {error.get('kind')}: {first}"))
    if want.team and want.team.split("/", 1)[0] == want.owner:
        slug = want.team.split("/", 1)[1]
        if live.team is None:
            problems.append(
                ("PP-BRANCH-06", f"the team {want.team} does not exist: GitHub ignores its CODEOWNERS lines")
            )
        else:
            permission = next((t.get("permission") for t in live.teams if t.get("slug") == slug), None)
            if permission not in WRITE_PERMISSIONS:
                problems.append(
                    (
                        "PP-BRANCH-06",
                        f"the team {want.team} has {permission or 'no'} access to {want.repo}; code owners need "
                        "write access, or GitHub ignores them (Settings > Collaborators and teams)",
                    )
                )
    return problems
