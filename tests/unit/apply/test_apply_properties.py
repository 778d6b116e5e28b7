"""Property: the real applier converges. For random specs A then B, on the fake runtime:
apply A -> the plan is empty; apply B over it -> empty again; destroy -> nothing is left."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from asbx.apply.hooks import NullApplyHooks
from asbx.plan.model import PlanOptions
from asbx.spec.loader import load_spec
from asbx.state.store import StateStore
from asbx.workflow import Session, make_plan, run_apply
from tests.fakes.runtime import FakeRuntime
from tests.unit.plan.test_planner_properties import specs


@st.composite
def specs_with_setup(draw: st.DrawFn) -> dict[str, Any]:
    """The planner property's specs, some sandboxes with setup steps and in-place fields."""
    data = draw(specs())
    for box in data["sandboxes"].values():
        if draw(st.booleans()):
            box["setup"] = [f"echo {draw(st.sampled_from(['one', 'two']))} > /workspace/s"]
        if draw(st.booleans()):
            box["lifecycle"] = {"idle_timeout": draw(st.sampled_from(["30m", "2h"]))}
    return data


def _converge(root: Path, runtime: FakeRuntime, data: dict[str, Any],
              options: PlanOptions | None = None) -> None:
    (root / "sandboxes.yaml").write_text(yaml.safe_dump({"name": "prop", **data}))
    home = root / "home"
    session = Session.create(load_spec(root / "sandboxes.yaml"), runtime,
                             StateStore(home / "state.db"), home)
    planned = make_plan(session, options or PlanOptions(allow_data_loss=True))
    result = run_apply(session, planned, parallelism=4, hooks=NullApplyHooks())
    assert result.ok, [(o.node, o.error) for o in result.failed + result.skipped]
    if options is None or not options.destroy:
        again = make_plan(session, PlanOptions()).plan
        assert again.pending == (), [(str(c.address), c.reason.value) for c in again.pending]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(specs_with_setup(), specs_with_setup())
def test_apply_converges_from_nothing_and_from_another_spec(
    first: dict[str, Any], second: dict[str, Any]
) -> None:
    runtime = FakeRuntime()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        _converge(root, runtime, first)
        _converge(root, runtime, second)
        _converge(root, runtime, second, PlanOptions(
            destroy=True, destroy_volumes=True, destroy_snapshots=True, destroy_workspaces=True))
        assert [c for c in runtime.containers if c.startswith("prop-")] == []
        assert [v for v in runtime.volumes if v.startswith("prop-")] == []
        assert list((root / "home" / "projects" / "prop").glob("sandboxes/*/workspace")) == []
