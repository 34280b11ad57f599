"""`pipeproof validate`: every linter's findings come back as file:line; a missing linter is exit 2."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from generator.cli import main
from tests.helpers import GOLDEN, ROOT

PR = ".github/workflows/pr-checks.yml"


def test_each_validator_reports_its_own_finding_with_a_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tree = tmp_path / "tree"
    shutil.copytree(GOLDEN / "python-defaults", tree)
    text = (tree / PR).read_text()
    text = re.sub(r"actions/checkout@[0-9a-f]{40}", "actions/checkout@v4", text, count=1)  # zizmor: unpinned-uses
    text = text.replace("name: pr-checks\n", "name: pr-checks   \n", 1)  # yamllint: trailing spaces
    (tree / PR).write_text(text)
    # zizmor skips a workflow its own parser rejects, so the schema break goes into another file.
    deploy = tree / ".github/workflows/rollback-drill.yml"
    deploy.write_text(deploy.read_text().replace("timeout-minutes: 60", "timeout-minutes: sixty", 1))
    assert main(["validate", str(tree)]) == 1
    out = capsys.readouterr().out
    for tool, path in [
        ("yamllint", PR),
        ("zizmor", PR),
        ("actionlint", deploy.name),
        ("check-jsonschema", deploy.name),
    ]:
        assert re.search(rf"^\S*{re.escape(path)}:\d+:\d+: {tool}: ", out, re.M), f"{tool}:\n{out}"
    assert re.search(r"zizmor: \[unpinned-uses\]", out)


def test_missing_validator_is_exit_2_with_an_install_hint(tmp_path: Path) -> None:
    # A Python outside the virtualenv, with no validators on PATH or beside it.
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "python").symlink_to(os.path.realpath(sys.executable))
    site = [p for p in sys.path if p.endswith("site-packages")]
    env = {"PATH": str(bindir), "PYTHONPATH": os.pathsep.join([str(ROOT), *site]), "HOME": str(tmp_path)}
    proc = subprocess.run(
        [str(bindir / "python"), "-m", "generator", "validate", str(GOLDEN / "python-defaults")],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2, proc.stderr
    assert "missing validators: actionlint, check-jsonschema, yamllint, zizmor" in proc.stderr
    assert "pip install 'pipeproof[validators]'" in proc.stderr


def test_not_a_directory_is_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(tmp_path / "nope")]) == 2
    assert "is not a directory" in capsys.readouterr().err


ARGO = "argocd-team-private"


@pytest.mark.parametrize(
    ("rel", "old", "new", "tool", "needle"),
    [
        ("argocd/projects/production.yaml", "kind: deny", "kind: block", "check-jsonschema", "'block' is not one of"),
        (
            "argocd/projects/production.yaml",
            'duration: "16h"',
            "duration: 16",
            "check-jsonschema",
            "syncWindows[1].duration",
        ),
        (
            "argocd/projects/production.yaml",
            "      manualSync: true\n",
            "      manualSync: yes-please\n",
            "check-jsonschema",
            "manualSync",
        ),
        (
            "argocd/projects/staging.yaml",
            "  sourceRepos:\n",
            "  sourceRepo:\n",
            "check-jsonschema",
            "'sourceRepos' is a required property",
        ),
        (
            "argocd/applications/production.yaml",
            "ApplyOutOfSyncOnly=true",
            "ApplyOutOfSyncOnly=yes",
            "check-jsonschema",
            "syncOptions[2]",
        ),
        (
            "argocd/applications/staging.yaml",
            "      prune: false",
            '      prune: "false"',
            "check-jsonschema",
            "automated.prune",
        ),
        (
            "argocd/applications/staging.yaml",
            "  project:",
            "  projekt:",
            "check-jsonschema",
            "'project' is a required property",
        ),
        (
            "argocd/argocd-rbac-cm.yaml",
            'scopes: "[groups]"',
            "scopes: 3",
            "kubernetes-validate",
            "data.scopes: 3 is not of type",
        ),
        (
            "argocd/argocd-notifications-cm.yaml",
            "  service.github: |\n",
            "  service.github:\n",
            "kubernetes-validate",
            "is not of type 'string'",
        ),
        (
            "argocd/argocd-rbac-cm.yaml",
            'policy.default: ""',
            "policy.default: role:admin",
            "argocd-rbac",
            "policy.default is role:admin",
        ),
        (
            "argocd/argocd-rbac-cm.yaml",
            "    g, acme:developers, role",
            "    g, acme:developers role",
            "argocd-rbac",
            "a g line has 3 non-empty fields",
        ),
        (
            "argocd/argocd-rbac-cm.yaml",
            "    p, role:argocd-team-private-developer, logs, get, argocd-team-private-production/*, allow\n",
            "    p, role:argocd-team-private-developer, logs, get, argocd-team-private-production/*\n",
            "argocd-rbac",
            "a p line has 6 non-empty fields",
        ),
        (
            "argocd/argocd-rbac-cm.yaml",
            "    p, role:argocd-team-private-developer, applications, sync, argocd-team-private-production/*, deny\n",
            "    p, role:argocd-team-private-developer, applications, *, */*, allow\n",
            "argocd-rbac",
            "acme:developers is not a deployer and may sync production",
        ),
        (
            "argocd/argocd-rbac-cm.yaml",
            "    g, acme:developers, role:argocd-team-private-developer\n",
            "    g, acme:developers, role:admin\n",
            "argocd-rbac",
            "acme:developers is not a deployer and may sync production",
        ),
        (
            "argocd/argocd-rbac-cm.yaml",
            "applications, sync, argocd-team-private-staging/*, allow",
            "applications, synch, argocd-team-private-staging/*, maybe",
            "argocd-rbac",
            "effect 'maybe' must be allow or deny",
        ),
    ],
    ids=[
        "window-kind",
        "window-duration",
        "window-manualsync",
        "no-source-repos",
        "sync-option",
        "prune-string",
        "no-project",
        "configmap-type",
        "configmap-value",
        "default-admin",
        "g-line",
        "p-line",
        "wildcard-sync",
        "developers-admin",
        "effect",
    ],
)
def test_argocd_objects_are_validated(tmp_path: Path, rel: str, old: str, new: str, tool: str, needle: str) -> None:
    from generator import validate

    tree = tmp_path / "tree"
    shutil.copytree(GOLDEN / ARGO, tree)
    assert not validate.run(tree, only=[rel]), "the golden file is clean"
    text = (tree / rel).read_text()
    assert old in text, old
    (tree / rel).write_text(text.replace(old, new, 1))
    findings = validate.run(tree, only=[rel])
    assert any(f.tool == tool and f.path == rel and needle in f.message and f.line > 1 for f in findings), findings


def test_an_unparsable_argocd_manifest_is_a_finding_of_its_own(tmp_path: Path) -> None:
    from generator import validate

    tree = tmp_path / "tree"
    shutil.copytree(GOLDEN / ARGO, tree)
    (tree / "argocd/extra.yaml").write_text("apiVersion: argoproj.io/v1alpha1\nkind: AppProject\nspec: [unclosed\n")
    findings = validate.run(tree, only=["argocd/argocd-rbac-cm.yaml"])
    assert any(
        f.tool == "argocd-rbac" and f.path == "argocd/extra.yaml" and "invalid YAML" in f.message for f in findings
    )
