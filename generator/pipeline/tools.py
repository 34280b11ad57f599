"""The tools a CI step can run, what each one is for, and what makes it report without failing the job.

A control is met by any tool that meets its objective, so the registry is data: each tool names its category
(the objective: sast, sca, sbom, image-scan, secrets, iac, dast, dast-gate, tests, drift), how it is invoked
(actions, remote reusable workflows, a shell command), and its own soft switches: the option or input that
makes it exit 0 on findings, or that lowers its threshold below the control's.
"""

from __future__ import annotations

import functools
import re
import shlex
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

CATEGORIES = ("sast", "sca", "sbom", "image-scan", "secrets", "iac", "dast", "dast-gate", "tests", "drift")


@dataclass(frozen=True)
class Use:
    """One way a step uses a tool: an action's inputs, or one shell command's words."""

    inputs: Mapping[str, Any] = field(default_factory=dict)  # `with:` of an action
    command: str = ""  # the simple command, for a shell use
    config: Mapping[str, Any] = field(default_factory=dict)  # the tool's config file in the repository, if any

    def words(self) -> list[str]:
        return list(_words(self.command))

    def flag(self, *names: str) -> str | None:
        """The value of the first of --name VALUE / --name=VALUE / -n VALUE, '' for a bare flag, None if absent."""
        words = self.words()
        for i, word in enumerate(words):
            for name in names:
                if word == name:
                    following = words[i + 1] if i + 1 < len(words) else ""
                    return "" if following.startswith("-") else following
                if word.startswith(name + "="):
                    return word.split("=", 1)[1]
        return None

    def has(self, *names: str) -> bool:
        return self.flag(*names) is not None

    def input(self, name: str, default: Any = None) -> str:
        value = self.inputs.get(name, default)
        return "" if value is None else str(value).strip().lower()


@functools.lru_cache(maxsize=65536)  # a command's words are asked for once per soft switch and per control
def _words(command: str) -> tuple[str, ...]:
    try:
        return tuple(shlex.split(command, comments=False))
    except ValueError:
        return tuple(command.split())


Soft = Callable[[Use], str | None]


def _never(use: Use) -> str | None:
    return None


@dataclass(frozen=True)
class Tool:
    """A tool and the ways pipeproof recognises it."""

    name: str
    category: str
    actions: tuple[str, ...] = ()  # owner/repo[/path], lowercase, matched as a prefix of `uses:` (before @)
    workflows: tuple[str, ...] = ()  # remote reusable workflows that run it (owner/repo/.github/workflows/x.yml)
    command: re.Pattern[str] | None = None  # matches the simple command that runs it
    soft: Soft = _never
    # Some tools never fail the job on findings by design (they report elsewhere); the reason says where.
    reports_only: str = ""
    # The protection rule (a neutral Protection key) through which such a tool blocks a merge instead.
    blocks_through: str = ""


# --- soft switches -------------------------------------------------------------------------------------

_SEVERITY_RANK = {"negligible": 0, "unknown": 0, "info": 0, "low": 1, "medium": 2, "moderate": 2, "high": 3}
_SEVERITY_RANK |= {"critical": 4}


def _threshold(value: str, floor: str = "high") -> str | None:
    """Why a severity threshold is above the control's `floor` (high), or None."""
    value = value.strip().strip("'\"").lower()
    if value in _SEVERITY_RANK and _SEVERITY_RANK[value] > _SEVERITY_RANK[floor]:
        return f"its threshold is {value}, above {floor}: {floor} findings pass"
    return None


def _semgrep(use: Use) -> str | None:
    if use.command:
        words = use.words()
        if "ci" in words[1:3]:
            return None  # `semgrep ci` fails on blocking findings by default
        if not use.has("--error"):
            return "`semgrep scan` without --error exits 0 on findings"
    return None


def _gitleaks(use: Use) -> str | None:
    code = use.flag("--exit-code")
    if code is not None and code.strip() == "0":
        return "gitleaks --exit-code 0 never fails"
    return None


def _trivy(use: Use) -> str | None:
    if use.command:
        code = use.flag("--exit-code")
        config_code = str(use.config.get("exit-code", "")) if use.config else ""
        if code is None and config_code in {"", "0"}:
            return "trivy without --exit-code 1 exits 0 on findings (its default)"
        if code is not None and code.strip() == "0":
            return "trivy --exit-code 0 never fails"
        severity = use.flag("--severity", "-s")
        if severity and "HIGH" not in severity.upper():
            return f"trivy --severity {severity} lets HIGH findings pass"
        return None
    code = use.input("exit-code")
    if code in {"", "0"}:
        return f"trivy-action exit-code is {code or 'unset (0)'}, so findings do not fail"
    severity = use.input("severity")
    if severity and "high" not in severity:
        return f"trivy-action severity {severity} lets HIGH findings pass"
    return None


