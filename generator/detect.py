"""Suggested answers for a repository: pipeproof's own answers file when there is one, else what the files say.

The audit decides which controls apply from these answers, so a repository pipeproof never touched is judged
by what it actually contains (a Dockerfile means container scanning applies, *.tf means IaC scanning does).
"""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2
import yaml

from generator.pipeline.model import Pipeline
from generator.repo import Repo, walk

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

# Manifests that name a language, and the source files counted to pick the primary one when there are several.
_LANGUAGES = {
    "python": (re.compile(r"^(pyproject\.toml|setup\.py|setup\.cfg|requirements[\w.-]*\.txt)$"), (".py",)),
    "node": (re.compile(r"^package\.json$"), (".js", ".mjs", ".cjs", ".jsx", ".ts", ".tsx")),
    "go": (re.compile(r"^go\.mod$"), (".go",)),
    "java": (re.compile(r"^(pom\.xml|build\.gradle(\.kts)?)$"), (".java", ".kt")),
}
_CONTAINERFILE = re.compile(r"^((Docker|Container)file([.-][\w.-]+)?|[\w.-]+\.(Docker|Container)file)$")
_K8S_FILES = {"Chart.yaml", "kustomization.yaml", "kustomization.yml", "Kustomization"}  # Helm, kustomize
_K8S = (re.compile(r"^apiVersion:", re.M), re.compile(r"^kind:", re.M))  # a manifest
_CLOUDFORMATION = re.compile(r"AWSTemplateFormatVersion|\bType\W+AWS::")
# Folders that hold dependencies or tool state, never the project's own configuration.

_OIDC_ACTIONS = {
    "aws-actions/configure-aws-credentials": "aws",
    "google-github-actions/auth": "gcp",
    "azure/login": "azure",
}


@dataclass(frozen=True)
class Tree:
    """Every file of a repository outside dependency folders, listed in one walk (POSIX paths from root)."""

    root: Path
    files: tuple[str, ...]

    @classmethod
    def scan(cls, root: Path) -> Tree:
        return cls(root, walk(root))

    def head(self, rel: str) -> str:
        """The first 4 kB of a file as text ("" when unreadable)."""
        try:
            with (self.root / rel).open("rb") as fh:
                return fh.read(4096).decode("utf-8", "replace")
        except OSError:
            return ""


def _config_candidates(tree: Tree, suffixes: tuple[str, ...]) -> list[str]:
    """Files with these suffixes outside CI folders and dotfiles (pipelines are not infrastructure)."""
    return [
        rel
        for rel in tree.files
        if rel.endswith(suffixes)
        and not rel.startswith((".github/", ".gitlab/"))
        and not rel.rsplit("/", 1)[-1].startswith(".")
    ]


def languages(tree: Tree) -> list[tuple[str, str]]:
    """Every language a manifest names, as (language, the shallowest manifest), the primary one first: the one
    with the most source files (ties: python, node, go, java)."""
    return list(_languages(tree))


@lru_cache(maxsize=4)  # retrofit's detection asks twice about the same tree; names only, so never stale
def _languages(tree: Tree) -> tuple[tuple[str, str], ...]:
    found: dict[str, str] = {}
    counts = dict.fromkeys(_LANGUAGES, 0)
    for rel in sorted(tree.files, key=lambda r: (r.count("/"), r)):
        name = rel.rsplit("/", 1)[-1]
        for language, (manifest, suffixes) in _LANGUAGES.items():
            if manifest.match(name):
                found.setdefault(language, rel)
            if name.endswith(suffixes):
                counts[language] += 1
    order = list(_LANGUAGES)
    return tuple(sorted(found.items(), key=lambda item: (-counts[item[0]], order.index(item[0]))))


def iac(tree: Tree) -> list[tuple[str, str]]:
    """Infrastructure as code found, as (kind, evidence file): Terraform, Kubernetes (manifests, Helm charts,
    kustomizations), CloudFormation."""
    found: dict[str, str] = {}
    for rel in tree.files:
        name = rel.rsplit("/", 1)[-1]
        if rel.endswith(".tf"):
            found.setdefault("terraform", rel)
        elif name in _K8S_FILES:
            found.setdefault("kubernetes", rel)
    for rel in _config_candidates(tree, (".yaml", ".yml", ".json", ".template")):
        if "kubernetes" in found and "cloudformation" in found:
            break
        head = tree.head(rel)
        if "cloudformation" not in found and _CLOUDFORMATION.search(head):
            found["cloudformation"] = rel
        elif "kubernetes" not in found and rel.endswith((".yaml", ".yml")) and all(p.search(head) for p in _K8S):
            found["kubernetes"] = rel
    return [(kind, found[kind]) for kind in ("terraform", "kubernetes", "cloudformation") if kind in found]


def containerfile(tree: Tree) -> str | None:
    """The first Dockerfile or Containerfile, if any."""
    return next((rel for rel in tree.files if _CONTAINERFILE.match(rel.rsplit("/", 1)[-1])), None)


def answers(repo: Repo, found_in_files: dict[str, Any] | None = None) -> dict[str, Any]:
    """The answers the audit judges the repository by: pipeproof's answers file, else what the files say."""
    found = dict(DEFAULTS)
    found.update(detected(repo) if found_in_files is None else found_in_files)
    doc = repo.answers_file
    if doc is not None and isinstance(doc.data, dict):
        given = {k: v for k, v in doc.data.items() if not str(k).startswith("_")}
        found.update(given)
        if "deploy_model" in given:  # rendered by pipeproof: the template's computed keys follow its answers
            from generator import answers as answers_mod
            from generator.render import template_root

            # Answers from another version may not render here: the plain answers still judge the repository.
            with contextlib.suppress(OSError, yaml.YAMLError, jinja2.TemplateError):
                found.update(answers_mod.derived(answers_mod.load_template(template_root()), found))
    return found


