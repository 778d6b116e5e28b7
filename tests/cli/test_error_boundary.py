"""The CLI's one error boundary: crashes exit 3 with one line and a log, ^C exits 130."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import click
import pytest

import asbx.spec.normalise
from asbx.cli.main import run

SPEC = "version: 1\nsandboxes:\n  web:\n    image: busybox\n"


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "proj").mkdir()
    (tmp_path / "proj" / "sandboxes.yaml").write_text(SPEC, encoding="utf-8")
    monkeypatch.chdir(tmp_path / "proj")
    monkeypatch.delenv("ASBX_HOME", raising=False)
    return tmp_path


def _explode(*args: object, **kwargs: object) -> None:
    raise RuntimeError("boom: the normaliser broke\nsecond line of the message")


def _crash_log(home: Path) -> Path:
    logs = sorted((home / "logs").glob("crash-*.log"))
    assert len(logs) == 1, logs
    return logs[0]


@pytest.mark.parametrize("how", ["--home", "ASBX_HOME"])
def test_an_unexpected_exception_exits_3_with_one_line_and_a_crash_log(
    how: str, project: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    home = project / "home"
    monkeypatch.setattr(asbx.spec.normalise, "normalised_spec", _explode)
    if how == "--home":
        monkeypatch.setenv("ASBX_HOME", str(project / "not-this-one"))
        argv = ["--home", str(home), "config"]
    else:
        monkeypatch.setenv("ASBX_HOME", str(home))
        argv = ["config"]
    assert run(argv) == 3
    captured = capsys.readouterr()
    log = _crash_log(home)
    assert captured.out == ""
    assert captured.err == (
        "asbx: an unexpected error occurred: RuntimeError: boom: the normaliser broke...; "
        f"the traceback is in {log}\n"
    )
    text = log.read_text(encoding="utf-8")
    assert text.startswith(f"asbx {asbx.__version__}\nargv: {argv}\n")
    assert "Traceback (most recent call last):" in text
    assert "in _explode" in text
    assert "second line of the message" in text
    assert not (project / "not-this-one").exists()


def test_the_console_script_shows_no_traceback_on_a_crash(project: Path) -> None:
    home = project / "home"
    probe = (
        "import sys, asbx.spec.normalise as n\n"
        "def explode(*a, **k): raise ZeroDivisionError('division by zero')\n"
        "n.normalised_spec = explode\n"
        "from asbx.cli.main import main\n"
        "main(sys.argv[1:])\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe, "--home", str(home), "config"], cwd=project / "proj",
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert result.returncode == 3
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("asbx: an unexpected error occurred: ZeroDivisionError: ")
    assert lines[0].endswith(f"the traceback is in {_crash_log(home)}")
    assert "Traceback" not in result.stderr
    assert "ZeroDivisionError" in _crash_log(home).read_text(encoding="utf-8")


@pytest.mark.parametrize("raised", [KeyboardInterrupt(), click.Abort()])
def test_an_interrupt_inside_a_command_exits_130_with_a_short_message(
    raised: BaseException, project: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    def interrupt(*args: object, **kwargs: object) -> None:
        raise raised

    monkeypatch.setattr(asbx.spec.normalise, "normalised_spec", interrupt)
    assert run(["--home", str(project / "home"), "config"]) == 130
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == "\nInterrupted.\n"
    assert not (project / "home" / "logs").exists()


def test_an_invalid_project_name_is_a_usage_error_not_a_crash(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["--home", str(project / "home"), "-p", "Bad Name", "config"]) == 1
    err = capsys.readouterr().err
    assert "Invalid value for '-p' / '--project-name': \"Bad Name\" is not a valid name" in err
    assert 'e.g. "bad-name"' in err
    assert not (project / "home" / "logs").exists()
