"""Any project's plan and apply for the API, through the same workflow as `asbx plan`/`apply`."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from asbx.apply.executor import Outcome, Status
from asbx.errors import SpecNotFoundError
from asbx.plan.model import Change
from asbx.runtime.base import Runtime
from asbx.state.store import StateStore

if TYPE_CHECKING:
    from asbx.workflow import Session


def plan_project(home: Path, runtime: Runtime, store: StateStore, spec: str,
                 project: str | None = None) -> dict[str, Any]:
    """`asbx -f SPEC [-p PROJECT] plan --json`, as a dict (docs/plan-format.md); changes
    nothing but the spec path recorded for the project (as the CLI records it)."""
    from asbx.plan.model import PlanOptions
    from asbx.render.plan_json import plan_to_json
    from asbx.workflow import make_plan

    session = _session(home, runtime, store, spec, project)
    data: dict[str, Any] = plan_to_json(make_plan(session, PlanOptions()).plan)
    return data


class EventHooks:
    """Apply progress as JSON-able events: what the CLI's progress shows, for a stream."""

    def __init__(self, emit: Callable[[dict[str, Any]], None]) -> None:
        self.emit = emit

    def step_started(self, change: Change, phase: str) -> None:
        self.emit({"event": "started", "address": str(change.address), "phase": phase,
                   "action": change.action.value})

    def step_output(self, change: Change, stream: str, text: str) -> None:
        self.emit({"event": "output", "address": str(change.address), "stream": stream,
                   "data": text})

    def step_finished(self, change: Change, phase: str, outcome: Outcome[Any]) -> None:
        self.emit({"event": "finished", "address": str(change.address), "phase": phase,
                   "status": outcome.status.name.lower(), "seconds": round(outcome.seconds, 3),
                   "error": str(outcome.error) if outcome.error is not None else None})

    def note(self, message: str) -> None:
        self.emit({"event": "note", "message": message})


def apply_project(home: Path, runtime: Runtime, store: StateStore, spec: str,
                  project: str | None, emit: Callable[[dict[str, Any]], None], *,
                  lock_timeout: float = 60.0) -> dict[str, Any]:
    """`asbx -f SPEC [-p PROJECT] apply -y`: lock, plan, apply (events to `emit`), record build
    contexts, prune superseded images; returns the summary the CLI prints, as counts."""
    from asbx.apply.applier import check_applicable
    from asbx.plan.model import Action, PlanOptions
    from asbx.workflow import make_plan, prune_superseded_images, remember_contexts, run_apply

    session = _session(home, runtime, store, spec, project)
    with store.locked(session.project, "api apply", lock_timeout):
        planned = make_plan(session, PlanOptions())
        check_applicable(planned.plan)
        emit({"event": "plan", "pending": [str(c.address) for c in planned.plan.pending]})
        if not planned.plan.pending and not planned.plan.state_only:
            return {"ok": True, "added": 0, "changed": 0, "replaced": 0, "destroyed": 0}
        result = run_apply(session, planned, parallelism=8, hooks=EventHooks(emit))
        built = {a.name for (a, phase), o in result.outcomes.items()
                 if a.kind.value == "image" and phase == "create" and o.status is Status.OK}
        remember_contexts(session, planned, built)
        prune_superseded_images(session, result)
    return {"ok": result.ok, "added": result.done(Action.CREATE),
            "changed": result.done(Action.UPDATE) + result.done(Action.START),
            "replaced": result.done(Action.REPLACE), "destroyed": result.done(Action.DELETE)}


def _session(home: Path, runtime: Runtime, store: StateStore, spec: str,
             project: str | None) -> Session:
    from asbx.spec.loader import find_spec, load_spec
    from asbx.workflow import Session

    path = Path(spec)
    if not path.is_absolute():
        raise SpecNotFoundError(f"{spec!r} is not an absolute path",
                                hint="give the spec file's (or its directory's) absolute path")
    return Session.create(load_spec(find_spec(path, path)), runtime, store, home, project)
