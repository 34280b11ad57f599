"""Suggested answers for a repository: pipeproof's own answers file when there is one, else what the files say.

The audit decides which controls apply from these answers, so a repository pipeproof never touched is judged
by what it actually contains (a Dockerfile means container scanning applies, *.tf means IaC scanning does).
"""

from __future__ import annotations

import re
from typing import Any

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


def answers(repo: Repo) -> dict[str, Any]:
    """The answers the audit judges the repository by, and where each came from."""
    found = dict(DEFAULTS)
    found.update(detected(repo))
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
