"""`asbx status`: every resource's live state, limits and lifecycle deadlines (table and JSON).

`build_status` is pure: it joins the spec, the state snapshot, one observation of the runtime
(one listing per kind) and the stop marks into rows; the renderers only format those rows.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from asbx.addresses import Address, ResourceKind
from asbx.graph import ResourceGraph
from asbx.lifecycle import Deadlines, StopMark, deadlines, format_duration, sandbox_facts
from asbx.plan.observed import Observed
from asbx.runtime.base import LABEL_HASH, ObservedContainer
from asbx.spec.model import ImageSpec, PortSpec, SandboxSpec, Spec
from asbx.spec.values import format_size
from asbx.state.records import ResourceRecord, StateSnapshot

STATUS_FORMAT_VERSION = 1


@dataclass(frozen=True)
class StatusRow:
    """One resource as `asbx status` shows it. Times are unix seconds (None: unknown/not set).

    `state` is one of: running, stopped, paused, unknown (sandboxes, from the runtime);
    present (images, volumes); captured (snapshots); missing (in state, not in the runtime);
    drifted (the runtime object's config-hash label differs from state); not created (in the
    spec only); not in spec (in state only); untracked (labelled with the project, unknown to
    state: `asbx plan` adopts or reports it).
    """

    address: Address
    state: str
    in_spec: bool
    image: str = ""
    cpus: float | None = None
    memory: int | None = None
    network: str = ""
    ports: tuple[str, ...] | None = None  # sandboxes: published ports, `127.0.0.1:8080->80/tcp`
    created_at: float | None = None
    last_activity: float | None = None
    idle_stop_at: float | None = None
    delete_at: float | None = None
    delete_timer: str | None = None
    detail: str = ""
    tainted: str = ""  # sandboxes whose setup failed or never finished: "setup failed"/"pending"


@dataclass(frozen=True)
class StatusReport:
    project: str
    runtime: str
    now: float
    rows: tuple[StatusRow, ...]


@dataclass(frozen=True)
class StatusInput:
    """Everything `build_status` reads."""

    project: str
    runtime: str
    spec: Spec
    graph: ResourceGraph
    state: StateSnapshot
    observed: Observed
    marks: Mapping[Address, StopMark]
    now: float


def build_status(inp: StatusInput) -> StatusReport:
    """One row per spec resource (graph order), then state-only and untracked objects."""
    facts = sandbox_facts(inp.spec, inp.state.records, inp.state.activity,
                          inp.observed.containers, inp.marks)
    due = {f.address: deadlines(f) for f in facts}
    rows = [_row(inp, address, due.get(address)) for address in inp.graph.order()]
    for address in sorted(inp.state.records.keys() - inp.graph.resources.keys()):
        rows.append(_state_only_row(inp, address))
    known = inp.graph.resources.keys() | inp.state.records.keys()
    for address in sorted((inp.observed.containers.keys() | inp.observed.volumes.keys()) - known):
        rows.append(StatusRow(address, "untracked", False, detail="labelled with this project; "
                              "unknown to spec and state"))
    return StatusReport(inp.project, inp.runtime, inp.now, tuple(rows))


def _row(inp: StatusInput, address: Address, due: Deadlines | None) -> StatusRow:
    record = inp.state.records.get(address)
    created = record.created_at if record else None
    if address.kind is ResourceKind.SANDBOX:
        return _sandbox_row(inp, address, record, due or Deadlines())
    if address.kind is ResourceKind.IMAGE:
        return StatusRow(address, _image_state(inp, address, record), True,
                         image=_image_ref(inp, address, record), created_at=created)
    if address.kind is ResourceKind.VOLUME:
        live = inp.observed.volumes.get(address)
        state = _object_state(record, live is not None,
                              live.labels.get(LABEL_HASH) if live else None)
        return StatusRow(address, state, True, created_at=created)
    digest = str(record.outputs.get("digest", "")) if record else ""
    state = "not created" if record is None else (
        "captured" if digest in inp.observed.archives else "missing")
    captured = (record.updated_at or record.created_at) if record else None
    return StatusRow(address, state, True, created_at=captured, detail=digest[:19])


def _sandbox_row(inp: StatusInput, address: Address, record: ResourceRecord | None,
                 due: Deadlines) -> StatusRow:
    box = inp.graph.resources[address]
    assert isinstance(box, SandboxSpec)
    live = inp.observed.containers.get(address)
    timer = due.delete_timer
    created = (record.created_at if record else None) or _ts(live.created_at if live else None)
    return StatusRow(
        address,
        _sandbox_state(record, live),
        True,
        image=live.image if live else _image_ref(inp, inp.graph.image_of(address.name), None),
        cpus=box.cpus,
        memory=box.memory,
        network=" ".join((box.network.describe(), *_egress_notes(inp, address))),
        ports=tuple(map(port_text, box.ports)),
        created_at=created,
        last_activity=inp.state.activity.get(address),
        idle_stop_at=due.idle_stop_at,
        delete_at=due.delete_at,
        delete_timer=timer.value if timer else None,
        detail=live.name if live else "",
        tainted=_taint(record),
    )


def _taint(record: ResourceRecord | None) -> str:
    """Why a sandbox is tainted ("setup failed", "setup pending"), or "" when it is not."""
    if record is None or not record.tainted:
        return ""
    setup = str(record.outputs.get("setup", "") or "pending")
    return f"setup {setup}"


def _egress_notes(inp: StatusInput, address: Address) -> tuple[str, ...]:
    """What is wrong with an allowlist sandbox's proxy or firewall rules, if anything."""
    notes = []
    if address in inp.observed.proxies_down:
        notes.append("(egress proxy not running)")
    if address in inp.observed.guards_down:
        notes.append("(host firewall rules missing)")
    return tuple(notes)


