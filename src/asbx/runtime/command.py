"""The single command runner: every subprocess asbx starts goes through here (never a shell)."""

from __future__ import annotations

import codecs
import contextlib
import errno
import functools
import logging
import os
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import IO, BinaryIO, Protocol

from asbx.runtime.base import OutputCallback

TIMEOUT_EXIT_CODE = 124  # what coreutils `timeout` returns; callers see it for a timed-out command
_DRAIN_GRACE = 5.0  # seconds to wait for output after the process ended (pipes held by a daemon)

_log = logging.getLogger(__name__)

TraceCallback = Callable[[str], None]
"""Receives one human-readable line per command started and finished (`asbx -vv`)."""
Stdin = bytes | BinaryIO | None
"""What a command reads: nothing, these bytes, or an open file it inherits (no copying)."""


@dataclass(frozen=True)
class CommandRequest:
    """One process to run: argv (no shell), optional stdin (bytes, or an open binary file the
    process reads directly, as `asbx exec` hands on its own), extra env, cwd and timeout."""

    argv: tuple[str, ...]
    stdin: Stdin = None
    env: Mapping[str, str] = field(default_factory=dict)
    cwd: str | None = None
    timeout: float | None = None


@dataclass(frozen=True)
class CommandResult:
    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str
    duration: float = 0.0
    timed_out: bool = False


class CommandRunner(Protocol):
    """Runs a request and returns its result; never raises for a non-zero exit (callers decide)."""

    def __call__(self, request: CommandRequest,
                 on_output: OutputCallback | None = None) -> CommandResult: ...


def argv_of(*parts: str | Sequence[str]) -> tuple[str, ...]:
    """Flatten argv pieces: strings and sequences of strings."""
    out: list[str] = []
    for part in parts:
        if isinstance(part, str):
            out.append(part)
        else:
            out.extend(part)
    return tuple(out)


class SubprocessRunner:
    """The real runner: Popen with an argv list, pipes read by threads, a process-group timeout.

    A missing executable is not an exception: it gives exit code 127 (126 if not executable),
    as a shell would, so backends can turn it into a RuntimeUnavailableError with the fix.
    """

    def __init__(self, trace: TraceCallback | None = None) -> None:
        self._trace = trace

    def __call__(self, request: CommandRequest,
                 on_output: OutputCallback | None = None) -> CommandResult:
        self._emit(f"$ {shlex.join(request.argv)}")
        started = time.monotonic()
        try:
            process = _spawn(request)
        except OSError as exc:
            code = 127 if isinstance(exc, FileNotFoundError) else 126
            result = CommandResult(request.argv, code, "", f"{request.argv[0]}: {exc.strerror}")
        else:
            result = _communicate(process, request, on_output, started)
        self._emit(_describe_end(result))
        return result

    def _emit(self, line: str) -> None:
        _log.debug("%s", line)
        if self._trace is not None:
            self._trace(line)


def _describe_end(result: CommandResult) -> str:
    outcome = "timed out" if result.timed_out else f"exit {result.returncode}"
    return f"  -> {outcome} in {result.duration:.2f}s"


def spawn_stream(request: CommandRequest) -> subprocess.Popen[bytes]:
    """Start a command that runs until stopped (an event stream) for the caller to read line by
    line from its stdout: spawned as every command is (dies with asbx, own process group)."""
    _log.debug("$ %s (streaming)", shlex.join(request.argv))
    return _spawn(request)


def _spawn(request: CommandRequest) -> subprocess.Popen[bytes]:
    env = {**os.environ, **request.env} if request.env else None
    wrapper = _die_with_us()
    if wrapper:
        _check_executable(request.argv[0], (env or os.environ).get("PATH"), request.cwd)
    return subprocess.Popen(
        [*wrapper, *request.argv],
        stdin=_stdin_of(request.stdin),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        cwd=request.cwd,
        start_new_session=True,  # its own process group, so a timeout kills the whole tree
    )


def _check_executable(name: str, path: str | None, cwd: str | None) -> None:
    """Raise what Popen would for a missing or non-executable program (the wrapper would
    otherwise report it in words of its own)."""
    if "/" not in name and shutil.which(name, path=path) is not None:
        return
    full = os.path.join(cwd or ".", name)
    if "/" in name and os.access(full, os.X_OK) and os.path.isfile(full):
        return
    if "/" in name and os.path.exists(full):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), name)
    raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), name)


