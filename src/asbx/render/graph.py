"""The resource graph as Graphviz DOT or Mermaid text, optionally coloured by planned action."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from asbx.addresses import Address, ResourceKind
from asbx.graph import ResourceGraph, stable_topological_order

# action value (plan model) -> (fill colour, border colour); "noop" stays plain
ACTION_COLORS: Mapping[str, tuple[str, str]] = {
    "create": ("#d9f2d9", "#2e8b2e"),
    "update": ("#fff2cc", "#b8860b"),
    "start": ("#d6f0f5", "#1f7a8c"),
    "replace": ("#ffe0b3", "#cc6600"),
    "delete": ("#f8d7da", "#b22222"),
}
ACTION_SYMBOLS: Mapping[str, str] = {
    "create": "+",
    "update": "~",
    "start": ">",
    "replace": "-/+",
    "delete": "-",
}
_DOT_SHAPES = {
    ResourceKind.IMAGE: "box3d",
    ResourceKind.VOLUME: "cylinder",
    ResourceKind.SANDBOX: "box",
    ResourceKind.SNAPSHOT: "note",
}
# Mermaid node shapes: (open, close)
_MERMAID_SHAPES = {
    ResourceKind.IMAGE: ("[/", "/]"),
    ResourceKind.VOLUME: ("[(", ")]"),
    ResourceKind.SANDBOX: ("(", ")"),
    ResourceKind.SNAPSHOT: ("[[", "]]"),
}


@dataclass(frozen=True)
class GraphView:
    """Nodes in a stable order, edges (dependency -> dependent) and each node's planned action.

    `extra` holds addresses that are only in the plan (deletes of resources the spec dropped).
    """

    nodes: tuple[Address, ...]
    edges: tuple[tuple[Address, Address], ...]
    actions: Mapping[Address, str] = field(default_factory=dict)
    extra: frozenset[Address] = frozenset()


def graph_view(
    graph: ResourceGraph,
    actions: Mapping[Address, str] | None = None,
    extra_deps: Mapping[Address, Iterable[Address]] | None = None,
) -> GraphView:
    """Build the view; `extra_deps` adds planned-only nodes (e.g. deletes) with their edges."""
    deps: dict[Address, set[Address]] = {a: set(graph.dependencies(a)) for a in graph.resources}
    extra = frozenset((extra_deps or {}).keys()) - deps.keys()
    for address in extra:
        deps[address] = set((extra_deps or {})[address])
    nodes = list(graph.resources) + sorted(extra)
    for dependencies in list(deps.values()):
        nodes += sorted(d for d in dependencies if d not in deps)
    nodes = list(dict.fromkeys(nodes))
    ordered = stable_topological_order(nodes, {a: deps.get(a, set()) for a in nodes})
    edges = tuple((d, a) for a in ordered for d in sorted(deps.get(a, ())))
    return GraphView(tuple(ordered), edges, dict(actions or {}), extra)


def render_dot(view: GraphView) -> str:
    """Graphviz DOT: `dot -Tsvg` draws it. Planned actions colour the nodes and prefix labels."""
    lines = [
        "digraph asbx {",
        "  rankdir=LR;",
        '  node [fontname="Helvetica", fontsize=11, style="rounded,filled", fillcolor="white"];',
        '  edge [color="#666666"];',
    ]
    for address in view.nodes:
        lines.append(f"  {_dot_id(address)} [{_dot_attrs(view, address)}];")
    for source, target in view.edges:
        lines.append(f"  {_dot_id(source)} -> {_dot_id(target)};")
    if view.actions:
        lines.append(_dot_legend(view))
    lines.append("}")
    return "\n".join(lines) + "\n"


def _dot_id(address: Address) -> str:
    return '"' + str(address).replace("\\", "\\\\").replace('"', '\\"') + '"'


def _dot_attrs(view: GraphView, address: Address) -> str:
    attrs = {"label": _label(view, address), "shape": _DOT_SHAPES[address.kind]}
    style = "filled" if address.kind is not ResourceKind.SANDBOX else "rounded,filled"
    colors = ACTION_COLORS.get(view.actions.get(address, ""))
    if colors is not None:
        attrs["fillcolor"], attrs["color"] = colors
    if address in view.extra:
        style += ",dashed"
    attrs["style"] = style
    return ", ".join(f'{key}="{_escape(value)}"' for key, value in attrs.items())


def _dot_legend(view: GraphView) -> str:
    used = [a for a in ACTION_COLORS if a in set(view.actions.values())]
    if not used:
        return '  label="no changes planned"; labelloc="b";'
    text = "   ".join(f"{ACTION_SYMBOLS[a]} {a}" for a in used)
    return f'  label="{_escape(text)}"; labelloc="b";'


def render_mermaid(view: GraphView) -> str:
    """A Mermaid flowchart (renders in GitHub/GitLab Markdown inside a ```mermaid block)."""
    ids = {address: f"n{index}" for index, address in enumerate(view.nodes)}
    lines = ["flowchart LR"]
    for address in view.nodes:
        open_, close = _MERMAID_SHAPES[address.kind]
        label = _label(view, address).replace('"', "#quot;")
        lines.append(f'  {ids[address]}{open_}"{label}"{close}')
    for source, target in view.edges:
        lines.append(f"  {ids[source]} --> {ids[target]}")
    used = sorted({a for a in view.actions.values() if a in ACTION_COLORS})
    for action in used:
        fill, stroke = ACTION_COLORS[action]
        lines.append(f"  classDef act_{action} fill:{fill},stroke:{stroke},stroke-width:2px")
        members = [ids[a] for a in view.nodes if view.actions.get(a) == action]
        lines.append(f"  class {','.join(members)} act_{action}")
    extra = [ids[a] for a in view.nodes if a in view.extra]
    if extra:
        lines.append("  classDef planned_only stroke-dasharray:4 3")
        lines.append(f"  class {','.join(extra)} planned_only")
    return "\n".join(lines) + "\n"


def _label(view: GraphView, address: Address) -> str:
    symbol = ACTION_SYMBOLS.get(view.actions.get(address, ""))
    return f"{symbol} {address}" if symbol else str(address)


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')
