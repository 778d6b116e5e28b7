"""Shared by exec, shell, logs, start, stop: name a sandbox, find its container, hand over a TTY."""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import click

from asbx.addresses import Address, ResourceKind
from asbx.errors import AsbxError, NotFoundError, RuntimeUnavailableError
from asbx.runtime.base import LABEL_ADDRESS, LABEL_PROJECT, ContainerState, ObservedContainer

if TYPE_CHECKING:
    from asbx.cli.context import AppContext
    from asbx.workflow import Session


def complete_sandboxes(
    ctx: click.Context, param: click.Parameter, incomplete: str
) -> list[click.shell_completion.CompletionItem]:
    """Sandbox names from the spec (found like any command would: -f, else here or above)."""
    from click.shell_completion import CompletionItem

    try:
        from asbx.spec.loader import find_spec, load_spec

        root = ctx.find_root().params
        spec = load_spec(find_spec(Path.cwd(), root.get("spec_file"))).spec
    except Exception:  # completion must never print a traceback into the user's shell
        return []
    return [CompletionItem(name) for name in spec.sandboxes if name.startswith(incomplete)]


def open_session(app: AppContext) -> Session:
    """The project session, with the spec's absolute path recorded (reap loads it from there)."""
    session = app.session()
    path = str(session.loaded.path.resolve())
    if session.store.project(session.project).spec_path != path:
        session.store.set_spec_path(session.project, path)
    return session


def sandbox_address(session: Session, name: str) -> Address:
    """`name` as a sandbox address, or an error naming the spec's sandboxes."""
    from asbx.diagnostics import did_you_mean

    sandboxes = session.loaded.spec.sandboxes
    if name.startswith("sandbox."):
        name = name.removeprefix("sandbox.")
    if name not in sandboxes:
        known = ", ".join(sandboxes) or "none"
        hint = did_you_mean(name, sandboxes) or f"the spec's sandboxes are: {known}"
        raise NotFoundError(f"no sandbox {name!r} in {session.loaded.path.name}", hint=hint)
    return Address(ResourceKind.SANDBOX, name)


def sandbox_addresses(session: Session, names: Sequence[str]) -> list[Address]:
    """The named sandboxes, or every sandbox of the spec when none is named."""
    if not names:
        return [Address(ResourceKind.SANDBOX, n) for n in session.loaded.spec.sandboxes]
    return [sandbox_address(session, n) for n in dict.fromkeys(names)]


def project_containers(session: Session) -> dict[Address, ObservedContainer]:
    """The project's containers by address: one runtime listing call."""
    from asbx.reap import list_project_containers

    return list_project_containers(session.runtime, session.project)


def sandbox_labels(project: str, address: Address) -> dict[str, str]:
    """The labels that find one sandbox's container."""
    return {LABEL_PROJECT: project, LABEL_ADDRESS: str(address)}


def find_container_ahead(app: AppContext, sandbox: str) -> None:
    """Start live_container's listing now, with the guessed project, while the spec loads."""
    project = app.guess_project()
    if project is None:
        return
    address = Address(ResourceKind.SANDBOX, sandbox.removeprefix("sandbox."))
    app.ahead(lambda runtime: runtime.list_containers(sandbox_labels(project, address)))


def recorded_container(app: AppContext, sandbox: str) -> tuple[str, Address, str] | None:
    """(project, address, container id) of SANDBOX as apply recorded it, found without
    validating the spec; None when unsure (the project not surely guessed, the sandbox not a
    key under `sandboxes:` in the spec's YAML, or no container recorded)."""
    project = app.guess_project()
    name = sandbox.removeprefix("sandbox.")
    if project is None or name not in _declared_sandboxes(app):
        return None
    address = Address(ResourceKind.SANDBOX, name)
    record = app.store().snapshot(project).records.get(address)
    container_id = record.outputs.get("container_id") if record is not None else None
    return (project, address, str(container_id)) if container_id else None


def _declared_sandboxes(app: AppContext) -> frozenset[str]:
    """The keys under `sandboxes:` in the spec file, read as plain YAML (empty if unsure)."""
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        data = yaml.load(app.spec_path().read_bytes(), Loader=loader)  # noqa: S506 (a safe loader)
    except (AsbxError, OSError, yaml.YAMLError):
        return frozenset()
    sandboxes = data.get("sandboxes") if isinstance(data, dict) else None
    return frozenset(k for k in sandboxes if isinstance(k, str)) if isinstance(
        sandboxes, dict) else frozenset()


def live_container(session: Session, address: Address) -> ObservedContainer:
    """The sandbox's container (one filtered listing), or an error saying to apply first."""
    found = session.runtime.list_containers(sandbox_labels(session.project, address))
    if not found:
        raise NotFoundError(
            f"{address} has not been created (no container in {session.runtime.name})",
            hint="run asbx apply",
        )
    return found[0]


def ensure_running(session: Session, address: Address, container: ObservedContainer) -> None:
    """Start a stopped sandbox, saying so on stderr; exec and shell need it running."""
    if container.state is ContainerState.RUNNING:
        return
    if container.state is ContainerState.PAUSED:
        raise AsbxError(f"{address} is paused", hint=f"unpause it: {session.runtime.name} "
                        f"unpause {container.name}")
    click.echo(f"{address} is stopped; starting it", err=True)
    session.runtime.start_container(container.name)
    started(session, address)


def started(session: Session, address: Address) -> None:
    """Bookkeeping after asbx started a sandbox: it is active now, no longer 'stopped since'."""
    from asbx.reap import clear_mark

    session.store.touch(session.project, address)
    clear_mark(session.home, session.project, address)


def run_attached(app: AppContext, argv: Sequence[str], *, interrupted: int | None = None) -> int:
    """Run argv on this terminal (see runtime.command.run_attached); -vv traces it."""
    from asbx.runtime.command import run_attached as spawn

    if app.verbose >= 2:
        click.echo(f"$ {shlex.join(argv)}", err=True)
    try:
        return spawn(argv, interrupted=interrupted)
    except FileNotFoundError:
        raise RuntimeUnavailableError(f"{argv[0]} is not installed",
                                      hint="install it, or choose another with --runtime") from None