def port_text(port: PortSpec) -> str:
    """A published port as `status` shows it: `127.0.0.1:8080->80/tcp`, `[::1]:53->53/udp`."""
    host = f"[{port.host_ip}]" if ":" in port.host_ip else port.host_ip
    return f"{host}:{port.host}->{port.container}/{port.protocol}"


def _sandbox_state(record: ResourceRecord | None, live: ObservedContainer | None) -> str:
    if live is None:
        return "missing" if record is not None else "not created"
    if record is None:
        return "untracked"
    if live.labels.get(LABEL_HASH) != record.label_hash:
        return "drifted"
    return live.state.value


def _object_state(record: ResourceRecord | None, present: bool, label_hash: str | None) -> str:
    if not present:
        return "missing" if record is not None else "not created"
    if record is None:
        return "untracked"
    if label_hash is not None and label_hash != record.config_hash:
        return "drifted"
    return "present"


def _image_state(inp: StatusInput, address: Address, record: ResourceRecord | None) -> str:
    if record is None:
        spec = inp.graph.resources[address]
        ref = spec.ref if isinstance(spec, ImageSpec) else None
        return "untracked" if ref and inp.observed.has_image(ref) else "not created"
    ref = str(record.outputs.get("ref", ""))
    image_id = str(record.outputs.get("image_id", ""))
    return "present" if inp.observed.has_image(ref, image_id) else "missing"


def _image_ref(inp: StatusInput, address: Address, record: ResourceRecord | None) -> str:
    record = record or inp.state.records.get(address)
    if record is not None and record.outputs.get("ref"):
        return str(record.outputs["ref"])
    spec = inp.graph.resources.get(address)
    if isinstance(spec, ImageSpec):
        return spec.ref or f"(build {spec.build.context if spec.build else '.'})"
    return ""


def _state_only_row(inp: StatusInput, address: Address) -> StatusRow:
    record = inp.state.records[address]
    live = inp.observed.containers.get(address) or inp.observed.volumes.get(address)
    where = "still in the runtime" if live is not None else "gone from the runtime"
    return StatusRow(address, "not in spec", False, created_at=record.created_at,
                     detail=f"{where}; asbx apply removes it")


