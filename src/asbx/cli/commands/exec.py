"""`asbx exec` (run a command, stream its output, return its exit code) and `asbx shell`."""

from __future__ import annotations

import os
import sys
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, BinaryIO

import click

from asbx.cli.commands.targets import (
    complete_sandboxes,
    ensure_running,
    find_container_ahead,
    live_container,
    open_session,
    recorded_container,
    run_attached,
    sandbox_address,
)
from asbx.cli.context import AppContext
from asbx.errors import AsbxError
from asbx.runtime.command import TIMEOUT_EXIT_CODE

if TYPE_CHECKING:
    from asbx.addresses import Address
    from asbx.runtime.base import Runtime
    from asbx.workflow import Session

# Starts "$@" in the background with its output in the file $1 (made if missing; /dev/null if
# it cannot be); prints "PID LOGFILE". The command is passed as arguments, never spliced in.
_DETACH_SCRIPT = (
    'log=$1; shift; mkdir -p "${log%/*}" 2>/dev/null; '
    '( : >"$log" ) 2>/dev/null || log=/dev/null; '
    '"$@" >"$log" 2>&1 </dev/null & echo "$! $log"'
)


@click.command(
    "exec",
    # everything after SANDBOX belongs to the command, as with `docker exec`
    context_settings={"help_option_names": ["-h", "--help"],
                      "allow_interspersed_args": False, "ignore_unknown_options": True},
    epilog="asbx's options go before SANDBOX; everything after it is the command: "
           "asbx exec web ls -la /workspace (a -- before the command is accepted too)",
)
@click.argument("sandbox", shell_complete=complete_sandboxes)
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED,
                callback=lambda _ctx, _param, value: command_words(value))
@click.option("-e", "--env", "env", multiple=True, metavar="KEY=VALUE", help="Set a variable.")
@click.option("-w", "--workdir", metavar="DIR", help="Working directory inside the sandbox.")
@click.option("-u", "--user", metavar="USER", help="User (name or uid[:gid]) to run as.")
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), metavar="SECONDS",
              help="Kill the command after this long (exit 124).")
@click.option("-d", "--detach", is_flag=True, help="Start it in the background and return.")
@click.option("--no-stdin", is_flag=True, help="Do not pass this process's stdin through.")
@click.pass_obj
def exec_command(
    app: AppContext,
    sandbox: str,
    command: tuple[str, ...],
    env: tuple[str, ...],
    workdir: str | None,
    user: str | None,
    timeout: float | None,
    detach: bool,
    no_stdin: bool,
) -> int:
    """Run COMMAND in SANDBOX and exit with its exit code (a stopped sandbox is started).

    Output streams as it comes; stdin is passed through unless it is a terminal.
    """
    from asbx.runtime.base import ACTIVE_SESSION_ENV

    variables = {**parse_env(env), ACTIVE_SESSION_ENV: f"exec-{os.getpid()}"}
    # handed to the runtime's process as it is: read directly, never slurped into memory
    stdin = None if no_stdin or _terminal_or_closed() else sys.stdin.buffer
    run = ExecRun(command, variables, workdir, user, stdin, timeout)
    if not detach and (code := _exec_recorded(app, sandbox, run)) is not None:
        return code
    find_container_ahead(app, sandbox)  # the one listing, overlapped with loading the spec
    session = open_session(app)
    address = sandbox_address(session, sandbox)
    container = live_container(session, address)
    app.forget_early()
    ensure_running(session, address, container)
    session.store.touch(session.project, address)
    if detach:
        return _detach(session, address, container.name, command, variables, workdir, user)
    try:
        return run.run(session.runtime, container.name)
    finally:
        session.store.touch(session.project, address)


@dataclass(frozen=True)
class ExecRun:
    """One `asbx exec` command, as the runtime runs it."""

    command: tuple[str, ...]
    env: dict[str, str]
    workdir: str | None
    user: str | None
    stdin: BinaryIO | None
    timeout: float | None

    def run(self, runtime: Runtime, container: str) -> int:
        """Run it in `container`, streaming its output; its exit code."""
        started = time.monotonic()
        result = runtime.exec(container, self.command, env=self.env, workdir=self.workdir,
                              user=self.user, stdin=self.stdin, timeout=self.timeout,
                              on_output=_stream)
        elapsed = time.monotonic() - started
        timeout = self.timeout
        if timeout is not None and result.exit_code == TIMEOUT_EXIT_CODE and elapsed >= timeout:
            click.echo(f"asbx: the command ran past --timeout {timeout:g}s and was killed "
                       f"(exit {TIMEOUT_EXIT_CODE})", err=True)
        return result.exit_code


