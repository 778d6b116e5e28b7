"""Loopback fixtures for the egress proxy tests: an upstream HTTP server and an in-process proxy."""

from __future__ import annotations

import ipaddress
import socket
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from asbx.network.policy import HostPolicy, IPAddress
from asbx.network.proxy import EgressProxy, ProxyLimits, RequestLog
from asbx.runtime.command import RecordingRunner, SubprocessRunner


@dataclass
class Upstream:
    """A loopback HTTP/1.0 server that records what each request looked like."""

    port: int
    requests: list[dict[str, str]] = field(default_factory=list)


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        upstream: Upstream = self.server.upstream  # type: ignore[attr-defined]
        seen = {"path": self.path, **{k.lower(): v for k, v in self.headers.items()}}
        upstream.requests.append(seen)
        body = f"hello from upstream {self.path}\n".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def upstream() -> Iterator[Upstream]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    record = Upstream(port=server.server_address[1])
    server.upstream = record  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield record
    server.shutdown()
    server.server_close()
    thread.join(5)


class RecordingResolver:
    """A resolver from a fixed table, recording every name it was asked for (no real DNS)."""

    def __init__(self, table: dict[str, Sequence[str]]) -> None:
        self.table = table
        self.asked: list[str] = []

    def __call__(self, host: str, port: int) -> list[IPAddress]:
        self.asked.append(host)
        if host not in self.table:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [ipaddress.ip_address(a) for a in self.table[host]]


@dataclass
class RunningProxy:
    proxy: EgressProxy
    port: int
    log_path: Path
    resolver: RecordingResolver

    def log_lines(self) -> list[str]:
        return self.log_path.read_text(encoding="utf-8").splitlines()


StartProxy = Callable[..., RunningProxy]


@pytest.fixture
def start_proxy(tmp_path: Path) -> Iterator[StartProxy]:
    started: list[tuple[EgressProxy, threading.Thread, RequestLog]] = []

    def start(allow: Sequence[str], resolve: dict[str, Sequence[str]] | None = None,
              limits: ProxyLimits | None = None) -> RunningProxy:
        log_path = tmp_path / f"proxy-{len(started)}.log"
        log = RequestLog.to_file(log_path)
        resolver = RecordingResolver(resolve or {})
        proxy = EgressProxy(HostPolicy(allow), host="127.0.0.1", port=0, log=log,
                            resolver=resolver, limits=limits)
        _, port = proxy.bind()
        thread = threading.Thread(target=proxy.serve_forever, daemon=True)
        thread.start()
        started.append((proxy, thread, log))
        return RunningProxy(proxy, port, log_path, resolver)

    yield start
    for proxy, thread, log in started:
        proxy.stop()
        thread.join(5)
        proxy.close()
        log.close()


Exchange = Callable[[int, bytes], bytes]


def _exchange(port: int, data: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(data)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


@pytest.fixture
def exchange() -> Exchange:
    """Send bytes to 127.0.0.1:port and read until the other side closes."""
    return _exchange


@pytest.fixture
def runner() -> RecordingRunner:
    """The project's real command runner, recording what it ran."""
    return RecordingRunner(SubprocessRunner())