def _grype(use: Use) -> str | None:
    if use.command:
        value = use.flag("--fail-on", "-f")
        if value is None:
            value = str(use.config.get("fail-on-severity", "")) if use.config else ""
            if not value:
                return "grype without --fail-on exits 0 on findings"
        return _threshold(value)
    if use.input("fail-build", "true") == "false":
        return "scan-action has fail-build: false"
    return _threshold(use.input("severity-cutoff", "medium"))


def _checkov(use: Use) -> str | None:
    if use.config and (use.config.get("soft-fail") is True or use.config.get("soft-fail-on")):
        return "the repository's .checkov.yaml sets soft-fail"
    skips = str(use.config.get("skip-check", "")) if use.config else ""
    if use.command:
        if use.has("--soft-fail") or use.has("--soft-fail-on"):
            return "checkov --soft-fail never fails"
        skips += " " + (use.flag("--skip-check") or "")
    else:
        if use.input("soft_fail") == "true" or use.input("soft_fail_on"):
            return "checkov-action has soft_fail"
        skips += " " + use.input("skip_check")
    if re.search(r"(^|[\s,])(\*|CKV_\*|CKV2?_[A-Z]+_\*)", skips.upper()):
        return f"checkov skips every check of a family ({skips.strip()})"
    return None


def _dependency_review(use: Use) -> str | None:
    if use.input("warn-only") == "true":
        return "dependency review has warn-only: true"
    if use.input("vulnerability-check") == "false":
        return "dependency review has vulnerability-check: false"
    return _threshold(use.input("fail-on-severity", "low"))


def _govulncheck(use: Use) -> str | None:
    if use.command:
        fmt = use.flag("-format", "--format")
        if fmt and fmt not in {"text"}:
            return f"govulncheck -format {fmt} exits 0 whatever it finds"
        return None
    if use.input("output-format", "text") not in {"", "text"}:
        return f"govulncheck-action output-format {use.input('output-format')} never fails"
    return None


def _npm_audit(use: Use) -> str | None:
    level = use.flag("--audit-level")
    return _threshold(level) if level else None


def _cargo_deny(use: Use) -> str | None:
    # `cargo deny check` runs every check; naming some (bans, licenses, sources) leaves advisories out.
    text = use.command if use.command else f"check {use.input('command', 'check')}"
    words = text.split()
    if "check" not in words:
        return None
    checks = {w for w in words[words.index("check") + 1 :] if not w.startswith("-")}
    if checks & {"bans", "licenses", "sources"} and "advisories" not in checks:
        return f"cargo deny checks only {', '.join(sorted(checks))}, not advisories (vulnerabilities)"
    return None


def _osv(use: Use) -> str | None:
    if use.inputs and use.input("fail-on-vuln", "true") == "false":
        return "osv-scanner workflow has fail-on-vuln: false"
    return None


def _gosec(use: Use) -> str | None:
    text = use.command or use.input("args")
    if "-no-fail" in text:
        return "gosec -no-fail never fails"
    return None


def _bandit(use: Use) -> str | None:
    if use.has("--exit-zero"):
        return "bandit --exit-zero never fails"
    return None


def _zap(use: Use) -> str | None:
    if use.command:
        if re.search(r"\bzap\.sh\b", use.command) and "-autorun" in use.command:
            return "ZAP's automation run exits 0 on alerts unless its plan has an exitStatus job"
        return None
    if use.input("fail_action", "false") != "true":
        return "the ZAP action has no fail_action: true"
    return None


def _trufflehog(use: Use) -> str | None:
    if use.command and not use.has("--fail"):
        return "trufflehog without --fail exits 0 on findings"
    return None


def _pipeproof(use: Use) -> str | None:
    level = use.flag("--fail-on") if use.command else use.input("fail-on")
    return _threshold(level, "low") if level else None


def _cmd(pattern: str) -> re.Pattern[str]:
    # The tool's name as a word of the command: start of the command, or after a path / `python -m` / a runner.
    return re.compile(
        rf"(?:^|[\s/\"'=]|:-|\bpython3? -m |\buvx? (?:run )?|\bpipx run (?:--spec \S+ )?|\bnpx ){pattern}"
    )


