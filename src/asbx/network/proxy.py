"""The egress proxy: HTTP CONNECT tunnels and plain-HTTP forwarding, each checked by a HostPolicy.

Run as `python -m asbx.network.proxy --listen HOST:PORT --allow ENTRY... --log F --state F`.
At most `max_connections` requests are served at once; further connections wait (accepted, in
order) for a free worker, up to `max_queued`, and only beyond that are refused with a 503 that
names the limit. The request log is size-capped with one rotated file and clipped fields.
A request's host is checked before anything is resolved (so DNS cannot carry data out for
unlisted names), names are resolved here (the sandbox has no DNS), every resolved address is
checked, and the connection goes to the checked address itself, never re-resolved.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import errno
import ipaddress
import json
import os
import re
import resource
import selectors
import signal
import socket
import ssl
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import TextIO
from urllib.parse import urlsplit

from asbx.errors import AsbxError
from asbx.network.ca import LeafIssuer, ProjectCA
from asbx.network.policy import HostPolicy, IPAddress, Resolver, decide, parse_address
from asbx.network.secrets import (
    SecretGrant,
    apply_grants,
    from_stdin,
    grants_for,
    normalise_host,
)

EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_ADDRESS_IN_USE = 3
MAX_CONNECTIONS_ENV = "ASBX_PROXY_MAX_CONNECTIONS"
MAX_QUEUED_ENV = "ASBX_PROXY_MAX_QUEUED"
LISTEN_BACKLOG = 1024  # the kernel's queue before accept (capped by net.core.somaxconn)

# Dropped from forwarded requests. Transfer-Encoding is hop-by-hop too, but bodies are relayed
# byte for byte (never re-framed), so the header describing their framing must stay.
HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-connection", "proxy-authenticate",
                        "proxy-authorization", "te", "trailer", "upgrade"})
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_AUTHORITY = re.compile(
    r"^(?:\[(?P<v6>[0-9A-Fa-f:.]+)\]|(?P<host>[^:\[\]/@\s]+)):(?P<port>\d{1,5})$")
_VERSIONS = ("HTTP/1.0", "HTTP/1.1")
_UNSAFE_TARGET = re.compile(r"[\t\r\n]")  # what urlsplit deletes; other controls reach the policy
# A bare CR or LF inside a field value ends the line for many servers: a header smuggled past
# every check here (a second Host inside a tunnel whose requests get secrets)
_UNSAFE_VALUE = re.compile(r"[\r\n\0]")
_SAFE_LOG_TEXT = re.compile(r"[A-Za-z0-9.:_\[\]*/-]+")
LOG_FIELD_CHARS = 120  # a longer method or target is logged as a prefix and its length
LOG_REASON_CHARS = 240
LOG_WORD_CHARS = 64  # a longer word in a reason (a hostile host name) is logged as its length
LOG_MAX_BYTES = 1 << 20  # then the log is rotated to LOG.1 (one rotated file kept)
_REASONS = {400: "Bad Request", 403: "Forbidden", 408: "Request Timeout",
            421: "Misdirected Request", 431: "Request Header Fields Too Large",
            500: "Internal Server Error",
            502: "Bad Gateway", 503: "Service Unavailable", 504: "Gateway Timeout"}


@dataclass(frozen=True)
class ProxyLimits:
    """Bounds that keep one misbehaving client from exhausting the proxy."""

    max_header_bytes: int = 32 * 1024
    header_timeout: float = 15.0  # whole request head, against slow clients
    connect_timeout: float = 10.0  # per upstream address tried
    idle_timeout: float = 300.0  # a tunnel with no traffic either way is closed
    max_connections: int = 256  # served at once (one thread each)
    max_queued: int = 2048  # accepted, waiting for a free worker; beyond it: 503


def system_resolver(host: str, port: int) -> list[IPAddress]:
    """The host's resolver (getaddrinfo), addresses deduplicated in the order given."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    return list(dict.fromkeys(ipaddress.ip_address(str(info[4][0])) for info in infos))


