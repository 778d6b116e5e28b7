"""Property: failures injected into builds, pulls and creates never take down a sandbox that
was running before the apply, unless the plan destroyed it on purpose (or its own new container
is the create that failed: its old one was removed by then, as a replacement must); once the
cause is gone, one more apply converges."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from asbx.addresses import ResourceKind
from asbx.apply.hooks import NullApplyHooks
from asbx.plan.model import Action, PlanOptions
from asbx.runtime.base import ContainerState
from asbx.spec.loader import load_spec
from asbx.state.store import StateStore
from asbx.workflow import Session, make_plan, run_apply
from tests.fakes.runtime import FakeRuntime

BOXES = ["a", "b", "c", "d"]


@st.composite
def versions(draw: st.DrawFn) -> dict[str, Any]:
    """One version of a project: a pulled and a built image, a volume, sandboxes on either
    (some with setup, some mounting the volume, one restored from a snapshot)."""
    boxes: dict[str, Any] = {}
    for name in draw(st.lists(st.sampled_from(BOXES), min_size=1, max_size=4, unique=True)):
        box: dict[str, Any] = {
            "image": draw(st.sampled_from(["pulled", "built"])),
            "env": {"V": draw(st.sampled_from(["1", "2"]))},
        }
        if draw(st.booleans()):
            box["setup"] = ["echo done > /workspace/setup"]
        if draw(st.booleans()):
            box["volumes"] = ["data:/data"]
        boxes[name] = box
    first = next(iter(boxes))
    snapshots = {}
    if len(boxes) > 1 and draw(st.booleans()):
        snapshots["seed"] = {"sandbox": first}
        last = list(boxes)[-1]
        boxes[last]["workspace"] = {"snapshot": "seed"}
    return {
        "version": 1,
        "name": "fail",
        "images": {
            "pulled": {"ref": f"localhost/img/p:{draw(st.sampled_from(['1', '2']))}"},
            "built": {"build": {"context": "./ctx"}},
        },
        "volumes": {"data": {}},
        "sandboxes": boxes,
        "snapshots": snapshots,
        "_dockerfile": f"FROM localhost/img/base:1\nRUN echo {draw(st.sampled_from('xy'))}\n",
    }


failures = st.lists(
    st.sampled_from(["build", "pull", "create_volume", *(f"create:{b}" for b in BOXES)]),
    min_size=1, max_size=3, unique=True,
)


def _session(root: Path, runtime: FakeRuntime, data: dict[str, Any]) -> Session:
    data = dict(data)
    (root / "ctx").mkdir(exist_ok=True)
    (root / "ctx" / "Dockerfile").write_text(data.pop("_dockerfile"))
    (root / "sandboxes.yaml").write_text(yaml.safe_dump(data))
    home = root / "home"
    return Session.create(load_spec(root / "sandboxes.yaml"), runtime,
                          StateStore(home / "state.db"), home)


def _inject(runtime: FakeRuntime, names: list[str]) -> set[str]:
    """Arm the failures; returns the container names whose own create fails."""
    own: set[str] = set()
    for name in names:
        if name.startswith("create:"):
            container = f"fail-{name.removeprefix('create:')}"
            own.add(container)
            runtime.fail("create_container", times=99,
                         when=lambda args, c=container: args[0].name == c)
        else:
            runtime.fail(name, times=99)
    return own


def _running(runtime: FakeRuntime) -> set[str]:
    return {n for n, c in runtime.containers.items() if c.state is ContainerState.RUNNING}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(versions(), versions(), failures)
def test_injected_failures_never_take_down_a_running_sandbox(
    first: dict[str, Any], second: dict[str, Any], injected: list[str]
) -> None:
    runtime = FakeRuntime()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        session = _session(root, runtime, first)
        result = run_apply(session, make_plan(session, PlanOptions()), parallelism=4,
                           hooks=NullApplyHooks())
        assert result.ok, [(o.node, o.error) for o in result.failed]
        before = _running(runtime)

        session = _session(root, runtime, second)
        planned = make_plan(session, PlanOptions(allow_data_loss=True))
        deleted = {f"fail-{c.address.name}" for c in planned.plan.changes
                   if c.address.kind is ResourceKind.SANDBOX and c.action is Action.DELETE}
        own = _inject(runtime, injected)
        result = run_apply(session, planned, parallelism=4, hooks=NullApplyHooks())

        lost = before - _running(runtime) - deleted - own
        assert not lost, (lost, [(o.node, str(o.error)) for o in result.failed])

        runtime._failures.clear()  # the cause fixed: one more apply converges
        session = _session(root, runtime, second)
        again = run_apply(session, make_plan(session, PlanOptions(allow_data_loss=True)),
                          parallelism=4, hooks=NullApplyHooks())
        assert again.ok, [(o.node, str(o.error)) for o in again.failed]
        assert make_plan(session, PlanOptions()).plan.pending == ()
