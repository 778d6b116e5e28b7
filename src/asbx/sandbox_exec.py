"""Exec in a running sandbox in one runtime call: by the container id apply recorded."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from asbx.addresses import Address
from asbx.errors import ContainerNotRunningError, NotFoundError
from asbx.runtime.base import LABEL_ADDRESS, LABEL_PROJECT, ContainerState, Runtime

T = TypeVar("T")


def exec_by_recorded_id(runtime: Runtime, project: str, address: Address, container_id: str,
                        run: Callable[[str], T]) -> T | None:
    """`run(container_id)`; None when the runtime refused before the command started (no such
    container, or not running) and a listing confirms it: the caller then looks, starts and
    runs. A container of that name that asbx did not make is never entered (ids differ).

    The confirmation matters: the refusal is read from stderr, which the command writes too.
    If the listing shows this very container running, the text was the command's own, so the
    error stands and the command is never run a second time."""
    try:
        return run(container_id)
    except (NotFoundError, ContainerNotRunningError):
        from asbx.runtime.cached import forget_listings, uncached

        forget_listings(runtime)  # the caller looks next: with what the runtime says now
        live = uncached(runtime).list_containers({LABEL_PROJECT: project,
                                                  LABEL_ADDRESS: str(address)})
        if any(c.id == container_id and c.state is ContainerState.RUNNING for c in live):
            raise
        return None