class _Reply(Exception):
    """Ends a request with an HTTP status and a one-line reason."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass(frozen=True)
class RequestHead:
    method: str
    target: str
    version: str
    headers: tuple[tuple[str, str], ...]


@dataclass
class _Record:
    """What the log line of one request says."""

    client: str
    started: float
    verdict: str = "error"
    method: str = "-"
    target: str = "-"
    address: str = "-"
    status: int = 0
    reason: str = ""
    sent: int = 0
    received: int = 0
    secrets: tuple[str, ...] = ()  # names of the secrets put into this request (never values)
    withheld: tuple[str, ...] = ()  # granted to this host, not put into a plain-http request

    def line(self) -> str:
        stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        ms = int((time.monotonic() - self.started) * 1000)
        text = (f"{stamp} {self.verdict} {_log_text(clip(self.method))} "
                f"{_log_text(clip(self.target))} "
                f"status={self.status} addr={self.address} client={self.client} "
                f"sent={self.sent} received={self.received} ms={ms}")
        if self.secrets:
            text += f" secret={','.join(self.secrets)}"
        if self.withheld:
            text += f" withheld={','.join(self.withheld)} (plain http: secrets go into https only)"
        return text + (f" reason={json.dumps(clip_reason(self.reason))}" if self.reason else "")


def clip(text: str, limit: int = LOG_FIELD_CHARS) -> str:
    """`text`, or its first `limit` characters and how long it was."""
    return text if len(text) <= limit else f"{text[:limit]}...[{len(text)} chars]"


def clip_reason(reason: str) -> str:
    """A reason with each overlong word (a host already logged, clipped, as the target)
    replaced by its length, then clipped as a whole."""
    words = [w if len(w) <= LOG_WORD_CHARS else f"[{len(w)} chars]" for w in reason.split(" ")]
    return clip(" ".join(words), LOG_REASON_CHARS)


class RequestLog:
    """One line per request, appended to a file (or a stream) from any thread.

    A file log stays under `max_bytes`: a line that would pass it first moves the file to
    `PATH.1` (replacing the one before) and starts a new one, so at most twice that is kept.
    """

    def __init__(self, stream: TextIO, path: Path | None = None,
                 max_bytes: int = LOG_MAX_BYTES) -> None:
        self._stream = stream
        self._path = path
        self._max_bytes = max_bytes
        self.follow_with_stdio = False  # a daemon's stdout/stderr go to the current file too
        self._size = stream.tell() if path is not None else 0
        self._lock = threading.Lock()
        self._closed = False

    @classmethod
    def to_file(cls, path: Path, max_bytes: int = LOG_MAX_BYTES) -> RequestLog:
        return cls(_open_log(path), path, max_bytes)

    def write(self, line: str) -> None:
        data = line + "\n"
        with self._lock:
            if self._closed:  # a connection that outlived the proxy's shutdown grace
                return
            size = len(data.encode("utf-8"))
            if self._path is not None and self._size and self._size + size > self._max_bytes:
                self._rotate(self._path)
            self._stream.write(data)
            self._stream.flush()
            self._size += size

    def _rotate(self, path: Path) -> None:
        self._stream.close()
        os.replace(path, rotated_log(path))
        self._stream = _open_log(path)
        self._size = 0
        if self.follow_with_stdio:
            for fd in (1, 2):
                os.dup2(self._stream.fileno(), fd)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            if self._stream not in (sys.stderr, sys.stdout):
                self._stream.close()


class EgressProxy:
    """A threaded HTTP proxy enforcing one sandbox's HostPolicy. `bind`, `serve_forever`, `stop`."""

    def __init__(self, policy: HostPolicy, *, host: str, port: int, log: RequestLog,
                 resolver: Resolver = system_resolver, limits: ProxyLimits | None = None,
                 clients: Sequence[str] = (), secrets: Sequence[SecretGrant] = (),
                 issuer: LeafIssuer | None = None,
                 upstream_tls: ssl.SSLContext | None = None) -> None:
        self.policy = policy
        # Secrets are put only into requests to their hosts, inside TLS the proxy terminates
        # with a leaf certificate from the project's CA (`issuer`); it verifies the upstream
        # with `upstream_tls` (default: the system's trust store, SSL_CERT_FILE honoured).
        if secrets and issuer is None:
            raise ValueError("secrets need the project's CA to terminate TLS with")
        self.secrets = tuple(secrets)
        self.issuer = issuer
        self._upstream_tls = upstream_tls
        # Who may connect (CIDRs; empty: anyone). asbx passes its sandbox's subnet; the host
        # firewall enforces the same, this is defence in depth.
        self.clients = tuple(ipaddress.ip_network(c, strict=False) for c in clients)
        self.log = log
        self.resolver = resolver
        self.limits = limits or ProxyLimits()
        self._requested = (host, port)
        self._listener: socket.socket | None = None
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_w.setblocking(False)
        self._lock = threading.Lock()
        self._workers = 0  # threads serving connections, at most limits.max_connections
        self._queue: collections.deque[tuple[socket.socket, str]] = collections.deque()
        self._live: set[socket.socket] = set()
        self._threads: set[threading.Thread] = set()
        self._loop_done = threading.Event()  # set whenever serve_forever is not running
        self._loop_done.set()

    @property
    def address(self) -> tuple[str, int]:
        """The (host, port) actually listened on; valid after `bind`."""
        if self._listener is None:
            raise RuntimeError("the proxy is not bound")
        host, port = self._listener.getsockname()[:2]
        return str(host), int(port)

    def bind(self) -> tuple[str, int]:
        """Listen on the requested address (port 0 picks one); raises OSError."""
        host, port = self._requested
        family = socket.AF_INET6 if ipaddress.ip_address(host).version == 6 else socket.AF_INET
        listener = socket.socket(family, socket.SOCK_STREAM)
        try:
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            _allow_future_address(listener)
            listener.bind((host, port))
            listener.listen(LISTEN_BACKLOG)
            listener.setblocking(False)
        except OSError:
            listener.close()
            raise
        self._listener = listener
        return self.address

    def serve_forever(self) -> None:
        """Accept connections until `stop` is called; each runs in its own thread."""
        if self._listener is None:
            self.bind()
        assert self._listener is not None
        self._loop_done.clear()
        try:
            with selectors.DefaultSelector() as selector:
                selector.register(self._listener, selectors.EVENT_READ)
                selector.register(self._wake_r, selectors.EVENT_READ)
                while self._wake_r not in {key.fileobj for key, _ in selector.select()}:
                    self._accept()
        finally:
            self._loop_done.set()

    def stop(self) -> None:
        """Make `serve_forever` return; safe from a signal handler or another thread."""
        with contextlib.suppress(OSError):
            self._wake_w.send(b"x")

    def close(self, grace: float = 2.0) -> None:
        """Stop accepting, cut live connections and wait (bounded) for their threads."""
        self.stop()
        self._loop_done.wait(grace)
        if self._listener is not None:
            self._listener.close()
        with self._lock:
            live, threads = list(self._live), list(self._threads)
            for sock in live:  # under the lock: a connection thread closes its sockets only
                with contextlib.suppress(OSError):  # after taking them out of _live
                    sock.shutdown(socket.SHUT_RDWR)
        deadline = time.monotonic() + grace
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        self._wake_r.close()
        self._wake_w.close()

    def _accept(self) -> None:
        assert self._listener is not None
        try:
            client, peer = self._listener.accept()
        except (BlockingIOError, InterruptedError):
            return
        if not self._client_allowed(str(peer[0])):
            self._refuse(client, str(peer[0]), _Reply(403, "this proxy serves another sandbox"))
            return
        self._admit(client, str(peer[0]))

    def _admit(self, client: socket.socket, peer: str) -> None:
        """Serve the connection in a new worker, or queue it for the next free one, or (the
        queue full too) refuse it."""
        with self._lock:
            queue_full = len(self._queue) >= self.limits.max_queued
            if self._workers < self.limits.max_connections:
                self._workers += 1
                thread = threading.Thread(target=self._work, args=(client, peer),
                                          name=f"egress-{peer}", daemon=True)
                self._live.add(client)
                self._threads.add(thread)
            elif not queue_full:
                self._queue.append((client, peer))
                self._live.add(client)
                return
            else:
                thread = None
        if thread is None:
            self._refuse_busy(client, peer)
        else:
            thread.start()

    def _work(self, client: socket.socket, peer: str) -> None:
        """Serve connections until the queue is empty: this one, then each queued one."""
        while True:
            self._run_connection(client, peer)
            with self._lock:
                if not self._queue:
                    self._workers -= 1
                    self._threads.discard(threading.current_thread())
                    return
                client, peer = self._queue.popleft()

    def _refuse_busy(self, client: socket.socket, peer: str) -> None:
        record = _Record(client=peer, started=time.monotonic())
        limits = self.limits
        reply = _Reply(503, f"too many connections: {limits.max_connections} served at once "
                            f"and {limits.max_queued} waiting (the proxy's --max-connections "
                            "and --max-queued)")
        with client:
            client.settimeout(1.0)
            _send_reply(client, reply, record, drain=False)  # never stall the accept loop
        self.log.write(record.line())

    def _client_allowed(self, peer: str) -> bool:
        if not self.clients:
            return True
        address = ipaddress.ip_address(peer.split("%", 1)[0])
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        return any(address in network for network in self.clients)

    def _refuse(self, client: socket.socket, peer: str, reply: _Reply) -> None:
        record = _Record(client=peer, started=time.monotonic())
        with client:
            client.settimeout(1.0)
            _send_reply(client, reply, record, drain=False)  # never stall the accept loop
        self.log.write(record.line())

    def _run_connection(self, client: socket.socket, peer: str) -> None:
        record = _Record(client=peer, started=time.monotonic())
        try:
            client.settimeout(self.limits.header_timeout)
            self._serve_request(client, record)
        except _Reply as reply:
            _send_reply(client, reply, record)
        except OSError as exc:
            record.reason = f"connection error: {exc}"
        except Exception as exc:  # a bug must not kill the proxy; it is logged instead
            _send_reply(client, _Reply(500, "internal proxy error"), record)
            record.reason = f"internal error: {exc!r}"
        finally:
            with self._lock:
                self._live.discard(client)
            client.close()
            self.log.write(record.line())

    def _serve_request(self, client: socket.socket, record: _Record) -> None:
        raw, early = read_head(client, self.limits)
        head = parse_head(raw)
        record.method, record.target = head.method, head.target
        host, port = request_target(head)
        record.target = join_host_port(host, port)
        decision = decide(self.policy, host, port, self.resolver)
        if not decision.allowed:
            raise _Reply(403 if decision.verdict == "refused" else 502, decision.reason)
        upstream, address = self._connect(host, port, decision.addresses)
        record.address = str(address)
        with upstream:
            self._track(upstream, True)
            try:
                self._bridge(client, upstream, head, host, port, early, record)
            finally:
                self._track(upstream, False)

    def _bridge(self, client: socket.socket, upstream: socket.socket, head: RequestHead,
                host: str, port: int, early: bytes, record: _Record) -> None:
        record.verdict = "allowed"
        grants = grants_for(self.secrets, host)
        if head.method == "CONNECT" and grants:
            self._intercept(client, upstream, host, early, record, grants)
            return
        if grants:  # never put a secret on a cleartext hop: forwarded as it is
            record.withheld = tuple(g.name for g in grants)
        if head.method == "CONNECT":
            record.status = 200
            client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            first = early
        else:
            first = forward_head(head, host, port) + early
        upstream.sendall(first)
        record.sent += len(first)
        client.settimeout(self.limits.idle_timeout)
        upstream.settimeout(self.limits.idle_timeout)
        relay(client, upstream, self.limits.idle_timeout, record)

    def _intercept(self, client: socket.socket, upstream: socket.socket, host: str,
                   early: bytes, record: _Record, grants: Sequence[SecretGrant]) -> None:
        """Terminate the client's TLS as `host` (a leaf from the project's CA), open verified
        TLS to the upstream, and forward one request with the grants applied to its headers
        (`Connection: close`: one request per tunnel, so no later request slips past)."""
        assert self.issuer is not None
        if early:
            raise _Reply(400, "data sent before the tunnel was established")
        record.status = 200
        client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
        # TLS records are relayed as they are decrypted: without this, a small record held back
        # by Nagle's algorithm waits for the peer's delayed ACK (about 40 ms per request here)
        for sock in (client, upstream):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        client.settimeout(self.limits.header_timeout)
        try:
            inner = self.issuer.context(host).wrap_socket(client, server_side=True)
        except (ssl.SSLError, OSError) as exc:
            record.reason = f"TLS with the client failed: {exc}"
            return
        self._track(inner, True)
        try:
            self._serve_intercepted(inner, upstream, host, record, grants)
        except _Reply as reply:
            _send_reply(inner, reply, record, drain=False)
        finally:
            self._track(inner, False)
            with contextlib.suppress(OSError, ValueError):
                inner.settimeout(1.0)
                inner.unwrap()  # close_notify: the answer ended here, it was not cut off
            with contextlib.suppress(OSError):
                inner.close()

    def _serve_intercepted(self, inner: ssl.SSLSocket, upstream: socket.socket, host: str,
                           record: _Record, grants: Sequence[SecretGrant]) -> None:
        raw, early = read_head(inner, self.limits)
        head = parse_head(raw)
        record.method = head.method
        check_inner_host(head, host)
        context = self._upstream_tls or _default_upstream_tls()
        upstream.settimeout(self.limits.connect_timeout)
        try:
            outer = context.wrap_socket(upstream, server_hostname=host.strip("[]"))
        except ssl.SSLCertVerificationError as exc:
            raise _Reply(502, f"the upstream's certificate for {host} does not verify: "
                              f"{exc.verify_message}") from None
        except (ssl.SSLError, OSError) as exc:
            raise _Reply(502, f"TLS with the upstream {host} failed: {exc}") from None
        with outer:
            headers, used = apply_grants(head.headers, grants)
            record.secrets = tuple(used)
            first = _origin_head(head, headers) + early
            outer.sendall(first)
            record.sent += len(first)
            inner.settimeout(self.limits.idle_timeout)
            outer.settimeout(self.limits.idle_timeout)
            relay_tls(inner, outer, self.limits.idle_timeout, record)

    def _connect(self, host: str, port: int,
                 allowed: Sequence[IPAddress]) -> tuple[socket.socket, IPAddress]:
        failures: list[str] = []
        timeouts = 0
        for address in allowed:
            family = socket.AF_INET6 if address.version == 6 else socket.AF_INET
            sock = socket.socket(family, socket.SOCK_STREAM)
            sock.settimeout(self.limits.connect_timeout)
            try:
                sock.connect((str(address), port))
            except OSError as exc:
                sock.close()
                failures.append(f"{address}: {exc.strerror or exc}")
                timeouts += isinstance(exc, TimeoutError)
                continue
            return sock, address
        status = 504 if timeouts == len(failures) else 502
        raise _Reply(status, f"cannot connect to {host} port {port} ({'; '.join(failures)})")

    def _track(self, sock: socket.socket, live: bool) -> None:
        with self._lock:
            if live:
                self._live.add(sock)
            else:
                self._live.discard(sock)


