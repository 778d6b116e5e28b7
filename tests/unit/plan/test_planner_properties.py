"""Property: for random valid specs, planning after a simulated apply of the plan is empty."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from asbx.plan.model import PlanOptions
from tests.unit.plan.world import World, spec

names = st.sampled_from(["a", "b", "c", "d", "e", "web", "db-1", "x_2"])


@st.composite
def specs(draw: st.DrawFn) -> dict[str, Any]:
    images = {
        n: {"ref": f"localhost/img/{n}:{draw(st.sampled_from(['1', '2', 'latest']))}"}
        for n in draw(st.lists(names, min_size=1, max_size=3, unique=True))
    }
    volumes = {
        n: draw(st.sampled_from([{}, {"labels": {"k": "v"}}]))
        for n in draw(st.lists(names, max_size=3, unique=True))
    }
    sandboxes: dict[str, Any] = {}
    snapshots: dict[str, Any] = {}
    for index, name in enumerate(draw(st.lists(names, min_size=1, max_size=5, unique=True))):
        box: dict[str, Any] = {"image": draw(st.sampled_from(sorted(images)))}
        if draw(st.booleans()):
            box["memory"] = draw(st.sampled_from(["64M", "1G", "1.5G"]))
        if draw(st.booleans()):
            box["cpus"] = draw(st.sampled_from([0.5, 1, 2]))
        if draw(st.booleans()):
            box["env"] = {"A": draw(st.text("abc", max_size=3))}
        if volumes and draw(st.booleans()):
            box["volumes"] = [f"{draw(st.sampled_from(sorted(volumes)))}:/data"]
        if draw(st.booleans()):
            box["network"] = draw(st.sampled_from(["deny", "open"]))
        earlier = list(sandboxes)
        if earlier and draw(st.booleans()):
            box["depends_on"] = [draw(st.sampled_from(earlier))]
        if snapshots and draw(st.booleans()):
            box["workspace"] = {"snapshot": draw(st.sampled_from(sorted(snapshots)))}
        sandboxes[name] = box
        if draw(st.booleans()):
            snapshots[f"s{index}"] = {"sandbox": name}
    if not draw(st.booleans()):
        images["plain"] = {"ref": "localhost/img/plain:1"}
        next(iter(sandboxes.values()))["image"] = "busybox:1.36"
    return {
        "version": 1,
        "images": images,
        "volumes": volumes,
        "sandboxes": sandboxes,
        "snapshots": snapshots,
    }


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(specs())
def test_plan_after_applying_its_own_plan_is_empty(data: dict[str, Any]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        world = World(spec(yaml.safe_dump(data), Path(tmp)))
        first = world.plan()
        assert first.pending, "a fresh spec always has something to create"
        world.apply(first)
        second = world.plan()
        assert second.pending == (), [str(c.address) for c in second.pending]
        world.apply(
            world.plan(PlanOptions(destroy=True, destroy_volumes=True, destroy_snapshots=True))
        )
        assert world.state.records == {}
        assert world.containers == {}
        assert world.volumes == {}
