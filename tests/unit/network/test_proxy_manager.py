"""ensure_proxy / stop_proxy / proxy_status / proxy_env with real detached proxies on loopback."""

from __future__ import annotations

import json
import os
import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from asbx.network.manager import (
    LOG_FILE,
    POLICY_FILE,
    POLICY_VERSION,
    STATE_FILE,
    ProxyError,
    ProxyHandle,
    ensure_proxy,
    is_proxy_process,
    proxy_env,
    proxy_status,
    stop_proxy,
)


@pytest.fixture
def run_dir(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "run" / "sandbox.web"
    yield path
    stop_proxy(path)


def ask(handle: ProxyHandle, target: str) -> bytes:
    with socket.create_connection((handle.host, handle.port), timeout=5) as sock:
        sock.sendall(f"CONNECT {target} HTTP/1.1\r\n\r\n".encode())
        return sock.recv(4096).split(b"\r\n")[0]


def kill_hard(pid: int) -> None:
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while is_proxy_process(pid) and time.monotonic() < deadline:
        time.sleep(0.02)


def test_start_reuse_and_stop(run_dir: Path, runner: Any, upstream: Any) -> None:
    listed = f"127.0.0.1:{upstream.port}"
    handle = ensure_proxy(run_dir, "127.0.0.1", [listed], runner=runner)
    assert handle.host == "127.0.0.1"
    assert handle.allow == (listed,)
    assert is_proxy_process(handle.pid)
    assert ask(handle, f"127.0.0.1:{upstream.port}") == b"HTTP/1.1 200 Connection established"
    assert ask(handle, "api.example.com:443") == b"HTTP/1.1 403 Forbidden"

    again = ensure_proxy(run_dir, "127.0.0.1", [f"127.0.0.1/32:{upstream.port}"], runner=runner)
    assert again == handle  # same allowlist once normalised: reused, not restarted
    assert len(runner.requests) == 1
    assert proxy_status(run_dir).state == "running"

    assert stop_proxy(run_dir) is True
    assert not is_proxy_process(handle.pid)
    status = proxy_status(run_dir)
    assert (status.state, status.handle) == ("stopped", None)
    assert not (run_dir / STATE_FILE).exists()
    assert not (run_dir / POLICY_FILE).exists()
    assert " allowed CONNECT " in (run_dir / LOG_FILE).read_text()  # the log survives a stop
    assert stop_proxy(run_dir) is False


def test_changed_allowlist_restarts_on_the_same_port(run_dir: Path, runner: Any) -> None:
    first = ensure_proxy(run_dir, "127.0.0.1", ["api.example.com"], runner=runner)
    second = ensure_proxy(run_dir, "127.0.0.1", ["api.example.com", "*.pypi.org"], runner=runner)
    assert second.pid != first.pid
    assert second.port == first.port  # the URL baked into the sandbox stays right
    assert not is_proxy_process(first.pid)
    assert second.allow == ("api.example.com", "*.pypi.org")
    policy = json.loads((run_dir / POLICY_FILE).read_text())
    assert policy == {"version": POLICY_VERSION, "allow": ["api.example.com", "*.pypi.org"]}


def test_a_proxy_started_under_an_older_policy_version_is_restarted(
        run_dir: Path, runner: Any) -> None:
    # An entry without a port once meant every port; a proxy started then keeps that meaning
    # until it is restarted, so an unchanged list is not enough to reuse it.
    first = ensure_proxy(run_dir, "127.0.0.1", ["api.example.com"], runner=runner)
    recorded = json.loads((run_dir / POLICY_FILE).read_text())
    del recorded["version"]
    (run_dir / POLICY_FILE).write_text(json.dumps(recorded))
    second = ensure_proxy(run_dir, "127.0.0.1", ["api.example.com"], runner=runner)
    assert second.pid != first.pid
    assert second.port == first.port
    assert not is_proxy_process(first.pid)


def test_dead_proxy_is_stale_and_restarted(run_dir: Path, runner: Any) -> None:
    first = ensure_proxy(run_dir, "127.0.0.1", ["api.example.com"], runner=runner)
    kill_hard(first.pid)
    status = proxy_status(run_dir)
    assert status.state == "stale"
    assert status.handle == first
    second = ensure_proxy(run_dir, "127.0.0.1", ["api.example.com"], runner=runner)
    assert second.pid != first.pid
    assert second.port == first.port
    assert proxy_status(run_dir).state == "running"


def test_taken_sticky_port_falls_back_to_a_free_one(run_dir: Path, runner: Any) -> None:
    first = ensure_proxy(run_dir, "127.0.0.1", ["api.example.com"], runner=runner)
    kill_hard(first.pid)
    with socket.socket() as squatter:
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        deadline = time.monotonic() + 5
        while True:  # the killed proxy's socket may take a moment to go away under load
            try:
                squatter.bind(("127.0.0.1", first.port))
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        squatter.listen()
        second = ensure_proxy(run_dir, "127.0.0.1", ["api.example.com"], runner=runner)
        assert second.port != first.port
        with pytest.raises(ProxyError, match=r"exit 3"):
            ensure_proxy(run_dir, "127.0.0.1", ["other.example.com"], runner=runner,
                         port=first.port)


def test_recorded_pid_of_another_process_is_never_signalled(run_dir: Path, runner: Any) -> None:
    run_dir.mkdir(parents=True)
    (run_dir / STATE_FILE).write_text(json.dumps(
        {"pid": os.getpid(), "host": "127.0.0.1", "port": 1, "allow": ["api.example.com"]}))
    assert proxy_status(run_dir).state == "stale"
    assert stop_proxy(run_dir) is False  # pytest itself is still running to see this
    handle = ensure_proxy(run_dir, "127.0.0.1", ["api.example.com"], runner=runner)
    assert handle.pid != os.getpid()


def test_start_failure_names_the_problem(run_dir: Path, runner: Any) -> None:
    with pytest.raises(ProxyError, match=r"did not start on not-an-ip \(exit 2\)") as caught:
        ensure_proxy(run_dir, "not-an-ip", ["api.example.com"], runner=runner)
    assert '"not-an-ip:0": the proxy listens on an IP address' in caught.value.message
    assert caught.value.hint == f"the proxy log is {run_dir.absolute() / LOG_FILE}"


def test_invalid_allowlist_is_refused_before_anything_starts(run_dir: Path, runner: Any) -> None:
    with pytest.raises(ValueError, match=r"is not a host pattern"):
        ensure_proxy(run_dir, "127.0.0.1", ["bad host"], runner=runner)
    assert runner.requests == []


def test_proxy_env_points_both_spellings_at_the_proxy() -> None:
    env = proxy_env(ProxyHandle(pid=1, host="10.89.0.1", port=3128))
    assert env == {
        "HTTP_PROXY": "http://10.89.0.1:3128", "HTTPS_PROXY": "http://10.89.0.1:3128",
        "http_proxy": "http://10.89.0.1:3128", "https_proxy": "http://10.89.0.1:3128",
        "NO_PROXY": "localhost,127.0.0.1,::1", "no_proxy": "localhost,127.0.0.1,::1",
    }
    assert proxy_env(ProxyHandle(pid=1, host="fd00::1", port=8))["HTTP_PROXY"] == "http://[fd00::1]:8"