def read_head(sock: socket.socket, limits: ProxyLimits) -> tuple[bytes, bytes]:
    """Read a request head (through the blank line); return it and any bytes read past it."""
    deadline = time.monotonic() + limits.header_timeout
    buffer = bytearray()
    while (end := buffer.find(b"\r\n\r\n")) < 0:
        if len(buffer) > limits.max_header_bytes:
            raise _Reply(431, f"request headers exceed {limits.max_header_bytes} bytes")
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise _Reply(408, "request headers not received in time")
        sock.settimeout(remaining)
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            raise _Reply(408, "request headers not received in time") from None
        if not chunk:
            raise _Reply(400, "connection closed before the request headers ended")
        buffer += chunk
    if end + 4 > limits.max_header_bytes:
        raise _Reply(431, f"request headers exceed {limits.max_header_bytes} bytes")
    return bytes(buffer[: end + 4]), bytes(buffer[end + 4 :])


def parse_head(raw: bytes) -> RequestHead:
    """Parse a request line and header fields; raise a 400 reply on anything malformed."""
    lines = raw.decode("latin-1")[:-4].split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not _TOKEN.fullmatch(parts[0]) or parts[2] not in _VERSIONS:
        raise _Reply(400, "malformed request line")
    headers: list[tuple[str, str]] = []
    for line in lines[1:]:
        name, colon, value = line.partition(":")
        if not colon or not _TOKEN.fullmatch(name):
            raise _Reply(400, "malformed header line")
        if _UNSAFE_VALUE.search(value):
            raise _Reply(400, "line break or NUL inside a header value")
        headers.append((name, value.strip(" \t")))
    return RequestHead(parts[0].upper(), parts[1], parts[2], tuple(headers))


