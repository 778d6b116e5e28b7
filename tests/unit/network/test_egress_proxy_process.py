"""`python -m asbx.network.proxy` as a process: state file, request log, SIGTERM, exit codes."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

PROXY = [sys.executable, "-m", "asbx.network.proxy"]
Exchange = Callable[[int, bytes], bytes]


def _wait_for_state(path: Path, process: subprocess.Popen[bytes]) -> dict[str, Any]:
    deadline = time.monotonic() + 10
    while not path.exists():
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "the proxy wrote no state file"
        time.sleep(0.02)
    state: dict[str, Any] = json.loads(path.read_text())
    return state


def test_sigterm_stops_the_proxy_cleanly(tmp_path: Path, upstream: Any,
                                         exchange: Exchange) -> None:
    state_file, pidfile, log = tmp_path / "proxy.json", tmp_path / "proxy.pid", tmp_path / "p.log"
    process = subprocess.Popen(
        [*PROXY, "--listen", "127.0.0.1:0", "--allow", f"127.0.0.1:{upstream.port}",
         "--allow", "*.example.com",
         "--state", str(state_file), "--pidfile", str(pidfile), "--log", str(log)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        state = _wait_for_state(state_file, process)
        assert state["pid"] == process.pid
        assert int(pidfile.read_text()) == process.pid
        assert state["host"] == "127.0.0.1"
        assert state["port"] > 0
        assert state["allow"] == [f"127.0.0.1:{upstream.port}", "*.example.com"]
        with socket.create_connection(("127.0.0.1", state["port"]), timeout=5) as idle:
            response = exchange(state["port"],
                                f"GET http://127.0.0.1:{upstream.port}/ HTTP/1.1\r\n\r\n".encode())
            assert b" 200 " in response.split(b"\r\n")[0]
            process.send_signal(signal.SIGTERM)  # with a connection still open
            assert process.wait(timeout=10) == 0
            assert idle.recv(1) == b""
    finally:
        if process.poll() is None:
            process.kill()
        _, stderr = process.communicate()
    assert stderr == b""
    assert not state_file.exists()
    assert not pidfile.exists()
    assert " allowed GET " in log.read_text()


def test_port_in_use_exits_3_and_bad_allowlist_exits_2(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        busy = subprocess.run([*PROXY, "--listen", f"127.0.0.1:{port}", "--allow", "127.0.0.1"],
                              capture_output=True, timeout=30, check=False)
    assert busy.returncode == 3
    assert b"cannot listen on" in busy.stderr
    bad = subprocess.run([*PROXY, "--listen", "127.0.0.1:0", "--allow", "not a host!"],
                         capture_output=True, timeout=30, check=False)
    assert bad.returncode == 2
    assert b"is not a host pattern" in bad.stderr
    policy = tmp_path / "policy.json"
    policy.write_text('{"allow": "api.example.com"}')
    bad_file = subprocess.run([*PROXY, "--listen", "127.0.0.1:0", "--policy-file", str(policy)],
                              capture_output=True, timeout=30, check=False)
    assert bad_file.returncode == 2
    assert b'expected {"allow": [hosts]}' in bad_file.stderr


def test_daemon_mode_returns_once_listening(tmp_path: Path) -> None:
    state_file, log = tmp_path / "proxy.json", tmp_path / "p.log"
    launcher = subprocess.run(
        [*PROXY, "--daemon", "--listen", "127.0.0.1:0", "--allow", "127.0.0.1",
         "--state", str(state_file), "--log", str(log)],
        capture_output=True, timeout=30, check=False)
    assert launcher.returncode == 0, launcher.stderr
    state = json.loads(state_file.read_text())
    try:
        os.kill(state["pid"], 0)  # the daemon outlives its launcher
        with socket.create_connection(("127.0.0.1", state["port"]), timeout=5) as sock:
            sock.sendall(b"CONNECT nope.example:443 HTTP/1.1\r\n\r\n")
            assert sock.recv(100).startswith(b"HTTP/1.1 403")
    finally:
        os.kill(state["pid"], signal.SIGTERM)
    deadline = time.monotonic() + 10
    while state_file.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not state_file.exists()
    assert " denied CONNECT nope.example:443 " in log.read_text()


def test_limits_come_from_flags_or_the_environment_and_must_be_positive() -> None:
    from asbx.network.proxy import MAX_CONNECTIONS_ENV, _arguments

    args = _arguments(["--listen", "127.0.0.1:0", "--allow", "a.example"])
    assert (args.max_connections, args.max_queued) == (256, 2048)
    with pytest.MonkeyPatch.context() as env:
        env.setenv(MAX_CONNECTIONS_ENV, "12")
        args = _arguments(["--listen", "127.0.0.1:0", "--allow", "a.example"])
        assert args.max_connections == 12
        env.setenv(MAX_CONNECTIONS_ENV, "lots")  # unusable: the default, not a crash
        args = _arguments(["--listen", "127.0.0.1:0", "--allow", "a.example"])
        assert args.max_connections == 256
    bad = subprocess.run([*PROXY, "--listen", "127.0.0.1:0", "--allow", "a.example",
                          "--max-queued", "0"], capture_output=True, timeout=30, check=False)
    assert bad.returncode == 2
    assert b"0 is not a positive number" in bad.stderr
