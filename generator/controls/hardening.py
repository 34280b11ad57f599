"""Pipeline hardening: the pipeline itself must not be the weak link (the zizmor audits, plus OIDC and pins)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from generator.controls import tools
from generator.controls.base import Control, Outcome, Severity, failed, passed
from generator.controls.github import GitHub
from generator.controls.needs import PIPEPROOF_ACTION, PROTECTION, RUNNER_TOOLS, TEAM
from generator.repo import Doc, Repo

_SHA = re.compile(r"^[^@\s]+@[0-9a-f]{40}$")
# Contexts that an outsider cannot shape; anything else inside run: is treated as injectable.
_SAFE_EXPRESSION = re.compile(
    r"^\s*(?:github\.(?:sha|run_id|run_number|run_attempt|repository|repository_id|repository_owner|"
    r"repository_owner_id|workflow|job|server_url|api_url|graphql_url|ref_type|event_name|actor_id|workspace|"
    r"action_path|retention_days)|runner\.\w+|job\.status|strategy\.\w+|secrets\.\w+)\s*$"
)
_EXPRESSION = re.compile(r"\$\{\{(.*?)\}\}", re.DOTALL)
_LONG_LIVED = re.compile(
    r"^(AWS_ACCESS_KEY_ID|AWS_SECRET_ACCESS_KEY|aws-access-key-id|aws-secret-access-key|credentials_json|creds|"
    r"client-secret|AZURE_CLIENT_SECRET|GOOGLE_APPLICATION_CREDENTIALS|ARM_CLIENT_SECRET)$",
    re.IGNORECASE,
)


def _all_steps(gh: GitHub) -> Iterator[tuple[Doc, tuple[Any, ...], dict[str, Any]]]:
    """(doc, key path, step) for every step of every workflow and composite action."""
    for step in gh.steps():
        yield step.job.doc, ("jobs", step.job.id, "steps", step.index), step.data
    for doc, index, data in gh.action_steps:
        yield doc, ("runs", "steps", index), data


_WORKFLOWS = (
    ".github/workflows/pr-checks.yml",
    ".github/workflows/deploy.yml",
    ".github/workflows/rollback-drill.yml",
)


class Hardening(Control):
    family = "hardening"
    implemented_by = {"github": _WORKFLOWS}
    owner = "Platform team (control owner); the security team reviews changes to .github/"
    frequency = "Every change to the pipeline (the controls-drift job audits each pull request)"
    population = {
        "github": 'git log --since "$FROM" --until "$TO" --format="%H %an %ad %s" -- .github/; for each sampled '
        "commit: pipeproof audit at that commit (git worktree add /tmp/at COMMIT && pipeproof audit /tmp/at)"
    }
    needs = (PROTECTION, TEAM)


class PP_HARD_01(Hardening):
    """Actions are pinned to full commit SHAs"""

    procedure = "Run pipeproof audit on the sampled commits and confirm every action reference is a 40-hex commit SHA."

    id = "PP-HARD-01"
    soc2 = ("CC7.1", "CC8.1")
    iso27001 = ("A.8.25", "A.8.28")
    severity = Severity.CRITICAL
    remediation = (
        "Pin every `uses:` to a 40-hex commit SHA with a `# vX.Y.Z` comment; tags can be force-pushed "
        "(aquasecurity/trivy-action, 2026-03-19)."
    )
    evidence = "Workflows under version control."

    @classmethod
    def check(cls, gh: GitHub) -> Outcome:
        count = 0
        for doc, path, step in _all_steps(gh):
            uses = step.get("uses")
            if (
                not isinstance(uses, str)
                or uses.startswith(("./", "$/"))
                or re.match(r"docker://.+@sha256:[0-9a-f]{64}$", uses)
            ):
                continue
            count += 1
            if not _SHA.match(uses):
                return failed(f"`uses: {uses}` is not pinned to a full commit SHA", doc.at(*path, "uses"))
        for job in gh.jobs():
            if job.calls and not job.calls.startswith(("./", "$/")) and not _SHA.match(job.calls):
                return failed(f"reusable workflow `{job.calls}` is not pinned to a full commit SHA", job.where)
        return passed(f"all {count} action references are pinned to commit SHAs")


class PP_HARD_02(Hardening):
    """Workflow tokens have least privilege"""

    procedure = (
        "Run pipeproof audit on the sampled commits and confirm no workflow or job grants more than it needs "
        "(no write-all, write scopes per job)."
    )

    id = "PP-HARD-02"
    soc2 = ("CC6.1",)
    iso27001 = ("A.8.4", "A.8.25")
    remediation = (
        "Set top-level `permissions: {}` (or read-only) and grant each job only what it needs, with a comment "
        "explaining each grant; never write-all."
    )
    evidence = "Workflows under version control."

    @classmethod
    def check(cls, gh: GitHub) -> Outcome:
        for workflow in gh.workflows:
            data = workflow.doc.data
            if "permissions" not in data:
                return failed(
                    "no top-level permissions: the token gets the repository's default (often write)", workflow.doc.at()
                )
            problem = _broad(data["permissions"], top=True)
            if problem:
                return failed(f"top-level permissions {problem}", workflow.doc.at("permissions"))
            for job in workflow.jobs.values():
                if "permissions" in job.data:
                    problem = _broad(job.data["permissions"], top=False)
                    if problem:
                        return failed(f"job {job.id} permissions {problem}", job.doc.at("jobs", job.id, "permissions"))
        return passed(
            "top-level permissions are empty or read-only; jobs grant scopes one by one",
            *(w.doc.at("permissions") for w in gh.workflows),
        )


class PP_HARD_03(Hardening):
    """No untrusted expression is expanded inside a shell script"""

    procedure = (
        "Run pipeproof audit on the sampled commits and confirm no untrusted expression is expanded inside a "
        "run: script."
    )

    id = "PP-HARD-03"
    soc2 = ("CC7.1", "CC8.1")
    iso27001 = ("A.8.28",)
    severity = Severity.CRITICAL
    remediation = (
        "Pass values such as github.event.pull_request.title to `run:` through `env:` and quote the variable; "
        "never write ${{ ... }} of untrusted context inside run:."
    )
    evidence = "Workflows under version control."

    @classmethod
    def check(cls, gh: GitHub) -> Outcome:
        for doc, path, step in _all_steps(gh):
            run = step.get("run")
            if not isinstance(run, str):
                continue
            for match in _EXPRESSION.finditer(run):
                if not _SAFE_EXPRESSION.match(match[1]):
                    return failed(
                        f"`${{{{{match[1]}}}}}` is expanded inside a shell script; pass it through env:",
                        doc.at(*path, "run"),
                    )
        return passed("no untrusted expression inside run:")


class PP_HARD_04(Hardening):
    """Checkouts do not persist the token on disk"""

    procedure = "Run pipeproof audit on the sampled commits and confirm every checkout sets persist-credentials: false."

    id = "PP-HARD-04"
    soc2 = ("CC6.1",)
    iso27001 = ("A.8.4",)
    remediation = "Set `persist-credentials: false` on every actions/checkout step."
    evidence = "Workflows under version control."

    @classmethod
    def check(cls, gh: GitHub) -> Outcome:
        count = 0
        for doc, path, step in _all_steps(gh):
            if str(step.get("uses", "")).lower().startswith("actions/checkout@"):
                count += 1
                value = (step.get("with") or {}).get("persist-credentials")
                if str(value).lower() != "false":
                    return failed(
                        "actions/checkout keeps the token on disk (persist-credentials is not false)", doc.at(*path)
                    )
        return passed(f"all {count} checkouts set persist-credentials: false")


class PP_HARD_05(Hardening):
    """Cloud access uses short-lived OIDC credentials, never long-lived keys"""

    procedure = (
        "Confirm workflows authenticate to clouds only through OIDC and that the repository and organisation "
        "hold no long-lived cloud keys as secrets (gh secret list)."
    )

    id = "PP-HARD-05"
    soc2 = ("CC6.1",)
    iso27001 = ("A.8.4", "A.8.25")
    severity = Severity.CRITICAL
    remediation = (
        "Use aws-actions/configure-aws-credentials with role-to-assume, google-github-actions/auth with "
        "workload_identity_provider, or azure/login with client-id, and `id-token: write`; delete "
        "AWS_ACCESS_KEY_ID-style secrets."
    )
    evidence = "Workflows under version control; the cloud's trust policy."

    @classmethod
    def check(cls, gh: GitHub) -> Outcome:
        for doc, path, mapping in _credential_places(gh):
            for key in mapping:
                if _LONG_LIVED.match(str(key)):
                    return failed(
                        f"{key} passes a long-lived cloud credential; use OIDC (id-token: write)", doc.at(*path, key)
                    )
        return passed("no long-lived cloud credentials in workflows or actions")


class PP_HARD_06(Hardening):
    """No dangerous workflow triggers"""

    procedure = (
        "Run pipeproof audit on the sampled commits and confirm no workflow runs untrusted code with secrets "
        "or write permissions (pull_request_target, workflow_run, comment triggers)."
    )

    id = "PP-HARD-06"
    soc2 = ("CC6.1", "CC8.1")
    iso27001 = ("A.8.25",)
    remediation = (
        "Do not trigger on pull_request_target or workflow_run: they run with write tokens and secrets on "
        "code an outsider controls."
    )
    evidence = "Workflows under version control."

    @classmethod
    def check(cls, gh: GitHub) -> Outcome:
        for workflow in gh.workflows:
            bad = workflow.triggers & {"pull_request_target", "workflow_run"}
            if bad:
                on = "on" if "on" in workflow.doc.data else True
                return failed(f"triggered by {', '.join(sorted(bad))}", workflow.doc.at(on))
        return passed("no pull_request_target or workflow_run triggers")


class PP_HARD_07(Hardening):
    """Every job has a timeout and a concurrency group"""

    procedure = (
        "Run pipeproof audit on the sampled commits and confirm every job has a timeout and a concurrency group."
    )

    id = "PP-HARD-07"
    soc2 = ("CC8.1",)
    iso27001 = ("A.8.25",)
    severity = Severity.MEDIUM
    remediation = "Give every job `timeout-minutes` and a `concurrency` group (workflow- or job-level)."
    evidence = "Workflows under version control."

    @classmethod
    def check(cls, gh: GitHub) -> Outcome:
        for workflow in gh.workflows:
            has_group = "concurrency" in workflow.doc.data
            for job in workflow.jobs.values():
                if job.calls:
                    continue  # a reusable-workflow call takes its limits from the called jobs
                if "timeout-minutes" not in job.data:
                    return failed(f"job {job.id} has no timeout-minutes (the default is 6 hours)", job.where)
                if not has_group and "concurrency" not in job.data:
                    return failed(f"job {job.id} has no concurrency group (nor does its workflow)", job.where)
        return passed("every job has a timeout and a concurrency group")


class PP_HARD_08(Hardening):
    """Dependabot keeps action pins and dependencies fresh"""

    procedure = (
        "Confirm Dependabot (or Renovate) opened update pull requests for actions and dependencies during the "
        "period and that they were reviewed like any change."
    )

    id = "PP-HARD-08"
    soc2 = ("CC7.1",)
    iso27001 = ("A.8.9", "A.8.28")
    severity = Severity.MEDIUM
    implemented_by = {"github": (".github/dependabot.yml",)}
    remediation = "Add a github-actions entry (and one per package ecosystem) to .github/dependabot.yml."
    evidence = "Dependabot pull requests."

    @classmethod
    def check(cls, repo: Repo) -> Outcome:
        doc = repo.dependabot
        if doc is None:
            return failed("no .github/dependabot.yml")
        for i, update in enumerate(doc.data.get("updates") or [] if isinstance(doc.data, dict) else []):
            if isinstance(update, dict) and update.get("package-ecosystem") == "github-actions":
                return passed("Dependabot updates the action pins", doc.at("updates", i))
        return failed("dependabot.yml has no github-actions entry", doc.at("updates"))


class PP_HARD_09(Hardening):
    """Container images and tools are version-pinned, never a mutable tag"""

    procedure = (
        "Run pipeproof audit on the sampled commits and confirm every tool and image runs by exact version "
        "with a checksum or digest."
    )
    needs = (PROTECTION, TEAM, RUNNER_TOOLS)

    id = "PP-HARD-09"
    soc2 = ("CC8.1",)
    iso27001 = ("A.8.9",)
    remediation = (
        "Run tools through SHA-pinned actions or version-pinned packages; never `image: x:latest` or an untagged image."
    )
    evidence = "Workflows under version control."

    @classmethod
    def check(cls, gh: GitHub) -> Outcome:
        for job in gh.jobs():
            for keys, image in _images(job.data):
                if _mutable(image):
                    return failed(f"image {image!r} has a mutable tag", job.doc.at("jobs", job.id, *keys))
        for doc, path, step in _all_steps(gh):
            uses = str(step.get("uses", ""))
            if uses.startswith("docker://") and _mutable(uses.removeprefix("docker://")):
                return failed(f"`uses: {uses}` runs a mutable image tag", doc.at(*path, "uses"))
            docker_name = (step.get("with") or {}).get("docker_name")
            if isinstance(docker_name, str) and _mutable(docker_name):
                return failed(f"docker_name {docker_name!r} is a mutable image tag", doc.at(*path, "with"))
            run = step.get("run")
            if isinstance(run, str):
                for image in re.findall(r"docker\s+run\s+(?:-{1,2}[\w-]+(?:[= ]\S+)?\s+)*([\w./-]+(?::[\w.-]+)?)", run):
                    if _mutable(image):
                        return failed(f"`docker run {image}` runs a mutable image tag", doc.at(*path, "run"))
        return passed("no container image runs by a mutable tag")


class PP_HARD_10(Hardening):
    """Control drift is audited on every change"""

    procedure = (
        "For each sampled pull request, confirm the controls-drift check ran and that its failures blocked "
        "the merge or were waived."
    )
    needs = (PROTECTION, PIPEPROOF_ACTION)

    id = "PP-HARD-10"
    soc2 = ("CC4.1", "CC8.1")
    iso27001 = ("A.5.36", "A.8.25")
    severity = Severity.MEDIUM
    implemented_by = {"github": (".github/workflows/pr-checks.yml#controls-drift",)}
    remediation = (
        "Run `pipeproof audit --format sarif` on every pull request (pinned pipeproof version) and upload "
        "the result to code scanning, so a weakened control shows up in review."
    )
    evidence = "pipeproof.sarif: code scanning and a workflow artifact ({retention} days)."

    @classmethod
    def check(cls, gh: GitHub) -> Outcome:
        step, why = tools.blocking(gh.pr_steps(), "pipeproof")
        if step is None:
            return failed(f"no blocking `pipeproof audit` on pull requests: {why}")
        return passed("pipeproof audit runs on every pull request", step.where)


def _broad(permissions: Any, *, top: bool) -> str | None:
    """Why a permissions value is too broad, or None."""
    if permissions in ({}, None, "read-all") or (top is False and permissions == "read-all"):
        return None
    if isinstance(permissions, str):
        return f"is {permissions!r}" if permissions != "read-all" else None
    if isinstance(permissions, dict):
        writes = [k for k, v in permissions.items() if v == "write"]
        if top and writes:
            return f"grant write ({', '.join(map(str, writes))}) to every job; grant it per job instead"
        if not top and len(writes) > 3:
            return f"grant write to {len(writes)} scopes ({', '.join(map(str, writes))})"
        return None
    return f"has an unexpected value {permissions!r}"


def _credential_places(gh: GitHub) -> Iterator[tuple[Doc, tuple[Any, ...], dict[str, Any]]]:
    """Every env: and with: mapping of workflows, jobs, steps and composite actions: where credentials travel."""
    for workflow in gh.workflows:
        if isinstance(workflow.doc.data.get("env"), dict):
            yield workflow.doc, ("env",), workflow.doc.data["env"]
        for job in workflow.jobs.values():
            for key in ("env", "with", "secrets"):
                if isinstance(job.data.get(key), dict):
                    yield job.doc, ("jobs", job.id, key), job.data[key]
    for doc, path, step in _all_steps(gh):
        for key in ("env", "with"):
            if isinstance(step.get(key), dict):
                yield doc, (*path, key), step[key]


def _images(job: dict[str, Any]) -> Iterator[tuple[tuple[str, ...], str]]:
    container = job.get("container")
    if isinstance(container, str):
        yield ("container",), container
    elif isinstance(container, dict) and isinstance(container.get("image"), str):
        yield ("container", "image"), container["image"]
    services = job.get("services")
    if isinstance(services, dict):
        for name, service in services.items():
            if isinstance(service, dict) and isinstance(service.get("image"), str):
                yield ("services", name, "image"), service["image"]


def _mutable(image: str) -> bool:
    """No tag, or a moving one (latest, stable, a bare major)."""
    if "@sha256:" in image or "${{" in image:
        return False
    name, _, tag = image.rpartition(":") if ":" in image.split("/")[-1] else (image, "", "")
    return tag in {"", "latest", "stable", "edge", "main", "master", "nightly"}