TOOLS: tuple[Tool, ...] = (
    # SAST
    Tool(
        "semgrep",
        "sast",
        ("semgrep/semgrep-action", "returntocorp/semgrep-action"),
        command=_cmd(r"semgrep\s+(?:scan|ci|--config)\b"),
        soft=_semgrep,
    ),
    Tool(
        "codeql",
        "sast",
        ("github/codeql-action/analyze",),
        reports_only="CodeQL uploads to code scanning and never fails the job; it blocks a merge only through a "
        "code_scanning rule of a ruleset or branch protection's code scanning results",
        blocks_through="code_scanning",
    ),
    Tool("gosec", "sast", ("securego/gosec",), command=_cmd(r"gosec\b"), soft=_gosec),
    Tool("bandit", "sast", command=_cmd(r"bandit\s"), soft=_bandit),
    # SCA (dependency vulnerabilities and licences)
    Tool("dependency-review", "sca", ("actions/dependency-review-action",), soft=_dependency_review),
    Tool(
        "osv-scanner",
        "sca",
        ("google/osv-scanner-action",),
        workflows=(
            "google/osv-scanner-action/.github/workflows/osv-scanner-reusable.yml",
            "google/osv-scanner-action/.github/workflows/osv-scanner-reusable-pr.yml",
        ),
        command=_cmd(r"osv-scanner(?:\}?\"?)?\s+(?:scan|--)"),
        soft=_osv,
    ),
    Tool("govulncheck", "sca", ("golang/govulncheck-action",), command=_cmd(r"govulncheck\b"), soft=_govulncheck),
    Tool("pip-audit", "sca", ("pypa/gh-action-pip-audit",), command=_cmd(r"pip[-_]audit\b")),
    Tool("npm-audit", "sca", command=re.compile(r"\b(?:npm|pnpm|yarn)\s+audit\b"), soft=_npm_audit),
    Tool(
        "cargo-audit",
        "sca",
        ("rustsec/audit-check", "actions-rust-lang/audit", "embarkstudios/cargo-deny-action"),
        command=re.compile(r"\bcargo\s+(?:audit|deny\b[^|;&]*?\scheck)\b"),
        soft=_cargo_deny,
    ),
    Tool("trivy-fs", "sca", command=_cmd(r"trivy\s+(?:fs|filesystem|repo|repository)\b"), soft=_trivy),
    Tool(
        "grype-dir",
        "sca",
        command=_cmd(r"grype\s+(?:dir:|sbom:|file:|\.\s|\.$|[\w./-]+\.(?:json|spdx|cdx))"),
        soft=_grype,
    ),
    # SBOM
    Tool("syft", "sbom", ("anchore/sbom-action",), command=_cmd(r"syft\s")),
    Tool(
        "cyclonedx",
        "sbom",
        ("cyclonedx/gh-node-module-generatebom", "cyclonedx/cdxgen-action"),
        command=re.compile(r"\b(?:cyclonedx-py|cyclonedx-npm|cdxgen|cyclonedx-gomod)\b"),
    ),
    # Container images
    Tool("trivy", "image-scan", ("aquasecurity/trivy-action",), command=_cmd(r"trivy\s+(?:image|i)\b"), soft=_trivy),
    Tool(
        "grype",
        "image-scan",
        ("anchore/scan-action",),
        command=_cmd(r"grype\s+(?:registry:|docker:|oci-|podman:|[\w.-]+/[\w./-]+[:@])"),
        soft=_grype,
    ),
    # Secrets
    Tool(
        "gitleaks",
        "secrets",
        ("gitleaks/gitleaks-action",),
        command=_cmd(r"gitleaks\"?\s+(?:git|detect|dir|protect)\b"),
        soft=_gitleaks,
    ),
    Tool("trufflehog", "secrets", ("trufflesecurity/trufflehog",), command=_cmd(r"trufflehog\s"), soft=_trufflehog),
    # Infrastructure as code
    Tool("checkov", "iac", ("bridgecrewio/checkov-action",), command=_cmd(r"checkov\s"), soft=_checkov),
    Tool("tfsec", "iac", ("aquasecurity/tfsec-action",), command=_cmd(r"tfsec\b")),
    Tool("trivy-config", "iac", command=_cmd(r"trivy\s+config\b"), soft=_trivy),
    Tool("kics", "iac", ("checkmarx/kics-github-action",), command=_cmd(r"kics\s+scan\b")),
    # DAST and the gates that decide on its report
    Tool(
        "zap",
        "dast",
        ("zaproxy/action-full-scan", "zaproxy/action-baseline", "zaproxy/action-api-scan", "zaproxy/action-af"),
        command=re.compile(r"\b(?:zap-(?:full|baseline|api)-scan\.py|zap\.sh[\"']?\s[^|;&]*-autorun)"),
        soft=_zap,
    ),
    # A gate reads ZAP's report (its riskcode field) and exits non-zero; it is recognised by what it reads,
    # not by its file name, so a gate script that exits 0 before reading counts for nothing.
    Tool("zap-gate", "dast-gate", command=re.compile(r"riskcode")),
    # Tests
    Tool(
        "tests",
        "tests",
        command=re.compile(
            r"(?:^|[\s/])(?:py\.?test|nox|tox|hatch\s+(?:run\s+\S*test|test)|go\s+test|cargo\s+(?:test|nextest)|"
            r"(?:npm|pnpm|yarn|bun)(?:\s+-{1,2}[\w-]+(?:[= ][^\s-]\S*)?)*\s+(?:run\s+)?test\b|"
            r"mvnw?\b[^|;&]*\b(?:test|verify|install)\b|"
            r"gradlew?\b[^|;&]*\b(?:test|check|build)\b|make\s+(?:[\w-]*\s+)*(?:test|tests|check|ci)\b|"
            r"just\s+(?:test|check|ci)\b|bazel\s+test|ctest\b|dotnet\s+test|phpunit|rspec|mix\s+test|"
            r"swift\s+test|deno\s+test)"
        ),
    ),
    # Control drift
    # pipeproof itself, or its package run from a checkout (`python -m generator audit`).
    Tool(
        "pipeproof",
        "drift",
        ("pipeproof/pipeproof",),
        command=_cmd(r"(?:pipeproof|-m\s+generator)\s+audit\b"),
        soft=_pipeproof,
    ),
)