def request_target(head: RequestHead) -> tuple[str, int]:
    """The (host, port) a request wants: CONNECT's authority or an http:// absolute URI's."""
    if _UNSAFE_TARGET.search(head.target):  # urlsplit would silently delete them
        raise _Reply(400, "tab or line break in the request target")
    if head.method == "CONNECT":
        match = _AUTHORITY.match(head.target)
        if not match:
            raise _Reply(400, "CONNECT needs host:port")
        host, port = match.group("v6") or match.group("host"), int(match.group("port"))
    else:
        url = urlsplit(head.target)
        if url.scheme.lower() != "http" or not url.hostname:
            raise _Reply(400, "only CONNECT and http:// absolute URIs are proxied")
        try:
            host, port = url.hostname, url.port or 80
        except ValueError:
            raise _Reply(400, "bad port in the URI") from None
    if not 0 < port < 65536:
        raise _Reply(400, f"port {port} is out of range")
    return host, port


def forward_head(head: RequestHead, host: str, port: int) -> bytes:
    """The head sent upstream: origin-form target, Host from the URI, hop-by-hop headers dropped."""
    url = urlsplit(head.target)
    path = (url.path or "/") + (f"?{url.query}" if url.query else "")
    named = {v.strip().lower() for n, v in head.headers if n.lower() == "connection"
             for v in v.split(",")}
    drop = HOP_BY_HOP | named | {"host"}
    authority = join_host_port(host, None if port == 80 else port)
    lines = [f"{head.method} {path} {head.version}", f"Host: {authority}"]
    lines += [f"{name}: {value}" for name, value in head.headers if name.lower() not in drop]
    lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def relay(client: socket.socket, upstream: socket.socket, idle_timeout: float,
          record: _Record) -> None:
    """Copy bytes both ways until both sides have closed, or nothing moves for idle_timeout."""
    peers = {client: upstream, upstream: client}
    with selectors.DefaultSelector() as selector:
        for sock in peers:
            selector.register(sock, selectors.EVENT_READ)
        while peers:
            events = selector.select(idle_timeout)
            if not events:
                record.reason = f"idle for {idle_timeout:g}s"
                return
            for key, _ in events:
                source = key.fileobj
                assert isinstance(source, socket.socket)
                data = source.recv(65536)
                target = peers[source]
                if not data:
                    selector.unregister(source)
                    del peers[source]
                    with contextlib.suppress(OSError):
                        target.shutdown(socket.SHUT_WR)
                    continue
                target.sendall(data)
                if source is client:
                    record.sent += len(data)
                    continue
                if record.received == 0 and record.method != "CONNECT":
                    record.status = _response_status(data)
                record.received += len(data)


