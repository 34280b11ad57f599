"""`pipeproof new`: good input renders, bad input exits 2 naming the key, the value and what is allowed,
and leaves DEST untouched."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from generator.cli import main
from tests.helpers import ROOT

HOSTILE_NAMES = {
    "double-quote": 'my"app',
    "single-quote": "my'app",
    "expression": "${{ github.event.issue.title }}",
    "newline": "app\nname: evil",
    "yaml-tag": "!!python/object/apply:os.system ['id']",
    "uppercase": "MyApp",
}


def run_new(dest: Path, *args: str) -> int:
    return main(["new", str(dest), *args])


def assert_refused(capsys: pytest.CaptureFixture[str], code: int, dest: Path, *needles: str) -> str:
    err = capsys.readouterr().err
    assert code == 2, err
    assert not dest.exists(), "DEST must not be created on bad input"
    for needle in needles:
        assert needle in err, f"{needle!r} not in: {err}"
    assert "Traceback" not in err
    return err


def test_defaults_render_and_summarise(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    dest = tmp_path / "demo"
    assert run_new(dest, "--defaults") == 0
    out = capsys.readouterr().out
    assert (dest / ".github/workflows/pr-checks.yml").is_file()
    assert "Rendered" in out and ".github/workflows/pr-checks.yml" in out and "PP-SCAN-01" in out
    assert "project_name: demo" in (dest / ".copier-answers.yml").read_text()
    assert os.access(dest / "scripts/healthcheck.sh", os.X_OK)


def test_data_and_data_file_are_merged_with_data_winning(tmp_path: Path) -> None:
    data_file = tmp_path / "answers.yml"
    data_file.write_text("language: go\niac: [terraform]\nrequired_approvals: 4\n")
    dest = tmp_path / "svc"
    assert (
        run_new(
            dest,
            "--defaults",
            "--data-file",
            str(data_file),
            "--data",
            "required_approvals=3",
            "--data",
            "iac=[terraform, kubernetes]",
        )
        == 0
    )
    answers = (dest / ".copier-answers.yml").read_text()
    assert "language: go" in answers and "required_approvals: 3" in answers
    assert "- kubernetes" in answers
    assert "go test ./..." in (dest / ".github/workflows/pr-checks.yml").read_text()


def test_empty_existing_dest_is_used(tmp_path: Path) -> None:
    dest = tmp_path / "empty"
    dest.mkdir()
    assert run_new(dest, "--defaults") == 0
    assert (dest / ".gitleaks.toml").is_file()


def test_non_empty_dest_is_refused_and_untouched(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    dest = tmp_path / "existing"
    dest.mkdir()
    (dest / "README.md").write_text("mine\n")
    (dest / "app.py").write_text("print('mine')\n")
    assert run_new(dest, "--defaults") == 2
    err = capsys.readouterr().err
    assert "already holds app.py" in err and "pipeproof retrofit" in err
    assert sorted(p.name for p in dest.iterdir()) == ["README.md", "app.py"]
    assert (dest / "README.md").read_text() == "mine\n"


def test_fresh_repository_with_readme_and_licence_just_works(tmp_path: Path) -> None:
    dest = tmp_path / "fresh"
    dest.mkdir()
    subprocess.run(["git", "init", "-q", str(dest)], check=True)
    (dest / "README.md").write_text("# fresh\n")
    (dest / "LICENSE").write_bytes(b"MIT\r\n")
    assert run_new(dest, "--defaults") == 0
    assert (dest / ".github/workflows/pr-checks.yml").is_file()
    assert (dest / "README.md").read_text() == "# fresh\n" and (dest / "LICENSE").read_bytes() == b"MIT\r\n"
    assert "project_name: fresh" in (dest / ".copier-answers.yml").read_text()
    assert not [p for p in dest.iterdir() if "pipeproof" in p.name], "no staging folder left behind"
    status = subprocess.run(["git", "status", "--porcelain"], cwd=dest, capture_output=True, text=True).stdout
    assert "README.md" in status and ".github/" in status


@pytest.mark.parametrize(
    ("data", "needles"),
    [
        pytest.param(["language=rust"], ["'language'", "'rust'", "python, node, go, java"], id="unknown-choice"),
        pytest.param(
            ["iac=[terraform, pulumi]"],
            ["'iac'", "'pulumi'", "terraform, kubernetes, cloudformation"],
            id="unknown-list-item",
        ),
        pytest.param(["required_approvals=0"], ["'required_approvals'", "0", "from 1 to 6"], id="approvals-0"),
        pytest.param(["required_approvals=99"], ["'required_approvals'", "99", "from 1 to 6"], id="approvals-99"),
        pytest.param(["required_approvals=two"], ["'required_approvals'", "'two'", "integer"], id="approvals-text"),
        pytest.param(
            ["security_team=@acme/sec team"], ["'security_team'", "'@acme/sec team'", "no spaces"], id="team-with-space"
        ),
        pytest.param(["containers=maybe"], ["'containers'", "'maybe'", "true or false"], id="bool"),
        pytest.param(["staging_url=http://staging.example.com"], ["'staging_url'", "https://"], id="http-url"),
        pytest.param(
            ["staging_url=https://x.example.com/?q=$(id)"], ["'staging_url'", "no query"], id="url-with-shell"
        ),
        pytest.param(
            ["evidence_store=aws", "evidence_role=arn:aws:iam::123:role/x"],
            ["'evidence_role'", "IAM role ARN"],
            id="bad-arn",
        ),
        pytest.param(["evidence_bucket=Evil_Bucket"], ["'evidence_bucket'", "bucket name"], id="bad-bucket"),
        pytest.param(["frameworks=[]"], ["'frameworks'", "at least one"], id="no-framework"),
        pytest.param(["evidence_retention_years=0"], ["'evidence_retention_years'", "from 1 to 100"], id="retention-0"),
        pytest.param(["evidence_retention_years=101"], ["'evidence_retention_years'", "101"], id="retention-101"),
        pytest.param(["evidence_bucket=my..bucket"], ["'evidence_bucket'", "'..'"], id="bucket-dotdot"),
        pytest.param(["evidence_bucket=192.168.1.10"], ["'evidence_bucket'", "IP address"], id="bucket-ip"),
        pytest.param(["evidence_bucket=xn--evidence"], ["'evidence_bucket'", "xn--"], id="s3-bucket-prefix"),
        pytest.param(["evidence_bucket=evidence-s3alias"], ["'evidence_bucket'", "-s3alias"], id="s3-bucket-suffix"),
        pytest.param(
            ["evidence_store=gcp", "evidence_bucket=google-evidence"], ["'evidence_bucket'", "google"], id="gcs-google"
        ),
        pytest.param(
            ["evidence_store=azure", "evidence_bucket=acct/ev--idence"],
            ["'evidence_bucket'", "single dashes"],
            id="azure-container-double-dash",
        ),
        pytest.param(["evidence_region=eastus"], ["'evidence_region'", "AWS region"], id="aws-region-of-azure"),
        pytest.param(["evidence_region=mars-north-1"], ["'evidence_region'", "AWS region"], id="aws-region-unknown"),
        pytest.param(
            ["evidence_store=gcp", "evidence_region=us-east-1"],
            ["'evidence_region'", "Cloud Storage location"],
            id="gcp-region-of-aws",
        ),
        pytest.param(
            ["evidence_store=azure", "evidence_region=us-east-1"],
            ["'evidence_region'", "Azure region"],
            id="azure-region-of-aws",
        ),
        pytest.param(["repository=acme/*"], ["'repository'", "no wildcard"], id="repository-wildcard"),
        pytest.param(
            ["repository=acme/a/b"], ["'repository'", "owner/name on GitHub"], id="repository-subgroup-on-github"
        ),
        pytest.param(
            ["deploy_model=argocd", "containers=false"], ["'deploy_model'", "containers"], id="argocd-no-image"
        ),
        pytest.param(
            ["deploy_model=argocd", "argocd_allow_schedule=0 25 * * 1-5"],
            ["'argocd_allow_schedule'", "'0 25 * * 1-5'", "hour", "outside 0-23"],
            id="argocd-cron-hour-25",
        ),
        pytest.param(
            ["deploy_model=argocd", "argocd_deny_schedule=0 17 * *"],
            ["'argocd_deny_schedule'", "5 fields"],
            id="argocd-cron-4-fields",
        ),
        pytest.param(
            ["deploy_model=argocd", "argocd_deny_schedule=0 17 * * fri-mon"],
            ["'argocd_deny_schedule'", "runs backwards"],
            id="argocd-cron-backwards",
        ),
        pytest.param(
            ["deploy_model=argocd", "argocd_sync_timezone=Mars/Olympus_Mons"],
            ["'argocd_sync_timezone'", "'Mars/Olympus_Mons'", "IANA time zone"],
            id="argocd-unknown-timezone",
        ),
        pytest.param(
            ["deploy_model=argocd", "argocd_sync_timezone=Europe/Amsterdam; rm -rf"],
            ["'argocd_sync_timezone'", "IANA time zone"],
            id="argocd-timezone-shell",
        ),
        pytest.param(
            ["deploy_model=argocd", "argocd_allow_duration=8 hours"],
            ["'argocd_allow_duration'", "8h or 7h30m"],
            id="argocd-duration",
        ),
        pytest.param(
            ["deploy_model=argocd", "argocd_deployers_group=release managers"],
            ["'argocd_deployers_group'", "'release managers'", "no spaces or commas", "policy.csv"],
            id="argocd-group-space",
        ),
        pytest.param(
            ["deploy_model=argocd", "argocd_developers_group=devs,role:admin"],
            ["'argocd_developers_group'", "no spaces or commas"],
            id="argocd-group-comma",
        ),
        pytest.param(
            ["deploy_model=argocd", "argocd_deployers_group=acme:sre", "argocd_developers_group=acme:sre"],
            ["'argocd_developers_group'", "must differ"],
            id="argocd-same-groups",
        ),
        pytest.param(
            ["deploy_model=argocd", "argocd_repo_url=http://github.com/acme/app.git"],
            ["'argocd_repo_url'", "'http://github.com/acme/app.git'", "https:// or ssh"],
            id="argocd-repo-http",
        ),
        pytest.param(
            ["deploy_model=argocd", "argocd_repo_url=file:///srv/git/app.git"],
            ["'argocd_repo_url'", "https:// or ssh"],
            id="argocd-repo-file",
        ),
        pytest.param(
            ["deploy_model=argocd", "argocd_repo_url=https://github.com/acme/../evil.git"],
            ["'argocd_repo_url'", "'..'"],
            id="argocd-repo-dotdot",
        ),
        pytest.param(
            ["deploy_model=argocd", "argocd_staging_namespace=shop", "argocd_production_namespace=shop"],
            ["'argocd_production_namespace'", "must differ from staging"],
            id="argocd-same-namespace",
        ),
        pytest.param(
            ["deploy_model=argocd", "github_plan=free", "argocd_production_automated=true"],
            ["'argocd_production_automated'", "GitHub Free"],
            id="argocd-auto-sync-on-free",
        ),
        pytest.param(
            ["platform=gitlab", "security_team=@my group/security"],
            ["'security_team'", "GitLab group handle"],
            id="gitlab-bad-group",
        ),
        pytest.param(
            ["platform=gitlab", "deploy_model=argocd", "containers=false"],
            ["'deploy_model'", "containers"],
            id="gitlab-argocd",
        ),
        pytest.param(["colour=blue"], ["'colour'", "is not a question", "project_name"], id="unknown-key"),
        pytest.param(["pins={}"], ["'pins'", "computed"], id="computed-key"),
        pytest.param(["no-equals-sign"], ["KEY=VALUE"], id="malformed-data"),
        pytest.param(["default_branch=main..evil"], ["'default_branch'", "no '..'"], id="branch-dotdot"),
    ],
)
def test_bad_answers_exit_2_and_write_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], data: list[str], needles: list[str]
) -> None:
    dest = tmp_path / "app"
    args = ["--defaults"]
    for item in data:
        args += ["--data", item]
    assert_refused(capsys, run_new(dest, *args), dest, *needles)


@pytest.mark.parametrize("value", HOSTILE_NAMES.values(), ids=HOSTILE_NAMES.keys())
def test_hostile_project_names_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str], value: str) -> None:
    dest = tmp_path / "app"
    code = run_new(dest, "--defaults", "--data", f"project_name={value}")
    assert_refused(capsys, code, dest, "'project_name'", "must be a slug")


def test_100kb_string_is_refused_quickly(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    dest = tmp_path / "app"
    started = time.perf_counter()
    code = run_new(dest, "--defaults", "--data", "security_team=@a/" + "b" * 100_000)
    err = assert_refused(capsys, code, dest, "'security_team'", "at most 1000 characters", "100003 characters")
    assert len(err) < 500, "the message must not echo the whole value"
    assert time.perf_counter() - started < 5


@pytest.mark.parametrize(
    ("content", "needles"),
    [
        pytest.param(None, ["cannot read it"], id="missing"),
        pytest.param(b"\xff\xfe\x00bad", ["not UTF-8"], id="not-utf8"),
        pytest.param(b"language: go\nlanguage: java\n", ["duplicate key 'language'", ":2"], id="duplicate-key"),
        pytest.param(b"a: &a [x, x]\nb: &b [*a, *a]\nc: [*b, *b]\n", ["aliases", "not allowed"], id="alias-bomb"),
        pytest.param(b"- language\n- go\n", ["must be a mapping"], id="not-a-mapping"),
        pytest.param(b"language: [unclosed\n", ["answers.yml:"], id="malformed-yaml"),
        pytest.param(b"language: !!python/object/apply:os.system [id]\n", ["answers.yml"], id="python-tag"),
    ],
)
def test_bad_data_file_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes | None, needles: list[str]
) -> None:
    data_file = tmp_path / "answers.yml"
    if content is not None:
        data_file.write_bytes(content)
    dest = tmp_path / "app"
    assert_refused(capsys, run_new(dest, "--defaults", "--data-file", str(data_file)), dest, "--data-file", *needles)


def test_directory_as_data_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    dest = tmp_path / "app"
    assert_refused(capsys, run_new(dest, "--defaults", "--data-file", str(tmp_path)), dest, "cannot read it")


def test_50mb_data_file_is_refused_within_2s(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data_file = tmp_path / "big.yml"
    with data_file.open("wb") as fh:
        fh.write(b"project_name: " + b"a" * (50 * 1024 * 1024) + b"\n")
    dest = tmp_path / "app"
    started = time.perf_counter()
    code = run_new(dest, "--defaults", "--data-file", str(data_file))
    assert time.perf_counter() - started < 2
    assert_refused(capsys, code, dest, "too large")


def test_without_a_tty_it_names_the_missing_answers(tmp_path: Path) -> None:
    dest = tmp_path / "app"
    proc = subprocess.run(
        [sys.executable, "-m", "generator", "new", str(dest), "--data", "language=go"],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2, proc.stderr
    assert "no terminal" in proc.stderr and "project_name" in proc.stderr and "--defaults" in proc.stderr
    assert "language," not in proc.stderr, "answered keys are not missing"
    assert not dest.exists()


def _drive(dest: Path, keys: list[bytes], command: tuple[str, ...] = ("new",)) -> tuple[int, str]:
    """Run `pipeproof new DEST` (or another command) on a pseudo-terminal, typing each key chunk when the prompt
    goes quiet."""
    import pty
    import select

    master, slave = pty.openpty()
    env = {**os.environ, "TERM": "xterm", "COLUMNS": "200", "LINES": "50"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "generator", *command, str(dest)], stdin=slave, stdout=slave, stderr=slave, env=env
    )
    os.close(slave)
    out, pending, deadline = b"", list(keys), time.monotonic() + 120
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.3)
            if ready:
                try:
                    chunk = os.read(master, 65536)
                except OSError:
                    break
                if not chunk:
                    break
                out += chunk
            elif pending and b"(project_name)" in out:  # type only once the first prompt is on screen
                os.write(master, pending.pop(0))
            elif proc.poll() is not None:
                break
        return proc.wait(timeout=30), out.decode(errors="replace")
    finally:
        os.close(master)
        if proc.poll() is None:
            proc.kill()


def test_interactive_prompts_reask_bad_answers_and_render(tmp_path: Path) -> None:
    dest = tmp_path / "term"
    down = b"\x1b[B"
    # name: a bad one first, then a good one; platform, GitHub host and plan: defaults; language: one down
    # (node); the rest: defaults.
    code, out = _drive(dest, [b"\x15bad name\r", b"\x15term-app\r", b"\r", b"\r", b"\r", down + b"\r"] + [b"\r"] * 30)
    assert code == 0, out[-2000:]
    assert "answer 'project_name' = 'bad name' is not allowed" in out
    answers = (dest / ".copier-answers.yml").read_text()
    assert "project_name: term-app" in answers and "language: node" in answers


def test_ctrl_c_at_a_prompt_exits_130_and_writes_nothing(tmp_path: Path) -> None:
    dest = tmp_path / "term"
    code, out = _drive(dest, [b"\x03"])
    assert code == 130, out[-2000:]
    assert not dest.exists()


@pytest.mark.parametrize(
    "url",
    [
        "https://github.com/acme/shop.git",
        "https://git.example.com:8443/platform/apps/shop",
        "git@github.com:acme/shop.git",
        "ssh://git@gitlab.example.com:2222/acme/shop.git",
    ],
)
def test_argocd_repository_urls_in_https_or_ssh_form_are_accepted(tmp_path: Path, url: str) -> None:
    from tests.helpers import resolve

    answers = resolve({"deploy_model": "argocd", "argocd_repo_url": url}, tmp_path / "shop")
    assert answers["argocd_repo_url"] == url


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        ({"argocd_sync_timezone": "Europe/Amsterdam\nrole:admin"}, "IANA time zone"),
        ({"argocd_deployers_group": "sre, role:admin"}, "no spaces or commas"),
        ({"argocd_allow_schedule": "0 9 * *"}, "cron schedule of 5 fields"),
        ({"argocd_repo_url": "http://github.com/acme/shop.git"}, "https:// or ssh"),
    ],
)
def test_plain_copier_refuses_what_would_corrupt_the_argocd_manifests(
    tmp_path: Path, data: dict[str, str], needle: str
) -> None:
    """Without pipeproof, copier's own validators refuse the answers that would break policy.csv or a window."""
    import copier

    with pytest.raises(ValueError, match=re.escape(needle)):
        copier.run_copy(
            str(ROOT),
            tmp_path / "app",
            data={"deploy_model": "argocd", **data},
            defaults=True,
            quiet=True,
            unsafe=False,
            vcs_ref="HEAD",
        )
    assert not (tmp_path / "app" / "argocd").exists()


@pytest.mark.parametrize(
    ("data", "frameworks"),
    [
        pytest.param(["evidence_retention_years=2"], ["soc2", "iso27001"], id="both"),
        pytest.param(["evidence_retention_years=5"], ["soc2"], id="soc2-only"),
        pytest.param(["evidence_retention_years=5", "frameworks=[iso27001]"], [], id="iso-satisfied"),
        pytest.param(["evidence_retention_years=7"], [], id="default"),
    ],
)
def test_a_retention_shorter_than_a_framework_expects_warns_and_names_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], data: list[str], frameworks: list[str]
) -> None:
    args = ["--defaults"]
    for item in data:
        args += ["--data", item]
    assert run_new(tmp_path / "app", *args) == 0
    warned = [line for line in capsys.readouterr().err.splitlines() if "evidence_retention_years" in line]
    assert [re.search(r"\(framework (\w+)\)", line)[1] for line in warned] == frameworks  # type: ignore[index]
    assert all(line.startswith("warning: ") for line in warned)
