"""Position-tracking YAML reading: data plus a source map, duplicate keys and alias bombs refused."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

from asbx.diagnostics import Diagnostics, SourcePos

MAX_SPEC_BYTES = 4 * 1024 * 1024
MAX_NODES = 100_000
MERGE_TAG = "tag:yaml.org,2002:merge"
Path = tuple[str | int, ...]


@dataclass
class SourceMap:
    """Where each value (and each mapping key) of a document starts in its file."""

    file: str
    values: dict[Path, SourcePos] = field(default_factory=dict)
    keys: dict[Path, SourcePos] = field(default_factory=dict)

    def value_pos(self, path: Path) -> SourcePos | None:
        """The position of the value at `path`, or of the nearest ancestor that has one."""
        for cut in range(len(path), -1, -1):
            pos = self.values.get(path[:cut])
            if pos is not None:
                return pos
        return None

    def key_pos(self, path: Path) -> SourcePos | None:
        """The position of the key naming `path` (falls back to its value)."""
        return self.keys.get(path) or self.value_pos(path)


class YamlReadError(Exception):
    """The text is not a readable YAML mapping; carries positioned diagnostics."""

    def __init__(self, diagnostics: Diagnostics) -> None:
        super().__init__("unreadable YAML")
        self.diagnostics = diagnostics


def decode_text(raw: bytes, file: str) -> str:
    """Decode spec bytes, refusing oversized and binary input with a clear message."""
    diags = Diagnostics()
    if len(raw) > MAX_SPEC_BYTES:
        diags.add(
            f"file is {len(raw)} bytes; a spec may be at most {MAX_SPEC_BYTES // (1024 * 1024)} MiB",
            pos=SourcePos(file, 1, 1),
        )
        raise YamlReadError(diags)
    if b"\x00" in raw:
        diags.add("file is binary (contains NUL bytes), not YAML", pos=SourcePos(file, 1, 1))
        raise YamlReadError(diags)
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        diags.add("file is not valid UTF-8 text", pos=SourcePos(file, line, 1))
        raise YamlReadError(diags) from None


def load_yaml(text: str, file: str) -> tuple[Any, SourceMap]:
    """Parse one YAML document into plain data and a source map; raise YamlReadError."""
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        raise YamlReadError(_yaml_error(exc, file)) from None
    except yaml.YAMLError as exc:
        diags = Diagnostics()
        diags.add(f"invalid YAML: {exc}", pos=SourcePos(file, 1, 1))
        raise YamlReadError(diags) from None
    finally:
        loader.dispose()
    smap = SourceMap(file)
    if node is None:
        diags = Diagnostics()
        diags.add("file is empty; a spec needs at least `version: 1`", pos=SourcePos(file, 1, 1))
        raise YamlReadError(diags)
    builder = _Builder(loader, smap)
    data = builder.build(node, ())
    if builder.diags.has_errors():
        raise YamlReadError(builder.diags)
    return data, smap


def _pos(mark: yaml.Mark | None, file: str) -> SourcePos:
    if mark is None:
        return SourcePos(file, 1, 1)
    return SourcePos(file, mark.line + 1, mark.column + 1)


def _yaml_error(exc: yaml.MarkedYAMLError, file: str) -> Diagnostics:
    diags = Diagnostics()
    mark = exc.problem_mark or exc.context_mark
    problem = exc.problem or "syntax error"
    context = f" ({exc.context})" if exc.context else ""
    diags.add(f"invalid YAML: {problem}{context}", pos=_pos(mark, file))
    return diags


class _Builder:
    """Turns a composed node graph into data, recording positions and counting nodes."""

    def __init__(self, loader: yaml.SafeLoader, smap: SourceMap) -> None:
        self.loader = loader
        self.smap = smap
        self.diags = Diagnostics()
        self.visited = 0

    def build(self, node: yaml.Node, path: Path) -> Any:
        self.visited += 1
        if self.visited > MAX_NODES:
            if not self.diags.has_errors():
                self.diags.add(
                    f"document expands to more than {MAX_NODES} values (alias expansion); "
                    "refusing to read it",
                    pos=_pos(node.start_mark, self.smap.file),
                )
            return None
        self.smap.values.setdefault(path, _pos(node.start_mark, self.smap.file))
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, path)
        if isinstance(node, yaml.SequenceNode):
            return [self.build(child, (*path, i)) for i, child in enumerate(node.value)]
        return self._scalar(node)

    def _scalar(self, node: yaml.Node) -> Any:
        try:
            return self.loader.construct_object(node, deep=True)
        except yaml.constructor.ConstructorError as exc:
            self.diags.add(
                f"invalid value: {exc.problem}", pos=_pos(node.start_mark, self.smap.file)
            )
            return None

    def _mapping(self, node: yaml.MappingNode, path: Path) -> dict[Any, Any]:
        result: dict[Any, Any] = {}
        explicit: set[Any] = set()
        merges: list[yaml.Node] = []
        for key_node, value_node in node.value:
            if key_node.tag == MERGE_TAG:
                merges.append(value_node)
                continue
            key = self._scalar(key_node) if isinstance(key_node, yaml.ScalarNode) else None
            key_pos = _pos(key_node.start_mark, self.smap.file)
            if not isinstance(key, str | int | float | bool) or key is None:
                self.diags.add("mapping keys must be plain strings", pos=key_pos)
                continue
            key = str(key) if not isinstance(key, str) else key
            if key in explicit:
                first = self.smap.keys.get((*path, key))
                where = f" (first defined at line {first.line})" if first else ""
                self.diags.add(f'duplicate key "{key}"{where}', pos=key_pos)
                continue
            explicit.add(key)
            self.smap.keys.setdefault((*path, key), key_pos)
            result[key] = self.build(value_node, (*path, key))
        for merge in merges:
            self._merge_into(result, merge, path)
        return result

    def _merge_into(self, result: dict[Any, Any], merge: yaml.Node, path: Path) -> None:
        sources = merge.value if isinstance(merge, yaml.SequenceNode) else [merge]
        for source in sources:
            if not isinstance(source, yaml.MappingNode):
                self.diags.add(
                    "a merge key (<<) needs a mapping or a list of mappings",
                    pos=_pos(source.start_mark, self.smap.file),
                )
                continue
            merged = self._mapping(source, path)
            for key, value in merged.items():
                result.setdefault(key, value)