def relay_tls(client: ssl.SSLSocket, upstream: ssl.SSLSocket, idle_timeout: float,
              record: _Record) -> None:
    """Copy bytes both ways between two TLS connections until the upstream closes (its answer
    is complete: the request said `Connection: close`), or nothing moves for idle_timeout. A
    client that closes its side first still gets the answer."""
    peers: dict[ssl.SSLSocket, ssl.SSLSocket] = {client: upstream, upstream: client}
    open_ends = set(peers)
    with selectors.DefaultSelector() as selector:
        for sock in peers:
            selector.register(sock, selectors.EVENT_READ)
        while True:
            # decrypted bytes can wait in the TLS layer, where select does not see them
            ready = [sock for sock in open_ends if sock.pending()]
            if not ready:
                events = selector.select(idle_timeout)
                if not events:
                    record.reason = f"idle for {idle_timeout:g}s"
                    return
                ready = [peer for key, _ in events for peer in peers if peer is key.fileobj]
            for source in ready:
                data = _read_tls(source, idle_timeout)
                if data == b"":  # only TLS housekeeping (a session ticket): nothing to pass
                    continue
                if data is None:
                    if source is upstream:
                        return
                    selector.unregister(source)
                    open_ends.discard(source)
                    continue
                peers[source].sendall(data)
                if source is client:
                    record.sent += len(data)
                    continue
                if record.received == 0:
                    record.status = _response_status(data)
                record.received += len(data)


