"""`asbx completion`: click's scripts, and sandbox names completed from the spec."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from asbx.cli.main import run

SPEC = """\
version: 1
sandboxes:
  web: { image: busybox }
  worker: { image: busybox }
  db: { image: busybox }
"""


@pytest.mark.parametrize(("shell", "marker"), [("bash", "complete -o nosort -F"),
                                               ("zsh", "#compdef asbx"),
                                               ("fish", "complete --no-files --command asbx")])
def test_completion_prints_the_script(shell: str, marker: str,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["completion", shell]) == 0
    out = capsys.readouterr().out
    assert marker in out
    assert "_ASBX_COMPLETE" in out


def test_completion_refuses_unknown_shells(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["completion", "tcsh"]) == 1
    assert "tcsh" in capsys.readouterr().err


def complete(cwd: Path, words: str, *extra_env: tuple[str, str]) -> list[str]:
    """What bash completion offers for the last word of `words` (as the bash script asks)."""
    env = {**os.environ, "COMP_WORDS": words, "COMP_CWORD": str(len(words.split(" ")) - 1),
           "_ASBX_COMPLETE": "bash_complete", **dict(extra_env)}
    result = subprocess.run([sys.executable, "-m", "asbx"], cwd=cwd, env=env,
                            capture_output=True, text=True, check=False, timeout=60)
    return [line.split(",", 1)[1] for line in result.stdout.splitlines() if "," in line]


def test_sandbox_names_complete_from_the_spec(tmp_path: Path) -> None:
    (tmp_path / "sandboxes.yaml").write_text(SPEC)
    assert complete(tmp_path, "asbx exec w") == ["web", "worker"]
    assert complete(tmp_path, "asbx stop ") == ["web", "worker", "db"]
    assert complete(tmp_path, "asbx logs d") == ["db"]


def test_sandbox_names_follow_dash_f(tmp_path: Path) -> None:
    other = tmp_path / "elsewhere"
    other.mkdir()
    (other / "sandboxes.yaml").write_text(SPEC)
    assert complete(tmp_path, f"asbx -f {other} shell we") == ["web"]


def test_completion_is_silent_without_a_spec(tmp_path: Path) -> None:
    assert complete(tmp_path, "asbx exec ") == []


def test_commands_complete(tmp_path: Path) -> None:
    offered = complete(tmp_path, "asbx st")
    assert {"start", "status", "stop", "state"} <= set(offered)
