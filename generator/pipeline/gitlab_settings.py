"""The `.gitlab/settings/*.json` payloads (contract: /work/coord/gitlab-settings-format.md) into the neutral
Protection and Environment model.

Each file is one REST request (`method`, `path`, `tier`, `body`); the body holds GitLab's own field names. What
GitLab enforces, in the neutral names the branch controls read:
- `push_access_level: 0` on the default branch: nobody pushes, every change comes through a merge request;
  entries in `allowed_to_push` are people or keys who bypass that;
- `allow_force_push: false`; a protected branch cannot be deleted by a push;
- `code_owner_approval_required` (Premium), approval rules' `approvals_required` (Premium), and the approval
  settings `reset_approvals_on_push`, `merge_requests_author_approval: false`,
  `merge_requests_disable_committers_approval: true` (independent of whoever pushed last);
- the project's `only_allow_merge_if_pipeline_succeeds` (the whole pipeline is the required check),
  `allow_merge_on_skipped_pipeline: false`, `merge_method: ff` (the branch must be up to date, linear history),
  `only_allow_merge_if_all_discussions_are_resolved`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from generator.pipeline.model import Environment, Pipeline, Protection
from generator.repo import Doc, Repo

SETTINGS = ".gitlab/settings"
TIERS = ("free", "premium", "ultimate")


def _body(doc: Doc | None) -> Mapping[str, Any] | None:
    if doc is None or not isinstance(doc.data, Mapping):
        return None
    body = doc.data.get("body")
    return body if isinstance(body, Mapping) else None


def build(pipeline: Pipeline, repo: Repo) -> None:
    branch = pipeline.default_branch
    values: dict[str, list[tuple[Any, str]]] = {}
    sources: list[str] = []
    applies: dict[str, str] = {}
    bypass: list[str] = []
    docs: list[Doc] = []

    def load(rel: str) -> Doc | None:
        doc = repo.json_doc(rel)
        if doc is not None:
            pipeline.docs[doc.path] = doc
            docs.append(doc)
        return doc

    def put(key: str, value: Any, doc: Doc, *path: Any) -> None:
        values.setdefault(key, []).append((value, doc.at("body", *path)))

    protected = load(f"{SETTINGS}/protected-branch.json")
    body = _body(protected)
    if protected is not None and body is not None and str(body.get("name")) == branch:
        where = protected.at()
        sources.append(where)
        applies[where] = _method(protected, "POST", "/protected_branches")
        push = body.get("push_access_level")
        put("pull_request", push == 0, protected, "push_access_level")
        put("no_force_push", body.get("allow_force_push", False) is False, protected, "allow_force_push")
        put("no_deletion", True, protected, "name")  # a protected branch cannot be deleted by a push
        put("code_owner_review", body.get("code_owner_approval_required"), protected, "code_owner_approval_required")
        allowed = body.get("allowed_to_push") or []
        put("enforce_admins", push == 0 and not allowed, protected, "push_access_level")
        for i, _entry in enumerate(allowed if isinstance(allowed, list) else []):
            bypass.append(protected.at("body", "allowed_to_push", i))
        # Premium-tier keys live in other files; until one sets them, the branch's own file is where they lack.
        for key in ("approvals", "dismiss_stale", "last_push_approval"):
            values.setdefault(key, [])
        project = load(f"{SETTINGS}/project.json")
        pbody = _body(project)
        if project is not None and pbody is not None:
            applies[project.at()] = _method(project, "PUT", "/projects/:id")
            sources.append(project.at())
            put(
                "status_checks",
                pbody.get("only_allow_merge_if_pipeline_succeeds"),
                project,
                "only_allow_merge_if_pipeline_succeeds",
            )
            put(
                "skipped_pipeline_blocks",
                pbody.get("allow_merge_on_skipped_pipeline", False) is False,
                project,
                "allow_merge_on_skipped_pipeline",
            )
            ff = pbody.get("merge_method") in {"ff", "rebase_merge"}
            put("strict_checks", ff, project, "merge_method")
            put("linear_history", ff, project, "merge_method")
            put(
                "conversation_resolution",
                pbody.get("only_allow_merge_if_all_discussions_are_resolved"),
                project,
                "only_allow_merge_if_all_discussions_are_resolved",
            )
        else:
            for key in ("status_checks", "strict_checks", "linear_history", "conversation_resolution"):
                values.setdefault(key, []).append((None, where))
        approvals = load(f"{SETTINGS}/approval-settings.json")
        abody = _body(approvals)
        if approvals is not None and abody is not None:
            applies[approvals.at()] = _method(approvals, "POST", "/approvals")
            sources.append(approvals.at())
            put("dismiss_stale", abody.get("reset_approvals_on_push"), approvals, "reset_approvals_on_push")
            independent = (
                abody.get("merge_requests_author_approval") is False
                and abody.get("merge_requests_disable_committers_approval") is True
            )
            put("last_push_approval", independent, approvals, "merge_requests_disable_committers_approval")
        rules = [d for d in (load(p.relative_to(repo.root).as_posix()) for p in _listing(repo, "approval-rules")) if d]
        counts = []
        for rule in rules:
            rbody = _body(rule)
            if rbody is None:
                continue
            applies[rule.at()] = _method(rule, "POST", "/approval_rules")
            sources.append(rule.at())
            count = rbody.get("approvals_required")
            if rbody.get("applies_to_all_protected_branches") or rbody.get("protected_branch_ids"):
                counts.append((count, rule.at("body", "approvals_required")))
        if counts:
            values["approvals"] = [max(counts, key=lambda c: c[0] if isinstance(c[0], int) else -1)]
        if not values["approvals"]:
            values["approvals"] = [(None, protected.at("body"))]
        for key in ("dismiss_stale", "last_push_approval"):
            if not values[key]:
                values[key] = [(None, protected.at("body"))]
        if body.get("code_owner_approval_required") is None:
            values["code_owner_review"] = [(None, protected.at("body"))]
    for path in _listing(repo, "protected-environments"):
        doc = load(path.relative_to(repo.root).as_posix())
        ebody = _body(doc)
        if doc is None or ebody is None or not isinstance(ebody.get("name"), str):
            continue
        required = 0
        for rule in ebody.get("approval_rules") or []:
            if isinstance(rule, Mapping) and isinstance(rule.get("required_approvals"), int):
                required += rule["required_approvals"]
        name = ebody["name"].lower()
        # GitLab has no branch policy on environments: the job's rules and the protected branch decide.
        pipeline.environments[name] = Environment(name, doc.at("body"), None, required)
    pipeline.read["settings files"] = len(docs)
    pipeline.protection = Protection(bool(sources), sources, applies, values, [], bypass)


def _method(doc: Doc, method: str, path_end: str) -> str:
    """'' when the envelope is the request GitLab applies; else why the settings would not be applied."""
    data = doc.data if isinstance(doc.data, Mapping) else {}
    got = str(data.get("method", "")).upper()
    path = str(data.get("path", ""))
    if got != method or not path.endswith(path_end):
        return f"{doc.path} is not a {method} ...{path_end} request (method {got!r}, path {path!r})"
    return ""


def _listing(repo: Repo, folder: str) -> list[Any]:
    base = repo.root / SETTINGS / folder
    return sorted(base.glob("*.json")) if base.is_dir() else []