def _read_tls(sock: ssl.SSLSocket, timeout: float) -> bytes | None:
    """What can be read now without waiting: b"" when the readable bytes were TLS records
    that carry no data (a TLS 1.3 session ticket: a blocking read would wait for data that
    may never come), None at the end of the stream or a connection cut."""
    sock.settimeout(0)
    try:
        data = sock.recv(65536)
        while data and sock.pending():
            data += sock.recv(sock.pending())
    except ssl.SSLWantReadError:
        return b""
    except (ssl.SSLZeroReturnError, ConnectionError):
        return None
    except ssl.SSLError as exc:
        if "EOF" in str(exc):  # closed without close_notify: the end all the same
            return None
        raise
    finally:
        sock.settimeout(timeout)
    return data or None


def check_inner_host(head: RequestHead, host: str) -> None:
    """Refuse a request inside an intercepted tunnel that names any host but the tunnel's, in
    its one Host header or an absolute-form target (which a server prefers to Host): a shared
    front end routes by them, and the secrets are for the tunnel's host only."""
    authorities = [v for n, v in head.headers if n.lower() == "host"]
    if len(authorities) != 1:
        raise _Reply(400, f"{len(authorities)} Host headers inside a tunnel: exactly one, please")
    named = [authorities[0]]
    if _UNSAFE_TARGET.search(head.target):
        raise _Reply(400, "tab or line break in the request target")
    if not (head.target.startswith("/") or head.target == "*"):
        url = urlsplit(head.target)
        if url.scheme.lower() not in ("http", "https") or not url.netloc \
                or any(c in url.netloc for c in "@\\"):
            raise _Reply(400, "inside a tunnel the request target is a path or an http(s) URL")
        named.append(url.netloc)
    for authority in named:
        if normalise_host(_host_of(authority)) != normalise_host(host):
            raise _Reply(421, f"the request names host {clip(authority, 60)!r} inside a tunnel "
                              f"to {host}: secrets go only to the host of the tunnel")


def _host_of(authority: str) -> str:
    """The host of a Host header value (`host`, `host:port`, `[v6]:port`)."""
    authority = authority.strip()
    if authority.startswith("["):
        return authority[1:].partition("]")[0]
    return authority.rpartition(":")[0] if authority.count(":") == 1 else authority


def _origin_head(head: RequestHead, headers: Sequence[tuple[str, str]]) -> bytes:
    """An intercepted request's head as sent upstream: hop-by-hop headers dropped, closed
    after one response."""
    named = {v.strip().lower() for n, v in headers if n.lower() == "connection"
             for v in v.split(",")}
    drop = HOP_BY_HOP | named
    lines = [f"{head.method} {head.target} {head.version}"]
    lines += [f"{name}: {value}" for name, value in headers if name.lower() not in drop]
    lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def _default_upstream_tls() -> ssl.SSLContext:
    """The system's trust store (SSL_CERT_FILE / SSL_CERT_DIR honoured), hostname checked."""
    context = ssl.create_default_context()
    context.set_alpn_protocols(["http/1.1"])
    return context


def _send_reply(client: socket.socket, reply: _Reply, record: _Record, *,
                drain: bool = True) -> None:
    """Answer with the status and one line of reason; `drain` reads what the client still
    sends (at most 1 s, 1 MiB) so that closing with unread input does not reset the answer away."""
    record.verdict = "denied" if reply.status == 403 else "error"
    record.status = reply.status
    record.reason = reply.reason
    body = f"asbx egress proxy: {reply.reason}\n".encode()
    head = (f"HTTP/1.1 {reply.status} {_REASONS.get(reply.status, 'Error')}\r\n"
            f"Content-Type: text/plain; charset=utf-8\r\nContent-Length: {len(body)}\r\n"
            "Connection: close\r\n\r\n").encode()
    with contextlib.suppress(OSError):
        client.sendall(head + body)
        client.shutdown(socket.SHUT_WR)
        deadline, budget = time.monotonic() + 1.0, 1 << 20
        while drain and budget > 0 and (remaining := deadline - time.monotonic()) > 0:
            client.settimeout(remaining)
            data = client.recv(65536)
            if not data:
                break
            budget -= len(data)


def _response_status(data: bytes) -> int:
    """The status code in a response's first bytes, for the log (responses are relayed as is)."""
    parts = data[:16].split(b" ")
    return int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0


