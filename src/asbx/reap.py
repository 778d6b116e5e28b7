"""`asbx reap`: enforce lifecycle timers in every project of ASBX_HOME; safe to run from cron.

Each project is reaped on its own: its spec is loaded from the path recorded in the store, its
lock is taken with a short timeout (a locked project is skipped until the next run), one runtime
listing shows its containers, `lifecycle.decide` says what is due, and this module carries it
out and journals it. A problem with one project is reported and the others still run.

Runtimes do not all say when a container stopped, so asbx keeps "stopped since" marks in
`$ASBX_HOME/projects/<project>/lifecycle.json` (written by `asbx stop`, and by reap or status
when they first see a container stopped); `auto_delete` counts from there.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from asbx.addresses import Address
from asbx.errors import AsbxError, NotFoundError, StateLockedError
from asbx.lifecycle import (
    Decision,
    StopMark,
    Timer,
    Verdict,
    decide_all,
    refresh_stop_marks,
    sandbox_facts,
    timestamp,
)
from asbx.runtime.base import (
    ACTIVE_SESSION_ENV,
    LABEL_ADDRESS,
    LABEL_PROJECT,
    ObservedContainer,
    Runtime,
)
from asbx.spec.loader import LoadedSpec
from asbx.state.records import ProjectMeta
from asbx.state.store import StateStore

# Exit 0 if any process in the container carries the marker given as $1 (never spliced in).
_PROBE_SCRIPT = (
    'for p in /proc/[0-9]*; do if grep -q "$1" "$p/environ" 2>/dev/null; '
    "then exit 0; fi; done; exit 1"
)
MARKS_FILE = "lifecycle.json"


@dataclass(frozen=True)
class ReapEvent:
    """One line of reap's report. `changed` is False for notes (held, skipped, would ...)."""

    project: str
    subject: str  # an address, or "" for the whole project
    outcome: str  # stopped | deleted | held | busy | would stop | would delete | skipped | failed
    detail: str = ""
    changed: bool = False

    @property
    def failed(self) -> bool:
        return self.outcome == "failed"


EventSink = Callable[[ReapEvent], None]


@dataclass(frozen=True)
class ReapOptions:
    """`projects` empty means every project in the store; `now` is for tests."""

    dry_run: bool = False
    projects: tuple[str, ...] = ()
    lock_timeout: float = 2.0
    now: float | None = None


@dataclass
class _Project:
    """One project being reaped: its collaborators and where events go."""

    name: str
    loaded: LoadedSpec
    store: StateStore
    runtime: Runtime
    home: Path
    options: ReapOptions
    emit: EventSink
    now: float

    def event(self, subject: object, outcome: str, detail: str = "", changed: bool = False
              ) -> None:
        self.emit(ReapEvent(self.name, str(subject), outcome, detail, changed))


def reap(store: StateStore, runtime: Runtime, home: Path, options: ReapOptions,
         emit: EventSink) -> list[ReapEvent]:
    """Reap the chosen projects; never raises for one project's problem (it becomes an event)."""
    events: list[ReapEvent] = []

    def sink(event: ReapEvent) -> None:
        events.append(event)
        emit(event)

    known = {meta.name: meta for meta in store.projects()}
    for name in options.projects:
        if name not in known:
            sink(ReapEvent(name, "", "failed", f"no project {name} in {home}"))
    chosen = [known[n] for n in options.projects if n in known] if options.projects else list(
        known.values())
    for meta in chosen:
        try:
            _reap_one(store, runtime, home, options, meta, sink)
        except AsbxError as exc:
            sink(ReapEvent(meta.name, "", "failed", exc.message))
        except Exception as exc:  # one broken project must not stop the others (cron)
            sink(ReapEvent(meta.name, "", "failed", f"{type(exc).__name__}: {exc}"))
    return events


def _reap_one(store: StateStore, runtime: Runtime, home: Path, options: ReapOptions,
              meta: ProjectMeta, emit: EventSink) -> None:
    loaded = _load(meta, emit)
    if loaded is None:
        return
    if not any(box.lifecycle for box in loaded.spec.sandboxes.values()):
        return  # nothing to enforce: no runtime call at all
    now = time.time() if options.now is None else options.now
    project = _Project(meta.name, loaded, store, runtime, home, options, emit, now)
    if options.dry_run:  # changes nothing, so it needs no lock
        _enforce(project)
        return
    try:
        with store.locked(meta.name, "reap", options.lock_timeout):
            _enforce(project)
    except StateLockedError as exc:
        project.event("", "skipped", f"{exc.message}; trying again on the next run")


