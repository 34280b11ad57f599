"""Branch protection and review: changes reach the default branch only through approved pull requests."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from generator.controls.base import Control, Outcome, Severity, failed, passed
from generator.controls.github import GitHub, Job, Protection
from generator.controls.needs import PROTECTION, SETTINGS_APPLIED, TEAM
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


class Branch(Control):
    family = "branch"
    implemented_by = {"github": _SETTINGS}
    owner = "Engineering lead (control owner); the security team reviews the settings each quarter"
    frequency = "Every change to the default branch (continuous); settings reviewed quarterly"
    population = {"github": _MERGED_PRS}
    needs = (PROTECTION, SETTINGS_APPLIED)


# A requirement on branch protection: where it lives in settings.yml (the REST branch-protection names) and
# in a ruleset (rule type, parameter; parameter None means "the rule must exist"), and what satisfies it.
Requirement = tuple[tuple[str, ...] | None, tuple[str, str | None] | None, Callable[[Any], bool], str]


def is_true(value: Any) -> bool:
    return value is True


def is_false_value(value: Any) -> bool:
    return value is False


def expect(protection: Protection, needs: list[Requirement]) -> Outcome:
    """Pass when every protection source that exists meets every need; fail on the first that does not."""
    if not protection.exists:
        return failed(
            f"no protection of branch {protection.branch!r} in .github/settings.yml or an active ruleset in "
            ".github/rulesets/*.json (settings made only in the UI cannot be audited from the repository)"
        )
    evidence: list[str] = []
    for keys, rule, ok, wanted in needs:
        if keys is not None and protection.settings is not None:
            found = protection.setting(*keys)
            value, where = found if found else (None, "")
            if not ok(value):
                return failed(f"settings.yml {'.'.join(keys)} is {value!r}; needs {wanted}", where)
            evidence.append(where)
        if rule is not None:
            rule_type, parameter = rule
            for ruleset in protection.rulesets:
                params, where = protection.rule(ruleset, rule_type)
                if parameter is None:
                    if params is None:
                        return failed(f"ruleset has no {rule_type!r} rule; needs {wanted}", where)
                elif params is None or not ok(params.get(parameter)):
                    value = None if params is None else params.get(parameter)
                    return failed(f"ruleset {rule_type}.{parameter} is {value!r}; needs {wanted}", where)
                evidence.append(where)
    return passed("every protection source meets it", *dict.fromkeys(evidence))


class PP_BRANCH_01(Branch):
    """Changes reach the default branch only through approved pull requests"""

    procedure = (
        "For each sampled merged pull request, confirm it had at least the required number of approving "
        "reviews from people other than its author before it merged; confirm the live protection export "
        "requires reviews and matches .github/settings.yml."
    )

    id = "PP-BRANCH-01"
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
    def check(cls, protection: Protection, answers: dict[str, Any]) -> Outcome:
        minimum = int(answers.get("required_approvals") or 1)

        def enough(value: Any) -> bool:
            return isinstance(value, int) and not isinstance(value, bool) and value >= minimum

        return expect(
            protection,
            [
                (
                    ("required_pull_request_reviews",),
                    ("pull_request", None),
                    lambda v: isinstance(v, dict),
                    "pull requests with reviews",
                ),
                (
                    ("required_pull_request_reviews", "required_approving_review_count"),
                    ("pull_request", "required_approving_review_count"),
                    enough,
                    f"at least {minimum} approvals",
                ),
            ],
        )


class PP_BRANCH_02(Branch):
    """Administrators cannot bypass branch protection"""

    procedure = (
        "Confirm enforce_admins is true in the live protection export and the ruleset has no bypass actors; "
        "list commits on the default branch that did not come through a pull request (the deployment records' "
        "pull_requests lists) and confirm there are none."
    )
    population = {"github": _PROTECTION_EXPORT}

    id = "PP-BRANCH-02"
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
    def check(cls, protection: Protection) -> Outcome:
        outcome = expect(protection, [(("enforce_admins",), None, is_true, "true")])
        if outcome.status != "pass":
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
    def check(cls, protection: Protection) -> Outcome:
        reviews = "required_pull_request_reviews"
        return expect(
            protection,
            [
                (
                    (reviews, "dismiss_stale_reviews"),
                    ("pull_request", "dismiss_stale_reviews_on_push"),
                    is_true,
                    "true",
                ),
                (
                    (reviews, "require_last_push_approval"),
                    ("pull_request", "require_last_push_approval"),
                    is_true,
                    "true",
                ),
                (
                    (reviews, "require_code_owner_reviews"),
                    ("pull_request", "require_code_owner_review"),
                    is_true,
                    "true",
                ),
                (
                    ("required_conversation_resolution",),
                    ("pull_request", "required_review_thread_resolution"),
                    is_true,
                    "true",
                ),
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
    soc2 = ("CC8.1", "CC7.1")
    iso27001 = ("A.8.25", "A.8.28")
    prevents = ("scans-not-blocking",)
    requires = ("PP-BRANCH-01",)
    remediation = (
        "List every pull-request check job in required_status_checks.contexts with strict: true, and in the "
        "ruleset's required_status_checks rule with strict_required_status_checks_policy: true."
    )
    evidence = "Required-check list under version control; check runs per commit on the platform."

    @classmethod
    def check(cls, protection: Protection, gh: GitHub) -> Outcome:
        outcome = expect(
            protection,
            [
                (
                    ("required_status_checks", "strict"),
                    ("required_status_checks", "strict_required_status_checks_policy"),
                    is_true,
                    "true (the branch must be up to date)",
                ),
            ],
        )
        if outcome.status != "pass":
            return outcome
        # Every pull-request job that runs a scanner or the tests must be a required check.
        wanted = sorted({job.name for job in gh.jobs() if gh.gates_pull_requests(job) and _is_gate(job)})
        sources: list[tuple[str, set[str]]] = []
        found = protection.setting("required_status_checks", "contexts")
        if found is not None:
            contexts, where = found
            sources.append((where, {str(c) for c in contexts or []}))
        for ruleset in protection.rulesets:
            params, where = protection.rule(ruleset, "required_status_checks")
            checks = (params or {}).get("required_status_checks") or []
            sources.append((where, {str(c.get("context")) for c in checks if isinstance(c, dict)}))
        for where, contexts in sources:
            missing = [name for name in wanted if name not in contexts]
            if missing:
                return failed(f"pull-request checks not required before merge: {', '.join(missing)}", where)
        return passed(
            f"required and strict: {', '.join(wanted) or 'no scanner jobs found'}",
            *outcome.evidence,
            *(w for w, _ in sources),
        )


class PP_BRANCH_05(Branch):
    """History on the default branch cannot be rewritten or deleted"""

    procedure = (
        "Confirm force pushes and deletions are blocked and linear history is required in the live export; "
        "confirm the default branch history has no rewritten commits since the last audit (each deployment "
        "record's previous_sha is an ancestor of its sha)."
    )
    population = {"github": _PROTECTION_EXPORT}

    id = "PP-BRANCH-05"
    soc2 = ("CC8.1",)
    iso27001 = ("A.8.15", "A.8.32")
    requires = ("PP-BRANCH-01",)
    remediation = (
        "Set allow_force_pushes: false, allow_deletions: false and required_linear_history: true; in the "
        "ruleset keep the deletion and non_fast_forward rules."
    )
    evidence = "Git history of the default branch is the change log."

    @classmethod
    def check(cls, protection: Protection) -> Outcome:
        return expect(
            protection,
            [
                (
                    ("allow_force_pushes",),
                    ("non_fast_forward", None),
                    is_false_value,
                    "false / a non_fast_forward rule",
                ),
                (("allow_deletions",), ("deletion", None), is_false_value, "false / a deletion rule"),
                (("required_linear_history",), ("required_linear_history", None), is_true, "true"),
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
    soc2 = ("CC8.1", "CC6.1")
    iso27001 = ("A.8.4", "A.8.9")
    implemented_by = {"github": (".github/CODEOWNERS",)}
    needs = (PROTECTION, SETTINGS_APPLIED, TEAM)
    population = {"github": 'gh api "repos/$REPO/codeowners/errors"; then ' + _MERGED_PRS}
    remediation = (
        "Add CODEOWNERS entries owned by the security team for /.github/, /compliance/, /.gitleaks.toml, "
        "/.pre-commit-config.yaml, /.zap/ and /scripts/, and require code-owner review."
    )
    evidence = "CODEOWNERS under version control; code-owner approvals per pull request."

    @classmethod
    def check(cls, repo: Repo) -> Outcome:
        doc = repo.codeowners
        if doc is None:
            return failed("no CODEOWNERS file (.github/CODEOWNERS, CODEOWNERS or docs/CODEOWNERS)")
        paths = [".github/workflows/ci.yml", ".github/settings.yml"]
        if (repo.root / "compliance").is_dir():
            paths.append("compliance/CONTROLS.md")
        for path in paths:
            owner = _owner(doc.data, path)
            if owner is None:
                return failed(f"no code owner for {path}", doc.path + ":1")
            if not owner[1]:
                return failed(f"the CODEOWNERS rule for {path} names no owner", f"{doc.path}:{owner[0]}")
        return passed("pipeline, settings and compliance files have code owners", doc.path + ":1")


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


def _is_gate(job: Job) -> bool:
    """A job that runs a scanner, the tests or the control-drift audit."""
    from generator.controls import tools

    return any(tools.kind(step) for step in job.steps)
