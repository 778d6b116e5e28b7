"""The resource graph: implicit images, the edges of design §2, stable order, cycle reports."""

from __future__ import annotations

from typing import Any

import pytest

from asbx import addresses as addr
from asbx.graph import CycleError, build_graph, find_cycle, implicit_image_name
from asbx.spec.model import ImageSpec, Spec


def _spec(**sections: Any) -> Spec:
    return Spec.model_validate({"version": 1, **sections})


def _names(addresses: Any) -> list[str]:
    return [str(a) for a in addresses]


def test_a_plain_reference_gets_one_implicit_image_per_distinct_ref() -> None:
    spec = _spec(sandboxes={
        "a": {"image": "docker.io/library/python:3.12-slim"},
        "b": {"image": "docker.io/library/python:3.12-slim"},
        "c": {"image": "busybox"},
    })
    graph = build_graph(spec)
    python, busybox = addr.image("python-3-12-slim"), addr.image("busybox")
    assert graph.implicit_images == {python, busybox}
    assert graph.resources[python] == ImageSpec(ref="docker.io/library/python:3.12-slim")
    assert graph.image_of("a") == graph.image_of("b") == python
    assert graph.image_of("c") == busybox


def test_implicit_image_names_never_collide() -> None:
    spec = _spec(
        images={"python-3-12": {"ref": "ghcr.io/acme/python:3.12"}},
        sandboxes={"a": {"image": "python:3.12"}, "b": {"image": "quay.io/x/python:3.12"}},
    )
    graph = build_graph(spec)
    image_names = [a.name for a in graph.resources if a.kind is addr.ResourceKind.IMAGE]
    assert len(image_names) == len(set(image_names)) == 3
    assert image_names[0] == "python-3-12"
    assert all(name.startswith("python-3-12-") for name in image_names[1:])


@pytest.mark.parametrize(
    ("ref", "name"),
    [("python:3.12", "python-3-12"), ("docker.io/library/busybox", "busybox"),
     ("ghcr.io/a/b@sha256:" + "0" * 64, "b"), ("UPPER:Tag", "upper-tag"), (":::", "image")],
)
def test_implicit_image_name(ref: str, name: str) -> None:
    assert implicit_image_name(ref, []) == name


def test_edges_follow_design_section_2() -> None:
    spec = _spec(
        images={"base": {"ref": "busybox"}, "agent": {"build": {"inline": "FROM base"}}},
        volumes={"cache": {}},
        snapshots={"deps": {"sandbox": "builder"}},
        sandboxes={
            "builder": {"image": "agent", "volumes": ["cache:/cache"]},
            "worker": {"image": "base", "workspace": {"snapshot": "deps"},
                       "depends_on": ["builder"]},
        },
    )
    graph = build_graph(spec, {"agent": ["base"]})
    deps = {str(a): sorted(_names(d)) for a, d in graph.deps.items()}
    assert deps == {
        "image.base": [],
        "image.agent": ["image.base"],                                 # image -> image (FROM)
        "volume.cache": [],
        "sandbox.builder": ["image.agent", "volume.cache"],            # image, volume -> sandbox
        "sandbox.worker": ["image.base", "sandbox.builder", "snapshot.deps"],  # restore, depends_on
        "snapshot.deps": ["sandbox.builder"],                          # sandbox -> snapshot
    }
    assert _names(graph.dependents(addr.sandbox("builder"))) == ["sandbox.worker", "snapshot.deps"]
    assert _names(sorted(graph.closure([addr.sandbox("worker")]))) == [
        "image.agent", "image.base", "sandbox.builder", "sandbox.worker", "snapshot.deps",
        "volume.cache",
    ]


def test_from_references_to_unknown_or_own_images_make_no_edges() -> None:
    spec = _spec(images={"a": {"build": {"inline": "FROM a"}}})
    graph = build_graph(spec, {"a": ["a", "python:3.12", "scratch"]})
    assert graph.dependencies(addr.image("a")) == frozenset()


def test_order_is_topological_then_kind_then_declaration() -> None:
    spec = _spec(
        images={"zeta": {"ref": "busybox"}, "alpha": {"ref": "busybox"}},
        volumes={"v2": {}, "v1": {}},
        snapshots={"snap": {"sandbox": "first"}},
        sandboxes={
            "second": {"image": "zeta", "workspace": {"snapshot": "snap"}},
            "first": {"image": "alpha"},
            "third": {"image": "zeta", "volumes": ["v1:/v"]},
        },
    )
    expected = [
        "image.zeta", "image.alpha", "volume.v2", "volume.v1",
        "sandbox.first", "sandbox.third", "snapshot.snap", "sandbox.second",
    ]
    graph = build_graph(spec)
    assert _names(graph.order()) == expected
    assert _names(build_graph(spec).order()) == expected  # stable across builds


def test_every_resource_comes_after_its_dependencies() -> None:
    spec = _spec(
        images={"b": {"build": {"inline": "FROM a"}}, "a": {"ref": "busybox"}},
        snapshots={"s": {"sandbox": "x"}},
        sandboxes={"y": {"image": "b", "workspace": {"snapshot": "s"}, "depends_on": ["x"]},
                   "x": {"image": "a"}},
    )
    graph = build_graph(spec, {"b": ["a"]})
    order = graph.order()
    for node in order:
        assert all(order.index(dep) < order.index(node) for dep in graph.dependencies(node))


@pytest.mark.parametrize(
    ("sections", "bases", "cycle"),
    [
        ({"snapshots": {"s": {"sandbox": "a"}},
          "sandboxes": {"a": {"image": "busybox", "workspace": {"snapshot": "s"}}}},
         {}, "sandbox.a -> snapshot.s -> sandbox.a"),
        ({"sandboxes": {"a": {"image": "busybox", "depends_on": ["b"]},
                        "b": {"image": "busybox", "depends_on": ["c"]},
                        "c": {"image": "busybox", "depends_on": ["a"]}}},
         {}, "sandbox.a -> sandbox.b -> sandbox.c -> sandbox.a"),
        ({"images": {"x": {"build": {"inline": "FROM y"}}, "y": {"build": {"inline": "FROM x"}}}},
         {"x": ["y"], "y": ["x"]}, "image.x -> image.y -> image.x"),
    ],
)
def test_cycles_are_reported_with_the_full_path(
    sections: dict[str, Any], bases: dict[str, list[str]], cycle: str
) -> None:
    graph = build_graph(_spec(**sections), bases)
    with pytest.raises(CycleError) as caught:
        graph.order()
    assert " -> ".join(str(a) for a in caught.value.cycle) == cycle
    assert str(caught.value) == f"dependency cycle: {cycle}"


def test_a_cycle_downstream_of_healthy_nodes_names_only_the_cycle() -> None:
    a, b, c, d = (addr.sandbox(n) for n in "abcd")
    assert find_cycle({b: [a, c], c: [d], d: [c]}) == [c, d, c]
