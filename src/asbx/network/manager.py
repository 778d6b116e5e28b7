"""The egress proxy's lifecycle for apply/destroy/status: start detached, reuse, restart, stop.

One proxy per sandbox, in that sandbox's run directory, enforcing exactly that sandbox's
allowlist. Files in `run_dir`: `proxy.json` (state: pid, host, port, allow), `proxy.pid`,
`policy.json` (the allowlist it was started with) and `proxy.log` (one line per request, plus
the proxy's own errors). Callers serialise calls per run_dir (apply holds the project lock).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from asbx.errors import AsbxError
from asbx.network.ca import ProjectCA
from asbx.network.policy import HostPolicy
from asbx.network.proxy import EXIT_ADDRESS_IN_USE, join_host_port, rotated_log
from asbx.network.secrets import FINGERPRINT_KEY, SecretGrant, fingerprint_key, to_stdin
from asbx.network.secrets import recorded as recorded_grants
from asbx.runtime.command import CommandRequest, CommandResult, CommandRunner

STATE_FILE = "proxy.json"
PID_FILE = "proxy.pid"
POLICY_FILE = "policy.json"
LOG_FILE = "proxy.log"
# What an allow entry means to the proxy. A proxy started with another version is restarted even
# when its list is unchanged: version 2 made an entry without a port mean 80 and 443 only.
POLICY_VERSION = 2
NO_PROXY = "localhost,127.0.0.1,::1"
_PROXY_MODULE = "asbx.network.proxy"


class ProxyError(AsbxError):
    """The egress proxy could not be started or stopped."""


@dataclass(frozen=True)
class ProxyHandle:
    """A running egress proxy: where the sandbox reaches it, and what it allows."""

    pid: int
    host: str
    port: int
    allow: tuple[str, ...] = ()

    @property
    def url(self) -> str:
        return f"http://{join_host_port(self.host, self.port)}"


@dataclass(frozen=True)
class ProxyStatus:
    """What `status` shows: running (handle is live), stale (handle is what a dead proxy
    recorded) or stopped (no handle)."""

    state: Literal["running", "stale", "stopped"]
    handle: ProxyHandle | None
    log_path: Path


def ensure_proxy(run_dir: Path, listen_host: str, allow: Sequence[str], *,
                 runner: CommandRunner, port: int = 0, timeout: float = 15.0,
                 clients: Sequence[str] = (), secrets: Sequence[SecretGrant] = (),
                 ca: ProjectCA | None = None) -> ProxyHandle:
    """Make sure a proxy with exactly this allowlist listens on listen_host; return it.

    A live proxy with the same host and allowlist is reused. One with another allowlist is
    restarted on the same port, so the proxy URL already baked into the sandbox stays right.
    `port` 0 means: the port the previous proxy had, else any free one. `listen_host` is the
    sandbox network's gateway address; it may not exist yet (the proxy binds it anyway).
    `clients` (CIDRs) are the only peers the proxy serves; empty means any. `secrets` go to
    the proxy through its stdin (never a file); policy.json keeps keyed fingerprints of their
    values, so a rotated value restarts the proxy (same port) and an unchanged one reuses it.
    """
    if secrets and ca is None:
        raise ProxyError("secrets need the project's CA")
    policy = HostPolicy(allow)
    run_dir = run_dir.absolute()
    run_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    granted = recorded_grants(secrets, fingerprint_key(run_dir)) if secrets else []
    recorded = read_handle(run_dir)
    if recorded is not None and is_proxy_process(recorded.pid):
        if (recorded.host, recorded.allow) == (listen_host, policy.entries) and port in (
                0, recorded.port) and _recorded_clients(run_dir) == list(clients) \
                and _recorded_version(run_dir) == POLICY_VERSION \
                and _recorded_field(run_dir, "secrets") == granted:
            return recorded
        _terminate(recorded.pid)
    _remove_run_files(run_dir)
    sticky = recorded.port if recorded is not None and recorded.host == listen_host else 0
    preferred = port or sticky
    recorded_policy: dict[str, object] = {"version": POLICY_VERSION, "allow": list(policy.entries)}
    if clients:
        recorded_policy["clients"] = list(clients)
    if granted:
        recorded_policy["secrets"] = granted
    _write_json(run_dir / POLICY_FILE, recorded_policy)
    message = to_stdin(secrets, ca.cert_path, ca.key_path) if secrets and ca else None
    result = _launch(run_dir, listen_host, preferred, runner, timeout, clients, message)
    if result.returncode == EXIT_ADDRESS_IN_USE and preferred and not port:
        result = _launch(run_dir, listen_host, 0, runner, timeout, clients, message)
    handle = read_handle(run_dir)
    if result.returncode != 0 or result.timed_out or handle is None:
        raise ProxyError(_start_failure(run_dir, listen_host, result),
                         hint=f"the proxy log is {run_dir / LOG_FILE}")
    return handle


def stop_proxy(run_dir: Path, timeout: float = 5.0) -> bool:
    """Stop the run_dir's proxy if it runs and forget it; True if a process was stopped."""
    pid = _recorded_pid(run_dir)
    if pid is None or not is_proxy_process(pid):
        _remove_run_files(run_dir)
        return False
    _terminate(pid, timeout)
    _remove_run_files(run_dir)
    return True


def remove_logs(run_dir: Path) -> None:
    """Remove a stopped proxy's request log (and its rotated part), then its run_dir if empty."""
    for name in (LOG_FILE, rotated_log(Path(LOG_FILE)).name, FINGERPRINT_KEY):
        (run_dir / name).unlink(missing_ok=True)
    with contextlib.suppress(OSError):
        run_dir.rmdir()


