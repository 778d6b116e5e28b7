"""Fixtures for planner tests."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

import pytest

from tests.unit.plan.world import World, spec


@pytest.fixture
def world_of(tmp_path: Path) -> Callable[..., World]:
    def make(text: str, files: Iterable[str] = ()) -> World:
        for name in files:
            (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
            (tmp_path / name).write_text("FROM localhost/asbx/busybox:latest\n")
        return World(spec(text, tmp_path))

    return make
