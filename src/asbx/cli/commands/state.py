"""`asbx state list|show|unlock`: read and repair the state store."""

from __future__ import annotations

import json

import click

from asbx.cli.context import AppContext


@click.group()
def state() -> None:
    """Inspect or repair asbx's state store."""


@state.command("list")
@click.pass_obj
def state_list(app: AppContext) -> int:
    """List the resources recorded for this project."""
    session = app.session()
    snap = session.store.snapshot(session.project)
    click.echo(
        f"project {session.project} (serial {snap.meta.serial}, lineage {snap.meta.lineage})"
    )
    for address in sorted(snap.records):
        record = snap.records[address]
        mark = " (tainted)" if record.tainted else ""
        click.echo(f"  {address}{mark}")
    return 0


@state.command("show")
@click.argument("address")
@click.pass_obj
def state_show(app: AppContext, address: str) -> int:
    """Show one resource's record (secrets are stored only as salted hashes)."""
    from asbx.addresses import Address
    from asbx.errors import NotFoundError

    session = app.session()
    record = session.store.snapshot(session.project).records.get(Address.parse(address))
    if record is None:
        raise NotFoundError(f"{address} is not in state")
    click.echo(
        json.dumps(
            {
                "address": str(record.address),
                "config_hash": record.config_hash,
                "hash_version": record.hash_version,
                "status": record.status,
                "applied": record.applied,
                "outputs": record.outputs,
                "dependencies": [str(d) for d in record.dependencies],
                "created_at": record.created_at,
                "updated_at": record.updated_at,
            },
            indent=2,
        )
    )
    return 0


@state.command("unlock")
@click.option("--force", is_flag=True, required=True, help="Really remove the lock.")
@click.pass_obj
def state_unlock(app: AppContext, force: bool) -> int:
    """Remove the project's lock (when the process holding it is gone)."""
    name = app.effective_project_name()
    holder = app.store().force_unlock(name)
    if holder is None:
        click.echo(f"project {name} was not locked")
    else:
        click.echo(f"removed the lock of pid {holder.pid} on {holder.host} ({holder.command})")
    return 0