def _exec_recorded(app: AppContext, sandbox: str, run: ExecRun) -> int | None:
    """A running sandbox in one runtime call, without validating the spec: the project as
    surely guessed from the spec's bytes, the sandbox declared in its YAML, and the id of the
    container apply recorded (never a same-named container asbx did not make). None, with
    nothing run, when any of that is unsure or the runtime refused before the command
    started (no such container, not running): the full path then looks, starts and runs."""
    from asbx.sandbox_exec import exec_by_recorded_id

    found = recorded_container(app, sandbox)
    if found is None:
        return None
    project, address, container_id = found
    store, runtime = app.store(), app.runtime()
    store.touch(project, address)
    try:
        return exec_by_recorded_id(runtime, project, address, container_id,
                                   lambda target: run.run(runtime, target))
    finally:
        store.touch(project, address)


def command_words(words: tuple[str, ...]) -> tuple[str, ...]:
    """The command after SANDBOX, without the `--` that may separate them."""
    command = words[1:] if words[:1] == ("--",) else words
    if not command:
        raise click.UsageError("missing the command to run after the sandbox's name")
    if command[0].startswith("-"):
        # no program is named like an option: an asbx option was put after the name
        raise click.UsageError(
            f"{command[0]!r} is not a command: asbx's own options go before the sandbox's "
            f"name and everything after it is the command (asbx exec {command[0]} … SANDBOX CMD)")
    return command


def _terminal_or_closed() -> bool:
    return sys.stdin is None or sys.stdin.closed or sys.stdin.isatty()


def parse_env(values: Sequence[str]) -> dict[str, str]:
    """`KEY=VALUE` pairs; `KEY` alone passes this process's value (as docker does)."""
    from asbx.spec.values import ENV_NAME_RE

    out: dict[str, str] = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not ENV_NAME_RE.fullmatch(key):
            raise click.BadParameter(f"{key!r} is not a variable name", param_hint="--env")
        if not sep:
            if key not in os.environ:
                continue
            value = os.environ[key]
        out[key] = value
    return out


def _stream(stream: str, text: str) -> None:
    target = sys.stderr if stream == "stderr" else sys.stdout
    target.write(text)
    target.flush()


def _detach(session: Session, address: Address, container: str, command: tuple[str, ...],
            variables: dict[str, str], workdir: str | None, user: str | None) -> int:
    log = f"/tmp/asbx-exec-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}.log"
    argv = ("sh", "-c", _DETACH_SCRIPT, "sh", log, *command)
    result = session.runtime.exec(container, argv, env=variables, workdir=workdir, user=user)
    words = (result.stdout.strip().splitlines() or [""])[-1].split(" ", 1)
    pid, log = words[0], words[-1]
    if result.exit_code != 0 or not pid.isdigit():
        raise AsbxError(f"could not start the command in the background in {address} "
                        f"(exit {result.exit_code}): {result.stderr.strip()[:500]}",
                        hint="the sandbox's image needs /bin/sh for --detach")
    click.echo(pid)
    where = "is discarded" if log == "/dev/null" else (
        f"goes to {log} (asbx exec {address.name} -- cat {log})")
    click.echo(f"started in the background in {address} (pid {pid}); its output {where}",
               err=True)
    return 0


@click.command("shell")
@click.argument("sandbox", shell_complete=complete_sandboxes)
@click.option("--shell", "shell_path", default="/bin/sh", show_default=True,
              help="The shell to run.")
@click.option("-w", "--workdir", metavar="DIR", help="Working directory inside the sandbox.")
@click.option("-u", "--user", metavar="USER", help="User (name or uid[:gid]) to run as.")
@click.pass_obj
def shell(app: AppContext, sandbox: str, shell_path: str, workdir: str | None,
          user: str | None) -> int:
    """Open an interactive shell in SANDBOX (a stopped sandbox is started)."""
    if not sys.stdin.isatty():
        raise AsbxError("asbx shell needs a terminal", hint=f"run a command instead: "
                        f"asbx exec {sandbox} -- CMD")
    find_container_ahead(app, sandbox)
    from asbx.runtime.base import ACTIVE_SESSION_ENV

    session = open_session(app)
    address = sandbox_address(session, sandbox)
    container = live_container(session, address)
    app.forget_early()
    ensure_running(session, address, container)
    argv = session.runtime.exec_argv(
        container.name, (shell_path,), tty=True, interactive=True,
        env={ACTIVE_SESSION_ENV: f"shell-{os.getpid()}"}, workdir=workdir, user=user,
    )
    session.store.touch(session.project, address)
    try:
        return run_attached(app, argv)
    finally:
        session.store.touch(session.project, address)
