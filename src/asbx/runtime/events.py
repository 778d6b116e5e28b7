"""Runtime events (`podman events`, `docker events`) read as typed records: what changed, when."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

# Kinds an observation lists; events of other kinds (networks, pods, system) are not read.
CONTAINER, VOLUME, IMAGE = "container", "volume", "image"

# Container actions that change nothing a container listing reports (id, name, state, labels,
# image): running a command in it, attaching to it, its health check, a copy in or out.
HARMLESS_CONTAINER_ACTIONS = frozenset({
    "exec", "exec_died", "exec_create", "exec_start", "exec_die", "attach", "detach",
    "health_status", "copy", "archive-path", "extract-to-dir", "top", "resize", "export",
    "commit", "mount", "unmount", "sync",
})

# docker says a volume is mounted or unmounted each time a container using it starts or stops
HARMLESS_VOLUME_ACTIONS = frozenset({"mount", "unmount"})


@dataclass(frozen=True)
class RuntimeEvent:
    """One event: the kind of object, what happened to it, which one, and when (unix seconds)."""

    kind: str
    action: str
    time: float
    name: str = ""
    id: str = ""
    # A container's labels, when the runtime says them (None: unknown, e.g. a volume's event).
    labels: Mapping[str, str] | None = field(default=None)

    @property
    def harmless(self) -> bool:
        """True when the event cannot change what a listing of its kind reports."""
        action = self.action.split(":", 1)[0].strip()
        if self.kind == VOLUME:
            return action in HARMLESS_VOLUME_ACTIONS
        return self.kind == CONTAINER and action in HARMLESS_CONTAINER_ACTIONS


def parse_podman_event(line: str) -> RuntimeEvent | None:
    """A `podman events --format json` line; None for kinds asbx does not list or bad lines."""
    item = _json(line)
    kind = str(item.get("Type", ""))
    when = _rfc3339(item.get("Time"))
    if kind not in (CONTAINER, VOLUME, IMAGE) or when is None:
        return None
    attributes = item.get("Attributes")
    labels = (
        {str(k): str(v) for k, v in attributes.items()}
        if kind == CONTAINER and isinstance(attributes, dict) else None
    )
    return RuntimeEvent(kind, str(item.get("Status", "")), when, str(item.get("Name", "")),
                        str(item.get("ID", "")), labels)


def parse_docker_event(line: str) -> RuntimeEvent | None:
    """A `docker events --format '{{json .}}'` line (Type, Action, Actor, timeNano)."""
    item = _json(line)
    kind = str(item.get("Type", ""))
    nanos = item.get("timeNano")
    if kind not in (CONTAINER, VOLUME, IMAGE) or not isinstance(nanos, int):
        return None
    actor = _mapping(item.get("Actor"))
    attributes = _mapping(actor.get("Attributes"))
    ident = str(actor.get("ID", ""))
    name = str(attributes.get("name", "")) or ident
    labels = (
        {str(k): str(v) for k, v in attributes.items() if k not in ("name", "image")}
        if kind == CONTAINER else None
    )
    return RuntimeEvent(kind, str(item.get("Action", "")), nanos / 1e9, name, ident, labels)


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _json(line: str) -> dict[str, Any]:
    try:
        item = json.loads(line)
    except ValueError:
        return {}
    return item if isinstance(item, dict) else {}


def _rfc3339(value: Any) -> float | None:
    """Unix seconds of an RFC 3339 time with up to nanoseconds (`...04:44:51.972903913Z`)."""
    if not isinstance(value, str) or not value:
        return None
    text = value.replace("Z", "+00:00")
    head, dot, rest = text.partition(".")
    nanos = 0.0
    if dot:  # keep the fraction ourselves: fromisoformat takes at most microseconds reliably
        digits = len(rest) - len(rest.lstrip("0123456789"))
        fraction, rest = rest[:digits], rest[digits:]
        nanos = int(fraction or "0") / 10 ** len(fraction or "0")
        text = head + rest
    try:
        return datetime.fromisoformat(text).timestamp() + nanos
    except ValueError:
        return None
