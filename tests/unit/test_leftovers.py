"""Stray sandbox directories: found by name, their proxy files and marker removed, data kept."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from asbx.leftovers import remove_stray, stray_sandboxes


def _sandbox(home: Path, project: str, name: str, pid: int | None = None) -> Path:
    root = home / "projects" / project / "sandboxes" / name
    (root / "workspace").mkdir(parents=True)
    (root / "workspace" / "data.txt").write_text("data\n")
    (root / "setup-done").write_text("abc\n")
    if pid is not None:
        (root / "proxy").mkdir()
        (root / "proxy" / "proxy.pid").write_text(f"{pid}\n")
        (root / "proxy" / "proxy.log").write_text("log\n")
    return root


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_only_unknown_sandboxes_of_this_project_are_stray(tmp_path: Path) -> None:
    _sandbox(tmp_path, "p", "kept")
    gone = _sandbox(tmp_path, "p", "gone", pid=_dead_pid())
    other = _sandbox(tmp_path, "q", "gone")
    (stray,) = stray_sandboxes(tmp_path, "p", keep={"kept"})
    assert (stray.name, stray.path, stray.has_workspace, stray.proxy_running) == (
        "gone", gone, True, False
    )
    assert remove_stray(tmp_path, "p", stray, workspace=False)
    assert sorted(p.name for p in gone.iterdir()) == ["workspace"]  # data kept
    assert remove_stray(tmp_path, "p", stray, workspace=True)
    assert not gone.exists()
    assert (other / "workspace" / "data.txt").is_file()
    assert (other / "setup-done").is_file()


def test_a_symlinked_sandbox_directory_is_not_followed(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    (outside / "workspace").mkdir(parents=True)
    root = tmp_path / "home" / "projects" / "p" / "sandboxes"
    root.mkdir(parents=True)
    os.symlink(outside, root / "link")
    assert stray_sandboxes(tmp_path / "home", "p", keep=set()) == []
    assert (outside / "workspace").is_dir()


def _await_exec(pid: int, word: str, timeout: float = 10.0) -> None:
    """Until the child has exec'd (before that, /proc shows the parent's command line)."""
    deadline = time.monotonic() + timeout
    cmdline = Path(f"/proc/{pid}/cmdline")
    while word.encode() not in cmdline.read_bytes():
        assert time.monotonic() < deadline, f"process {pid} never ran {word}"
        time.sleep(0.01)


def test_a_sandbox_whose_proxy_still_runs_is_left_alone(tmp_path: Path) -> None:
    # A process whose command line names the proxy module, as a real proxy's does.
    fake = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(30)", "asbx.network.proxy"]
    )
    try:
        _await_exec(fake.pid, "asbx.network.proxy")
        gone = _sandbox(tmp_path, "p", "gone", pid=fake.pid)
        (stray,) = stray_sandboxes(tmp_path, "p", keep=set())
        assert stray.proxy_running
        assert not remove_stray(tmp_path, "p", stray, workspace=True)
        assert (gone / "proxy" / "proxy.pid").is_file()
        assert (gone / "workspace" / "data.txt").is_file()
        assert fake.poll() is None, "never stopped by gc"
    finally:
        fake.kill()
        fake.wait()
