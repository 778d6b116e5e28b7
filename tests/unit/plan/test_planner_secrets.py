"""Planner and secrets: a new value restarts the proxy only (the container stays), the plan
shows neither the value nor its hash, the grant's hosts are the sandbox's configuration."""

from __future__ import annotations

import json
from pathlib import Path

from asbx.plan.hashing import applied_form
from asbx.plan.model import Action, Reason
from asbx.render.plan_json import plan_to_json
from asbx.render.plan_text import render_plan_text
from tests.unit.plan.world import World, actions, spec

SPEC = """
version: 1
secrets:
  github:
    env: GITHUB_TOKEN
  npm:
    env: NPM_TOKEN
sandboxes:
  web:
    image: localhost/asbx/busybox:latest
    network:
      allow: [api.github.com, uploads.github.com, registry.npmjs.org]
    secrets:
      github:
        hosts: [api.github.com]
        header: "Authorization: Bearer {}"
  plain:
    image: localhost/asbx/busybox:latest
"""
OLD, NEW = "sha256:old-hash-of-the-value", "sha256:new-hash-of-the-value"


def converged(world_of, text: str = SPEC) -> World:  # type: ignore[no-untyped-def]
    world = world_of(text)
    world.secret_hashes = {"github": OLD, "npm": OLD}
    world.apply(world.plan())
    assert world.plan().pending == ()
    return world


def test_a_rotated_value_restarts_the_proxy_and_keeps_the_container(world_of) -> None:  # type: ignore[no-untyped-def]
    world = converged(world_of)
    before = world.containers.copy()
    world.secret_hashes = {"github": NEW, "npm": OLD}
    result = world.plan()
    assert actions(result) == {"sandbox.web": ("start", "secrets_changed")}
    change = next(c for c in result.changes if str(c.address) == "sandbox.web")
    assert change.action is Action.START
    assert change.reason is Reason.SECRETS_CHANGED
    assert [f.path for f in change.fields] == ["secret_values.github"]
    assert any("egress proxy restarts" in note for note in change.notes)
    world.apply(result)
    assert world.containers.keys() == before.keys()
    assert world.containers[change.address].id == before[change.address].id
    assert world.plan().pending == ()


def test_the_plan_shows_neither_the_value_nor_its_hash(world_of) -> None:  # type: ignore[no-untyped-def]
    world = converged(world_of)
    world.secret_hashes = {"github": NEW, "npm": OLD}
    result = world.plan()
    shown = json.dumps(plan_to_json(result))
    text = render_plan_text(json.loads(shown), color=False)
    assert "secret_values.github: (sensitive value changed)" in text
    for leaked in (OLD, NEW, "old-hash", "new-hash"):
        assert leaked not in text
        assert leaked not in shown


def test_a_secret_no_sandbox_uses_changes_nothing(world_of) -> None:  # type: ignore[no-untyped-def]
    world = converged(world_of)
    world.secret_hashes = {"github": OLD, "npm": NEW}
    assert world.plan().pending == ()


def test_changed_hosts_are_a_configuration_change(world_of, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    world = converged(world_of)
    world.loaded = spec(SPEC.replace("hosts: [api.github.com]",
                                     "hosts: [api.github.com, uploads.github.com]"), tmp_path)
    assert actions(world.plan())["sandbox.web"] == ("replace", "spec_changed")


def test_a_sandbox_without_secrets_keeps_the_form_older_records_have(tmp_path: Path) -> None:
    loaded = spec(SPEC, tmp_path)
    plain = loaded.spec.sandboxes["plain"]
    assert applied_form(plain, "salt", {"github": NEW}) == applied_form(plain, "salt")
    assert "secret_values" not in applied_form(plain, "salt", {"github": NEW})
    web = applied_form(loaded.spec.sandboxes["web"], "salt", {"github": NEW, "npm": NEW})
    assert web["secret_values"] == {"github": NEW}  # only the secrets it uses
