"""One `protect` run: where the settings are, which repository and API, and the three actions on them."""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from generator import __version__, detect
from generator.errors import UserError
from generator.protect import check_api_url, default_api, read_token, repository
from generator.protect.client import ApiError, Client

Say = Callable[..., None]
SNAPSHOT_SCHEMA = "pipeproof/protect-snapshot/v1"


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


@dataclass
class GitHubSession:
    root: Path
    client: Client
    want: Any  # generator.protect.github.Desired
    pipeline: Any  # generator.pipeline.model.Pipeline

    @property
    def redact(self) -> Callable[[str], str]:
        return self.client.redact

    def apply(self, say: Say) -> int:
        from generator.protect import github

        client, want = self.client, self.want
        try:
            live = github.read_live(client, want)
            plan = github.plan(client, want, live)
        except ApiError as exc:
            raise ApiError(
                f"nothing was applied: reading the live settings failed: {exc}", exc.status, exc.kind
            ) from None
        for note in plan.notes:
            say(f"note: {note}", err=True)
        if client.dry_run:
            # Nothing was read, so every setting is planned as if absent: these are all the requests apply sends.
            for change in plan.changes:
                client.request(change.method, change.path, change.body)
            say(f"dry run for {want.repo} at {client.base}: {len(client.planned)} requests, none sent")
            for sent in client.planned:
                say("  " + sent.show())
            return 0
        return _apply_changes(client, plan.changes, plan.problems, want.repo, say)

    def check(self, say: Say, fmt: str, output: Path | None) -> int:
        from generator.protect import github, verdicts
        from generator.report import FORMATS

        live = github.read_live(self.client, self.want)
        report, covered = verdicts.check_report(self.root, self.want, live, self.pipeline, _now())
        for note in covered:
            say(f"covered by the other layer (not drift): {note}", err=True)
        text = FORMATS[fmt](report)
        if output:
            output.parent.mkdir(parents=True, exist_ok=True)
            output.write_text(self.redact(text), encoding="utf-8")
        else:
            say(text.rstrip("\n"))
        drifted = [r for r in report.results if r.status in {"fail", "error"}]
        say(
            f"{len(drifted)} control(s) drifted from the files"
            if drifted
            else "no drift: the live settings match the files",
            err=True,
        )
        return 1 if drifted else 0

    def export(self, say: Say, out_dir: Path) -> int:
        from generator.protect import github, verdicts

        at = _now()
        client, want = self.client, self.want
        live = github.read_live(client, want, access=True)
        found, covered = verdicts.drift(want, live, self.pipeline)
        plan = github.plan(client, want, live)
        snapshot = {
            "schema": SNAPSHOT_SCHEMA,
            "taken_at": verdicts.stamp(at),
            "pipeproof": __version__,
            "platform": "github",
            "api": client.base,
            "account": live.account,
            "repository": want.repo,
            "branch": want.branch,
            "desired": {
                "branch_protection": want.classic,
                "rulesets": [body for body, _ in want.rulesets],
                "environments": [
                    {
                        "name": e.name,
                        "deployment_branches": list(e.branches) if e.branches is not None else None,
                        "wait_timer": e.wait_timer,
                        "reviewer_teams": [f"{want.owner}/{t}" for t in e.reviewer_teams],
                        "prevent_self_review": e.prevent_self_review,
                        "can_admins_bypass": e.can_admins_bypass,
                    }
                    for e in want.environments
                ],
                "security_and_analysis": want.security,
                "codeowners": want.codeowners,
                "security_team": want.team,
            },
            "live": live.document(),
            "diff": {
                "drift": {c: [f.message for f in fs] for c, fs in sorted(found.items())},
                "covered": covered,
                "changes_apply_would_make": [
                    {"what": c.what, "method": c.method, "path": c.path, "body": c.body} for c in plan.changes
                ],
                "cannot_fix": [{"control": c, "problem": m} for c, m in plan.problems],
            },
            "access_review": access_review(want, live),
        }
        # The API's own answers go into the file: they pass through the redaction like every printed line.
        snapshot = json.loads(self.redact(json.dumps(snapshot)))
        path = write_snapshot(out_dir, "github", want.owner, want.name, at, snapshot)
        say(f"wrote {path} (sha256 {snapshot['sha256']})")
        return 0


def access_review(want: Any, live: Any) -> dict[str, Any]:
    """Who can change the repository and who may bypass its protection (the quarterly access review)."""
    collaborators = [
        {
            "login": c.get("login"),
            "type": c.get("type"),
            "role": c.get("role_name"),
            "permissions": c.get("permissions"),
        }
        for c in live.collaborators
        if isinstance(c, Mapping)
    ]
    teams = [
        {"slug": t.get("slug"), "name": t.get("name"), "permission": t.get("permission")}
        for t in live.teams
        if isinstance(t, Mapping)
    ]
    admins = [c["login"] for c in collaborators if (c.get("permissions") or {}).get("admin")]
    admins += [f"team:{t['slug']}" for t in teams if t.get("permission") == "admin"]
    bypass: list[dict[str, Any]] = []
    for ruleset in live.rulesets:
        for actor in (ruleset or {}).get("bypass_actors") or []:
            bypass.append(
                {
                    "ruleset": ruleset.get("name"),
                    "actor_type": actor.get("actor_type"),
                    "actor_id": actor.get("actor_id"),
                    "bypass_mode": actor.get("bypass_mode"),
                }
            )
    classic = live.classic if isinstance(live.classic, Mapping) else None
    if classic is not None:
        if not (classic.get("enforce_admins") or {}).get("enabled"):
            bypass.append(
                {"branch_protection": want.branch, "actor_type": "RepositoryAdmins", "why": "enforce_admins is off"}
            )
        allowances = (classic.get("required_pull_request_reviews") or {}).get("bypass_pull_request_allowances") or {}
        for kind in ("users", "teams", "apps"):
            for who in allowances.get(kind) or []:
                bypass.append(
                    {
                        "branch_protection": want.branch,
                        "actor_type": kind[:-1],
                        "actor": who.get("login") or who.get("slug"),
                        "why": "bypass_pull_request_allowances",
                    }
                )
    return {"collaborators": collaborators, "teams": teams, "admins": admins, "bypass_actors": bypass}