def _load(meta: ProjectMeta, emit: EventSink) -> LoadedSpec | None:
    """The project's spec from its recorded path, or None (and a message) if it is unusable."""
    from asbx.spec.loader import load_spec

    path = Path(meta.spec_path) if meta.spec_path else None
    if path is None or not path.is_absolute():
        emit(ReapEvent(meta.name, "", "skipped",
                       f"no usable spec path recorded ({meta.spec_path or 'none'}); "
                       "run any asbx command in the project to record it"))
        return None
    if not path.is_file():
        emit(ReapEvent(meta.name, "", "skipped",
                       f"its spec {path} is gone (remove the project with asbx destroy, "
                       "or restore the file)"))
        return None
    try:
        return load_spec(path)
    except AsbxError as exc:
        emit(ReapEvent(meta.name, "", "skipped",
                       f"its spec {path} does not load ({exc.message}); "
                       f"run asbx validate in {path.parent}"))
        return None


def _enforce(project: _Project) -> None:
    """One listing call, the decisions, then each due action."""
    snapshot = project.store.snapshot(project.name)
    containers = list_project_containers(project.runtime, project.name)
    marks = refresh_stop_marks(load_marks(project.home, project.name), containers, project.now)
    if not project.options.dry_run:
        save_marks(project.home, project.name, marks)
    facts = sandbox_facts(project.loaded.spec, snapshot.records, snapshot.activity, containers,
                          marks)
    for decision in decide_all(facts, project.now):
        container = containers.get(decision.address)
        if container is None:
            continue
        try:
            _carry_out(project, decision, container)
        except AsbxError as exc:
            project.event(decision.address, "failed", exc.message)
            _journal(project, decision, "failed", exc.message)


def _carry_out(project: _Project, decision: Decision, container: ObservedContainer) -> None:
    if decision.verdict is Verdict.KEEP:
        if decision.held:
            project.event(decision.address, "held", f"{decision.reason}; already stopped: "
                          f"{decision.held}")
        return
    if decision.verdict is Verdict.DELETE:
        _delete(project, decision, container)
    elif decision.timer is Timer.IDLE:
        _idle_stop(project, decision, container)
    else:
        _held_stop(project, decision, container)


def _idle_stop(project: _Project, decision: Decision, container: ObservedContainer) -> None:
    busy = session_running(project.runtime, container.name)
    if busy:
        if not project.options.dry_run:  # a running command counts as activity now
            project.store.touch(project.name, decision.address, project.now)
        project.event(decision.address, "busy", "an asbx exec/shell is still running; kept")
        return
    if project.options.dry_run:
        project.event(decision.address, "would stop", decision.reason)
        return
    project.runtime.stop_container(container.name)
    mark_stopped(project.home, project.name, decision.address, container)
    project.event(decision.address, "stopped", decision.reason, changed=True)
    _journal(project, decision, "ok", decision.reason)


def _held_stop(project: _Project, decision: Decision, container: ObservedContainer) -> None:
    detail = f"{decision.reason}; stopped instead of deleted: {decision.held}"
    if project.options.dry_run:
        project.event(decision.address, "would stop", detail)
        return
    project.runtime.stop_container(container.name)
    mark_stopped(project.home, project.name, decision.address, container)
    project.event(decision.address, "stopped", detail, changed=True)
    _journal(project, decision, "ok", detail)


def _delete(project: _Project, decision: Decision, container: ObservedContainer) -> None:
    """Remove the container, then the workspace (if allowed), then the state record."""
    from asbx.data.workspaces import remove_workspace, workspace_path

    what = "container, workspace and state record" if decision.remove_workspace else (
        "container and state record")
    detail = f"{decision.reason}; removes its {what}"
    if project.options.dry_run:
        project.event(decision.address, "would delete", detail)
        return
    with contextlib.suppress(NotFoundError):
        project.runtime.remove_container(container.name, force=True)
    record = project.store.snapshot(project.name).records.get(decision.address)
    if record is not None and isinstance(record.applied.get("network"), dict):
        from asbx.apply.egress import release_egress

        release_egress(project.runtime, project.home, project.name, decision.address.name,
                       forget=True)
    if decision.remove_workspace:
        workspace = workspace_path(project.home, project.name, decision.address.name)
        remove_workspace(workspace, home=project.home)
    project.store.delete(project.name, decision.address)
    clear_mark(project.home, project.name, decision.address)
    project.event(decision.address, "deleted", detail, changed=True)
    _journal(project, decision, "ok", detail)


