"""Secret values, read on the host from where the spec says (env, file, command), kept in memory.

Nothing here writes a value anywhere: plans and state get salted hashes, the egress proxy gets
the values on its stdin. A source that fails is an error naming the secret and its source."""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from asbx.errors import AsbxError
from asbx.runtime.command import CommandRequest, CommandRunner, SubprocessRunner
from asbx.spec.model import SecretSpec

COMMAND_TIMEOUT = 30.0
MAX_VALUE_BYTES = 64 * 1024


class SecretSourceError(AsbxError):
    """A secret's value could not be read from its source."""


@dataclass
class SecretValues:
    """The spec's secrets, each read once per process on first use."""

    sources: Mapping[str, SecretSpec]
    base_dir: Path  # relative `file:` paths start here (the spec's directory)
    environ: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    runner: CommandRunner = field(default_factory=SubprocessRunner)
    _cache: dict[str, str] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def value(self, name: str) -> str:
        with self._lock:
            if name not in self._cache:
                self._cache[name] = _checked(name, self._read(name))
            return self._cache[name]

    def _read(self, name: str) -> str:
        source = self.sources.get(name)
        if source is None:
            raise SecretSourceError(f"secret {name} is not declared under secrets:")
        if source.env is not None:
            if source.env not in self.environ:
                raise SecretSourceError(
                    f"secret {name}: the environment variable {source.env} is not set",
                    hint=f"export {source.env}=... before running asbx")
            return self.environ[source.env]
        if source.file is not None:
            return self._file(name, source.file)
        assert source.command is not None
        return self._command(name, source.command)

    def _file(self, name: str, file: str) -> str:
        path = (self.base_dir / file).absolute()
        try:
            if path.exists() and not path.is_file():  # a FIFO would block the read forever
                raise SecretSourceError(f"secret {name}: {path} is not a regular file")
            with path.open("rb") as stream:
                data = stream.read(MAX_VALUE_BYTES + 1)
        except OSError as exc:
            raise SecretSourceError(f"secret {name}: cannot read {path}: "
                                    f"{exc.strerror or exc}") from None
        if len(data) > MAX_VALUE_BYTES:
            raise SecretSourceError(f"secret {name}: {path} is larger than "
                                    f"{MAX_VALUE_BYTES // 1024} KiB")
        try:
            return _one_line(data.decode("utf-8", errors="strict"))
        except UnicodeDecodeError:  # its message would quote bytes of the value
            raise SecretSourceError(f"secret {name}: {path} is not UTF-8 text") from None

    def _command(self, name: str, argv: tuple[str, ...]) -> str:
        shown = " ".join(argv)
        result = self.runner(CommandRequest(argv=argv, timeout=COMMAND_TIMEOUT))
        if result.timed_out:
            raise SecretSourceError(f"secret {name}: `{shown}` did not finish in "
                                    f"{COMMAND_TIMEOUT:g}s")
        if result.returncode == 127 and not result.stdout:
            raise SecretSourceError(f"secret {name}: `{argv[0]}` was not found",
                                    hint="install it, or give the secret another source")
        if result.returncode != 0:
            # stderr only, and only its last line: stdout may hold a partial value
            last = (result.stderr.strip().splitlines() or [""])[-1][:200]
            raise SecretSourceError(f"secret {name}: `{shown}` exited {result.returncode}"
                                    + (f": {last}" if last else ""))
        return _one_line(result.stdout)


def _one_line(text: str) -> str:
    """The value without its final line break (as `gh auth token` or `echo x > file` give it)."""
    return text.removesuffix("\n").removesuffix("\r")


def _checked(name: str, value: str) -> str:
    if not value:
        raise SecretSourceError(f"secret {name}: the value is empty")
    if any(c in value for c in "\r\n\0"):
        raise SecretSourceError(f"secret {name}: the value holds a line break or NUL "
                                "(a header value cannot)")
    return value


FETCHED = "secrets-fetched.json"


@dataclass
class FetchLog:
    """When each `command:` secret with a `ttl` last ran and the salted hash of what it gave
    (never the value), in the project's directory: plans within the ttl trust that hash."""

    path: Path

    def fresh_hash(self, name: str, source: SecretSpec, now: float) -> str | None:
        """The hash from the last run, if it was this very source and within its ttl."""
        if source.command is None or source.ttl is None:
            return None
        entry = self._read().get(name)
        if not isinstance(entry, dict) or entry.get("source") != source.describe():
            return None
        at, digest = entry.get("at"), entry.get("hash")
        if not isinstance(at, int | float) or not isinstance(digest, str) or not digest:
            return None
        return digest if 0 <= now - at < source.ttl else None

    def ran(self, name: str, source: SecretSpec, digest: str, now: float | None = None) -> None:
        """Note a run of a `ttl` secret's command (a temp file, then renamed; 0600)."""
        if source.command is None or source.ttl is None:
            return
        entries = self._read()
        entries[name] = {"at": time.time() if now is None else now, "hash": digest,
                         "source": source.describe()}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as stream:
            json.dump(entries, stream)
        os.replace(temp, self.path)

    def _read(self) -> dict[str, object]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}
