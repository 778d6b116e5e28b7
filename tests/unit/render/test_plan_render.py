"""Plan rendering: the JSON format round-trips (saved plans) and the text reads as design §4."""

from __future__ import annotations

import json
from pathlib import Path

from asbx.addresses import Address
from asbx.plan.model import PlanOptions
from asbx.render.plan_json import plan_from_json, plan_to_json
from asbx.render.plan_text import render_plan_text
from tests.unit.plan.world import World, spec

BASE = """
version: 1
images:
  base:
    ref: localhost/asbx/busybox:latest
volumes:
  cache: {}
  scratch: {}
sandboxes:
  web:
    image: base
    memory: 1G
    env: {TOKEN: s3cr3t}
    volumes: ["cache:/cache"]
"""


def _changed_world(tmp_path: Path) -> tuple[World, dict[str, object]]:
    world = World(spec(BASE, tmp_path))
    world.apply(world.plan())
    edited = BASE.replace("memory: 1G", "memory: 2G").replace("TOKEN: s3cr3t", "TOKEN: n3w-s3cr3t")
    world.loaded = spec(edited.replace("  scratch: {}\n", ""), tmp_path)
    plan = world.plan(PlanOptions(replace=frozenset({Address.parse("volume.cache")})))
    return world, plan_to_json(plan)


def test_the_json_form_round_trips_exactly(tmp_path: Path) -> None:
    _, data = _changed_world(tmp_path)
    text = json.dumps(data, sort_keys=True)
    again = plan_to_json(plan_from_json(json.loads(text)))
    assert json.dumps(again, sort_keys=True) == text
    assert data["format_version"] == "1.1"  # as docs/plan-format.md says
    assert "s3cr3t" not in text  # neither the old secret nor the new one


def test_the_text_shows_symbols_reasons_fields_and_data_marks(tmp_path: Path) -> None:
    _, data = _changed_world(tmp_path)
    text = render_plan_text(data, color=False)
    assert text.startswith("asbx will perform the following actions:\n")
    assert "  # sandbox.web must be replaced (spec changed)\n-/+ sandbox.web\n" in text
    assert '      ~ memory: "1G" -> "2G"   # forces replacement\n' in text
    assert "      ~ env.TOKEN: (sensitive value changed)   # forces replacement\n" in text
    assert "s3cr3t" not in text
    assert "# volume.scratch will be destroyed (not in sandboxes.yaml) — holds data" in text
    assert "-/+ volume.cache" in text
    assert text.rstrip().endswith("Plan: 0 to add, 0 to change, 2 to replace, 1 to destroy.")
    assert "\x1b[" not in text


def test_colour_only_when_asked(tmp_path: Path) -> None:
    _, data = _changed_world(tmp_path)
    assert "\x1b[" in render_plan_text(data, color=True)


def test_an_empty_plan_says_so(tmp_path: Path) -> None:
    world = World(spec(BASE, tmp_path))
    world.apply(world.plan())
    text = render_plan_text(plan_to_json(world.plan()), color=False)
    assert text == "No changes. The runtime matches sandboxes.yaml."
