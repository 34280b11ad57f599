"""GitOps with Argo CD: separated environments and duties, production from reviewed commits, Git as change log.

The checks judge Argo CD objects (AppProject, Application, argocd-rbac-cm) wherever they are in a repository;
they name no CI platform (PP-ARGO-04 reads the neutral pipeline model), so GitLab joins by adding its files.
"""

from __future__ import annotations

import re
from fnmatch import fnmatchcase
from typing import Any, ClassVar

from generator.argocd import ArgoCD, Obj, PolicyFile, as_map, grants, is_production, parse_policy, rbac_policy
from generator.controls.base import Control, Finding, Outcome, Severity, failed, passed, unknown
from generator.controls.judge import commands_only
from generator.controls.needs import Need
from generator.pipeline.model import SCHEDULE, Job, Pipeline
from generator.repo import Repo

ARGO_TEAM = Need(
    "argocd-applied",
    "the argocd/ manifests applied to Argo CD by its administrators (AppProjects, Applications, the RBAC and "
    "notification ConfigMaps); the deployers and developers SSO groups mapped by its Dex or OIDC connector; and "
    "{health_path} on staging answering the commit it runs (the DAST job waits for it: that is how it knows Argo "
    "CD has synced)",
    None,
)
# GitHub's credentials for the GitOps flow; on GitLab the next steps name the two project access tokens.
GITOPS_APP = Need(
    "gitops-app",
    "a GitHub App (contents and pull requests: write) whose id is the GITOPS_APP_ID variable and whose key is the "
    "GITOPS_APP_PRIVATE_KEY secret of the gitops environment, and Argo CD's notifications app (deployments and "
    "statuses: write) installed on this repository",
    None,
)


class GitOps(Control):
    family = "deploy"
    applies = "deploy_model == 'argocd'"
    # The Argo CD objects are the same on every platform; the CI side (propose, verify, record, revert) is
    # rendered for GitHub and GitLab alike.
    platforms = frozenset({"github", "gitlab"})
    owner = "Platform team (control owner, runs Argo CD); the security team reviews the projects and RBAC quarterly"
    frequency = "Every change to argocd/ (continuous); the live Argo CD configuration reviewed quarterly"
    population = dict.fromkeys(
        ("github", "gitlab"),
        'git log --format="%H %an %ad %s" -- argocd/ for the period, and argocd proj list -o yaml / '
        "kubectl -n argocd get cm argocd-rbac-cm -o yaml from the live installation",
    )
    needs: ClassVar[tuple[Need, ...]] = (ARGO_TEAM, GITOPS_APP)


