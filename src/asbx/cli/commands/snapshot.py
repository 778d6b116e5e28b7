"""`asbx snapshot ls|export|import|rm`: the project's workspace archives."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import click

from asbx.addresses import Address, ResourceKind
from asbx.cli.context import AppContext
from asbx.errors import AsbxError
from asbx.state.records import SnapshotOutputs

if TYPE_CHECKING:
    from asbx.state.store import StateStore
    from asbx.workflow import Session


@click.group()
def snapshot() -> None:
    """List, export, import and remove workspace snapshots."""


@snapshot.command("ls")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def snapshot_ls(app: AppContext, as_json: bool) -> int:
    """The project's snapshots: digest, size, files, age, source, and who restores from it."""
    from asbx.data.snapshots import home_store

    session = app.session()
    records = session.store.snapshot(session.project).records
    archives = home_store(session.home)
    rows = []
    for name in sorted(set(session.loaded.spec.snapshots) | _recorded_names(records)):
        record = records.get(Address(ResourceKind.SNAPSHOT, name))
        outputs = SnapshotOutputs.of(record) if record else None
        digest = outputs.digest if outputs else ""
        present = bool(digest) and archives.path_of(digest).is_file()
        users = sorted(
            s
            for s, box in session.loaded.spec.sandboxes.items()
            if box.workspace is not None and box.workspace.snapshot == name
        )
        rows.append(
            {
                "name": name,
                "digest": digest,
                "present": present,
                "size": outputs.size if outputs else None,
                "files": outputs.files if outputs else None,
                "source": outputs.source if outputs else "",
                "origin": outputs.origin if outputs else "",
                "captured_at": record.updated_at if record else None,
                "used_by": [f"sandbox.{u}" for u in users],
            }
        )
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return 0
    if not rows:
        click.echo("no snapshots")
        return 0
    for line in snapshot_lines(rows):
        click.echo(line)
    return 0


_LS_FORMAT = "{:<20} {:<32} {:>9} {:>8}  {}"


def snapshot_lines(rows: list[dict[str, object]]) -> list[str]:
    """`snapshot ls` as a table: a header line, then one line per snapshot."""
    lines = [_LS_FORMAT.format("NAME", "DIGEST", "SIZE", "AGE", "USED BY")]
    for row in rows:
        digest = str(row["digest"])[:19] or "(not captured)"
        if row["digest"] and not row["present"]:
            digest += " (archive missing)"
        size = _human(row["size"]) if isinstance(row["size"], int) else "-"
        captured = row["captured_at"]
        age = _age(float(captured)) if isinstance(captured, float) else "-"
        users = row["used_by"]
        used = ", ".join(map(str, users)) if isinstance(users, list) and users else "-"
        lines.append(_LS_FORMAT.format(row["name"], digest, size, age, used))
    return lines


@snapshot.command("export")
@click.argument("name")
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--force", is_flag=True, help="Overwrite FILE.")
@click.pass_obj
def snapshot_export(app: AppContext, name: str, file: Path, force: bool) -> int:
    """Write snapshot NAME's archive (a .tar.zst) to FILE, verifying its digest."""
    from asbx.data.snapshots import home_store

    session = app.session()
    digest = _digest_of(session, name)
    store = home_store(session.home)
    store.export(digest, file, overwrite=force)
    click.echo(f"exported snapshot.{name} ({digest}) to {file}")
    secrets = store.secret_files(digest)
    if secrets:
        shown = ", ".join(secrets[:5]) + (f" and {len(secrets) - 5} more" if len(secrets) > 5
                                          else "")
        click.echo(f"warning: {file} holds {len(secrets)} file(s) that look like secrets: "
                   f"{shown}; check before sharing it", err=True)
    return 0


@snapshot.command("import")
@click.argument("file", type=click.Path(path_type=Path, exists=True, dir_okay=False))
@click.argument("name")
@click.pass_obj
def snapshot_import(app: AppContext, file: Path, name: str) -> int:
    """Check FILE like any archive (no escaping paths, links or devices) and use it as NAME.

    FILE is refused if it would expand past 1 GiB and 1000 times its own size (a
    decompression bomb); snapshots asbx captures itself have no such bound.
    """
    from asbx.apply.hooks import NullApplyHooks
    from asbx.workflow import import_snapshot

    session = app.session()
    with session.store.locked(session.project, "snapshot import", 2.0):
        result = import_snapshot(session, name, file, hooks=NullApplyHooks())
    for outcome in result.failed:
        if isinstance(outcome.error, AsbxError):
            raise outcome.error
        raise AsbxError(f"cannot import {file}: {outcome.error}")
    record = session.store.snapshot(session.project).records[Address(ResourceKind.SNAPSHOT, name)]
    info = SnapshotOutputs.of(record)
    click.echo(f"imported {file} as snapshot.{name} ({info.digest}, {info.files} files)")
    return 0


@snapshot.command("rm")
@click.argument("name")
@click.option("--force", is_flag=True, required=True, help="Really delete it (its data is lost).")
@click.pass_obj
def snapshot_rm(app: AppContext, name: str, force: bool) -> int:
    """Forget snapshot NAME and delete its archive unless another record uses it."""
    from asbx.data.snapshots import home_store

    session = app.session()
    digest = _digest_of(session, name)
    session.store.delete(session.project, Address(ResourceKind.SNAPSHOT, name))
    if digest not in _referenced(session.store):
        home_store(session.home).remove(digest)
        click.echo(f"removed snapshot.{name} and its archive {digest}")
    else:
        click.echo(f"removed snapshot.{name}; its archive is still used elsewhere")
    if name in session.loaded.spec.snapshots:
        click.echo(f"note: snapshot.{name} is still in the spec; the next apply captures it again")
    return 0


def _recorded_names(records: Mapping[Address, object]) -> set[str]:
    return {a.name for a in records if a.kind is ResourceKind.SNAPSHOT}


def _digest_of(session: Session, name: str) -> str:
    record = session.store.snapshot(session.project).records.get(
        Address(ResourceKind.SNAPSHOT, name)
    )
    if record is None or not record.outputs.get("digest"):
        raise AsbxError(
            f"snapshot.{name} has not been captured",
            hint="run asbx apply (or asbx snapshot import FILE NAME)",
        )
    return str(record.outputs["digest"])


def _referenced(store: StateStore) -> set[str]:
    """Every snapshot digest any project's state references."""
    return {
        str(r.outputs.get("digest"))
        for p in store.projects()
        for a, r in store.snapshot(p.name).records.items()
        if a.kind is ResourceKind.SNAPSHOT
    }


def _human(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f}{unit}" if unit == "B" else f"{value:.1f}{unit}"
        value /= 1024
    return f"{value:.1f}GiB"


def _age(at: float) -> str:
    seconds = max(0, int(time.time() - at))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"
