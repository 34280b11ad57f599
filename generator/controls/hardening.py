"""Pipeline hardening: the pipeline itself must not be the weak link (the zizmor audits, plus OIDC and pins)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from typing import Any, ClassVar

from generator.controls.base import Control, Finding, Outcome, Severity, failed, not_applicable, passed, unknown
from generator.controls.judge import gate
from generator.controls.needs import PIPEPROOF_ACTION, PROTECTION, RUNNER_TOOLS, TEAM, Need
from generator.pipeline import shell, tools
from generator.pipeline.model import Job, Pipeline
from generator.repo import Doc, Repo

_SHA = re.compile(r"^[^@\s]+@[0-9a-f]{40}$")
_EXPRESSION = re.compile(r"\$\{\{(.*?)\}\}", re.DOTALL)
# What an outsider shapes: the event payload's free text and head refs (zizmor's and GitHub's own list of
# attacker-controlled contexts). Static matrices, env set from literals, ids, SHAs and numbers are not.
_ATTACKER = re.compile(
    r"github\.head_ref\b|github\.event\.(?:"
    r"issue\.(?:title|body)|pull_request\.(?:title|body|head\.(?:ref|label)|head\.repo\.(?:name|description|homepage))|"
    r"comment\.body|review\.body|review_comment\.body|discussion\.(?:title|body)|pages\.[^.\s]+\.page_name|"
    r"commits\.[^.\s]+\.(?:message|author\.(?:email|name))|head_commit\.(?:message|author\.(?:email|name))|"
    r"workflow_run\.(?:head_branch|display_title|head_commit\.(?:message|author\.(?:email|name))|"
    r"pull_requests\.[^.\s]+\.head\.ref)|release\.(?:name|body)|merge_group\.head_commit\.message)"
    r"|github\.event\.[\w.*\[\]'\"]*\.(?:title|body|message|head_ref|label|page_name)\b"
)
_LONG_LIVED = re.compile(
    r"^(AWS_ACCESS_KEY_ID|AWS_SECRET_ACCESS_KEY|aws-access-key-id|aws-secret-access-key|credentials_json|creds|"
    r"client-secret|AZURE_CLIENT_SECRET|AZURE_CREDENTIALS|GOOGLE_APPLICATION_CREDENTIALS|GOOGLE_CREDENTIALS|"
    r"ARM_CLIENT_SECRET|GCP_SA_KEY|DIGITALOCEAN_ACCESS_TOKEN)$",
    re.IGNORECASE,
)
# Long-lived credentials recognised by how they are used, whatever the secret is called.
_KEY_USE = re.compile(
    r"aws\s+configure\s+set\s+aws_(?:access_key_id|secret_access_key)|"
    r"gcloud\s+auth\s+activate-service-account[^\n]*--key-file|"
    r"az\s+login\s+--service-principal[^\n]*(?:-p\s|--password|--secret)"
)
_KEY_INPUTS = {
    "aws-actions/configure-aws-credentials": ("aws-access-key-id", "aws-secret-access-key"),
    "google-github-actions/auth": ("credentials_json",),
    "azure/login": ("creds", "client-secret"),
}
_MUTABLE_FETCH = re.compile(
    r"curl[^|\n]*https?://raw\.githubusercontent\.com/[^/\s]+/[^/\s]+/(?:main|master|HEAD)/[^|\n]*\|\s*(?:ba|z)?sh|"
    r"(?:go\s+install|npx|pipx\s+run)\s+\S+@latest\b|"
    r"curl[^|\n]*\|\s*(?:sudo\s+)?(?:ba|z)?sh\b"
)
# Pinned actions that still fetch a tool by mutable reference at run time (platform-facts.md, section h).
_MUTABLE_ACTIONS = {
    "anchore/sbom-action": "downloads syft's install script from the main branch",
    "anchore/scan-action": "downloads grype's install script from the main branch",
    "bridgecrewio/checkov-action": "runs the checkov container image by tag",
}


def _raw_steps(pipeline: Pipeline) -> Iterator[tuple[str, Callable[[str], str], Mapping[str, Any], str]]:
    """(where, where-of-key, step, file) for every step of every workflow and composite action."""
    for job in pipeline.jobs:
        if job.called_by is not None:
            continue  # a called workflow's jobs are also listed on their own
        for step in job.steps:
            yield step.where, step.line_of, step.data, job.file
    for doc in pipeline.repo.actions:
        runs = doc.data.get("runs")
        steps = runs.get("steps") if isinstance(runs, Mapping) else None
        for index, data in enumerate(steps if isinstance(steps, list) else []):
            if isinstance(data, Mapping):
                yield doc.at("runs", "steps", index), _at(doc, ("runs", "steps", index)), data, doc.path


def _at(doc: Doc, path: tuple[Any, ...]) -> Callable[[str], str]:
    return lambda key: doc.at(*path, key)


def _own_jobs(pipeline: Pipeline) -> list[Job]:
    return [j for j in pipeline.jobs if j.called_by is None]


def _expression(value: object) -> bool:
    return isinstance(value, str) and "${{" in value


def _result(findings: list[Finding], passing: str, evidence: tuple[str, ...] = ()) -> Outcome:
    if findings:
        return failed(
            findings[0].message if len(findings) == 1 else f"{len(findings)} places: {findings[0].message}", *findings
        )
    return passed(passing, *evidence)


_WORKFLOWS = (  # {production_workflow} is deploy.yml itself, or promote.yml (listed once either way)
    ".github/workflows/pr-checks.yml",
    ".github/workflows/deploy.yml",
    "{production_workflow}",
    "{rollback_workflow}",
)


class Hardening(Control):
    family = "hardening"
    implemented_by = {"github": _WORKFLOWS, "gitlab": (".gitlab-ci.yml",)}
    owner = "Platform team (control owner); the security team reviews changes to .github/"
    frequency = "Every change to the pipeline (the controls-drift job audits each pull request)"
    population = {
        "github": 'git log --since "$FROM" --until "$TO" --format="%H %an %ad %s" -- .github/; for each sampled '
        "commit: pipeproof audit at that commit (git worktree add /tmp/at COMMIT && pipeproof audit /tmp/at)",
        "gitlab": 'git log --since "$FROM" --until "$TO" --format="%H %an %ad %s" -- .gitlab-ci.yml .gitlab/; for '
        "each sampled commit: pipeproof audit at that commit (git worktree add /tmp/at COMMIT && pipeproof audit "
        "/tmp/at)",
    }
    needs: ClassVar[tuple[Need, ...]] = (PROTECTION, TEAM)


class PP_HARD_01(Hardening):
    """Actions are pinned to full commit SHAs"""

    procedure = "Run pipeproof audit on the sampled commits and confirm every action reference is a 40-hex commit SHA."

    id = "PP-HARD-01"
    remediations = {
        "gitlab": (
            "Pin every project include with `ref:` to a commit SHA, every component to `@<sha>`, and give "
            "every remote include an `integrity:` hash."
        )
    }
    soc2 = ("CC7.1", "CC8.1")
    iso27001 = ("A.8.25", "A.8.28")
    severity = Severity.CRITICAL
    remediation = (
        "Pin every `uses:` to a 40-hex commit SHA with a `# vX.Y.Z` comment; tags can be force-pushed "
        "(aquasecurity/trivy-action, 2026-03-19)."
    )
    evidence = "Workflows under version control."

    platform_notes = {
        "gitlab": "GitLab has no actions: what it fetches from elsewhere is an include, so a `project:` include "
        "is pinned by `ref:` to a commit SHA, a `component:` by `@<sha>`, and a `remote:` include by `integrity:`."
    }

    @classmethod
    def check(cls, pipeline: Pipeline) -> Outcome:
        if pipeline.platform == "gitlab":
            return _gitlab_includes_pinned(pipeline)
        count = 0
        findings: list[Finding] = []
        for _where, at, step, _file in _raw_steps(pipeline):
            uses = step.get("uses")
            if not isinstance(uses, str) or uses.startswith(("./", "$/")):
                continue
            if re.match(r"docker://.+@sha256:[0-9a-f]{64}$", uses):
                continue
            count += 1
            if not _SHA.match(uses):
                findings.append(Finding(at("uses"), f"`uses: {uses}` is not pinned to a full commit SHA"))
        for job in _own_jobs(pipeline):
            if job.calls and not job.calls.startswith(("./", "$/")):
                count += 1
                if not _SHA.match(job.calls):
                    findings.append(
                        Finding(job.where, f"reusable workflow `{job.calls}` is not pinned to a full commit SHA")
                    )
        if not count:
            return not_applicable("no action or reusable workflow of another repository is used")
        return _result(findings, f"all {count} action references are pinned to commit SHAs")


class PP_HARD_02(Hardening):
    """Workflow tokens have least privilege"""

    procedure = (
        "Run pipeproof audit on the sampled commits and confirm no workflow or job grants more than it needs "
        "(no write-all, write scopes per job)."
    )

    id = "PP-HARD-02"
    procedures = {
        "gitlab": (
            "Run pipeproof audit on the sampled commits and confirm no job writes out CI_JOB_TOKEN or sends "
            "it to another host; confirm the job token allowlist (Settings > CI/CD > Job token permissions) "
            "is limited to the projects that need it."
        )
    }
    remediations = {
        "gitlab": (
            "Use CI_JOB_TOKEN only against this GitLab's API and registry ($CI_API_V4_URL, $CI_REGISTRY); "
            "never echo it, write it to a file or send it to another host; restrict its scope in Settings > "
            "CI/CD > Job token permissions."
        )
    }
    soc2 = ("CC6.1",)
    iso27001 = ("A.8.4", "A.8.25")
    remediation = (
        "Set top-level `permissions: {}` (or read-only) and grant each job only what it needs, with a comment "
        "explaining each grant; never write-all."
    )
    evidence = "Workflows under version control."

    platform_notes = {
        "gitlab": "GitLab's job token has no per-job scopes in the CI file (its access is a project setting): "
        "the check is that CI_JOB_TOKEN goes only to this GitLab's API and registry, never to another host, "
        "a file, the log or another variable."
    }

    @classmethod
    def check(cls, pipeline: Pipeline, answers: dict[str, Any]) -> Outcome:
        if pipeline.platform == "gitlab":
            return _gitlab_job_token(pipeline, str(answers.get("gitlab_host") or "gitlab.com"))
        findings: list[Finding] = []
        jobs = _own_jobs(pipeline)
        if not jobs:
            return not_applicable("no workflow jobs")
        for job in jobs:
            top = pipeline.docs[job.file].data.get("permissions") if job.file in pipeline.docs else None
            own = job.data.get("permissions")
            if own is None and top is None:
                findings.append(
                    Finding(
                        job.where,
                        f"job {job.id} sets no permissions and neither does its workflow: "
                        "its token gets the repository default, often write to everything",
                    )
                )
                continue
            problem = _broad(own, top=False) if own is not None else _broad(top, top=True)
            if problem:
                where = job.at("permissions") if own is not None else pipeline.at(job.file, "permissions")
                findings.append(Finding(where, f"job {job.id}: permissions {problem}"))
        return _result(findings, "every job's token has only the scopes it grants itself")


class PP_HARD_03(Hardening):
    """No untrusted expression is expanded inside a shell script"""

    procedure = (
        "Run pipeproof audit on the sampled commits and confirm no untrusted expression is expanded inside a "
        "run: script."
    )

    id = "PP-HARD-03"
    remediations = {
        "gitlab": (
            "Never run $CI_MERGE_REQUEST_TITLE, $CI_COMMIT_MESSAGE, branch names or other values a "
            "contributor sets through eval or sh -c; pass them as quoted variables."
        )
    }
    soc2 = ("CC7.1", "CC8.1")
    iso27001 = ("A.8.28",)
    severity = Severity.CRITICAL
    remediation = (
        "Pass values such as github.event.pull_request.title to `run:` through `env:` and quote the variable; "
        "never write ${{ ... }} of untrusted context inside run:."
    )
    evidence = "Workflows under version control."

    platform_notes = {
        "gitlab": "GitLab passes variables to the shell as environment variables, so the risk is a script that "
        "runs an untrusted value ($CI_MERGE_REQUEST_TITLE, $CI_COMMIT_MESSAGE, a branch name) as code: eval, "
        "sh -c, or an unquoted expansion inside a command string."
    }

    @classmethod
    def check(cls, pipeline: Pipeline) -> Outcome:
        if pipeline.platform == "gitlab":
            return _gitlab_untrusted(pipeline)
        findings: list[Finding] = []
        for _where, at, step, file in _raw_steps(pipeline):
            run = step.get("run")
            if not isinstance(run, str):
                continue
            tainted = _tainted_env(pipeline, file, step)
            for match in _EXPRESSION.finditer(run):
                expression = match[1].strip()
                if _ATTACKER.search(expression) or any(
                    re.search(rf"\benv\.{re.escape(name)}\b", expression) for name in tainted
                ):
                    findings.append(
                        Finding(
                            at("run"),
                            f"`${{{{ {expression} }}}}` (attacker-controlled) is expanded "
                            "inside a shell script; pass it through env:",
                        )
                    )
        return _result(findings, "no attacker-controlled expression inside run:")


class PP_HARD_04(Hardening):
    """Checkouts do not persist the token on disk"""

    procedure = "Run pipeproof audit on the sampled commits and confirm every checkout sets persist-credentials: false."

    id = "PP-HARD-04"
    platforms = frozenset({"github"})
    implemented_by = {"github": _WORKFLOWS}
    platform_notes = {
        "gitlab": "Not on GitLab: the runner clones with the job token, which expires when the job ends, and no "
        "CI keyword keeps a credential on disk; PP-HARD-02 judges where the job token goes."
    }
    soc2 = ("CC6.1",)
    iso27001 = ("A.8.4",)
    remediation = "Set `persist-credentials: false` on every actions/checkout step."
    evidence = "Workflows under version control."

    @classmethod
    def check(cls, pipeline: Pipeline) -> Outcome:
        count = 0
        findings: list[Finding] = []
        dynamic: list[Finding] = []  # `with:` (or the input) from an expression: only the run knows
        for where, _at, step, _file in _raw_steps(pipeline):
            if str(step.get("uses", "")).lower().startswith("actions/checkout@"):
                count += 1
                given = step.get("with")
                value = given.get("persist-credentials") if isinstance(given, Mapping) else None
                if _expression(given if not isinstance(given, Mapping) else value):
                    dynamic.append(Finding(where, "persist-credentials comes from an expression only the run knows"))
                elif str(value).lower() != "false":
                    findings.append(
                        Finding(where, "actions/checkout keeps the token on disk (persist-credentials is not false)")
                    )
        if not count:
            return not_applicable("no checkout")
        if not findings and dynamic:
            return unknown(f"{len(dynamic)} checkout(s) take persist-credentials from an expression", *dynamic)
        return _result(findings, f"all {count} checkouts set persist-credentials: false")


class PP_HARD_05(Hardening):
    """Cloud access uses short-lived OIDC credentials, never long-lived keys"""

    procedure = (
        "Confirm workflows authenticate to clouds only through OIDC and that the repository and organisation "
        "hold no long-lived cloud keys as secrets (gh secret list)."
    )

    id = "PP-HARD-05"
    procedures = {
        "gitlab": (
            "Confirm jobs authenticate to clouds only through id_tokens (OIDC) and that the project, group "
            "and instance CI/CD variables hold no long-lived cloud keys (GET /projects/:id/variables)."
        )
    }
    remediations = {
        "gitlab": (
            "Use id_tokens: (OIDC) for cloud access and keep every secret in masked, protected CI/CD "
            "variables; never write a key or token into variables: of .gitlab-ci.yml."
        )
    }
    soc2 = ("CC6.1",)
    iso27001 = ("A.8.4", "A.8.25")
    severity = Severity.CRITICAL
    remediation = (
        "Use aws-actions/configure-aws-credentials with role-to-assume, google-github-actions/auth with "
        "workload_identity_provider, or azure/login with client-id, and `id-token: write`; delete "
        "AWS_ACCESS_KEY_ID-style secrets."
    )
    evidence = "Workflows under version control; the cloud's trust policy."

    platform_notes = {
        "gitlab": "GitLab: cloud access through `id_tokens:` (OIDC); no cloud key or other secret written into "
        "`variables:` (a secret belongs in a masked, protected CI/CD variable, never in the file)."
    }

    @classmethod
    def check(cls, pipeline: Pipeline) -> Outcome:
        if pipeline.platform == "gitlab":
            return _gitlab_secrets(pipeline)
        findings: list[Finding] = []
        for where_of, mapping in _credential_places(pipeline):
            for key, value in mapping.items():
                if _LONG_LIVED.match(str(key)) and "secrets." in str(value):
                    findings.append(
                        Finding(where_of(str(key)), f"{key} passes a long-lived cloud credential; use OIDC")
                    )
        for _where, at, step, _file in _raw_steps(pipeline):
            action = str(step.get("uses", "")).split("@")[0].lower()
            given = step.get("with")
            inputs: Mapping[str, Any] = given if isinstance(given, Mapping) else {}
            for key in _KEY_INPUTS.get(action, ()):
                if key in inputs:
                    findings.append(Finding(at("with"), f"{action} gets {key}: a long-lived key, not OIDC"))
            run = step.get("run")
            if isinstance(run, str) and (m := _KEY_USE.search(run)):
                findings.append(Finding(at("run"), f"`{m[0]}` signs in with a long-lived key; use OIDC"))
        unique = list({f.where + f.message: f for f in findings}.values())
        return _result(unique, "no long-lived cloud credentials in workflows or actions")


class PP_HARD_06(Hardening):
    """No dangerous workflow triggers"""

    procedure = (
        "Run pipeproof audit on the sampled commits and confirm no workflow runs untrusted code with secrets "
        "or write permissions (pull_request_target, workflow_run, comment triggers)."
    )

    id = "PP-HARD-06"
    platforms = frozenset({"github"})
    implemented_by = {"github": _WORKFLOWS}
    platform_notes = {
        "gitlab": "Not on GitLab: no trigger runs a fork's code with the target project's secrets by itself (a "
        "fork's merge-request pipeline runs in the fork unless a maintainer starts it in the parent project)."
    }
    soc2 = ("CC6.1", "CC8.1")
    iso27001 = ("A.8.25",)
    remediation = (
        "Do not trigger on pull_request_target or workflow_run: they run with write tokens and secrets on "
        "code an outsider controls."
    )
    evidence = "Workflows under version control."

    @classmethod
    def check(cls, pipeline: Pipeline) -> Outcome:
        findings: list[Finding] = []
        for doc in pipeline.repo.workflows:
            on = doc.data.get("on", doc.data.get(True))
            triggers = set(on) if isinstance(on, (list, Mapping)) else {on} if isinstance(on, str) else set()
            privileged = {str(t) for t in triggers} & _PRIVILEGED
            if not privileged:
                continue
            for job in _own_jobs(pipeline):
                if job.file != doc.path:
                    continue
                for step in job.steps:
                    ref = str((step.with_ or {}).get("ref", "")) if step.action == "actions/checkout" else ""
                    if _HEAD_REF.search(ref) or _HEAD_FETCH.search(step.run):
                        findings.append(
                            Finding(
                                step.where,
                                f"on {', '.join(sorted(privileged))}, job {job.id} "
                                "checks out the pull request's code, which then runs with this "
                                "workflow's secrets and token",
                            )
                        )
                    if step.action == "actions/download-artifact" and "workflow_run" in str(
                        step.with_.get("run-id", "")
                    ):
                        findings.append(
                            Finding(
                                step.where,
                                f"job {job.id} downloads the triggering run's artifacts, "
                                "which the pull request controls",
                            )
                        )
                if privileged & {"issue_comment", "discussion_comment"} and _privileged_job(pipeline, job):
                    condition = str(job.data.get("if", ""))
                    if not re.search(r"author_association|github\.actor\b|triggering_actor", condition):
                        findings.append(
                            Finding(
                                job.where,
                                f"anyone who can comment triggers job {job.id}, which "
                                "holds secrets or write permissions (no author_association check)",
                            )
                        )
        return _result(findings, "no privileged trigger runs untrusted code")


class PP_HARD_07(Hardening):
    """Every job has a timeout and a concurrency group"""

    procedure = (
        "Run pipeproof audit on the sampled commits and confirm every job has a timeout and a concurrency group."
    )

    id = "PP-HARD-07"
    remediations = {
        "gitlab": (
            "Give every job `timeout:` and `interruptible:` (or set them in default:) and every deploy job a "
            "resource_group."
        )
    }
    soc2 = ("CC8.1",)
    iso27001 = ("A.8.25",)
    severity = Severity.MEDIUM
    remediation = "Give every job `timeout-minutes` and a `concurrency` group (workflow- or job-level)."
    evidence = "Workflows under version control."

    platform_notes = {
        "gitlab": "GitLab: `timeout:` and `interruptible:` on every job (or in default:), and a `resource_group` "
        "on every job that deploys to an environment (GitLab's concurrency for deploys)."
    }

    @classmethod
    def check(cls, pipeline: Pipeline) -> Outcome:
        if pipeline.platform == "gitlab":
            return _gitlab_limits(pipeline)
        findings: list[Finding] = []
        jobs = _own_jobs(pipeline)
        if not jobs:
            return not_applicable("no workflow jobs")
        for job in jobs:
            if job.calls:
                continue  # a reusable-workflow call takes its limits from the called jobs
            if "timeout-minutes" not in job.data:
                findings.append(Finding(job.where, f"job {job.id} has no timeout-minutes (the default is 6 hours)"))
            has_group = job.file in pipeline.docs and "concurrency" in pipeline.docs[job.file].data
            if not has_group and "concurrency" not in job.data:
                findings.append(Finding(job.where, f"job {job.id} has no concurrency group (nor does its workflow)"))
        return _result(findings, "every job has a timeout and a concurrency group")


class PP_HARD_08(Hardening):
    """Dependabot keeps action pins and dependencies fresh"""

    procedure = (
        "Confirm Dependabot (or Renovate) opened update pull requests for actions and dependencies during the "
        "period and that they were reviewed like any change."
    )

    id = "PP-HARD-08"
    evidences = {"gitlab": ("Renovate merge requests.")}
    procedures = {
        "gitlab": (
            "Confirm Renovate opened update merge requests for image pins and dependencies during the period "
            "and that they were reviewed like any change."
        )
    }
    remediations = {
        "gitlab": (
            "Add renovate.json (or .gitlab/renovate.json) with the gitlabci manager, so image pins and "
            "dependencies get update merge requests."
        )
    }
    soc2 = ("CC7.1",)
    iso27001 = ("A.8.9", "A.8.28")
    severity = Severity.MEDIUM
    implemented_by = {"github": (".github/dependabot.yml",), "gitlab": ("renovate.json",)}
    remediation = "Add a github-actions entry (and one per package ecosystem) to .github/dependabot.yml."
    evidence = "Dependabot pull requests."

    platform_notes = {
        "gitlab": "GitLab has no Dependabot: Renovate (renovate.json or .gitlab/renovate.json) with its gitlabci "
        "manager keeps the image pins and dependencies fresh."
    }

    @classmethod
    def check(cls, repo: Repo, answers: dict[str, Any]) -> Outcome:
        gitlab = answers.get("platform") == "gitlab"
        manager = "gitlabci" if gitlab else "github-actions"
        for name in _RENOVATE:
            path = repo.root / name
            if path.is_file():
                text = path.read_text(encoding="utf-8", errors="replace")
                if "enabledManagers" in text and manager not in text:
                    return failed(f"Renovate's enabledManagers leaves out {manager}", f"{name}:1")
                return passed("Renovate keeps dependencies and action pins fresh", f"{name}:1")
        if gitlab:
            return failed("no Renovate configuration (renovate.json or .gitlab/renovate.json)")
        doc = repo.dependabot
        if doc is None:
            return failed("no .github/dependabot.yml or Renovate configuration")
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
    remediations = {
        "gitlab": (
            "Pin every image to an exact version or a digest (never latest, stable or no tag), in one place to bump."
        )
    }
    soc2 = ("CC8.1",)
    iso27001 = ("A.8.9",)
    remediation = (
        "Run tools through SHA-pinned actions or version-pinned packages; never `image: x:latest` or an untagged image."
    )
    evidence = "Workflows under version control."

    @classmethod
    def check(cls, pipeline: Pipeline) -> Outcome:
        findings: list[Finding] = []
        for job in _own_jobs(pipeline):
            for keys, image in _images(dict(job.data)):
                if _mutable(image):
                    findings.append(Finding(job.at(*keys), f"image {image!r} has a mutable tag"))
        for _where, at, step, _file in _raw_steps(pipeline):
            uses = str(step.get("uses", ""))
            action = uses.split("@")[0].lower()
            given = step.get("with")
            inputs: Mapping[str, Any] = given if isinstance(given, Mapping) else {}
            if uses.startswith("docker://") and _mutable(uses.removeprefix("docker://")):
                findings.append(Finding(at("uses"), f"`uses: {uses}` runs a mutable image tag"))
            docker_name = inputs.get("docker_name")
            if isinstance(docker_name, str) and _mutable(docker_name):
                findings.append(Finding(at("with"), f"docker_name {docker_name!r} is a mutable image tag"))
            elif action.startswith("zaproxy/") and docker_name is None:
                findings.append(Finding(at("uses"), f"{action} runs ghcr.io/zaproxy/zaproxy:stable (a moving tag)"))
            if action in _MUTABLE_ACTIONS:
                findings.append(Finding(at("uses"), f"{action} {_MUTABLE_ACTIONS[action]}"))
            run = step.get("run")
            if isinstance(run, str):
                for image in _docker_run_images(run):
                    if _mutable(image):
                        findings.append(Finding(at("run"), f"`docker run {image}` runs a mutable image tag"))
                if m := _MUTABLE_FETCH.search(run):
                    findings.append(Finding(at("run"), f"`{m[0].strip()}` fetches a tool by mutable reference"))
        return _result(findings, "no image or tool runs by a mutable reference")


class PP_HARD_10(Hardening):
    """Control drift is audited on every change"""

    procedure = (
        "For each sampled pull request, confirm the controls-drift check ran and that its failures blocked "
        "the merge or were waived."
    )
    needs = (PROTECTION, PIPEPROOF_ACTION)

    id = "PP-HARD-10"
    procedures = {
        "gitlab": (
            "For each sampled merge request, confirm the controls-drift job ran in its pipeline and that its "
            "failures blocked the merge or were waived."
        )
    }
    remediations = {
        "gitlab": (
            "Run `pipeproof audit` (pinned) in a merge-request pipeline job, so a weakened control fails the "
            "merge request."
        )
    }
    soc2 = ("CC4.1", "CC8.1")
    iso27001 = ("A.5.36", "A.8.25")
    severity = Severity.MEDIUM
    implemented_by = {
        "github": (".github/workflows/pr-checks.yml#controls-drift",),
        "gitlab": (".gitlab-ci.yml#controls-drift",),
    }
    remediation = (
        "Run `pipeproof audit --format sarif` on every pull request (pinned pipeproof version) and upload "
        "the result to code scanning, so a weakened control shows up in review."
    )
    evidence = "pipeproof.sarif: {sarif}, and a workflow artifact ({retention} days)."

    @classmethod
    def check(cls, pipeline: Pipeline) -> Outcome:
        return gate(pipeline, "drift", "control-drift audit (pipeproof audit)")


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


def _credential_places(pipeline: Pipeline) -> Iterator[tuple[Callable[[str], str], Mapping[str, Any]]]:
    """Every env: and with: mapping of workflows, jobs and steps: where credentials travel."""
    for doc in pipeline.repo.workflows:
        if isinstance(doc.data.get("env"), Mapping):
            yield _at(doc, ("env",)), doc.data["env"]
    for job in _own_jobs(pipeline):
        for key in ("env", "with", "secrets"):
            if isinstance(job.data.get(key), Mapping):
                yield _job_at(job, key), job.data[key]
    for _where, at, step, _file in _raw_steps(pipeline):
        for key in ("env", "with"):
            if isinstance(step.get(key), Mapping):
                yield _key_at(at, key), step[key]


def _job_at(job: Job, key: str) -> Callable[[str], str]:
    return lambda name: job.at(key, name)


def _key_at(at: Callable[[str], str], key: str) -> Callable[[str], str]:
    # A step's where-of-key resolves one level; the mapping's own line is close enough for a credential.
    return lambda name: at(key)


def _tainted_env(pipeline: Pipeline, file: str, step: Mapping[str, Any]) -> set[str]:
    """Names of env variables (workflow, job or step level) set from an attacker-controlled expression."""
    tainted = set()
    sources: list[Any] = [step.get("env")]
    if file in pipeline.docs:
        sources.append(pipeline.docs[file].data.get("env"))
    sources += [j.data.get("env") for j in pipeline.job_of_step(step) if j.file == file]
    for env in sources:
        if isinstance(env, Mapping):
            tainted |= {str(k) for k, v in env.items() if _ATTACKER.search(str(v))}
    return tainted


_PRIVILEGED = {"pull_request_target", "workflow_run", "issue_comment", "discussion", "discussion_comment"}
_HEAD_REF = re.compile(
    r"\bhead\.(?:sha|ref)\b|github\.head_ref|refs/pull/|workflow_run\.head_(?:sha|branch)|"
    r"issue\.pull_request|steps\.[\w-]+\.outputs\.(?:head|sha|ref)"
)
_HEAD_FETCH = re.compile(r"gh\s+pr\s+checkout|git\s+fetch[^\n]*pull/|git\s+checkout[^\n]*(?:head_ref|FETCH_HEAD)")
_RENOVATE = (
    "renovate.json",
    "renovate.json5",
    ".github/renovate.json",
    ".github/renovate.json5",
    ".renovaterc",
    ".renovaterc.json",
    ".gitlab/renovate.json",
)


def _privileged_job(pipeline: Pipeline, job: Job) -> bool:
    """A job holding secrets, a write token or an OIDC token."""
    permissions = job.data.get("permissions")
    if permissions is None and job.file in pipeline.docs:
        permissions = pipeline.docs[job.file].data.get("permissions")
    writes = permissions == "write-all" or (
        isinstance(permissions, Mapping) and any(v == "write" for v in permissions.values())
    )
    return writes or "secrets." in str(job.data)


def _docker_run_images(run: str) -> Iterator[str]:
    """The image of every `docker run` / `docker container run` in a script."""
    for m in re.finditer(r"(?:docker|podman)\s+(?:container\s+)?run\s[^\n;&|]*", run.replace("\\\n", " ")):
        found = tools.container_run(m[0])
        if found is not None and "$" not in found[0]:
            yield found[0]


def _images(job: dict[str, Any]) -> Iterator[tuple[tuple[str, ...], str]]:
    """Job container and service images (a `${{ fromJson(...) }}` value is not an image name)."""
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
    # GitLab: `image:` (a name, or a mapping with name:) and a list of services.
    image = job.get("image")
    if isinstance(image, str):
        yield ("image",), image
    elif isinstance(image, dict) and isinstance(image.get("name"), str):
        yield ("image",), image["name"]
    if isinstance(services, list):
        for service in services:
            name = service.get("name") if isinstance(service, dict) else service
            if isinstance(name, str):
                yield ("services",), name


def _mutable(image: str) -> bool:
    """No tag, or a moving one (latest, stable, a bare major)."""
    if "@sha256:" in image or "${{" in image:
        return False
    name, _, tag = image.rpartition(":") if ":" in image.split("/")[-1] else (image, "", "")
    return tag in {"", "latest", "stable", "edge", "main", "master", "nightly"}


# --- GitLab -------------------------------------------------------------------------------------------------

_SHA_REF = re.compile(r"^[0-9a-f]{40}$")


def _gitlab_includes_pinned(pipeline: Pipeline) -> Outcome:
    count = 0
    findings: list[Finding] = []
    for path in sorted(pipeline.docs):
        doc = pipeline.docs[path]
        if not isinstance(doc.data, Mapping) or "include" not in doc.data:
            continue
        value = doc.data.get("include")
        items = value if isinstance(value, list) else [value]
        for i, item in enumerate(items):
            where = doc.at("include", i) if isinstance(value, list) else doc.at("include")
            if isinstance(item, str) and item.startswith(("http://", "https://")):
                item = {"remote": item}
            if not isinstance(item, Mapping):
                continue
            if "project" in item:
                count += 1
                if not _SHA_REF.match(str(item.get("ref", ""))):
                    findings.append(Finding(where, f"project include {item['project']} is not pinned to a commit SHA"))
            elif "component" in item:
                count += 1
                if not _SHA_REF.match(str(item["component"]).rsplit("@", 1)[-1]):
                    findings.append(Finding(where, f"component {item['component']} is not pinned to a commit SHA"))
            elif "remote" in item:
                count += 1
                if not str(item.get("integrity", "")).startswith("sha256-"):
                    findings.append(Finding(where, f"remote include {item['remote']} has no integrity: hash"))
    if not count:
        return not_applicable("no include from another project, a component or a URL")
    return _result(findings, f"all {count} includes from elsewhere are pinned")


_JOB_TOKEN = re.compile(r"\$\{?CI_JOB_TOKEN\}?")
# Where the job token may go: this GitLab's API, its registries and its own repository.
_TOKEN_HOSTS = re.compile(
    r"\$\{?(?:CI_API_V4_URL|CI_SERVER_URL|CI_REGISTRY|CI_REPOSITORY_URL|CI_API_GRAPHQL_URL|"
    r"CI_DEPENDENCY_PROXY_SERVER|CI_SERVER_HOST|GITLAB_API_URL)\b"
)


def _gitlab_job_token(pipeline: Pipeline, host: str) -> Outcome:
    """CI_JOB_TOKEN copied into another variable, written out, or sent to a URL of another host than this
    GitLab (a literal host other than `host`, or a variable that is not one of GitLab's own URLs)."""
    findings: list[Finding] = []
    count = 0
    for job in _own_jobs(pipeline):
        variables = job.data.get("variables")
        if isinstance(variables, Mapping):
            for key, value in variables.items():
                if _JOB_TOKEN.search(str(value)):
                    findings.append(
                        Finding(job.at("variables"), f"job {job.id} copies CI_JOB_TOKEN into variable {key}")
                    )
        for step in job.steps:
            for text, where in getattr(step, "lines", [(step.run, step.where)]):
                for line in text.splitlines():
                    if not _JOB_TOKEN.search(line):
                        continue
                    count += 1
                    command = line.strip()
                    first = command.split("|")[0]
                    writes = re.match(r"^(?:echo|printf|cat)\b", command) or re.search(r"(?<![<0-9])>>?\s*\S", first)
                    if writes and not re.search(r"\b(?:docker|podman|buildah|crane)\s+login|--password-stdin", line):
                        findings.append(Finding(where, f"job {job.id} writes CI_JOB_TOKEN out: `{command[:80]}`"))
                        continue
                    for url in re.findall(r"https?://[^\s\"']+", line):
                        authority = url.split("://", 1)[1].split("/", 1)[0].rsplit("@", 1)[-1]
                        own = _TOKEN_HOSTS.search(authority) or authority.split(":")[0].lower() == host.lower()
                        if not own:
                            findings.append(
                                Finding(where, f"job {job.id} sends CI_JOB_TOKEN to {authority}: `{command[:80]}`")
                            )
                            break
    if not count and not findings:
        return passed("no script uses CI_JOB_TOKEN")
    return _result(findings, "CI_JOB_TOKEN goes only to this GitLab's API and registry")


_UNTRUSTED = re.compile(
    r"\$\{?(?:CI_MERGE_REQUEST_(?:TITLE|DESCRIPTION|SOURCE_BRANCH_NAME|LABELS)|CI_COMMIT_(?:MESSAGE|TITLE|"
    r"DESCRIPTION|AUTHOR|REF_NAME|BRANCH|REF_SLUG)|CI_EXTERNAL_PULL_REQUEST_SOURCE_BRANCH_NAME)\b"
)
_AS_CODE = re.compile(r"\beval\b|\b(?:ba|z)?sh\s+-c\b|\bpython3?\s+-c\b|\bnode\s+-e\b")


def _gitlab_untrusted(pipeline: Pipeline) -> Outcome:
    findings: list[Finding] = []
    for job in _own_jobs(pipeline):
        for step in job.steps:
            for text, where in getattr(step, "lines", [(step.run, step.where)]):
                for line in text.splitlines():
                    found = _UNTRUSTED.search(line)
                    if found and _AS_CODE.search(line):
                        findings.append(
                            Finding(where, f"job {job.id} runs {found[0]} (set by whoever opens the change) as code")
                        )
    return _result(findings, "no untrusted CI variable is run as code")


_SECRET_NAME = re.compile(r"(?i)(?:token|secret|passw(?:or)?d|api[_-]?key|private[_-]?key|access[_-]?key|credential)")
_SECRET_VALUE = re.compile(
    r"AKIA[0-9A-Z]{16}|glpat-[\w-]{20}|gh[pousr]_[A-Za-z0-9]{36}|xox[abpr]-[\w-]+|-----BEGIN [A-Z ]*PRIVATE KEY|"
    r"sk_live_[0-9a-zA-Z]{24}|AIza[0-9A-Za-z_-]{35}"
)


# Throw-away values of test services (`POSTGRES_PASSWORD: postgres`), not credentials of anything that matters.
_PLACEHOLDER = re.compile(
    r"(?i)^(?:password|passwd|secret|changeme|change-me|example|test\w*|postgres|mysql|root|admin|guest|"
    r"runner|dummy|fake|local\w*|dev\w*|ci|x+|\*+|<[^>]*>)$"
)


def _secret_like(value: str) -> bool:
    """A literal that looks like a real credential: long, and mixing letters with digits or symbols."""
    if len(value) < 12 or _PLACEHOLDER.match(value) or " " in value.strip():
        return False
    classes = sum(bool(re.search(p, value)) for p in (r"[a-z]", r"[A-Z]", r"[0-9]", r"[^A-Za-z0-9]"))
    return classes >= 3


def _gitlab_secrets(pipeline: Pipeline) -> Outcome:
    findings: list[Finding] = []
    places: list[tuple[str, Any]] = []
    for _path, doc in sorted(pipeline.docs.items()):
        if isinstance(doc.data, Mapping) and isinstance(doc.data.get("variables"), Mapping):
            places += [(doc.at("variables", k), (k, v)) for k, v in doc.data["variables"].items()]
    for job in _own_jobs(pipeline):
        if isinstance(job.data.get("variables"), Mapping):
            places += [(job.at("variables"), (k, v)) for k, v in job.data["variables"].items()]
    seen: set[tuple[str, str]] = set()
    for where, (key, raw) in places:
        value = str(raw.get("value", "") if isinstance(raw, Mapping) else raw or "")
        if (str(key), value) in seen:
            continue  # a top-level variable is in every job too: reported once, where it is written
        seen.add((str(key), value))
        literal = bool(value) and "$" not in value
        if _SECRET_VALUE.search(value) or (
            literal and (_SECRET_NAME.search(str(key)) or _LONG_LIVED.match(str(key))) and _secret_like(value)
        ):
            findings.append(Finding(where, f"variables: {key} holds a secret in the file; use a masked CI/CD variable"))
    for job in _own_jobs(pipeline):
        for step in job.steps:
            if m := _KEY_USE.search(step.run):
                findings.append(Finding(step.where, f"`{m[0]}` signs in with a long-lived key; use id_tokens (OIDC)"))
    unique = list({f.where + f.message: f for f in findings}.values())
    if unique:
        return _result(unique, "")
    # A cloud CLI in a job without id_tokens signs in with what the project's CI/CD variables or the runner
    # hold: a long-lived key the files cannot show, or a runner role; only OIDC is visible here.
    keyless: list[Finding] = []
    for job in _own_jobs(pipeline):
        if "id_tokens" in job.data:
            continue
        found = next((c for step in job.steps if (c := _cloud_command(step.text)) is not None), None)
        if found is not None:
            keyless.append(
                Finding(job.where, f"job {job.id} runs `{found}` without id_tokens: its credentials are not OIDC")
            )
    if keyless:
        return unknown(
            "cloud CLIs run without id_tokens: their credentials come from CI/CD variables or the runner, "
            "which the files do not show (Settings > CI/CD > Variables decides)",
            *keyless,
        )
    return passed("no secret or long-lived cloud key in the CI configuration; cloud access uses id_tokens")


# The CLI as a word of a command (directly, or through a wrapper: `store_cli "$out" aws s3api ...`).
_CLOUD_CLI = re.compile(r"(?:^|\s)((?:aws|gcloud|gsutil|az)\s+(?!--version)[a-z][\w-]*)")


def _cloud_command(text: str) -> str | None:
    """The first cloud CLI command (aws, gcloud, gsutil, az) a script and the scripts it runs execute."""
    for command in shell.commands(text, False, False):
        if m := _CLOUD_CLI.search(command.text):
            return m[1]
    return None


def _gitlab_limits(pipeline: Pipeline) -> Outcome:
    findings: list[Finding] = []
    jobs = _own_jobs(pipeline)
    if not jobs:
        return not_applicable("no jobs")
    for job in jobs:
        if "timeout" not in job.data:
            findings.append(Finding(job.where, f"job {job.id} has no timeout (the project default, often 1 hour)"))
        if "interruptible" not in job.data:
            findings.append(Finding(job.where, f"job {job.id} does not say whether a newer pipeline may cancel it"))
        env = job.data.get("environment")
        action = env.get("action", "start") if isinstance(env, Mapping) else "start"
        if job.environment and action == "start" and "resource_group" not in job.data:
            findings.append(
                Finding(
                    job.where, f"job {job.id} deploys to {job.environment} without a resource_group (deploys overlap)"
                )
            )
        if job.environment and action == "start" and job.data.get("interruptible") is True:
            # auto_cancel on a new commit would stop the deploy halfway, and a cancel runs no on_failure rollback.
            findings.append(
                Finding(
                    job.at("interruptible"),
                    f"job {job.id} deploys to {job.environment} but is interruptible: a newer pipeline may cancel it "
                    "halfway",
                )
            )
    return _result(findings, "every job has a timeout and says whether it is interruptible; deploys are serialised")
