"""Where the API listens: an owner-only unix socket, or TCP behind a bearer token file."""

from __future__ import annotations

import contextlib
import os
import secrets
import socket
import stat
from pathlib import Path

from asbx.errors import AsbxError

TOKEN_FILE = "api-token"  # noqa: S105 (a file name)


def api_token(home: Path) -> str:
    """The TCP bearer token, generated on first use into `$ASBX_HOME/api-token` (mode 0600)."""
    path = home / TOKEN_FILE
    home.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    except FileExistsError:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
        with os.fdopen(fd, encoding="utf-8") as handle:
            info = os.fstat(handle.fileno())
            if info.st_mode & 0o077 or info.st_uid != os.getuid():
                raise AsbxError(f"{path} is readable by others or not yours",
                                hint=f"chmod 600 {path}, or remove it to make a new token"
                                ) from None
            token = handle.read().strip()
        if not token:
            raise AsbxError(f"{path} is empty", hint="remove it to make a new token") from None
        return token
    token = secrets.token_urlsafe(32)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(token + "\n")
    return token


def bind_unix(path: Path) -> socket.socket:
    """A listening unix socket at `path`, mode 0600 from the start (a stale one is replaced;
    a live one, or anything that is not a socket, is refused)."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        pass
    else:
        if not stat.S_ISSOCK(info.st_mode):
            raise AsbxError(f"{path} exists and is not a socket", hint="choose another --socket")
        if _listening(path):
            raise AsbxError(f"an asbx server already listens on {path}")
        path.unlink()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old = os.umask(0o177)
    try:
        sock.bind(str(path))
    finally:
        os.umask(old)
    os.chmod(path, 0o600)
    sock.listen(128)
    return sock


def _listening(path: Path) -> bool:
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(str(path))
    except OSError:
        return False
    finally:
        with contextlib.suppress(OSError):
            probe.close()
    return True


def parse_listen(value: str) -> tuple[str, int]:
    """`HOST:PORT` (`[::1]:PORT` for IPv6) as (host, port)."""
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise AsbxError(f"{value!r} is not HOST:PORT", hint="e.g. --listen 127.0.0.1:8765")
    return host.strip("[]"), int(port)
