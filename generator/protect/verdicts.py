"""Live GitHub settings judged: drift from the desired settings (`protect check`) and the catalog's own checks run
on what GitHub enforces (`audit --live`).

Rulesets and classic protection layer: GitHub enforces both, so each setting is as strict as the stricter layer.
A repository protected only by rulesets (or only classically) is judged by what that layer enforces, and a
layer that differs from the files while the other still enforces the setting is reported as covered, not drift.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping
from typing import Any

from generator.audit import Report, Result, _applies
from generator.controls import Control, all_controls
from generator.controls.base import Finding, Outcome, failed, passed, unknown
from generator.pipeline import github as adapter
from generator.pipeline.model import Environment, Pipeline, Protection, RequiredCheck
from generator.protect.github import (
    Desired,
    Live,
    app_problems,
    classic_as_request,
    classic_differences,
    codeowners_problems,
    env_as_request,
    ruleset_differences,
)
from generator.repo import Doc

LIVE_CONTROLS = (
    "PP-BRANCH-01",
    "PP-BRANCH-02",
    "PP-BRANCH-03",
    "PP-BRANCH-04",
    "PP-BRANCH-05",
    "PP-BRANCH-06",
    "PP-DEPLOY-01",
    "PP-SCAN-04",
)
KEY_CONTROL = {
    "pull_request": "PP-BRANCH-01",
    "approvals": "PP-BRANCH-01",
    "enforce_admins": "PP-BRANCH-02",
    "dismiss_stale": "PP-BRANCH-03",
    "last_push_approval": "PP-BRANCH-03",
    "code_owner_review": "PP-BRANCH-03",
    "conversation_resolution": "PP-BRANCH-03",
    "status_checks": "PP-BRANCH-04",
    "strict_checks": "PP-BRANCH-04",
    "no_force_push": "PP-BRANCH-05",
    "no_deletion": "PP-BRANCH-05",
    "linear_history": "PP-BRANCH-05",
}


def stamp(at: dt.datetime) -> str:
    return at.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def source(want: Desired) -> str:
    """Where a live finding is: the API resource (no colon, so `where` stays `path:line`)."""
    return f"github-api/repos/{want.owner}/{want.name}/branches/{want.branch}"


def live_protection(want: Desired, live: Live) -> Protection | None:
    """What GitHub enforces on the branch, both layers merged into one source; None when nothing protects it."""
    src = source(want)
    values: dict[str, list[tuple[Any, str]]] = {}
    checks: list[RequiredCheck] = []
    layers = 0
    classic = classic_as_request(live.classic)
    if classic is not None:
        layers += 1
        adapter._settings_values(Doc(src + "/protection", classic), (), classic, values, checks)
    by_id = {r.get("id"): r for r in live.rulesets if isinstance(r, Mapping)}
    grouped: dict[Any, list[Any]] = {}
    for rule in live.branch_rules:
        if isinstance(rule, Mapping):
            grouped.setdefault(rule.get("ruleset_id"), []).append(
                {"type": rule.get("type"), "parameters": rule.get("parameters") or {}}
            )
    bypass: list[str] = []
    for ruleset_id, rules in grouped.items():
        layers += 1
        full = by_id.get(ruleset_id) or {}
        actors = [a for a in full.get("bypass_actors") or [] if isinstance(a, Mapping)]
        name = full.get("name", ruleset_id)
        adapter._ruleset_values(
            Doc(f"{src}/rulesets/{name}", {}), {"rules": rules, "bypass_actors": actors}, values, checks
        )
        bypass += [f"{src}/rulesets/{name}:1" for a in actors if a.get("bypass_mode") not in {"pull_request", None}]
    if not layers:
        return None
    if classic is not None and classic.get("enforce_admins") is True:
        bypass = []  # classic protection binds administrators to the same rules
    merged = {key: [(_strictest(key, items), src + ":1")] for key, items in values.items()}
    checks = [dataclasses.replace(c, where=src + ":1") for c in checks]
    return Protection(True, [src + ":1"], {src + ":1": ""}, merged, checks, bypass)


def _strictest(key: str, items: list[tuple[Any, str]]) -> Any:
    found = [v for v, _ in items]
    if key == "approvals":
        ints = [v for v in found if isinstance(v, int) and not isinstance(v, bool)]
        return max(ints) if ints else None
    if key == "code_scanning":
        return tuple(sorted({t for v in found for t in (v or ())}))
    return True if any(v is True for v in found) else next((v for v in found if v is not None), None)


def desired_values(pipeline: Pipeline) -> tuple[dict[str, Any], list[RequiredCheck], bool]:
    """The desired setting per neutral key over the declared sources GitHub would apply, the required checks,
    and whether any of them allows a bypass."""
    protection = pipeline.protection
    if protection is None:
        return {}, [], False
    live = {s.split(":")[0] for s, why in protection.applies.items() if not why}
    values = {
        key: _strictest(key, [(v, w) for v, w in items if w.split(":")[0] in live])
        for key, items in protection.values.items()
    }
    checks = [c for c in protection.required_checks if c.where.split(":")[0] in live]
    return values, checks, bool(protection.bypass)


def _weaker(want: Any, have: Any) -> bool:
    if isinstance(want, bool):
        return want is True and have is not True
    if isinstance(want, int):
        return not isinstance(have, int) or isinstance(have, bool) or have < want
    if isinstance(want, tuple):
        return not set(want) <= set(have or ())
    return False


def drift(want: Desired, live: Live, pipeline: Pipeline) -> tuple[dict[str, list[Finding]], list[str]]:
    """Findings per control where the live settings are weaker than the files, and the layer differences that
    the other layer covers (reported, not drift)."""
    found: dict[str, list[Finding]] = {}
    covered: list[str] = []
    src = source(want) + ":1"

    def add(control: str, message: str, where: str = src) -> None:
        found.setdefault(control, []).append(Finding(where, message))

    effective = live_protection(want, live)
    values, checks, _ = desired_values(pipeline)
    if values:
        if effective is None:
            why = live.classic_unavailable or live.rulesets_unavailable
            add(
                "PP-BRANCH-01",
                f"{want.branch} is not protected: no classic protection and no active ruleset"
                + (f" ({why})" if why else ""),
            )
        else:
            have = {k: v[0][0] for k, v in effective.values.items()}
            for key, control in KEY_CONTROL.items():
                if key in values and _weaker(values[key], have.get(key)):
                    add(control, f"{key} is {have.get(key)!r} live; the files want {values[key]!r}")
            for check in checks:
                live_checks = [c for c in effective.required_checks if c.context == check.context]
                if not live_checks:
                    add("PP-BRANCH-04", f"required check {check.context!r} is not required live")
                elif check.app is not None and not any(c.app == check.app for c in live_checks):
                    add(
                        "PP-BRANCH-04",
                        f"required check {check.context!r} is not pinned to app {check.app} live "
                        f"(pinned to {sorted(str(c.app) for c in live_checks)})",
                    )
            if effective.bypass and not pipeline.protection.bypass:  # type: ignore[union-attr]
                add("PP-BRANCH-02", "a live ruleset lets actors bypass it outside pull requests (bypass_actors)")
        if want.classic is not None and not live.classic_unavailable:
            for diff in classic_differences(want.classic, classic_as_request(live.classic)):
                covered.append(f"classic protection differs from {want.classic_where}: {diff}")
        by_name = {r.get("name"): r for r in live.rulesets if r.get("source_type", "Repository") == "Repository"}
        for body, where in want.rulesets:
            have_set = by_name.get(body["name"])
            if have_set is None:
                covered.append(f"ruleset {body['name']} ({where}) does not exist live")
                continue
            if body.get("enforcement") == "active" and have_set.get("enforcement") != "active":
                add(
                    "PP-BRANCH-01",
                    f"ruleset {body['name']} is in {have_set.get('enforcement')!r} mode live, not 'active' "
                    f"({where}): GitHub only reports what it would block",
                )
            for diff in ruleset_differences(body, have_set):
                covered.append(f"ruleset {body['name']} differs from {where}: {diff}")
    for env in want.environments:
        _env_drift(want, live, env, add)
    if want.security:
        have_security = (live.repository or {}).get("security_and_analysis")
        if isinstance(have_security, Mapping):
            for feature, status in want.security.items():
                got = (have_security.get(feature) or {}).get("status")
                if got != status:
                    add("PP-SCAN-04", f"{feature} is {got or 'not set'} live; wanted {status}")
    for control, message in codeowners_problems(want, live) + app_problems(want, live):
        add(control, message)
    # A difference is covered only when the effective setting still holds.
    if found.keys() & set(KEY_CONTROL.values()):
        covered = [c for c in covered if not c.startswith(("classic", "ruleset"))]
    return found, covered


def _env_drift(want: Desired, live: Live, env: Any, add: Any) -> None:
    where = f"github-api/repos/{want.owner}/{want.name}/environments/{env.name}:1"
    have_env = live.environments.get(env.name.lower())
    if have_env is None:
        add("PP-DEPLOY-01", f"environment {env.name} does not exist live", where)
        return
    have = env_as_request(have_env)
    team_id = (live.team or {}).get("id")
    if env.reviewer_teams and not any(t == "Team" and i == team_id for t, i in have["reviewers"]):
        add("PP-DEPLOY-01", f"environment {env.name} has no required reviewer from {want.team} live", where)
    if env.prevent_self_review and not have["prevent_self_review"]:
        add("PP-DEPLOY-01", f"environment {env.name} lets the person who triggered a deploy approve it", where)
    if env.can_admins_bypass is False and have["can_admins_bypass"] is not False:
        add("PP-DEPLOY-01", f"administrators can bypass the protection rules of environment {env.name}", where)
    if env.wait_timer and have["wait_timer"] < env.wait_timer:
        add("PP-DEPLOY-01", f"environment {env.name} waits {have['wait_timer']} minutes, not {env.wait_timer}", where)
    if env.branches is not None:
        policy = have.get("deployment_branch_policy")
        if not isinstance(policy, Mapping):
            add("PP-DEPLOY-01", f"any branch may deploy to {env.name} (no deployment branch policy)", where)
        elif policy.get("protected_branches"):
            add(
                "PP-DEPLOY-01",
                f"any protected branch may deploy to {env.name}, not only {', '.join(env.branches)}",
                where,
            )
        else:
            names = {p.get("name") for p in live.branch_policies.get(env.name.lower(), [])}
            extra = sorted(str(n) for n in names - set(env.branches))
            if extra:
                add("PP-DEPLOY-01", f"{', '.join(extra)} may also deploy to {env.name}", where)


def _control(cid: str) -> type[Control]:
    return next(c for c in all_controls() if c.id == cid)


def check_report(root: Any, want: Desired, live: Live, pipeline: Pipeline, at: dt.datetime) -> tuple[Report, list[str]]:
    """`protect check` as an audit report: one result per live-checked control, a finding per drift."""
    found, covered = drift(want, live, pipeline)
    when = f"live API at {stamp(at)}"
    results = []
    desired_for = {
        "PP-BRANCH-06": True,
        "PP-DEPLOY-01": bool(want.environments),
        "PP-SCAN-04": bool(want.security),
    }
    has_branch = bool(desired_values(pipeline)[0])
    for cid in LIVE_CONTROLS:
        control = _control(cid)
        if not _applies(control, want.answers):
            results.append(Result(control, "not-applicable", f"does not apply: {control.applies}"))
            continue
        findings = found.get(cid, [])
        if findings:
            results.append(
                Result(
                    control,
                    "fail",
                    f"drift ({when}): {findings[0].message}",
                    tuple(f.where for f in findings),
                    tuple(findings),
                )
            )
        elif not desired_for.get(cid, has_branch):
            results.append(Result(control, "not-applicable", "the files declare nothing for it to compare"))
        elif cid == "PP-SCAN-04" and not isinstance((live.repository or {}).get("security_and_analysis"), Mapping):
            results.append(
                Result(
                    control,
                    "unknown",
                    f"the API did not return security_and_analysis ({when}): the token needs admin access",
                )
            )
        else:
            results.append(Result(control, "pass", f"matches the files ({when})", (source(want) + ":1",)))
    report = Report(root, dict(want.answers), results, read={"live API snapshot": 1}, profile=f"{when}, {want.repo}")
    return report, covered


# --- audit --live ---------------------------------------------------------------------------------------


def live_pipeline(pipeline: Pipeline, want: Desired, live: Live) -> Pipeline:
    """The audit's pipeline with the protection, environments and security settings GitHub reports."""
    copy = dataclasses.replace(pipeline, _cache={})
    copy.protection = live_protection(want, live)
    envs: dict[str, Environment] = {}
    for name, env in live.environments.items():
        have = env_as_request(env)
        policy = have.get("deployment_branch_policy")
        branches: tuple[str, ...] | None = None
        if isinstance(policy, Mapping) and policy.get("custom_branch_policies"):
            branches = tuple(str(p.get("name")) for p in live.branch_policies.get(name, []))
        elif isinstance(policy, Mapping) and policy.get("protected_branches"):
            branches = ("<protected branches>",)
        envs[name] = Environment(
            name, f"github-api/repos/{want.owner}/{want.name}/environments/{name}:1", branches, len(have["reviewers"])
        )
    copy.environments = envs
    copy.settings = dict(pipeline.settings)
    analysis = (live.repository or {}).get("security_and_analysis")
    if isinstance(analysis, Mapping):
        copy.settings["security_and_analysis"] = (analysis, f"github-api/repos/{want.owner}/{want.name}:1")
    else:
        copy.settings.pop("security_and_analysis", None)
    return copy