def _journal(project: _Project, decision: Decision, outcome: str, detail: str) -> None:
    if project.options.dry_run:
        return
    project.store.journal(project.name, "reap", decision.address, decision.verdict.value,
                          outcome, detail)


def list_project_containers(runtime: Runtime, project: str) -> dict[Address, ObservedContainer]:
    """The project's containers by address: one runtime listing call, made now."""
    from asbx.runtime.cached import containers_now

    found: dict[Address, ObservedContainer] = {}
    for container in containers_now(runtime, {LABEL_PROJECT: project}):
        try:
            address = Address.parse(container.labels.get(LABEL_ADDRESS, ""))
        except ValueError:
            continue
        found.setdefault(address, container)
    return found


def session_running(runtime: Runtime, container: str) -> bool | None:
    """Whether an `asbx exec`/`shell` is running in the container (None: cannot tell)."""
    argv = ("sh", "-c", _PROBE_SCRIPT, "sh", f"{ACTIVE_SESSION_ENV}=")
    try:
        result = runtime.exec(container, argv, timeout=30)
    except AsbxError:
        return None
    return {0: True, 1: False}.get(result.exit_code)


# -- stop marks: when a container was first known to be stopped


def _marks_path(home: Path, project: str) -> Path:
    from asbx.data.workspaces import check_path_component

    check_path_component("project", project)
    return home / "projects" / project / MARKS_FILE


def load_marks(home: Path, project: str) -> dict[Address, StopMark]:
    """The project's stop marks; a missing or unreadable file means none."""
    try:
        data = json.loads(_marks_path(home, project).read_text(encoding="utf-8"))
        return {Address.parse(a): _mark(m) for a, m in data.get("stopped", {}).items()}
    except (OSError, ValueError, TypeError, AttributeError, KeyError):
        return {}


def _mark(raw: Mapping[str, Any]) -> StopMark:
    started = raw.get("started_at")
    return StopMark(str(raw["container_id"]), None if started is None else float(started),
                    float(raw["since"]))


def save_marks(home: Path, project: str, marks: Mapping[Address, StopMark]) -> None:
    """Write the marks atomically (a temporary file renamed into place)."""
    path = _marks_path(home, project)
    data = {
        "version": 1,
        "stopped": {
            str(a): {"container_id": m.container_id, "started_at": m.started_at, "since": m.since}
            for a, m in sorted(marks.items())
        },
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".lifecycle-", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(data, handle, indent=1)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def mark_stopped(home: Path, project: str, address: Address, container: ObservedContainer,
                 at: float | None = None) -> None:
    """Record that asbx stopped `container` now (auto_delete counts from here)."""
    marks = load_marks(home, project)
    marks[address] = StopMark(container.id, timestamp(container.started_at),
                              time.time() if at is None else at)
    save_marks(home, project, marks)


def clear_mark(home: Path, project: str, address: Address) -> None:
    marks = load_marks(home, project)
    if marks.pop(address, None) is not None:
        save_marks(home, project, marks)


def refresh_marks(home: Path, project: str, containers: Mapping[Address, ObservedContainer],
                  now: float) -> dict[Address, StopMark]:
    """Bring the marks up to date with what the runtime shows (used by `asbx status`)."""
    old = load_marks(home, project)
    fresh = refresh_stop_marks(old, containers, now)
    if fresh != old:
        with contextlib.suppress(OSError):
            save_marks(home, project, fresh)
    return fresh


def summary(events: Iterable[ReapEvent]) -> str:
    """One line: how many sandboxes were stopped, deleted, would be, or failed."""
    counts: dict[str, int] = {}
    for event in events:
        if event.changed or event.outcome in ("failed", "would stop", "would delete"):
            counts[event.outcome] = counts.get(event.outcome, 0) + 1
    if not counts:
        return "reap: nothing to do"
    return "reap: " + ", ".join(f"{n} {what}" for what, n in sorted(counts.items()))
