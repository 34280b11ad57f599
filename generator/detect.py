"""Suggested answers for a repository: pipeproof's own answers file when there is one, else what the files say.

The audit decides which controls apply from these answers, so a repository pipeproof never touched is judged
by what it actually contains (a Dockerfile means container scanning applies, *.tf means IaC scanning does).
"""

from __future__ import annotations

import re
from typing import Any

from generator.pipeline.model import Pipeline
from generator.repo import Repo

DEFAULTS: dict[str, Any] = {
    "platform": "github",
    "language": "python",
    "iac": [],
    "containers": False,
    "deploy_model": "environments",
    "default_branch": "main",
    "required_approvals": 1,
    "visibility": "unknown",
    "evidence_store": "none",
    "frameworks": ["soc2", "iso27001"],
}

_LANGUAGE_FILES = [
    ("python", ["pyproject.toml", "setup.py", "requirements.txt", "setup.cfg"]),
    ("node", ["package.json"]),
    ("go", ["go.mod"]),
    ("java", ["pom.xml", "build.gradle", "build.gradle.kts"]),
]

_OIDC_ACTIONS = {
    "aws-actions/configure-aws-credentials": "aws",
    "google-github-actions/auth": "gcp",
    "azure/login": "azure",
}


def answers(repo: Repo, found_in_files: dict[str, Any] | None = None) -> dict[str, Any]:
    """The answers the audit judges the repository by: pipeproof's answers file, else what the files say."""
    found = dict(DEFAULTS)
    found.update(detected(repo) if found_in_files is None else found_in_files)
    doc = repo.answers_file
    if doc is not None and isinstance(doc.data, dict):
        found.update({k: v for k, v in doc.data.items() if not str(k).startswith("_")})
    return found


def detected(repo: Repo) -> dict[str, Any]:
    result: dict[str, Any] = {}
    root = repo.root
    if (root / ".gitlab-ci.yml").is_file() and not (root / ".github" / "workflows").is_dir():
        result["platform"] = "gitlab"
    for language, names in _LANGUAGE_FILES:
        if any((root / n).is_file() for n in names):
            result["language"] = language
            break
    iac = []
    if next(repo.files("**/*.tf"), None) is not None:
        iac.append("terraform")
    if _any_containing(repo, ("**/*.yaml", "**/*.yml"), ("apiVersion:",), ("kind:",)):
        iac.append("kubernetes")
    if _any_containing(repo, ("**/*.yaml", "**/*.yml", "**/*.json", "**/*.template"), ("AWSTemplateFormatVersion",)):
        iac.append("cloudformation")
    result["iac"] = iac
    result["containers"] = (
        next(repo.files("Dockerfile", "**/Dockerfile", "**/*.Dockerfile", "Containerfile"), None) is not None
    )
    settings = repo.settings
    if settings is not None and isinstance(settings.data, dict):
        repository = settings.data.get("repository") or {}
        if isinstance(repository, dict) and isinstance(repository.get("private"), bool):
            result["visibility"] = "private" if repository["private"] else "public"
        if isinstance(repository, dict) and isinstance(repository.get("default_branch"), str):
            result["default_branch"] = repository["default_branch"]
    for doc in [*repo.workflows, *repo.actions]:
        uses, runs = _uses_and_runs(doc.data)
        for action, store in _OIDC_ACTIONS.items():
            if any(u.lower().startswith(action) for u in uses):
                result["evidence_store"] = store
        for pattern, store in _UPLOADS.items():
            if "evidence_store" not in result and any(re.search(pattern, r) for r in runs):
                result["evidence_store"] = store
    return result


_UPLOADS = {
    r"\baws\s+s3\s+cp\b": "aws",
    r"\b(gcloud\s+storage|gsutil)\s+cp\b": "gcp",
    r"\baz\s+storage\s+blob\b": "azure",
}


def _uses_and_runs(data: Any) -> tuple[list[str], list[str]]:
    """Every step's `uses:` and `run:` in a workflow or composite action."""
    steps: list[Any] = []
    jobs = data.get("jobs") if isinstance(data, dict) else None
    for job in jobs.values() if isinstance(jobs, dict) else []:
        steps += job.get("steps") or [] if isinstance(job, dict) else []
    runs = data.get("runs") if isinstance(data, dict) else None
    steps += runs.get("steps") or [] if isinstance(runs, dict) else []
    steps = [s for s in steps if isinstance(s, dict)]
    return [s["uses"] for s in steps if isinstance(s.get("uses"), str)], [
        s["run"] for s in steps if isinstance(s.get("run"), str)
    ]


