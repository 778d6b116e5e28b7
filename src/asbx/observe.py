"""Observe a project's runtime objects by label: one listing call per kind, never per resource."""

from __future__ import annotations

from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from asbx.addresses import Address
from asbx.plan.observed import Observed, Orphan
from asbx.runtime.base import (
    LABEL_ADDRESS,
    LABEL_PROJECT,
    ObservedContainer,
    ObservedVolume,
    Runtime,
)

T = TypeVar("T", ObservedContainer, ObservedVolume)


def observe(
    runtime: Runtime, project: str, archives: Iterable[str] = (), *, images: bool = True
) -> Observed:
    """Containers, images and volumes of `project` (3 runtime calls) plus snapshot archives."""
    labels = {LABEL_PROJECT: project}
    # The three listings are independent: run them side by side (still one call per kind).
    with ThreadPoolExecutor(max_workers=3) as pool:
        listed_containers = pool.submit(runtime.list_containers, labels)
        listed_volumes = pool.submit(runtime.list_volumes, labels)
        listed_images = pool.submit(runtime.list_images) if images else None
        containers, bad_containers = _by_address(listed_containers.result(), "container")
        volumes, bad_volumes = _by_address(listed_volumes.result(), "volume")
        image_list = tuple(listed_images.result()) if listed_images else ()
    return Observed(
        containers=containers,
        images=image_list,
        volumes=volumes,
        archives=frozenset(archives),
        unlabelled=tuple(bad_containers + bad_volumes),
    )


def _by_address(objects: Iterable[T], kind: str) -> tuple[dict[Address, T], list[Orphan]]:
    found: dict[Address, T] = {}
    odd: list[Orphan] = []
    for obj in objects:
        label = obj.labels.get(LABEL_ADDRESS, "")
        try:
            address = Address.parse(label)
        except ValueError:
            odd.append(Orphan(kind, obj.name, label))
            continue
        if address in found:
            odd.append(Orphan(kind, obj.name, label))  # a duplicate: keep the first, report it
            continue
        found[address] = obj
    return found, odd
