"""A saved plan's refusal names what changed: state, spec, lock, context files, or the runtime."""

from __future__ import annotations

import dataclasses

from asbx.plan.model import BuildInputs, Plan
from asbx.plan.staleness import stale_reasons

SAVED = Plan(
    project="p",
    changes=(),
    state_serial=3,
    state_lineage="L",
    spec_digest="sha256:spec",
    lock_digest="sha256:lock",
    contexts={"app": BuildInputs("sha256:c1", {"app.txt": "0644 sha256:a", "x": "0644 sha256:x"})},
)


def test_nothing_changed_nothing_said() -> None:
    assert stale_reasons(SAVED, SAVED, changes_differ=False) == []


def test_a_context_file_is_named_not_the_runtime() -> None:
    files = {"app.txt": "0644 sha256:b", "x": "0644 sha256:x", "new.txt": "0644 sha256:n"}
    fresh = dataclasses.replace(SAVED, contexts={"app": BuildInputs("sha256:c2", files)})
    (reason,) = stale_reasons(SAVED, fresh, changes_differ=True)
    assert reason == (
        "the build context of image.app changed: 1 file changed, 1 added (app.txt, new.txt)"
    )


def test_state_spec_and_lock_are_each_named() -> None:
    fresh = dataclasses.replace(SAVED, state_serial=5, spec_digest="sha256:s2", lock_digest="")
    assert stale_reasons(SAVED, fresh, changes_differ=True) == [
        "the state changed (serial 3 -> 5)",
        "sandboxes.yaml (or a Dockerfile it reads) changed",
        "sandboxes.lock was removed",
    ]
    other = dataclasses.replace(SAVED, state_lineage="M")
    assert stale_reasons(SAVED, other, False) == ["the state was replaced (another lineage)"]


def test_the_runtime_is_blamed_only_when_no_input_changed() -> None:
    (reason,) = stale_reasons(SAVED, SAVED, changes_differ=True)
    assert reason.startswith("the runtime changed")


def test_a_plan_saved_without_inputs_compares_what_it_has() -> None:
    old = dataclasses.replace(SAVED, lock_digest=None, contexts={})
    assert stale_reasons(old, SAVED, changes_differ=False) == []