def _any_containing(repo: Repo, patterns: tuple[str, ...], *needles: tuple[str, ...]) -> bool:
    """Whether some file (outside .github) holds one needle of every group in its first 4 kB."""
    for path in repo.files(*patterns):
        rel = path.relative_to(repo.root).parts
        if rel and rel[0] in {".github", ".gitlab"} or path.name.startswith("."):
            continue
        try:
            head = path.open("rb").read(4096).decode("utf-8", "replace")
        except OSError:
            continue
        if all(any(n in head for n in group) for group in needles):
            return True
    return False


# What a repository does, from its pipeline: deploy a service, publish releases, both or neither.
_DEPLOY_ACTIONS = (
    "azure/webapps-deploy",
    "azure/k8s-deploy",
    "google-github-actions/deploy-cloudrun",
    "google-github-actions/deploy-appengine",
    "aws-actions/amazon-ecs-deploy-task-definition",
    "cloudflare/wrangler-action",
    "superfly/flyctl-actions",
    "amondnet/vercel-action",
)
_DEPLOY_COMMANDS = re.compile(
    r"\bscripts/deploy\.sh\b|kubectl\s+(?:apply|set\s+image|rollout\s+restart)|helm\s+(?:upgrade|install)\b|"
    r"terraform\s+apply|pulumi\s+up|aws\s+ecs\s+update-service|aws\s+lambda\s+update-function-code|"
    r"aws\s+cloudformation\s+deploy|gcloud\s+(?:run|app|functions)\s+deploy|az\s+(?:webapp|containerapp)\s+"
    r"(?:deploy|update)|flyctl\s+deploy|vercel\s+--prod|netlify\s+deploy\s+--prod|serverless\s+deploy|"
    r"cdk\s+deploy|argocd\s+app\s+sync"
)
_PUBLISH_ACTIONS = (
    "pypa/gh-action-pypi-publish",
    "softprops/action-gh-release",
    "goreleaser/goreleaser-action",
    "js-devtools/npm-publish",
    "ncipollo/release-action",
    "rust-lang/crates-io-auth-action",
)
PUBLISH_COMMANDS = re.compile(
    r"\b(?:twine\s+upload|uv\s+publish|poetry\s+publish|hatch\s+publish|flit\s+publish|(?:npm|pnpm)\s+publish|"
    r"yarn\s+(?:npm\s+)?publish|cargo\s+publish|goreleaser\s+release|gh\s+release\s+create|mvnw?\b[^\n]*\bdeploy\b|"
    r"gradlew?\b[^\n]*\bpublish|gem\s+push|dotnet\s+nuget\s+push)\b"
)
_RELEASE_ENVIRONMENTS = re.compile(r"^(?:pypi|testpypi|npm|crates|release|releases?|publish\w*|github-pages|docs)$")


def profile(pipeline: Pipeline) -> tuple[bool, bool, str]:
    """(deploys, publishes, why) from what the pipeline's jobs do."""
    deploys: list[str] = []
    publishes: list[str] = []
    for job in pipeline.jobs:
        deploy_steps = [s for s in job.steps if s.action in _DEPLOY_ACTIONS or _DEPLOY_COMMANDS.search(s.run)]
        publish_steps = [s for s in job.steps if s.action in _PUBLISH_ACTIONS or PUBLISH_COMMANDS.search(s.run)]
        if job.environment:
            # An environment is what its job does there: one that only publishes a package (whatever its name:
            # pypi, crates-io, maven-central) guards a release, not a production deploy.
            if _RELEASE_ENVIRONMENTS.match(job.environment) or (publish_steps and not deploy_steps):
                publishes.append(f"environment {job.environment} ({job.where})")
            elif job.environment not in {"test", "ci", "preview", "copilot"}:
                deploys.append(f"environment {job.environment} ({job.where})")
        deploys += [f"a deploy step ({step.where})" for step in deploy_steps]
        publishes += [f"a publish step ({step.where})" for step in publish_steps]
    why = []
    if deploys:
        why.append(f"deploys: {deploys[0]}")
    if publishes:
        why.append(f"publishes releases: {publishes[0]}")
    return bool(deploys), bool(publishes), "; ".join(why) or "neither deploys nor publishes"