def proxy_status(run_dir: Path) -> ProxyStatus:
    """Whether the run_dir's proxy runs, died (stale files), or was never started."""
    handle = read_handle(run_dir)
    log_path = run_dir / LOG_FILE
    if handle is None:
        pid = _recorded_pid(run_dir)
        return ProxyStatus("stale" if pid is not None else "stopped", None, log_path)
    state: Literal["running", "stale"] = "running" if is_proxy_process(handle.pid) else "stale"
    return ProxyStatus(state, handle, log_path)


def proxy_env(handle: ProxyHandle) -> dict[str, str]:
    """The environment that points a sandbox's HTTP clients at its proxy (both spellings)."""
    url = handle.url
    return {"HTTP_PROXY": url, "HTTPS_PROXY": url, "http_proxy": url, "https_proxy": url,
            "NO_PROXY": NO_PROXY, "no_proxy": NO_PROXY}


def read_handle(run_dir: Path) -> ProxyHandle | None:
    """The handle a proxy recorded in run_dir (alive or not), or None if there is none."""
    try:
        data = json.loads((run_dir / STATE_FILE).read_text(encoding="utf-8"))
        allow = data["allow"]
        handle = ProxyHandle(pid=int(data["pid"]), host=str(data["host"]), port=int(data["port"]),
                             allow=tuple(str(entry) for entry in allow))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return handle if handle.pid > 0 else None


def is_proxy_process(pid: int) -> bool:
    """True if pid is a live asbx egress proxy (not a zombie, not a process reusing the pid).

    Where /proc exists its command line is checked; elsewhere a live pid is trusted.
    """
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    proc = Path(f"/proc/{pid}")
    if not proc.is_dir():
        return True
    try:
        cmdline = (proc / "cmdline").read_bytes()
        state = (proc / "stat").read_text().rsplit(")", 1)[-1].split()[0]
    except (OSError, IndexError):
        return False
    return _PROXY_MODULE.encode() in cmdline and state != "Z"


def _launch(run_dir: Path, host: str, port: int, runner: CommandRunner,
            timeout: float, clients: Sequence[str] = (),
            secrets_message: bytes | None = None) -> CommandResult:
    argv = (sys.executable, "-m", _PROXY_MODULE, "--daemon", "--listen", join_host_port(host, port),
            "--policy-file", str(run_dir / POLICY_FILE), "--log", str(run_dir / LOG_FILE),
            "--pidfile", str(run_dir / PID_FILE), "--state", str(run_dir / STATE_FILE),
            *(arg for client in clients for arg in ("--client", client)),
            *(("--secrets-stdin",) if secrets_message is not None else ()))
    return runner(CommandRequest(argv=argv, stdin=secrets_message, timeout=timeout))


def _recorded_field(run_dir: Path, name: str) -> object:
    """A field of the policy the run_dir's proxy was started with (None: absent, unreadable)."""
    try:
        data = json.loads((run_dir / POLICY_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data.get(name, []) if isinstance(data, dict) else None


def _terminate(pid: int, timeout: float = 5.0) -> None:
    """SIGTERM, then SIGKILL after `timeout`; raise ProxyError if it still lives."""
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 2.0)):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if not is_proxy_process(pid):
                return
            time.sleep(0.02)
    raise ProxyError(f"the egress proxy (pid {pid}) did not stop")


def _recorded_version(run_dir: Path) -> int:
    """The POLICY_VERSION the run_dir's proxy was started with (0: before versions)."""
    try:
        version = json.loads((run_dir / POLICY_FILE).read_text(encoding="utf-8")).get("version", 0)
    except (OSError, ValueError, AttributeError):
        return 0
    return version if isinstance(version, int) else 0


def _recorded_clients(run_dir: Path) -> list[str] | None:
    """The client CIDRs the run_dir's proxy was started with ([]: any; None: unknown)."""
    try:
        clients = json.loads((run_dir / POLICY_FILE).read_text(encoding="utf-8")).get("clients", [])
    except (OSError, ValueError, AttributeError):
        return None
    return [str(c) for c in clients] if isinstance(clients, list) else None


def _recorded_pid(run_dir: Path) -> int | None:
    handle = read_handle(run_dir)
    if handle is not None:
        return handle.pid
    try:
        return int((run_dir / PID_FILE).read_text(encoding="utf-8").strip())
    except (OSError, ValueError):
        return None


def _remove_run_files(run_dir: Path) -> None:
    """Forget a proxy (its state, pid and policy); the log is kept for debugging."""
    for name in (STATE_FILE, PID_FILE, POLICY_FILE):
        (run_dir / name).unlink(missing_ok=True)


def _write_json(path: Path, data: object) -> None:
    temp = path.with_name(f".{path.name}.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as stream:
        stream.write(json.dumps(data) + "\n")
    os.replace(temp, path)


def _start_failure(run_dir: Path, host: str, result: CommandResult) -> str:
    what = "timed out" if result.timed_out else f"exit {result.returncode}"
    lines = [f"the egress proxy for {run_dir.name} did not start on {host} ({what})"]
    detail = (result.stderr.strip() or _log_tail(run_dir / LOG_FILE)).splitlines()[-5:]
    lines += [f"  {line}" for line in detail]
    return "\n".join(lines)


def _log_tail(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")[-2000:]
    except OSError:
        return ""
