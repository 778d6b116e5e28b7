"""DOT and Mermaid rendering of the resource graph, plain and coloured by a plan."""

from __future__ import annotations

import re

from asbx.addresses import Address, ResourceKind
from asbx.graph import build_graph
from asbx.render.graph import graph_view, render_dot, render_mermaid
from asbx.spec.model import Spec

SPEC = Spec.model_validate({
    "version": 1,
    "images": {"base": {"ref": "docker.io/library/python:3.12"}},
    "volumes": {"cache": {}},
    "sandboxes": {
        "builder": {"image": "base", "volumes": ["cache:/cache"]},
        "worker": {"image": "base", "workspace": {"snapshot": "deps"}},
    },
    "snapshots": {"deps": {"sandbox": "builder"}},
})
GRAPH = build_graph(SPEC)


def a(text: str) -> Address:
    return Address.parse(text)


def test_dot_lists_every_resource_and_edge_dependency_first() -> None:
    text = render_dot(graph_view(GRAPH))
    assert text.startswith("digraph asbx {\n")
    assert text.endswith("}\n")
    for node in ("image.base", "volume.cache", "sandbox.builder", "sandbox.worker",
                 "snapshot.deps"):
        assert f'"{node}" [label="{node}"' in text
    edges = re.findall(r'^  "(\S+)" -> "(\S+)";$', text, re.MULTILINE)
    assert set(edges) == {
        ("image.base", "sandbox.builder"),
        ("volume.cache", "sandbox.builder"),
        ("image.base", "sandbox.worker"),
        ("sandbox.builder", "snapshot.deps"),
        ("snapshot.deps", "sandbox.worker"),
    }
    assert 'shape="cylinder"' in text  # volumes look like storage
    assert "fillcolor=\"#" not in text.split("\n", 4)[4]  # nothing coloured without a plan


def test_dot_colours_planned_actions_and_dashes_planned_only_deletes() -> None:
    actions = {a("sandbox.builder"): "replace", a("snapshot.deps"): "create",
               a("image.base"): "noop", a("sandbox.old"): "delete"}
    view = graph_view(GRAPH, actions, {a("sandbox.old"): (a("image.base"),)})
    text = render_dot(view)
    assert '"sandbox.builder" [label="-/+ sandbox.builder"' in text
    assert 'label="+ snapshot.deps"' in text
    assert '"image.base" [label="image.base"' in text
    old = next(line for line in text.splitlines() if line.startswith('  "sandbox.old" ['))
    assert "dashed" in old
    assert "#f8d7da" in old
    assert '"image.base" -> "sandbox.old";' in text
    assert 'label="+ create   -/+ replace   - delete"' in text


def test_mermaid_uses_safe_ids_labels_and_classes() -> None:
    actions = {a("sandbox.worker"): "start", a("volume.cache"): "create"}
    text = render_mermaid(graph_view(GRAPH, actions))
    lines = text.splitlines()
    assert lines[0] == "flowchart LR"
    ids = dict(re.findall(r'^  (n\d+)\S*?"([^"]+)"', text, re.MULTILINE))
    assert set(ids.values()) >= {"image.base", "+ volume.cache", "> sandbox.worker"}
    by_label = {label.split(" ")[-1]: node for node, label in ids.items()}
    assert f"  {by_label['image.base']} --> {by_label['sandbox.builder']}" in lines
    assert f"  class {by_label['sandbox.worker']} act_start" in lines
    assert any(line.startswith("  classDef act_create fill:") for line in lines)


def test_mermaid_node_shapes_follow_the_kind() -> None:
    text = render_mermaid(graph_view(GRAPH))
    assert '[("volume.cache")]' in text
    assert '[["snapshot.deps"]]' in text
    assert '("sandbox.builder")' in text


def test_an_empty_spec_renders_an_empty_graph() -> None:
    empty = build_graph(Spec.model_validate({"version": 1}))
    assert render_dot(graph_view(empty)).count("->") == 0
    assert render_mermaid(graph_view(empty)) == "flowchart LR\n"


def test_implicit_images_appear_as_nodes() -> None:
    spec = Spec.model_validate({"version": 1, "sandboxes": {"web": {"image": "busybox:1.36"}}})
    view = graph_view(build_graph(spec))
    kinds = {node.kind for node in view.nodes}
    assert kinds == {ResourceKind.IMAGE, ResourceKind.SANDBOX}
    assert view.edges == ((a("image.busybox-1-36"), a("sandbox.web")),)
