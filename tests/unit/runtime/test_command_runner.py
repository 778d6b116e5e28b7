"""SubprocessRunner on real local processes: argv only, streaming, stdin, env, timeouts."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from asbx.runtime.command import (
    TIMEOUT_EXIT_CODE,
    CommandRequest,
    RecordingRunner,
    SubprocessRunner,
    argv_of,
)

PY = sys.executable


def run(*argv: str, **kwargs: object) -> object:
    return SubprocessRunner()(CommandRequest(argv=argv, **kwargs))  # type: ignore[arg-type]


def test_output_is_streamed_line_by_line_and_returned_whole() -> None:
    seen: list[tuple[str, str, float]] = []
    script = ("import sys, time\nprint('one', flush=True)\ntime.sleep(0.4)\n"
              "print('two', file=sys.stderr, flush=True)\nsys.stdout.write('tail')\n")
    started = time.monotonic()
    result = SubprocessRunner()(
        CommandRequest(argv=(PY, "-c", script)),
        on_output=lambda stream, text: seen.append((stream, text, time.monotonic() - started)))

    assert (result.returncode, result.stdout, result.stderr) == (0, "one\ntail", "two\n")
    assert [t for s, t, _ in seen if s == "stdout"] == ["one\n", "tail"]
    assert [t for s, t, _ in seen if s == "stderr"] == ["two\n"]
    first_line_at = next(at for s, t, at in seen if t == "one\n")
    assert first_line_at < 0.3, "a line is delivered when it arrives, not at the end"


def test_argv_is_never_given_to_a_shell() -> None:
    result = SubprocessRunner()(CommandRequest(argv=("echo", "$HOME; rm -rf /", "`id`")))
    assert result.stdout == "$HOME; rm -rf / `id`\n"


def test_an_open_file_as_stdin_is_inherited_not_copied(tmp_path: Path) -> None:
    source = tmp_path / "input.bin"
    source.write_bytes(b"x" * 3_000_000)
    with source.open("rb") as handle:
        result = SubprocessRunner()(CommandRequest(argv=("wc", "-c"), stdin=handle))
    assert result.stdout.strip() == "3000000"
    read_end, write_end = os.pipe()  # never written to nor closed: a command that does not
    try:  # read it still ends, and the runner does not wait for input
        with os.fdopen(read_end, "rb", closefd=False) as idle:
            started = time.monotonic()
            quick = SubprocessRunner()(CommandRequest(argv=("echo", "hi"), stdin=idle))
        assert (quick.returncode, quick.stdout) == (0, "hi\n")
        assert time.monotonic() - started < 5
    finally:
        os.close(read_end)
        os.close(write_end)


def test_stdin_bytes_reach_the_process_even_when_large() -> None:
    data = b"x" * 3_000_000
    result = SubprocessRunner()(CommandRequest(argv=("wc", "-c"), stdin=data))
    assert result.stdout.strip() == str(len(data))


def test_extra_env_is_merged_over_the_environment() -> None:
    result = SubprocessRunner()(CommandRequest(
        argv=(PY, "-c", "import os; print(os.environ['ASBX_X'], 'PATH' in os.environ)"),
        env={"ASBX_X": "42"}))
    assert result.stdout == "42 True\n"


def test_cwd_is_honoured(tmp_path: Path) -> None:
    result = SubprocessRunner()(CommandRequest(argv=("pwd",), cwd=str(tmp_path)))
    assert result.stdout.strip() == str(tmp_path)


def test_a_timeout_kills_the_whole_process_group(tmp_path: Path) -> None:
    pidfile = tmp_path / "child.pid"
    script = f"sleep 30 & echo $! > {pidfile}; sleep 30"
    started = time.monotonic()
    result = SubprocessRunner()(CommandRequest(argv=("sh", "-c", script), timeout=0.5))

    assert (result.returncode, result.timed_out) == (TIMEOUT_EXIT_CODE, True)
    assert time.monotonic() - started < 5
    child = int(pidfile.read_text())
    deadline = time.monotonic() + 2
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(child), "the background child was killed with its parent"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as stat:  # a zombie is dead enough
        return stat.read().split()[2] != "Z"


def test_a_missing_executable_is_exit_127_not_an_exception() -> None:
    result = SubprocessRunner()(CommandRequest(argv=("asbx-no-such-program", "x")))
    assert result.returncode == 127
    assert "asbx-no-such-program" in result.stderr


def test_non_utf8_output_is_replaced_not_fatal() -> None:
    result = SubprocessRunner()(CommandRequest(
        argv=(PY, "-c", "import sys; sys.stdout.buffer.write(b'ok\\xff\\n')")))
    assert result.stdout == "ok\ufffd\n"


def test_the_trace_hook_sees_each_command_and_its_end() -> None:
    lines: list[str] = []
    SubprocessRunner(trace=lines.append)(CommandRequest(argv=("sh", "-c", "exit 3")))
    assert lines[0] == "$ sh -c 'exit 3'"
    assert lines[1].startswith("  -> exit 3 in ")


def test_recording_runner_counts_and_keeps_requests() -> None:
    recorder = RecordingRunner(SubprocessRunner())
    recorder(CommandRequest(argv=("true",)))
    recorder(CommandRequest(argv=("false",)))
    assert recorder.count == 2
    assert recorder.argvs() == [("true",), ("false",)]
    assert [r.returncode for r in recorder.results] == [0, 1]
    recorder.clear()
    assert recorder.count == 0


def test_argv_of_flattens_pieces() -> None:
    assert argv_of("podman", ["ps", "-a"], ("--format", "json")) == (
        "podman", "ps", "-a", "--format", "json")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_a_command_dies_with_a_killed_asbx(tmp_path: Path) -> None:
    """A `kill -9`ed apply must not leave a `podman run` behind to finish later."""
    pidfile = tmp_path / "pid"
    script = (
        "import sys\n"
        "from asbx.runtime.command import CommandRequest, SubprocessRunner\n"
        "SubprocessRunner()(CommandRequest(argv=('sh', '-c', 'echo $$ > \"$0\"; exec sleep 60',"
        f" {str(pidfile)!r})))\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", script])
    deadline = time.monotonic() + 20
    while not (pidfile.is_file() and pidfile.read_text().strip()):
        assert time.monotonic() < deadline, "the command never started"
        time.sleep(0.05)
    child = int(pidfile.read_text())
    parent.kill()
    parent.wait()
    deadline = time.monotonic() + 5
    while _alive(child):
        assert time.monotonic() < deadline, f"pid {child} outlived its killed parent"
        time.sleep(0.05)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except OSError:
        return False
    return state != "Z"