def _allow_future_address(listener: socket.socket) -> None:
    """Let the proxy bind a gateway address whose bridge does not exist yet (Linux IP_FREEBIND).

    Podman creates an internal network's bridge only when its first container starts; the
    proxy is started before that and must already be listening when the sandbox comes up.
    """
    if sys.platform != "linux":
        return
    if listener.family == socket.AF_INET:
        option = (socket.IPPROTO_IP, getattr(socket, "IP_FREEBIND", 15))
    else:
        option = (socket.IPPROTO_IPV6, 78)  # IPV6_FREEBIND
    with contextlib.suppress(OSError):
        listener.setsockopt(*option, 1)


def rotated_log(path: Path) -> Path:
    """Where `RequestLog` keeps the previous part of the log at `path`."""
    return path.with_name(path.name + ".1")


def _open_log(path: Path) -> TextIO:
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    return os.fdopen(fd, "a", encoding="utf-8", buffering=1)


def join_host_port(host: str, port: int | None) -> str:
    """`host:port`, with IPv6 hosts in brackets; just the host when port is None."""
    shown = f"[{host}]" if ":" in host else host
    return shown if port is None else f"{shown}:{port}"


def _log_text(text: str) -> str:
    return text if _SAFE_LOG_TEXT.fullmatch(text) else json.dumps(text)


# --- the process: python -m asbx.network.proxy ---------------------------------------------


def parse_listen(text: str) -> tuple[str, int]:
    """HOST:PORT or [V6]:PORT with an IP address for HOST; raise ValueError."""
    match = _AUTHORITY.match(text)
    if not match:
        raise ValueError(f'"{text}" is not HOST:PORT')
    host = match.group("v6") or match.group("host")
    if parse_address(host) is None:
        raise ValueError(f'"{text}": the proxy listens on an IP address, not "{host}"')
    port = int(match.group("port"))
    if port > 65535:
        raise ValueError(f"port {port} is out of range")
    return host, port


def load_policy_file(path: Path) -> HostPolicy:
    """A policy file is JSON: {"allow": ["host", "*.suffix", "10.0.0.0/8", ...]}."""
    data = json.loads(path.read_text(encoding="utf-8"))
    allow = data.get("allow") if isinstance(data, dict) else None
    if not isinstance(allow, list) or not all(isinstance(item, str) for item in allow):
        raise ValueError(f'{path}: expected {{"allow": [hosts]}}')
    return HostPolicy(allow)


def write_state(path: Path, pid: int, address: tuple[str, int], policy: HostPolicy) -> None:
    """Write the JSON state the manager reads back (atomically: temp file, then rename)."""
    state = {"pid": pid, "host": address[0], "port": address[1], "allow": list(policy.entries)}
    temp = path.with_name(f".{path.name}.{pid}.tmp")
    temp.write_text(json.dumps(state) + "\n", encoding="utf-8")
    os.replace(temp, path)


def _arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m asbx.network.proxy",
                                     description="asbx's egress proxy for one sandbox")
    parser.add_argument("--listen", required=True, help="HOST:PORT to listen on (port 0: any)")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--allow", action="append", help="an allowlist entry (repeatable)")
    source.add_argument("--policy-file", type=Path, help='JSON file: {"allow": [...]}')
    parser.add_argument("--client", action="append", default=[],
                        help="accept connections only from this CIDR (repeatable; default: any)")
    parser.add_argument("--log", type=Path, help="request log (default: stderr)")
    parser.add_argument("--pidfile", type=Path, help="write the pid here")
    parser.add_argument("--state", type=Path, help="write {pid, host, port, allow} JSON here")
    parser.add_argument("--daemon", action="store_true",
                        help="detach once listening (exit 0 only when ready)")
    parser.add_argument("--secrets-stdin", action="store_true",
                        help="read secret grants and the project CA's paths as JSON on stdin "
                             "(the only way values reach the proxy: never argv, env or files)")
    defaults = ProxyLimits()
    parser.add_argument("--max-connections", type=_positive, metavar="N",
                        default=_env_limit(MAX_CONNECTIONS_ENV, defaults.max_connections),
                        help=f"requests served at once (${MAX_CONNECTIONS_ENV}, "
                             f"default {defaults.max_connections})")
    parser.add_argument("--max-queued", type=_positive, metavar="N",
                        default=_env_limit(MAX_QUEUED_ENV, defaults.max_queued),
                        help="connections waiting for a free worker before 503 "
                             f"(${MAX_QUEUED_ENV}, default {defaults.max_queued})")
    args = parser.parse_args(argv)
    for name in ("policy_file", "log", "pidfile", "state"):  # the daemon leaves the cwd
        if getattr(args, name) is not None:
            setattr(args, name, getattr(args, name).absolute())
    return args


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} is not a positive number")
    return value


def _env_limit(name: str, default: int) -> int:
    """A limit from the environment asbx started the proxy in, if set and valid."""
    try:
        return _positive(os.environ[name])
    except (KeyError, ValueError, argparse.ArgumentTypeError):
        return default


