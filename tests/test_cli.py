"""Every command is wired, documents its exit codes, and the CLI starts without importing copier."""

from __future__ import annotations

import subprocess
import sys

import pytest

from generator.cli import COMMANDS, main


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_command_has_help_with_exit_codes(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "exit codes:" in out and "130" in out


def test_top_level_help_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    for command in COMMANDS:
        assert command in out
    assert "exit codes:" in out


def test_unknown_command_is_a_usage_error() -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["frobnicate"])
    assert exit_info.value.code == 2


def test_help_does_not_import_copier() -> None:
    code = (
        "import sys; from generator.cli import main\ntry:\n main(['--help'])\nexcept SystemExit: pass\n"
        "print('copier' in sys.modules, 'jinja2' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().endswith("False False")


def test_console_script_runs(tmp_path) -> None:  # type: ignore[no-untyped-def]
    proc = subprocess.run([sys.executable, "-m", "generator", "--version"], capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stdout.startswith("pipeproof ")


def test_protect_is_wired_end_to_end_without_the_network(tmp_path, capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    # Each action parses; a dry run needs no token, sends nothing (no server exists here) and lists the requests.
    from tests.helpers import ROOT

    for action in ("apply", "check", "export"):
        with pytest.raises(SystemExit) as exit_info:
            main(["protect", action, "--help"])
        assert exit_info.value.code == 0
        assert "exit codes:" in capsys.readouterr().out
    monkeypatch.delenv("GITHUB_TOKEN", raising=False)
    code = main(
        [
            "protect",
            "apply",
            str(ROOT / "golden" / "python-defaults"),
            "--repo",
            "o/r",
            "--dry-run",
            "--api-url",
            "http://127.0.0.1:9",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0 and "PUT /repos/o/r/branches/main/protection {" in out
    assert main(["protect", "check", str(ROOT / "golden" / "python-defaults"), "--repo", "o/r"]) == 2
    assert "no token: set GITHUB_TOKEN or pass --token-file" in capsys.readouterr().err