def _ts(value: datetime | None) -> float | None:
    return value.timestamp() if value else None


# -- JSON


def status_to_json(report: StatusReport) -> dict[str, Any]:
    """The documented `asbx status --json` structure (docs/operations.md)."""
    return {
        "format_version": STATUS_FORMAT_VERSION,
        "project": report.project,
        "runtime": report.runtime,
        "now": iso(report.now),
        "resources": [_row_json(row, report.now) for row in report.rows],
    }


def _row_json(row: StatusRow, now: float) -> dict[str, Any]:
    return {
        "address": str(row.address),
        "kind": row.address.kind.value,
        "name": row.address.name,
        "state": row.state,
        "in_spec": row.in_spec,
        "image": row.image or None,
        "cpus": row.cpus,
        "memory": row.memory,
        "network": row.network or None,
        "ports": list(row.ports) if row.ports is not None else None,
        "created_at": iso(row.created_at),
        "age_seconds": round(now - row.created_at) if row.created_at else None,
        "last_activity": iso(row.last_activity),
        "idle_stop_at": iso(row.idle_stop_at),
        "delete_at": iso(row.delete_at),
        "delete_timer": row.delete_timer,
        "detail": row.detail or None,
        "tainted": row.tainted or None,
    }


def iso(value: float | None) -> str | None:
    """Unix seconds as RFC 3339 UTC (`2025-01-31T12:00:00Z`)."""
    if value is None:
        return None
    return datetime.fromtimestamp(value, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# -- table

_STATE_STYLES = {
    "running": "green",
    "stopped": "yellow",
    "paused": "yellow",
    "present": "green",
    "captured": "green",
    "missing": "red",
    "drifted": "magenta",
    "not created": "dim",
    "not in spec": "red",
    "untracked": "magenta",
}
_COLUMNS = ("KIND", "NAME", "STATE", "IMAGE", "CPUS/MEM", "NETWORK", "PORTS", "AGE",
            "ACTIVITY", "IDLE STOP", "DELETE")


def render_status_table(report: StatusReport, *, color: bool, width: int | None = None) -> str:
    """The report as a rich table (plain text when `color` is False)."""
    from rich import box
    from rich.console import Console
    from rich.table import Table

    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False,
                  title=f"project {report.project} ({report.runtime})", title_justify="left")
    for column in _COLUMNS:
        table.add_column(column, overflow="fold")
    for row in report.rows:
        table.add_row(*_cells(row, report.now, color))
    buffer = io.StringIO()
    console = Console(file=buffer, width=width or 200, no_color=not color, color_system=(
        "standard" if color else None), highlight=False, emoji=False, markup=False)
    console.print(table)
    return "\n".join(line.rstrip() for line in buffer.getvalue().splitlines())


def _cells(row: StatusRow, now: float, color: bool) -> list[Any]:
    from rich.text import Text

    state = Text(row.state, style=_STATE_STYLES.get(row.state, "") if color else "")
    if row.tainted:
        state.append(f" (tainted: {row.tainted})", style="red" if color else "")
    return [
        row.address.kind.value,
        row.address.name,
        state,
        row.image or "-",
        _limits(row) if row.address.kind is ResourceKind.SANDBOX else "-",
        row.network or "-",
        ", ".join(row.ports or ()) or "-",
        format_duration(now - row.created_at) if row.created_at else "-",
        f"{format_duration(now - row.last_activity)} ago" if row.last_activity else "-",
        _when(row.idle_stop_at, now),
        _when(row.delete_at, now) + (f" ({row.delete_timer})" if row.delete_at else ""),
    ]


def _limits(row: StatusRow) -> str:
    cpus = f"{row.cpus:g}" if row.cpus is not None else "-"
    memory = format_size(row.memory) if row.memory is not None else "-"
    return f"{cpus}/{memory}"


def _when(at: float | None, now: float) -> str:
    if at is None:
        return "-"
    if at <= now:
        return f"due {format_duration(now - at)} ago" if now - at >= 1 else "due now"
    return f"in {format_duration(at - now)}"