def _items(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _none(argocd: ArgoCD) -> Outcome:
    return failed("no Argo CD AppProject or Application found in the repository")


def _destination(spec: dict[str, Any]) -> tuple[str, str, str]:
    dest = as_map(spec.get("destination"))
    return str(dest.get("server") or ""), str(dest.get("name") or ""), str(dest.get("namespace") or "")


def _allowed(project: Obj, server: str, name: str, namespace: str) -> bool:
    """Whether the project's destinations admit the Application's (globs, as Argo CD matches them)."""
    for d in _items(project.spec.get("destinations")):
        if not isinstance(d, dict):
            continue
        ns_ok = fnmatchcase(namespace, str(d.get("namespace", "")))
        if server and d.get("server") is not None and fnmatchcase(server, str(d["server"])) and ns_ok:
            return True
        if name and d.get("name") is not None and fnmatchcase(name, str(d["name"])) and ns_ok:
            return True
    return False


class PP_ARGO_01(GitOps):
    """Each environment is an Argo CD project confined to one repository, cluster and namespace"""

    id = "PP-ARGO-01"
    soc2 = ("CC6.1",)
    iso27001 = ("A.8.31",)
    severity = Severity.HIGH
    implemented_by = {
        "github": ("argocd/projects/staging.yaml", "argocd/projects/production.yaml"),
        "gitlab": ("argocd/projects/staging.yaml", "argocd/projects/production.yaml"),
    }
    remediation = (
        "Give each environment its own AppProject: sourceRepos the manifests repository only, destinations one "
        "cluster and namespace (no '*'), an empty or explicit clusterResourceWhitelist (no '*'), and keep every "
        "Application inside its project's destinations (never the default project)."
    )
    evidence = "The AppProjects and Applications under argocd/, and their history in Git."
    procedure = (
        "Compare the live AppProjects (argocd proj get <name> -o yaml) with argocd/projects/: each has one "
        "source repository, one destination cluster and namespace, no cluster-scoped resources; confirm every "
        "production Application belongs to the production project."
    )

    @classmethod
    def check(cls, argocd: ArgoCD) -> Outcome:
        if not argocd.projects and not argocd.applications:
            return _none(argocd)
        findings: list[Finding] = []
        for p in argocd.projects:
            if "*" in [str(r) for r in _items(p.spec.get("sourceRepos"))]:
                findings.append(
                    Finding(
                        p.at("spec", "sourceRepos"),
                        f"AppProject {p.name} accepts any source repository (sourceRepos '*')",
                    )
                )
            for i, d in enumerate(_items(p.spec.get("destinations"))):
                if isinstance(d, dict) and ("*" in (str(d.get("server")), str(d.get("name")), str(d.get("namespace")))):
                    findings.append(
                        Finding(
                            p.at("spec", "destinations", i),
                            f"AppProject {p.name} deploys to any cluster or namespace ('*' destination)",
                        )
                    )
            for i, r in enumerate(_items(p.spec.get("clusterResourceWhitelist"))):
                if isinstance(r, dict) and (
                    str(r.get("kind")) == "*" or (str(r.get("group")) == "*" and str(r.get("kind")) in {"*", "None"})
                ):
                    findings.append(
                        Finding(
                            p.at("spec", "clusterResourceWhitelist", i),
                            f"AppProject {p.name} allows every cluster-scoped resource "
                            "('*' in clusterResourceWhitelist)",
                        )
                    )
        members: dict[str, set[bool]] = {}
        for app in argocd.applications:
            project_name = str(app.spec.get("project") or "default")
            members.setdefault(project_name, set()).add(is_production(app.name))
            if project_name == "default":
                findings.append(
                    Finding(
                        app.at("spec", "project"),
                        f"Application {app.name} uses the default project, which allows every source and destination",
                    )
                )
                continue
            project = argocd.project(project_name)
            if project is None:
                continue  # defined outside this repository: the live installation decides
            server, name, namespace = _destination(app.spec)
            if not _allowed(project, server, name, namespace):
                target = f"{server or name or '(no cluster)'}/{namespace or '(no namespace)'}"
                findings.append(
                    Finding(
                        app.at("spec", "destination"),
                        f"Application {app.name} deploys to {target}, "
                        f"outside the destinations of project {project_name}",
                    )
                )
        for project_name, kinds in members.items():
            if kinds == {True, False}:
                where = argocd.project(project_name)
                findings.append(
                    Finding(
                        where.at() if where else f"{argocd.files[0]}:1",
                        f"project {project_name} holds production and non-production Applications: "
                        "environments are not separated",
                    )
                )
        if findings:
            return failed(findings[0].message, *findings)
        return passed(
            f"{len(argocd.projects)} AppProject(s) confined to their repositories, clusters and namespaces; "
            "every Application inside its project",
            *(p.at() for p in argocd.projects),
        )


def _deployers(answers: dict[str, Any]) -> set[str]:
    group = answers.get("argocd_deployers_group")
    return {str(group)} if group else set()


# Without the answers, who counts as a deployer: a group or role named for releasing or operating production.
_DEPLOYER_NAME = re.compile(r"deploy|release|sre|\bops\b|-ops\b|operat|on-?call|platform", re.IGNORECASE)


def _is_deployer(subject: str, deployers: set[str]) -> bool:
    return subject in deployers if deployers else bool(_DEPLOYER_NAME.search(subject))


def _production_objects(argocd: ArgoCD, policy: PolicyFile) -> list[str]:
    projects = {p.name for p in argocd.projects if is_production(p.name)}
    projects |= {
        str(a.spec.get("project")) for a in argocd.applications if is_production(a.name) and a.spec.get("project")
    }
    projects |= {
        p.object.split("/", 1)[0]
        for p in policy.policies
        if "/" in p.object and is_production(p.object.split("/", 1)[0])
    }
    return [f"{p}/app" for p in sorted(projects or {"production", "prod"})]


def _with_admin(policy: PolicyFile) -> PolicyFile:
    # Argo CD's built-in role:admin may do everything (a deny line still wins).
    from generator.argocd import Policy

    builtin = Policy(0, "role:admin", "*", "*", "*", "allow")
    return PolicyFile((*policy.policies, builtin), policy.groupings, policy.errors)


class PP_ARGO_02(GitOps):
    """Only deployers can sync production in Argo CD, and nobody is an administrator by default"""

    id = "PP-ARGO-02"
    soc2 = ("CC6.1",)
    iso27001 = ("A.8.31", "A.8.2")
    severity = Severity.CRITICAL
    prevents = ("no-separate-approval",)
    implemented_by = {
        "github": ("argocd/argocd-rbac-cm.yaml", "argocd/projects/production.yaml"),
        "gitlab": ("argocd/argocd-rbac-cm.yaml", "argocd/projects/production.yaml"),
    }
    remediation = (
        "In argocd-rbac-cm keep policy.default empty or role:readonly (never role:admin), grant `applications, "
        "sync` on the production project only to the deployers' role, deny developers sync, update/*, delete/* "
        "and exec on production, and write every policy.csv line as `p, subject, resource, action, object, "
        "effect` or `g, group, role`."
    )
    evidence = "argocd-rbac-cm and the production AppProject's roles under argocd/, and their history in Git."
    procedure = (
        "Compare the live argocd-rbac-cm with argocd/argocd-rbac-cm.yaml; for a sample of production syncs in "
        "the sync records, find who started each in Argo CD (the Application's OperationStarted events, or "
        "status.operationState.operation.initiatedBy) and confirm that user belongs to the deployers group or, "
        "for an automated sync, that production syncs automatically by the answers."
    )

    @classmethod
    def check(cls, argocd: ArgoCD, answers: dict[str, Any]) -> Outcome:
        if not argocd.rbac and not argocd.projects:
            return _none(argocd)
        deployers = _deployers(answers)
        findings: list[Finding] = []
        for cm in argocd.rbac:
            policy, default = rbac_policy(cm)
            where_csv = cm.at("data", "policy.csv")
            findings += [Finding(f"{cm.doc.path}:{line}", f"policy.csv: {why}") for line, why in policy.errors]
            if default.strip() == "role:admin":
                findings.append(
                    Finding(
                        cm.at("data", "policy.default"),
                        "policy.default is role:admin: every authenticated user administers Argo CD",
                    )
                )
            full = _with_admin(policy)
            subjects = {g.subject for g in policy.groupings if not g.subject.startswith("role:")}
            for obj in _production_objects(argocd, policy):
                for subject in sorted(subjects):
                    lines = grants(full, subject, "applications", "sync", obj)
                    if lines and not _is_deployer(subject, deployers):
                        line = next((p.line for p in lines if p.line), 0)
                        where = f"{cm.doc.path}:{line}" if line else where_csv
                        findings.append(
                            Finding(
                                where, f"{subject} is not a deployer and may sync production ({obj.split('/')[0]}/*)"
                            )
                        )
                if default.strip() not in {"", "role:readonly"} and grants(
                    full, default.strip(), "applications", "sync", obj
                ):
                    findings.append(
                        Finding(
                            cm.at("data", "policy.default"),
                            f"policy.default {default.strip()} lets everyone sync production",
                        )
                    )
        for project in argocd.projects:
            if not is_production(project.name):
                continue
            for i, role in enumerate(_items(project.spec.get("roles"))):
                if not isinstance(role, dict):
                    continue
                role_policy = parse_policy("\n".join(str(p) for p in _items(role.get("policies"))))
                findings += [
                    Finding(project.at("spec", "roles", i), f"role {role.get('name')}: {why}")
                    for _, why in role_policy.errors
                ]
                if not any(p.effect == "allow" and fnmatchcase("sync", p.action) for p in role_policy.policies):
                    continue
                for group in map(str, _items(role.get("groups"))):
                    if not _is_deployer(group, deployers):
                        findings.append(
                            Finding(
                                project.at("spec", "roles", i),
                                f"project role {role.get('name')} lets {group}, not a deployer, "
                                f"sync production project {project.name}",
                            )
                        )
        if findings:
            return failed(findings[0].message, *findings)
        if not argocd.rbac:
            return unknown(
                "no argocd-rbac-cm in the repository: who may sync production is set in the live installation",
                *(p.at() for p in argocd.projects if is_production(p.name)),
            )
        who = ", ".join(sorted(deployers)) or "groups named for releasing or operating production"
        return passed(
            f"only deployers ({who}) may sync production; policy.default is not admin", *(c.at() for c in argocd.rbac)
        )


_SHA = re.compile(r"\A[0-9a-f]{40}\Z")
_TAG = re.compile(r"\Av?\d+(?:\.\d+)*(?:[-+][\w.-]+)?\Z")


def _sources(spec: dict[str, Any]) -> list[dict[str, Any]]:
    found = [spec["source"]] if isinstance(spec.get("source"), dict) else []
    return found + [s for s in _items(spec.get("sources")) if isinstance(s, dict)]


def _owned(repo: Repo, path: str, platform: str) -> bool:
    """Whether the platform's CODEOWNERS gives the folder `path` to someone: the last rule matching a file in it
    has owners."""
    from generator.controls.branch import _owner

    doc = repo.gitlab_codeowners if platform == "gitlab" else repo.codeowners
    if doc is None or not isinstance(doc.data, list):
        return False
    owner = _owner(doc.data, path.strip("/") + "/kustomization.yaml")
    return owner is not None and bool(owner[1])


class PP_ARGO_03(GitOps):
    """Production syncs only reviewed commits, inside sync windows, without automatic pruning"""

    id = "PP-ARGO-03"
    soc2 = ("CC8.1",)
    iso27001 = ("A.8.32", "A.8.31")
    severity = Severity.CRITICAL
    implemented_by = {
        "github": (
            "argocd/applications/production.yaml",
            "argocd/projects/production.yaml",
            ".github/CODEOWNERS",
            "{production_workflow}#{production_job}",
        ),
        "gitlab": (
            "argocd/applications/production.yaml",
            "argocd/projects/production.yaml",
            ".gitlab/CODEOWNERS",
            ".gitlab-ci.yml#verify-production",
        ),
    }
    remediation = (
        "Point the production Application at the protected default branch, keep automated sync off (or on "
        "without prune), give the production AppProject syncWindows (an allow window in business hours and a "
        "deny window outside them), and make CODEOWNERS cover the production path so its promotion needs review."
    )
    evidence = (
        "The production Application, AppProject and CODEOWNERS under version control; the promotion pull "
        "requests and their reviews."
    )
    procedure = (
        "For each sampled production sync in the sync records, find the promotion commit it synced and confirm "
        "its pull or merge request was approved by a code owner other than its author before it merged."
    )

    @classmethod
    def check(cls, argocd: ArgoCD, answers: dict[str, Any], repo: Repo, pipeline: Pipeline) -> Outcome:
        from generator.pipeline.github import ci_pushes_production

        production = [a for a in argocd.applications if is_production(a.name)]
        if not production:
            if not argocd.applications:
                return _none(argocd)
            return failed(
                "no production Application found (an Application named prod or production)",
                *(a.at() for a in argocd.applications[:1]),
            )
        branch = str(answers.get("default_branch") or "main")
        findings: list[Finding] = [
            Finding(
                job.where,
                f"job {job.name} pushes production's manifests straight to {branch}: Argo CD syncs a change nobody "
                "reviewed (propose it as a pull or merge request instead)",
            )
            for job in pipeline.jobs
            if ci_pushes_production(job)
        ]
        for app in production:
            for source in _sources(app.spec):
                rev = str(source.get("targetRevision") or "HEAD")
                if not (rev in {branch, "HEAD", f"refs/heads/{branch}"} or _SHA.match(rev) or _TAG.match(rev)):
                    findings.append(
                        Finding(
                            app.at("spec", "source", "targetRevision"),
                            f"production follows {rev}, not the protected branch {branch}: its commits need no review",
                        )
                    )
                path = str(source.get("path") or "")
                if (
                    path
                    and (repo.root / path).is_dir()
                    and not _owned(repo, path, str(answers.get("platform") or "github"))
                ):
                    findings.append(
                        Finding(
                            app.at("spec", "source", "path"),
                            f"CODEOWNERS does not cover {path}: a promotion to production needs no code-owner review",
                        )
                    )
            sync_policy = as_map(app.spec.get("syncPolicy"))
            automated = sync_policy.get("automated") if isinstance(sync_policy.get("automated"), dict) else None
            if automated is not None:
                if automated.get("prune") is True:
                    findings.append(
                        Finding(
                            app.at("spec", "syncPolicy", "automated", "prune"),
                            f"production Application {app.name} syncs automatically with prune: true "
                            "(deletes production resources with no one deciding)",
                        )
                    )
                if answers.get("argocd_production_automated") is False:
                    findings.append(
                        Finding(
                            app.at("spec", "syncPolicy", "automated"),
                            f"production Application {app.name} syncs automatically, "
                            "but the answers chose manual sync by deployers",
                        )
                    )
            project = argocd.project(str(app.spec.get("project") or ""))
            if project is not None and not _items(project.spec.get("syncWindows")):
                findings.append(
                    Finding(
                        project.at("spec"),
                        f"production project {project.name} has no syncWindows: production may change at any hour",
                    )
                )
        if findings:
            return failed(findings[0].message, *findings)
        return passed(
            f"production follows {branch} (reviewed pull requests), inside sync windows, never pruning on its own",
            *(a.at() for a in production),
        )


# `git [-c k=v ...] revert`, as a command (comments say what a script does, not what it runs).
_REVERT = re.compile(r"^\s*git\b(?:\s+-c\s+(?:'[^']*'|\"[^\"]*\"|[^\s'\"])+)*\s+revert\b", re.MULTILINE)


# GitLab's Deployments API, as a script path: projects/<id>/deployments.
_DEPLOYMENTS_API = re.compile(r"projects/\S+/deployments\b")


def _workflow_events(pipeline: Pipeline, job: Job) -> set[Any]:
    """The events of a GitHub workflow's `on:`."""
    doc = pipeline.docs.get(job.file)
    on = doc.data.get("on", doc.data.get(True)) if doc is not None and isinstance(doc.data, dict) else None
    return set(on) if isinstance(on, dict) else ({on} if isinstance(on, str) else set(on or ()))


_SUBSCRIBE = re.compile(r"\Anotifications\.argoproj\.io/subscribe\.(on-sync-[\w-]+|on-health-degraded|on-deployed)\.")


class PP_ARGO_04(GitOps):
    """Git history is the change log: promotions, Argo CD syncs and rollbacks each leave a record"""

    id = "PP-ARGO-04"
    soc2 = ("CC8.1",)
    iso27001 = ("A.8.32", "A.8.15")
    severity = Severity.HIGH
    implemented_by = {
        "github": (
            "argocd/argocd-notifications-cm.yaml",
            ".github/workflows/argocd-sync.yml#sync-record",
            ".github/workflows/rollback.yml#rollback",
        ),
        "gitlab": (
            "argocd/argocd-notifications-cm.yaml",
            ".gitlab-ci.yml#sync-record",
            ".gitlab-ci.yml#rollback",
        ),
    }
    remediation = (
        "Subscribe the production Application to on-sync-succeeded and on-sync-failed notifications that report "
        "back to the repository, record each report in CI (the sync history), and roll back by reverting the "
        "promotion commit in a workflow that leaves a rollback record."
    )
    evidence = (
        "Sync records and rollback records: workflow artifacts ({retention} days) and the evidence store "
        "({store_retention}); the promotion commits in Git."
    )
    procedure = (
        "For each sampled production sync, match its sync record to a promotion commit and that commit's "
        "deployment record; for each rollback, confirm the revert commit, its pull or merge request and its rollback "
        "record."
    )

    @classmethod
    def check(cls, argocd: ArgoCD, pipeline: Pipeline) -> Outcome:
        production = [a for a in argocd.applications if is_production(a.name)]
        if not production:
            return _none(argocd) if not argocd.applications else failed("no production Application found")
        findings: list[Finding] = []
        for app in production:
            notes = as_map(as_map(app.data.get("metadata")).get("annotations"))
            triggers = {m[1] for key in notes if (m := _SUBSCRIBE.match(str(key)))}
            if not {"on-sync-succeeded", "on-sync-failed"} <= triggers:
                findings.append(
                    Finding(
                        app.at("metadata"),
                        f"production Application {app.name} does not report every successful and failed sync "
                        "(notifications subscriptions on-sync-succeeded and on-sync-failed)",
                    )
                )
        recorded = reverted = False
        gitlab = pipeline.platform == "gitlab"
        for job in pipeline.jobs:
            text = commands_only("\n".join(s.text for s in job.steps))
            if gitlab:
                # Argo CD reports each sync as a GitLab deployment (Deployments API); a scheduled job reads them back.
                if job.runs_on(SCHEDULE) and _DEPLOYMENTS_API.search(text) and re.search(r"record", text):
                    recorded = True
            elif "deployment_status" in _workflow_events(pipeline, job) and re.search(r"record", text):
                recorded = True
            if _REVERT.search(text) and re.search(r"record", text, re.IGNORECASE):
                reverted = True
        if not recorded:
            how = (
                "a scheduled job that reads the deployments Argo CD reports and writes a record"
                if gitlab
                else "a deployment_status job that writes a record"
            )
            findings.append(Finding(f"{argocd.files[0]}:1", f"no workflow records Argo CD's sync reports ({how})"))
        if not reverted:
            findings.append(
                Finding(
                    f"{argocd.files[0]}:1", "no workflow rolls back by reverting a promotion commit and recording it"
                )
            )
        if findings:
            return failed(findings[0].message, *findings)
        return passed(
            "production syncs are reported and recorded; rollback is a recorded git revert",
            *(a.at() for a in production),
        )