def overlay(report: Report, pipeline: Pipeline, want: Desired, live: Live, at: dt.datetime) -> Report:
    """The audit report with each live-decidable control judged on what GitHub enforces right now."""
    when = f"live API at {stamp(at)}"
    facts = live_pipeline(pipeline, want, live)
    answers = dict(report.answers)
    visibility = (live.repository or {}).get("visibility")
    if visibility in {"public", "private", "internal"}:
        answers["visibility"] = "private" if visibility == "internal" else visibility
    problems: dict[str, list[Finding]] = {}
    for cid, message in codeowners_problems(want, live):
        problems.setdefault(cid, []).append(Finding(f"github-api/repos/{want.repo}/codeowners/errors:1", message))
    results: dict[str, Result] = {r.control.id: r for r in report.results}
    for cid in LIVE_CONTROLS:
        old = results.get(cid)
        if old is None or old.status in {"not-applicable", "waived"}:
            continue
        control = old.control
        required = next((r for r in control.requires if r in results and results[r].status in {"fail", "error"}), None)
        if required:
            results[cid] = Result(control, "skipped", f"requires {required}, which failed ({when})")
            continue
        outcome = _live_outcome(control, facts, answers, want, live, problems.get(cid, []))
        reason = f"{when}: {outcome.reason}"
        if old.status != outcome.status:
            reason += f" (the files alone: {old.status})"
        results[cid] = Result(control, outcome.status, reason, outcome.evidence, outcome.findings)
    report.results = list(results.values())
    report.read = dict(report.read) | {"live API snapshot": 1}
    return report