@functools.cache
def _die_with_us() -> tuple[str, ...]:
    """The argv prefix that makes a child die with asbx, even a `kill -9`ed one.

    A `podman run` left running by a killed apply would create its container after the next
    apply observed the runtime. On Linux, util-linux's `setpriv --pdeathsig KILL` sets the
    child's parent-death signal and execs the command (a `preexec_fn` calling prctl would
    fork without exec in a threaded process, which is unsafe). The signal is not inherited by
    what the command forks, so daemons it starts (conmon, the egress proxy) live on. Elsewhere,
    or without a setpriv that knows the flag, commands run as they are.
    """
    if not sys.platform.startswith("linux"):
        return ()
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        return ()
    try:
        probe = subprocess.run([setpriv, "--pdeathsig", "KILL", "--", "true"],
                               capture_output=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return ()
    return (setpriv, "--pdeathsig", "KILL", "--") if probe.returncode == 0 else ()


def _stdin_of(stdin: Stdin) -> int | BinaryIO:
    if stdin is None:
        return subprocess.DEVNULL
    return subprocess.PIPE if isinstance(stdin, bytes) else stdin  # a file: inherited as is


def _communicate(process: subprocess.Popen[bytes], request: CommandRequest,
                 on_output: OutputCallback | None, started: float) -> CommandResult:
    lock = threading.Lock()
    readers = [
        _StreamReader(process.stdout, "stdout", on_output, lock),
        _StreamReader(process.stderr, "stderr", on_output, lock),
    ]
    threads = [threading.Thread(target=reader.run, daemon=True) for reader in readers]
    if isinstance(request.stdin, bytes):
        threads.append(threading.Thread(
            target=_feed, args=(process.stdin, request.stdin), daemon=True))
    for thread in threads:
        thread.start()
    timed_out = _wait(process, request.timeout)
    deadline = time.monotonic() + _DRAIN_GRACE
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    returncode = TIMEOUT_EXIT_CODE if timed_out else process.returncode
    return CommandResult(request.argv, returncode, readers[0].text(), readers[1].text(),
                         time.monotonic() - started, timed_out)


def _wait(process: subprocess.Popen[bytes], timeout: float | None) -> bool:
    """Wait for the process; on timeout kill its process group and report True.

    The exit is seen the moment it happens: `Popen.wait(timeout)` polls with sleeps growing to
    50 ms, which made a 0.10 s `podman run` take 0.16 s here; a thread blocked in `waitpid`
    wakes this one instead."""
    exited = threading.Event()

    def reap() -> None:
        process.wait()
        exited.set()

    threading.Thread(target=reap, daemon=True).start()
    try:
        if exited.wait(timeout):
            return False
    except BaseException:  # ^C in the caller: do not leave the child running on its own
        _kill_group(process)
        process.wait()
        raise
    _kill_group(process)
    process.wait()
    return True


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)


def _feed(pipe: IO[bytes] | None, data: bytes) -> None:
    if pipe is None:
        return
    # If the process stops reading (BrokenPipeError is an OSError), its exit code tells the story.
    with contextlib.suppress(OSError, ValueError):
        pipe.write(data)
    with contextlib.suppress(OSError):
        pipe.close()


class _StreamReader:
    """Reads one pipe to its end, keeping all text and passing each line to the callback."""

    def __init__(self, pipe: IO[bytes] | None, stream: str,
                 on_output: OutputCallback | None, lock: threading.Lock) -> None:
        self._pipe = pipe
        self._stream = stream
        self._on_output = on_output
        self._lock = lock
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._parts: list[str] = []

    def run(self) -> None:
        if self._pipe is None:
            return
        for raw in iter(self._pipe.readline, b""):
            self._take(self._decoder.decode(raw))
        self._take(self._decoder.decode(b"", final=True))
        self._pipe.close()

    def _take(self, text: str) -> None:
        if not text:
            return
        self._parts.append(text)
        if self._on_output is not None:
            with self._lock:  # one callback at a time, even with two streams
                self._on_output(self._stream, text)

    def text(self) -> str:
        return "".join(self._parts)


class RecordingRunner:
    """Wraps a runner and records every request and result: tests and benchmarks count with it."""

    def __init__(self, inner: CommandRunner) -> None:
        self._inner = inner
        self._lock = threading.Lock()
        self.requests: list[CommandRequest] = []
        self.results: list[CommandResult] = []

    def __call__(self, request: CommandRequest,
                 on_output: OutputCallback | None = None) -> CommandResult:
        with self._lock:
            self.requests.append(request)
        result = self._inner(request, on_output)
        with self._lock:
            self.results.append(result)
        return result

    @property
    def count(self) -> int:
        """How many commands were run."""
        return len(self.requests)

    def argvs(self) -> list[tuple[str, ...]]:
        return [request.argv for request in self.requests]

    def clear(self) -> None:
        with self._lock:
            self.requests.clear()
            self.results.clear()


def run_attached(argv: Sequence[str], *, interrupted: int | None = None) -> int:
    """Run argv on this process's terminal (inherited stdio) and return its exit code.

    For what needs the terminal itself (`asbx shell`, `logs -f`), which the runner's pipes
    cannot give. No shell: argv is spawned as a list. While it waits this process does not
    stop on ^C (the child gets it and decides), as a shell does for its foreground job; with
    `interrupted`, a ^C that arrived is what the run ends with, whatever code the child chose
    (`podman logs -f` exits 1 on SIGINT). Raises FileNotFoundError when argv[0] is not installed.
    """
    seen: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: seen.append(signum))
    try:
        pid = os.posix_spawnp(argv[0], list(argv), dict(os.environ), setsigdef=(signal.SIGINT,))
        _, status = os.waitpid(pid, 0)
    finally:
        signal.signal(signal.SIGINT, previous)
    if seen and interrupted is not None:
        return interrupted
    code = os.waitstatus_to_exitcode(status)
    return 128 - code if code < 0 else code


def first_error(result: CommandResult) -> str:
    """The first line of a failed command's stderr (or stdout), for one-sentence messages."""
    for line in (result.stderr + "\n" + result.stdout).splitlines():
        if line.strip():
            return line.strip()
    return "timed out" if result.timed_out else f"exit {result.returncode}"
