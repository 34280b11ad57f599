"""Branch protection and review: changes reach the default branch only through approved pull requests."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, ClassVar

from generator.controls.base import Control, Finding, Outcome, Severity, failed, passed, unknown
from generator.controls.judge import command_ignored
from generator.controls.needs import PROTECTION, SETTINGS_APPLIED, TEAM, Need
from generator.pipeline.model import CHANGE_EVENTS, Pipeline
from generator.repo import Repo

_SETTINGS = (".github/settings.yml", ".github/rulesets/default-branch.json")


_MERGED_PRS = (
    'gh pr list --repo "$REPO" --base {default_branch} --state merged --search "merged:$FROM..$TO" --limit 1000 '
    "--json number,author,mergedAt,mergedBy,reviews,url > population.json; "
    "sample: jq -r '.[].number' population.json | shuf -n 25"
)
_PROTECTION_EXPORT = (
    'gh api "repos/$REPO/branches/{default_branch}/protection"; gh api "repos/$REPO/rules/branches/{default_branch}"'
)


# Every tier gets these two; approval-settings.json and approval-rules/ exist on Premium and Ultimate only.
_GITLAB_SETTINGS = (".gitlab/settings/protected-branch.json", ".gitlab/settings/project.json")
_GITLAB_PROTECTION_EXPORT = (
    'curl --header "PRIVATE-TOKEN: $TOKEN" "$GITLAB_API/projects/$PROJECT/protected_branches/{default_branch}"; '
    'curl --header "PRIVATE-TOKEN: $TOKEN" "$GITLAB_API/projects/$PROJECT"; '
    'curl --header "PRIVATE-TOKEN: $TOKEN" "$GITLAB_API/projects/$PROJECT/approvals"'
)
_GITLAB_MERGED_MRS = (
    'curl --header "PRIVATE-TOKEN: $TOKEN" "$GITLAB_API/projects/$PROJECT/merge_requests?state=merged&'
    'target_branch={default_branch}&updated_after=$FROM&updated_before=$TO&per_page=100" (every page) '
    "> population.json; per sampled MR: GET /projects/$PROJECT/merge_requests/:iid/approvals"
)


class Branch(Control):
    family = "branch"
    implemented_by = {"github": _SETTINGS, "gitlab": _GITLAB_SETTINGS}
    owner = "Engineering lead (control owner); the security team reviews the settings each quarter"
    frequency = "Every change to the default branch (continuous); settings reviewed quarterly"
    population = {"github": _MERGED_PRS, "gitlab": _GITLAB_MERGED_MRS}
    needs: ClassVar[tuple[Need, ...]] = (PROTECTION, SETTINGS_APPLIED)


_UNDECLARED_GITLAB = (
    "protection of {branch!r} is not declared in the repository (.gitlab/settings/protected-branch.json); the "
    "live settings decide: the project's Settings > Repository > Protected branches and Merge requests"
)
# What only GitLab Premium enforces on a merge: required approvals and who may give them.
_PREMIUM_KEYS = frozenset({"approvals", "dismiss_stale", "last_push_approval", "code_owner_review"})
# A step that checks the approvals of the merge requests a deploy brings (the GitLab review and approval gates).
_GITLAB_REVIEW_GATE = re.compile(r"merge_requests/[^\s\"']*/approv|merge_requests/\$\{?\w+\}?\"?\s*$")


def verifies_mr_approvals(text: str) -> bool:
    """A script that reads the approvals of merge requests from the API (GET .../merge_requests/:iid/approvals,
    whose approved_by it judges), in one URL or built from a base path."""
    if _GITLAB_REVIEW_GATE.search(text):
        return True
    return "merge_requests/" in text and re.search(r"/approvals\b", text) is not None and "approved_by" in text


_UNDECLARED = (
    "branch protection of {branch!r} is not declared in the repository (.github/settings.yml or an active "
    "ruleset in .github/rulesets/*.json); the live settings decide: the repository's Settings > Branches "
    "and Rules (`pipeproof audit --live` reads them)"
)


def expect(pipeline: Pipeline, answers: dict[str, Any], needs: list[tuple[str, Callable[[Any], bool], str]]) -> Outcome:
    """Every declared protection source the platform would apply must meet every need.

    A source the platform would not apply (a settings file missing a mandatory key, a ruleset that is not
    active) implements nothing; when no source would apply, the control fails. On a plan that enforces no
    protection (GitHub Free, private repository) the files are judged as written, and the control passes only
    where every production deploy verifies the approvals again (the compensating control).
    """
    if pipeline.platform == "gitlab":
        return _expect_gitlab(pipeline, answers, needs)
    outcome = _expect(pipeline, needs)
    if outcome.status != "pass" or not (
        answers.get("github_plan") == "free" and answers.get("visibility") == "private"
    ):
        return outcome
    gates = [s for job in pipeline.production_jobs() for s in job.steps if _REVIEW_GATE.search(s.text)]
    if not gates:
        return failed(
            "GitHub Free does not enforce branch protection on a private repository, and no production deploy "
            "verifies the approvals itself",
            *outcome.evidence[:1],
        )
    return passed(
        outcome.reason + "; GitHub Free does not enforce it on a private repository, so every production deploy "
        "verifies each pull request's approvals (detective for merges, preventive for production)",
        *outcome.evidence,
        gates[0].where,
    )


def _expect_gitlab(
    pipeline: Pipeline, answers: dict[str, Any], needs: list[tuple[str, Callable[[Any], bool], str]]
) -> Outcome:
    """On GitLab Free nothing enforces approvals on a merge: the production deploy verifies them instead."""
    if pipeline.protection is None or not pipeline.protection.declared:
        return unknown(_UNDECLARED_GITLAB.format(branch=pipeline.default_branch))
    if answers.get("gitlab_tier") != "free":
        return _expect(pipeline, needs)
    premium = [n for n in needs if n[0] in _PREMIUM_KEYS]
    outcome = _expect(pipeline, [n for n in needs if n[0] not in _PREMIUM_KEYS])
    if outcome.status != "pass" or not premium:
        return outcome
    gates = [
        s
        for job in pipeline.production_jobs()
        for s in job.steps
        if verifies_mr_approvals(s.text) and command_ignored(s, verifies_mr_approvals) is None
    ]
    if not gates:
        return failed(
            "GitLab Free enforces no merge request approvals, and no production deploy verifies them itself",
            *outcome.evidence[:1],
        )
    return passed(
        outcome.reason + "; GitLab Free enforces no approvals, so every production deploy verifies each merge "
        "request's approvals (detective for merges, preventive for production)",
        *outcome.evidence,
        gates[0].where,
    )


# A step that checks the reviews of every pull request a deploy brings (generator's review-gate.sh).
_REVIEW_GATE = re.compile(r"pulls/[^\s\"']*/reviews")


def _expect(pipeline: Pipeline, needs: list[tuple[str, Callable[[Any], bool], str]]) -> Outcome:
    protection = pipeline.protection
    if protection is None or not protection.declared:
        return unknown(_UNDECLARED.format(branch=pipeline.default_branch))
    ignored = [Finding(s, why) for s, why in protection.applies.items() if why]
    live = [s for s, why in protection.applies.items() if not why]
    if not live:
        return failed("no declared protection source would be applied", *ignored)
    findings: list[Finding] = []
    evidence: list[str] = []
    for key, ok, wanted in needs:
        for value, where in protection.get(key):
            source = next((s for s in live if where.split(":")[0] == s.split(":")[0]), None)
            if source is None:
                continue
            if ok(value):
                evidence.append(where)
            else:
                findings.append(Finding(where, f"{key} is {value!r}; needs {wanted}"))
    if findings:
        return failed(findings[0].message, *findings)
    return passed("every declared protection source meets it", *evidence)


def is_true(value: Any) -> bool:
    return value is True


class PP_BRANCH_01(Branch):
    """Changes reach the default branch only through approved pull requests"""

    procedure = (
        "For each sampled merged pull request, confirm it had at least the required number of approving "
        "reviews from people other than its author before it merged; confirm the live protection export "
        "requires reviews and matches .github/settings.yml."
    )

    id = "PP-BRANCH-01"
    procedures = {
        "gitlab": (
            "For each sampled merged merge request, confirm it had at least the required number of approvals "
            "(GET /projects/:id/merge_requests/:iid/approvals) from people other than its author before it "
            "merged; confirm the live protected branch (push access: No one) and approval rules match "
            ".gitlab/settings/."
        )
    }
    remediations = {
        "gitlab": (
            "Protect the default branch in .gitlab/settings/protected-branch.json with push_access_level 0 "
            "(every change through a merge request) and, on Premium, an approval rule with approvals_required"
            " of at least the answered number (approval-rules/*.json); on Free, verify each merge request's "
            "approvals in the production job."
        )
    }
    soc2 = ("CC8.1", "CC6.1")
    iso27001 = ("A.8.4", "A.8.25", "A.8.32")
    severity = Severity.CRITICAL
    remediation = (
        "Protect the default branch: require a pull request with at least the answered number of approving "
        "reviews (settings.yml required_pull_request_reviews.required_approving_review_count; ruleset "
        "pull_request.parameters.required_approving_review_count)."
    )
    evidence = "Branch-protection settings under version control; pull-request review history on the platform."

    @classmethod
    def check(cls, pipeline: Pipeline, answers: dict[str, Any]) -> Outcome:
        minimum = int(answers.get("required_approvals") or 1)

        def enough(value: Any) -> bool:
            return isinstance(value, int) and not isinstance(value, bool) and value >= minimum

        return expect(
            pipeline,
            answers,
            [("pull_request", is_true, "pull requests required"), ("approvals", enough, f"at least {minimum}")],
        )


class PP_BRANCH_02(Branch):
    """Administrators cannot bypass branch protection"""

    procedure = (
        "Confirm enforce_admins is true in the live protection export and the ruleset has no bypass actors; "
        "list commits on the default branch that did not come through a pull request (the deployment records' "
        "pull_requests lists) and confirm there are none."
    )
    population = {"github": _PROTECTION_EXPORT, "gitlab": _GITLAB_PROTECTION_EXPORT}

    id = "PP-BRANCH-02"
    evidences = {"gitlab": ("The protected-branch payload (push access, allowed_to_push) under version control.")}
    procedures = {
        "gitlab": (
            "Confirm the live protected branch allows push to No one with no users, groups or deploy keys in "
            "allowed_to_push; list commits on the default branch that did not come through a merge request "
            "(the deployment records' merge_requests lists) and confirm there are none."
        )
    }
    remediations = {
        "gitlab": (
            "Keep push_access_level 0 and allowed_to_push empty in .gitlab/settings/protected-branch.json, so"
            " nobody (Maintainers and Owners included) pushes past the merge request."
        )
    }
    soc2 = ("CC8.1", "CC6.1")
    iso27001 = ("A.8.4", "A.8.25")
    severity = Severity.CRITICAL
    prevents = ("admin-bypass",)
    requires = ("PP-BRANCH-01",)
    remediation = (
        "Set enforce_admins: true in .github/settings.yml and keep the ruleset's bypass_actors empty "
        "(or limited to bypass_mode: pull_request)."
    )
    evidence = "enforce_admins and ruleset bypass list under version control."

    @classmethod
    def check(cls, pipeline: Pipeline, answers: dict[str, Any]) -> Outcome:
        outcome = expect(pipeline, answers, [("enforce_admins", is_true, "true (no bypass for administrators)")])
        protection = pipeline.protection
        if outcome.status == "pass" and protection is not None and protection.bypass:
            return failed("a ruleset lets actors bypass it outside pull requests (bypass_actors)", *protection.bypass)
        return outcome
        for doc, data in protection.rulesets:
            actors = data.get("bypass_actors") or []
            if actors:
                return failed(f"ruleset lets {len(actors)} actor(s) bypass it (bypass_actors)", doc.at("bypass_actors"))
        return outcome


class PP_BRANCH_03(Branch):
    """Approvals are fresh and independent of the last pusher"""

    procedure = (
        "For each sampled pull request, confirm the approvals were given on its final commit (review "
        "commit_id equals the head SHA) and that stale approvals were dismissed after later pushes."
    )

    id = "PP-BRANCH-03"
    evidences = {
        "gitlab": ("Approval settings under version control; approval notes and diff versions per merge request.")
    }
    procedures = {
        "gitlab": (
            "For each sampled merge request, confirm the approvals were given after its last push (approval "
            "notes newer than the last diff version, or older ones whose later versions only rebased the same "
            "changes) and that neither its author, a committer nor a bot approved it."
        )
    }
    remediations = {
        "gitlab": (
            "In .gitlab/settings/approval-settings.json set reset_approvals_on_push: true, "
            "merge_requests_author_approval: false and merge_requests_disable_committers_approval: true; set "
            "code_owner_approval_required: true on the protected branch and "
            "only_allow_merge_if_all_discussions_are_resolved: true in project.json."
        )
    }
    soc2 = ("CC8.1",)
    iso27001 = ("A.8.25", "A.8.32")
    requires = ("PP-BRANCH-01",)
    remediation = (
        "Dismiss stale reviews on push, require approval of the most recent push, require code-owner review "
        "and resolved conversations (dismiss_stale_reviews, require_last_push_approval, "
        "require_code_owner_reviews, required_conversation_resolution)."
    )
    evidence = "Review settings under version control; review timeline per pull request."

    @classmethod
    def check(cls, pipeline: Pipeline, answers: dict[str, Any]) -> Outcome:
        return expect(
            pipeline,
            answers,
            [
                ("dismiss_stale", is_true, "true"),
                ("last_push_approval", is_true, "true"),
                ("code_owner_review", is_true, "true"),
                ("conversation_resolution", is_true, "true"),
            ],
        )


class PP_BRANCH_04(Branch):
    """Required status checks (every scanner) gate the merge on an up-to-date branch"""

    procedure = (
        "For each sampled pull request, confirm every required check (pr-checks jobs) concluded success on "
        "its final commit before merge; confirm the required checks are pinned to the GitHub Actions app in "
        "the live export."
    )

    id = "PP-BRANCH-04"
    evidences = {
        "gitlab": ("The project settings payload under version control; pipelines per merge request on the platform.")
    }
    procedures = {
        "gitlab": (
            "For each sampled merge request, confirm its merge-request pipeline succeeded on its final commit"
            " before merge and that no job of it was allowed to fail; confirm 'Pipelines must succeed' is on "
            "and skipped pipelines do not count in the live project settings."
        )
    }
    remediations = {
        "gitlab": (
            "Set only_allow_merge_if_pipeline_succeeds: true, allow_merge_on_skipped_pipeline: false and "
            "merge_method: ff in .gitlab/settings/project.json, and keep every scanner job in the "
            "merge-request pipeline without allow_failure."
        )
    }
    soc2 = ("CC8.1", "CC7.1")
    iso27001 = ("A.8.25", "A.8.28")
    prevents = ("scans-not-blocking",)
    requires = ("PP-BRANCH-01",)
    remediation = (
        "List every pull-request check job in required_status_checks.contexts with strict: true, and in the "
        "ruleset's required_status_checks rule with strict_required_status_checks_policy: true."
    )
    evidence = "Required-check list under version control; check runs per commit on the platform."

    platform_notes = {
        "gitlab": "GitLab has no list of required checks: `only_allow_merge_if_pipeline_succeeds` makes the "
        "whole merge-request pipeline required (every job not allowed to fail), `allow_merge_on_skipped_pipeline: "
        "false` keeps a skipped pipeline from counting, and a fast-forward merge method keeps the branch up to date."
    }

    @classmethod
    def check(cls, pipeline: Pipeline, answers: dict[str, Any]) -> Outcome:
        if pipeline.platform == "gitlab":
            return expect(
                pipeline,
                answers,
                [
                    ("status_checks", is_true, "only_allow_merge_if_pipeline_succeeds: true"),
                    ("skipped_pipeline_blocks", is_true, "allow_merge_on_skipped_pipeline: false"),
                    ("strict_checks", is_true, "merge_method ff or rebase_merge (the branch must be up to date)"),
                ],
            )
        outcome = expect(
            pipeline,
            answers,
            [
                ("status_checks", is_true, "required status checks"),
                ("strict_checks", is_true, "true (the branch must be up to date)"),
            ],
        )
        if outcome.status != "pass":
            return outcome
        protection = pipeline.protection
        assert protection is not None
        # A job reports one check run per name (one per combination of a static matrix).
        reporting = {name: job for job in pipeline.gating_jobs() for name in job.names}
        required = {check.context for check in protection.required_checks}
        # A job whose only tools report elsewhere (CodeQL) always succeeds: requiring it would gate nothing.
        gates = {
            job.name: job
            for job in reporting.values()
            if any(not inv.tool.reports_only for inv in job.invocations()) and not job.calls
        }
        findings = []
        # Each declared source must require every gate (a source that leaves one out is a weaker copy).
        live = {s.split(":")[0] for s, why in protection.applies.items() if not why}
        for source in sorted(live):
            declared = {c.context for c in protection.required_checks if c.where.split(":")[0] == source}
            for name, job in sorted(gates.items()):
                if not declared & set(job.names):
                    findings.append(
                        Finding(
                            job.where,
                            f"{name} runs a scanner or the tests on pull requests but {source} does not require it",
                        )
                    )
        for check in protection.required_checks:
            reporter = reporting.get(check.context)
            if reporter is None:
                findings.append(
                    Finding(
                        check.where,
                        f"required check {check.context!r} is reported by no job that runs on pull requests "
                        "(required checks are check-run names: a job's name:, not its id)",
                    )
                )
            elif (why := reporter.not_blocking(CHANGE_EVENTS[0])) is not None:
                findings.append(
                    Finding(check.where, f"required check {check.context!r} can pass without gating: {why}")
                )
            if check.app is None:
                findings.append(
                    Finding(
                        check.where,
                        f"required check {check.context!r} is not pinned to an app (app_id / integration_id): "
                        "anyone who can push may post a status with that name",
                    )
                )
        if findings:
            return failed(findings[0].message, *findings)
        return passed(
            f"required, strict and pinned: {', '.join(sorted(required))}",
            *outcome.evidence,
            *(c.where for c in protection.required_checks),
        )


class PP_BRANCH_05(Branch):
    """History on the default branch cannot be rewritten or deleted"""

    procedure = (
        "Confirm force pushes and deletions are blocked and linear history is required in the live export; "
        "confirm the default branch history has no rewritten commits since the last audit (each deployment "
        "record's previous_sha is an ancestor of its sha)."
    )
    population = {"github": _PROTECTION_EXPORT, "gitlab": _GITLAB_PROTECTION_EXPORT}

    id = "PP-BRANCH-05"
    remediations = {
        "gitlab": (
            "Set allow_force_push: false on the protected default branch and merge_method: ff (or "
            "rebase_merge) in .gitlab/settings/project.json."
        )
    }
    soc2 = ("CC8.1",)
    iso27001 = ("A.8.15", "A.8.32")
    requires = ("PP-BRANCH-01",)
    remediation = (
        "Set allow_force_pushes: false, allow_deletions: false and required_linear_history: true; in the "
        "ruleset keep the deletion and non_fast_forward rules."
    )
    evidence = "Git history of the default branch is the change log."

    @classmethod
    def check(cls, pipeline: Pipeline, answers: dict[str, Any]) -> Outcome:
        return expect(
            pipeline,
            answers,
            [
                ("no_force_push", is_true, "force pushes blocked"),
                ("no_deletion", is_true, "deletion blocked"),
                ("linear_history", is_true, "true"),
            ],
        )


class PP_BRANCH_06(Branch):
    """Code owners review changes to the pipeline, its settings and the compliance files"""

    procedure = (
        "Confirm CODEOWNERS assigns the pipeline, settings, compliance and scanner files to the security "
        "team, that GitHub reports no CODEOWNERS errors, and that sampled pull requests touching those paths "
        "carry an approval from a member of that team."
    )

    id = "PP-BRANCH-06"
    evidences = {"gitlab": ("CODEOWNERS under version control; code-owner approvals per merge request.")}
    procedures = {
        "gitlab": (
            "Confirm the CODEOWNERS file assigns the pipeline, settings, compliance and scanner files to the "
            "security group, that GitLab shows no CODEOWNERS syntax errors, and that sampled merge requests "
            "touching those paths carry an approval from a member of that group."
        )
    }
    remediations = {
        "gitlab": (
            "Add a CODEOWNERS file (CODEOWNERS, docs/CODEOWNERS or .gitlab/CODEOWNERS) whose sections give "
            "/.gitlab-ci.yml, /.gitlab/, /compliance/, /scripts/ and the scanner configuration to the "
            "security group, and require code-owner approval on the protected branch."
        )
    }
    soc2 = ("CC8.1", "CC6.1")
    iso27001 = ("A.8.4", "A.8.9")
    implemented_by = {"github": (".github/CODEOWNERS",), "gitlab": (".gitlab/CODEOWNERS",)}
    needs = (PROTECTION, SETTINGS_APPLIED, TEAM)
    population = {
        "github": 'gh api "repos/$REPO/codeowners/errors"; then ' + _MERGED_PRS,
        "gitlab": "the CODEOWNERS file at the end of the period; then " + _GITLAB_MERGED_MRS,
    }
    remediation = (
        "Add CODEOWNERS entries owned by the security team for /.github/, /compliance/, /.gitleaks.toml, "
        "/.pre-commit-config.yaml, /.zap/ and /scripts/, and require code-owner review."
    )
    evidence = "CODEOWNERS under version control; code-owner approvals per pull request."

    @classmethod
    def check(cls, repo: Repo, pipeline: Pipeline) -> Outcome:
        gitlab = pipeline.platform == "gitlab"
        doc = repo.gitlab_codeowners if gitlab else repo.codeowners
        if doc is None:
            where = (
                "CODEOWNERS, docs/CODEOWNERS or .gitlab/CODEOWNERS"
                if gitlab
                else (".github/CODEOWNERS, CODEOWNERS or docs/CODEOWNERS")
            )
            return failed(f"no CODEOWNERS file ({where})")
        settings = {".gitlab/settings/protected-branch.json"} if gitlab else {".github/settings.yml"}
        paths = sorted({job.file for job in pipeline.jobs} | (set(pipeline.docs) if gitlab else set()) | settings)
        paths += [p for p in ("compliance/CONTROLS.md", "deploy/production.json") if (repo.root / p).exists()]
        paths += [p for p in ("compliance",) if (repo.root / p).is_dir() and "compliance/CONTROLS.md" not in paths]
        findings = []
        for path in paths:
            owner = _owner(doc.data, path)
            if owner is None:
                findings.append(Finding(doc.path + ":1", f"no code owner for {path}"))
            elif not owner[1]:
                findings.append(Finding(f"{doc.path}:{owner[0]}", f"the CODEOWNERS rule for {path} names no owner"))
        if findings:
            return failed(findings[0].message, *findings)
        return passed("the pipeline, its settings and the compliance files have code owners", doc.path + ":1")


def _owner(rules: list[tuple[int, str, list[str]]], path: str) -> tuple[int, list[str]] | None:
    """The last CODEOWNERS rule matching path (gitignore-style, the subset CODEOWNERS supports)."""
    match = None
    for line, pattern, owners in rules:
        if _codeowners_match(pattern, path):
            match = (line, owners)
    return match


def _codeowners_match(pattern: str, path: str) -> bool:
    anchored = pattern.startswith("/")
    pattern = pattern.strip("/") if pattern != "/" else ""
    if pattern in {"*", "**"}:
        return True
    regex = re.escape(pattern).replace(r"\*\*", ".*").replace(r"\*", "[^/]*")
    prefix = "" if anchored or "/" in pattern else "(?:.*/)?"
    return re.match(f"^{prefix}{regex}(?:/.*)?$", path) is not None