def detected(repo: Repo, tree: Tree | None = None) -> dict[str, Any]:
    result: dict[str, Any] = {}
    root = repo.root
    tree = tree or Tree(root, tuple(repo.all_files))
    if (root / ".gitlab-ci.yml").is_file() and not (root / ".github" / "workflows").is_dir():
        result["platform"] = "gitlab"
    found = languages(tree)
    if found:
        result["language"] = found[0][0]
    result["iac"] = [kind for kind, _ in iac(tree)]
    result["containers"] = containerfile(tree) is not None
    from generator.argocd import objects

    if objects(repo).found:  # Argo CD deploys: the GitOps controls judge it
        result["deploy_model"] = "argocd"
    settings = repo.settings
    if settings is not None and isinstance(settings.data, dict):
        repository = settings.data.get("repository") or {}
        if isinstance(repository, dict) and isinstance(repository.get("private"), bool):
            result["visibility"] = "private" if repository["private"] else "public"
        if isinstance(repository, dict) and isinstance(repository.get("default_branch"), str):
            result["default_branch"] = repository["default_branch"]
    if result.get("platform") == "gitlab":
        # The GitLab project settings payload (PUT /projects/:id) says what .github/settings.yml says on GitHub.
        project = repo.json_doc(".gitlab/settings/project.json")
        body = project.data.get("body") if project is not None and isinstance(project.data, dict) else None
        if isinstance(body, dict):
            if body.get("visibility") in {"private", "internal", "public"}:
                result["visibility"] = body["visibility"]
            if isinstance(body.get("default_branch"), str):
                result["default_branch"] = body["default_branch"]
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


@dataclass(frozen=True)
class Suggestion:
    """Answers suggested for an existing repository, and where each was found (retrofit's defaults)."""

    answers: dict[str, Any]
    why: dict[str, str]
    languages: list[tuple[str, str]]  # every language found, primary first


def suggest(root: Path) -> Suggestion:
    """What the repository says about the questions: platform, language(s), IaC, containers, default branch,
    visibility and evidence store where its files or git tell."""
    from generator import git

    repo = Repo(root)
    tree = Tree(root, repo.all_files)  # one walk: the Argo CD scan reads the same listing
    found = detected(repo, tree)
    why: dict[str, str] = {}
    answers: dict[str, Any] = {}
    workflows = [r for r in tree.files if r.startswith(".github/workflows/") and r.endswith((".yml", ".yaml"))]
    remote = git.remote_url(root) or ""
    if workflows:
        answers["platform"], why["platform"] = "github", workflows[0]
    elif (root / ".gitlab-ci.yml").is_file():
        answers["platform"], why["platform"] = "gitlab", ".gitlab-ci.yml"
    elif host := re.search(r"(github|gitlab)\.", remote):
        answers["platform"], why["platform"] = host[1], f"git remote {remote}"
    found_languages = languages(tree)
    if found_languages:
        answers["language"] = found_languages[0][0]
        why["language"] = ", ".join(f"{lang} ({where})" for lang, where in found_languages)
    kinds = iac(tree)
    answers["iac"] = [kind for kind, _ in kinds]
    why["iac"] = ", ".join(f"{kind} ({where})" for kind, where in kinds) or "none found"
    container = containerfile(tree)
    answers["containers"] = container is not None
    why["containers"] = container or "no Dockerfile or Containerfile"
    branch = found.get("default_branch")
    if branch:
        answers["default_branch"], why["default_branch"] = branch, ".github/settings.yml"
    elif branch := git.default_branch(root):
        answers["default_branch"], why["default_branch"] = branch, "git"
    for key, where in (("visibility", ".github/settings.yml"), ("evidence_store", "the workflows' uploads")):
        if key in found:
            answers[key], why[key] = found[key], where
    return Suggestion(answers, why, found_languages)


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
PUBLISH_ACTIONS = (
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
    from generator.pipeline.github import ci_pushes_production

    deploys: list[str] = []
    publishes: list[str] = []
    for job in pipeline.jobs:
        deploy_steps = [s for s in job.steps if s.action in _DEPLOY_ACTIONS or _DEPLOY_COMMANDS.search(s.run)]
        publish_steps = [s for s in job.steps if s.action in PUBLISH_ACTIONS or PUBLISH_COMMANDS.search(s.run)]
        if job.environment:
            # An environment is what its job does there: one that only publishes a package (whatever its name:
            # pypi, crates-io, maven-central) guards a release, not a production deploy.
            if _RELEASE_ENVIRONMENTS.match(job.environment) or (publish_steps and not deploy_steps):
                publishes.append(f"environment {job.environment} ({job.where})")
            elif job.environment not in {"test", "ci", "preview", "copilot"}:
                deploys.append(f"environment {job.environment} ({job.where})")
        deploys += [f"a deploy step ({step.where})" for step in deploy_steps]
        if not deploy_steps and ci_pushes_production(job):
            deploys.append(f"job {job.name} pushes production's manifests to the default branch ({job.where})")
        publishes += [f"a publish step ({step.where})" for step in publish_steps]
    why = []
    if deploys:
        why.append(f"deploys: {deploys[0]}")
    if publishes:
        why.append(f"publishes releases: {publishes[0]}")
    return bool(deploys), bool(publishes), "; ".join(why) or "neither deploys nor publishes"
