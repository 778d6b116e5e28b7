"""Plans of any project's spec for the API, through the same workflow as `asbx plan`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from asbx.errors import SpecNotFoundError
from asbx.runtime.base import Runtime
from asbx.state.store import StateStore


def plan_project(home: Path, runtime: Runtime, store: StateStore, spec: str,
                 project: str | None = None) -> dict[str, Any]:
    """`asbx -f SPEC [-p PROJECT] plan --json`, as a dict (docs/plan-format.md); changes
    nothing but the spec path recorded for the project (as the CLI records it)."""
    from asbx.plan.model import PlanOptions
    from asbx.render.plan_json import plan_to_json
    from asbx.spec.loader import find_spec, load_spec
    from asbx.workflow import Session, make_plan

    path = Path(spec)
    if not path.is_absolute():
        raise SpecNotFoundError(f"{spec!r} is not an absolute path",
                                hint="give the spec file's (or its directory's) absolute path")
    loaded = load_spec(find_spec(path, path))
    session = Session.create(loaded, runtime, store, home, project)
    data: dict[str, Any] = plan_to_json(make_plan(session, PlanOptions()).plan)
    return data
