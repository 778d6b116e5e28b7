"""The resource graph: addresses, implicit images, dependency edges, stable order, cycles."""

from __future__ import annotations

import hashlib
import heapq
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cached_property

from asbx import addresses as addr
from asbx.addresses import Address, ResourceKind
from asbx.spec.model import ImageSpec, SandboxSpec, SnapshotSpec, Spec, VolumeSpec

ResourceSpec = ImageSpec | VolumeSpec | SnapshotSpec | SandboxSpec


@dataclass(frozen=True)
class ResourceGraph:
    """Every resource of a spec with its dependencies; built once, read by plan, apply and graph."""

    resources: Mapping[Address, ResourceSpec]
    deps: Mapping[Address, frozenset[Address]]
    implicit_images: frozenset[Address] = frozenset()

    def dependencies(self, address: Address) -> frozenset[Address]:
        return self.deps.get(address, frozenset())

    def dependents(self, address: Address) -> list[Address]:
        return list(self._dependents.get(address, ()))

    def order(self) -> list[Address]:
        """A stable topological order: dependencies first, then kind and declaration order."""
        return list(self._order)

    @cached_property
    def _order(self) -> tuple[Address, ...]:  # the graph is immutable: sorted once
        return tuple(stable_topological_order(list(self.resources), self.deps))

    @cached_property
    def _dependents(self) -> dict[Address, tuple[Address, ...]]:
        users: dict[Address, list[Address]] = {}
        for address, deps in self.deps.items():
            for dep in deps:
                users.setdefault(dep, []).append(address)
        return {dep: tuple(found) for dep, found in users.items()}

    def image_of(self, sandbox: str) -> Address:
        """The image resource a sandbox runs."""
        for dep in self.deps.get(addr.sandbox(sandbox), ()):
            if dep.kind is ResourceKind.IMAGE:
                return dep
        raise KeyError(sandbox)

    def closure(self, roots: Iterable[Address]) -> set[Address]:
        """`roots` plus everything they depend on, transitively (for --target)."""
        seen: set[Address] = set()
        stack = list(roots)
        while stack:
            current = stack.pop()
            if current not in seen:
                seen.add(current)
                stack.extend(self.deps.get(current, ()))
        return seen


class CycleError(ValueError):
    """The dependency edges form a cycle; `cycle` lists it, first node repeated at the end."""

    def __init__(self, cycle: list[Address]) -> None:
        self.cycle = cycle
        super().__init__("dependency cycle: " + " -> ".join(str(a) for a in cycle))


def implicit_image_name(ref: str, taken: Iterable[str]) -> str:
    """A resource name for a plain image reference (`python:3.12` -> `python-3-12`)."""
    tail = ref.split("@")[0].rsplit("/", 1)[-1]
    name = re.sub(r"[^a-z0-9_-]+", "-", tail.lower()).strip("-_")[:50] or "image"
    if name in set(taken):
        name = f"{name}-{hashlib.sha256(ref.encode()).hexdigest()[:8]}"
    return name


def build_graph(
    spec: Spec, image_bases: Mapping[str, Iterable[str]] | None = None
) -> ResourceGraph:
    """The graph of `spec`; `image_bases` maps an images key to the FROM refs of its Dockerfile."""
    resources: dict[Address, ResourceSpec] = {}
    deps: dict[Address, set[Address]] = {}
    for name, image in spec.images.items():
        resources[addr.image(name)] = image
        deps[addr.image(name)] = {
            addr.image(base) for base in (image_bases or {}).get(name, ()) if base in spec.images
            and base != name
        }
    implicit = _add_implicit_images(spec, resources, deps)
    for name, volume in spec.volumes.items():
        resources[addr.volume(name)] = volume
        deps[addr.volume(name)] = set()
    for name, box in spec.sandboxes.items():
        resources[addr.sandbox(name)] = box
        deps[addr.sandbox(name)] = _sandbox_deps(spec, name, box, implicit)
    for name, snap in spec.snapshots.items():
        resources[addr.snapshot(name)] = snap
        source = snap.sandbox if snap.sandbox in spec.sandboxes else None
        deps[addr.snapshot(name)] = {addr.sandbox(source)} if source is not None else set()
    frozen = {a: frozenset(d & resources.keys()) for a, d in deps.items()}
    return ResourceGraph(resources, frozen, frozenset(implicit.values()))


def _add_implicit_images(
    spec: Spec, resources: dict[Address, ResourceSpec], deps: dict[Address, set[Address]]
) -> dict[str, Address]:
    implicit: dict[str, Address] = {}
    for box in spec.sandboxes.values():
        if box.image in spec.images or box.image in implicit:
            continue
        taken = [a.name for a in resources if a.kind is ResourceKind.IMAGE]
        address = addr.image(implicit_image_name(box.image, taken))
        implicit[box.image] = address
        resources[address] = ImageSpec(ref=box.image)
        deps[address] = set()
    return implicit


def _sandbox_deps(
    spec: Spec, name: str, box: SandboxSpec, implicit: Mapping[str, Address]
) -> set[Address]:
    found = {addr.image(box.image) if box.image in spec.images else implicit[box.image]}
    found |= {addr.volume(m.source) for m in box.volumes if m.type == "volume"}
    found |= {addr.sandbox(d) for d in box.depends_on if d != name}
    if box.workspace and box.workspace.snapshot:
        found.add(addr.snapshot(box.workspace.snapshot))
    return found


_KIND_RANK = {ResourceKind.IMAGE: 0, ResourceKind.VOLUME: 1, ResourceKind.SANDBOX: 2,
              ResourceKind.SNAPSHOT: 3}


def stable_topological_order(
    nodes: list[Address], deps: Mapping[Address, Iterable[Address]]
) -> list[Address]:
    """Kahn's algorithm, taking ready nodes by (kind, declaration order); raises CycleError."""
    position = {node: index for index, node in enumerate(nodes)}
    remaining = {n: {d for d in deps.get(n, ()) if d in position} for n in nodes}
    order: list[Address] = []

    def rank(node: Address) -> tuple[int, int]:
        return (_KIND_RANK[node.kind], position[node])

    ready = [(rank(n), n) for n, d in remaining.items() if not d]
    heapq.heapify(ready)
    users: dict[Address, list[Address]] = {n: [] for n in nodes}
    for node, ds in remaining.items():
        for dep in ds:
            users[dep].append(node)
    while ready:
        _, node = heapq.heappop(ready)
        order.append(node)
        for user in users[node]:
            remaining[user].discard(node)
            if not remaining[user]:
                heapq.heappush(ready, (rank(user), user))
    if len(order) < len(nodes):
        raise CycleError(find_cycle({n: d for n, d in remaining.items() if d}))
    return order


def find_cycle(deps: Mapping[Address, Iterable[Address]]) -> list[Address]:
    """One cycle among `deps` (each node's unfinished dependencies), first node repeated last."""
    for start in sorted(deps):
        path: list[Address] = [start]
        index = {start: 0}
        current = start
        while True:
            nexts = sorted(d for d in deps.get(current, ()) if d in deps)
            if not nexts:
                break
            current = nexts[0]
            if current in index:
                return [*path[index[current]:], current]
            index[current] = len(path)
            path.append(current)
    return []