def _live_outcome(
    control: type[Control],
    facts: Pipeline,
    answers: dict[str, Any],
    want: Desired,
    live: Live,
    problems: list[Finding],
) -> Outcome:
    if control.family == "branch" and control.id != "PP-BRANCH-06" and facts.protection is None:
        return failed(
            f"GitHub enforces no protection on {want.branch}: no classic protection and no active ruleset",
            source(want) + ":1",
        )
    if control.id == "PP-SCAN-04" and "security_and_analysis" not in facts.settings and live.repository:
        outcome = _run(control, facts, answers)
        if outcome.status == "pass":
            return outcome
        return unknown("the API did not return security_and_analysis (the token needs admin access); " + outcome.reason)
    outcome = _run(control, facts, answers)
    if problems:
        return failed(problems[0].message, *problems)
    if control.id == "PP-DEPLOY-01" and outcome.status != "fail":
        production = facts.environments.get("production")
        if answers.get("approval_mode") == "environment" and production is not None and not production.reviewers:
            return failed(
                "the production environment has no required reviewers: nothing can approve a deploy", production.where
            )
        if outcome.status == "unknown" and production is not None and not production.reviewers:
            return failed("the production environment has no required reviewers", production.where)
    return outcome


def _run(control: type[Control], facts: Pipeline, answers: dict[str, Any]) -> Outcome:
    import inspect

    fixtures = {"pipeline": facts, "answers": answers, "repo": facts.repo}
    params = inspect.signature(control.check).parameters
    try:
        outcome: Outcome = control.check(**{name: fixtures[name] for name in params})
    except Exception as exc:  # the audit's rule: a broken check is reported, never swallowed
        return Outcome("unknown", f"the check could not run on the live settings: {type(exc).__name__}: {exc}")
    if outcome.status == "pass":
        return passed(outcome.reason, *outcome.evidence)
    return outcome
