"""`asbx state list|show|journal|unlock`: read and repair the state store."""

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


@state.command("journal")
@click.option("-n", "--limit", default=50, show_default=True, type=click.IntRange(min=1),
              help="How many of the newest entries.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (one object per entry).")
@click.pass_obj
def state_journal(app: AppContext, limit: int, as_json: bool) -> int:
    """What apply, destroy and reap did to this project, step by step, oldest first."""
    import time

    name = app.effective_project_name()
    entries = app.store().journal_entries(name, limit)
    if as_json:
        keys = ("at", "command", "address", "action", "outcome", "detail")
        click.echo(json.dumps([dict(zip(keys, entry, strict=True)) for entry in entries],
                              indent=2))
        return 0
    if not entries:
        click.echo(f"project {name}: the journal is empty")
    for at, command, address, action, outcome, detail in entries:
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(at))
        line = f"{stamp}  {command:<7} {address:<28} {action:<18} {outcome}"
        click.echo(line + (f"  {detail.splitlines()[0]}" if detail else ""))
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