def _raise_open_files(limits: ProxyLimits) -> None:
    """Make room for two sockets per worker plus every queued one (soft up to hard limit)."""
    wanted = 2 * limits.max_connections + limits.max_queued + 64
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        with contextlib.suppress(OSError, ValueError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


def main(argv: Sequence[str] | None = None) -> int:
    """Run the proxy; returns 0 after SIGTERM, 2 on bad arguments, 3 if the port is taken."""
    args = _arguments(argv)
    try:
        host, port = parse_listen(args.listen)
        policy = HostPolicy(args.allow) if args.allow else load_policy_file(args.policy_file)
        clients = tuple(str(ipaddress.ip_network(c, strict=False)) for c in args.client)
    except (OSError, ValueError) as exc:
        print(f"asbx egress proxy: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        grants, issuer = _read_secrets(policy) if args.secrets_stdin else ((), None)
    except (OSError, ValueError, AsbxError) as exc:
        print(f"asbx egress proxy: {exc}", file=sys.stderr)
        return EXIT_USAGE
    log = RequestLog.to_file(args.log) if args.log else RequestLog(sys.stderr)
    limits = ProxyLimits(max_connections=args.max_connections, max_queued=args.max_queued)
    _raise_open_files(limits)
    proxy = EgressProxy(policy, host=host, port=port, log=log, limits=limits,
                        clients=clients, secrets=grants, issuer=issuer)
    try:
        address = proxy.bind()
    except OSError as exc:
        print(f"asbx egress proxy: cannot listen on {args.listen}: {exc}", file=sys.stderr)
        proxy.close()
        log.close()
        return EXIT_ADDRESS_IN_USE if exc.errno == errno.EADDRINUSE else EXIT_ERROR
    ready_fd = None
    if args.daemon:
        child, ready_fd = _fork_daemon(args.log)
        log.follow_with_stdio = bool(args.log)
        if child:  # the launching parent: exit 0 only once the daemon has written its state
            return _wait_ready(ready_fd)
    _write_files(args, address, policy)
    if ready_fd is not None:
        os.write(ready_fd, b"1")
        os.close(ready_fd)
    return _serve(proxy, args, log)


def _read_secrets(policy: HostPolicy) -> tuple[tuple[SecretGrant, ...], LeafIssuer | None]:
    """Grants and the CA from stdin; every grant's hosts must be in the allowlist."""
    grants, ca_cert, ca_key = from_stdin(json.loads(sys.stdin.buffer.read() or b"{}"))
    for grant in grants:
        for host in grant.hosts:
            _rule, refusal = policy.check_host(host, None)
            if refusal is not None:
                raise ValueError(f"secret {grant.name} is granted to {host}, which the "
                                 f"allowlist does not allow: {refusal}")
    return grants, (LeafIssuer(ProjectCA(ca_cert, ca_key)) if grants else None)


def _serve(proxy: EgressProxy, args: argparse.Namespace, log: RequestLog) -> int:
    def on_signal(_signum: int, _frame: FrameType | None) -> None:
        proxy.stop()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    if hasattr(signal, "SIGHUP"):
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        proxy.serve_forever()
    finally:
        proxy.close()
        _remove_own_files(args)
        log.close()
    return 0


def _fork_daemon(log_path: Path | None) -> tuple[int, int]:
    """Fork a detached daemon: the parent gets (child pid, readiness pipe to read), the child
    gets (0, the pipe to write "1" to once its state file is written)."""
    ready_r, ready_w = os.pipe()
    pid = os.fork()
    if pid:
        os.close(ready_w)
        return pid, ready_r
    os.close(ready_r)
    os.setsid()
    os.chdir("/")
    _redirect_stdio(log_path)
    return 0, ready_w


def _wait_ready(ready_fd: int) -> int:
    with os.fdopen(ready_fd, "rb") as ready:
        return 0 if ready.read(1) == b"1" else EXIT_ERROR


def _redirect_stdio(log_path: Path | None) -> None:
    null = os.open(os.devnull, os.O_RDWR)
    out = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600) if log_path else null
    os.dup2(null, 0)
    os.dup2(out, 1)
    os.dup2(out, 2)
    for fd in {null, out}:
        os.close(fd)


def _write_files(args: argparse.Namespace, address: tuple[str, int], policy: HostPolicy) -> None:
    pid = os.getpid()
    if args.pidfile:
        args.pidfile.write_text(f"{pid}\n", encoding="utf-8")
    if args.state:
        write_state(args.state, pid, address, policy)


def _remove_own_files(args: argparse.Namespace) -> None:
    """Remove the pid and state files, unless another proxy has replaced them since."""
    for path in (args.pidfile, args.state):
        if path is None:
            continue
        with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
            text = path.read_text(encoding="utf-8")
            pid = json.loads(text)["pid"] if text.lstrip().startswith("{") else int(text)
            if pid == os.getpid():
                path.unlink()


if __name__ == "__main__":
    sys.exit(main())