BY_NAME = {tool.name: tool for tool in TOOLS}


@functools.lru_cache(maxsize=4096)
def for_action(action: str) -> tuple[Tool, ...]:
    """Tools an action (owner/repo[/path], lowercase, without @ref) runs."""
    return tuple(tool for tool in TOOLS if any(action == a or action.startswith(a + "/") for a in tool.actions))


def for_workflow(path: str) -> list[Tool]:
    """Tools a remote reusable workflow (owner/repo/.github/workflows/x.yml) is known to run."""
    return [tool for tool in TOOLS if path.lower() in tool.workflows]


def for_command(command: str) -> list[Tool]:
    """Tools a simple shell command runs."""
    return [tool for tool in TOOLS if tool.command is not None and tool.command.search(command)]


# A package manager installing a tool does not run it (`pip install bandit`, `go install .../gosec@v2.21.4`).
_INSTALL = re.compile(
    r"^(?:sudo\s+)?(?:\S*python[\d.]*\s+-m\s+)?(?:"
    r"(?:pip3?|pipx|uv\s+(?:pip|tool)|gem|brew|apt(?:-get)?|apk|dnf|yum|choco|snap)\s+(?:-\S+\s+)*install|"
    r"uv\s+add|go\s+(?:install|get)|cargo\s+(?:install|binstall)|(?:npm|pnpm|bun)\s+(?:-\S+\s+)*(?:install|i|add)|"
    r"yarn\s+(?:global\s+)?add)\b(?!-)"
)
_CONTAINER_RUN = re.compile(r"^(?:sudo\s+)?(?:docker|podman|nerdctl)\s+(?:container\s+)?run\s")
# `docker run` switches that take no value; every other option takes one (`--restart always`, `--name x`).
_RUN_SWITCHES = frozenset(
    {
        "--detach",
        "--rm",
        "--interactive",
        "--tty",
        "--init",
        "--privileged",
        "--read-only",
        "--publish-all",
        "--quiet",
        "--no-healthcheck",
        "--oom-kill-disable",
        "--sig-proxy",
        "--disable-content-trust",
    }
)
_RUN_SHORT_SWITCHES = frozenset("ditPq")


def container_run(command: str) -> tuple[str, list[str]] | None:
    """(image, arguments) of a `docker run` / `podman run` command, or None for any other command."""
    if not _CONTAINER_RUN.match(command.strip()):
        return None
    words = Use(command=command).words()
    i = words.index("run") + 1 if "run" in words else len(words)
    while i < len(words):
        word = words[i]
        if word == "--":
            i += 1
            break
        if not word.startswith("-") or word == "-":
            break
        switch = word in _RUN_SWITCHES or (not word.startswith("--") and set(word[1:]) <= _RUN_SHORT_SWITCHES)
        i += 1 if "=" in word or switch else 2
    return (words[i], words[i + 1 :]) if i < len(words) else None


@functools.lru_cache(maxsize=65536)  # the same commands recur in every copy of a workflow or script
def uses_of(command: str) -> tuple[tuple[Tool, str], ...]:
    """(tool, the command line it runs with) for every tool a simple shell command runs.

    Installing a tool runs nothing. `docker run [options] IMAGE ARGS` runs the image's entrypoint, which for
    scanner images is the scanner, so `docker run --rm -v "$PWD:/src" aquasec/trivy:0.57.0 fs --exit-code 1
    /src` is `trivy fs --exit-code 1 /src`.
    """
    if _INSTALL.match(command.strip()):
        return ()
    run = container_run(command)
    if run is not None:
        image, args = run
        command = shlex.join([image.split("@")[0].rsplit("/", 1)[-1].split(":")[0], *args])
    return tuple((tool, command) for tool in for_command(command))