def write_snapshot(
    out_dir: Path, platform: str, owner: str, name: str, at: dt.datetime, snapshot: dict[str, Any]
) -> Path:
    """Write the snapshot under DIR/protect/<platform>/<owner>/<name>/YYYY/MM/DD/, never over an existing one.

    The key is unique per repository and second and sorts by time, as an object-locked store wants (a key is
    written once, never replaced); `sha256` covers the snapshot without itself, and a `.sha256` file beside it
    covers the file's bytes (`sha256sum -c` checks it).
    """
    body = json.dumps(snapshot, sort_keys=True, separators=(",", ":")).encode()
    snapshot["sha256"] = hashlib.sha256(body).hexdigest()
    stamp = at.strftime("%Y%m%dT%H%M%SZ")
    folder = out_dir / "protect" / platform / owner / name / at.strftime("%Y/%m/%d")
    path = folder / f"protect-{stamp}.json"
    if path.exists():
        raise UserError(f"{path} exists: an evidence snapshot is never overwritten (run again in a second)")
    folder.mkdir(parents=True, exist_ok=True)
    data = (json.dumps(snapshot, indent=2, sort_keys=True) + "\n").encode()
    with open(path, "xb") as handle:  # exclusive: a concurrent export cannot replace it either
        handle.write(data)
    (folder / f"protect-{stamp}.json.sha256").write_text(
        f"{hashlib.sha256(data).hexdigest()}  {path.name}\n", encoding="utf-8"
    )
    return path


def _apply_changes(
    client: Client,
    changes: list[Any],
    problems: list[tuple[str, str]],
    repo: str,
    say: Say,
    *,
    before: Callable[[Any], Any] | None = None,
    after: Callable[[Any, Any], None] | None = None,
) -> int:
    """Send each change in order; on a failure, say what was applied, what failed and what was not, and stop.

    `before` may fill in a change from what earlier ones returned (an id the platform just assigned); `after`
    sees each answer.
    """
    applied: list[Any] = []
    for control, problem in problems:
        say(f"{control}: protect cannot apply this: {problem}", err=True)
    if not changes:
        say(f"no changes: the live settings of {repo} already match the files")
    for i, change in enumerate(changes):
        try:
            change = before(change) if before else change
            answer = client.request(change.method, change.path, change.body)
            if after:
                after(change, answer)
        except ApiError as exc:
            say(f"applied {len(applied)} of {len(changes)} changes, then stopped:", err=True)
            for done in applied:
                say(f"  applied:     {done.method} {done.path}  ({done.what})", err=True)
            say(f"  FAILED:      {change.method} {change.path}  ({change.what}): {exc}", err=True)
            for rest in changes[i + 1 :]:
                say(f"  not applied: {rest.method} {rest.path}  ({rest.what})", err=True)
            say("fix the cause and run `pipeproof protect apply` again (it applies only what still differs)", err=True)
            return 1
        applied.append(change)
        say(f"applied: {change.method} {change.path}  ({change.what})")
    if changes:
        say(f"applied {len(applied)} change(s) to {repo}")
    if problems:
        say(f"{len(problems)} setting(s) could not be applied (above)", err=True)
    return 1 if problems else 0


@contextmanager
def open_session(
    args: argparse.Namespace, *, dry_run: bool = False, required: bool = True, allow_empty: bool = False
) -> Iterator[Any]:
    """The session for PATH: its platform, desired settings, repository, API and token."""
    from generator.audit import _git_branch
    from generator.pipeline import github as github_adapter
    from generator.repo import Repo

    root = Path(args.path).absolute()
    if not root.is_dir():
        raise UserError(f"PATH {str(root)!r} is not a directory")
    repo = Repo(root)
    answers = detect.answers(repo)
    platform = "gitlab" if (root / ".gitlab" / "settings").is_dir() else str(answers.get("platform") or "github")
    if platform == "gitlab":
        from generator.protect.gitlab import open_session as gitlab_session

        with gitlab_session(root, args, answers, dry_run=dry_run) as session:
            yield session
        return
    token = read_token(platform, args.token_file, required=required and not dry_run)
    owner, name = repository(root, args.repo, platform)
    api = check_api_url(args.api_url) if args.api_url else default_api(platform, answers)
    branch = str(answers.get("default_branch") or _git_branch(repo))
    answers["default_branch"] = branch
    from generator.protect import github

    want = github.desired(repo, answers, owner, name, branch)
    if want.classic is None and not want.rulesets and not want.environments and not allow_empty:
        raise UserError(
            f"nothing to protect in {root}: no .github/settings.yml `branches` entry for {branch!r}, no "
            ".github/rulesets/*.json and no environments (render them with `pipeproof new` or `retrofit`)"
        )
    client = Client(api, token, platform, dry_run=dry_run)
    try:
        yield GitHubSession(root, client, want, github_adapter.build(repo, branch))
    finally:
        client.close()
