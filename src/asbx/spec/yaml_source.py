"""Position-tracking YAML reading: data plus a source map; duplicate keys and bombs refused."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

from asbx.diagnostics import Diagnostics, SourcePos
from asbx.spec.yaml_errors import yaml_error

MAX_SPEC_BYTES = 1024 * 1024  # PyYAML reads ~1 MiB/s; real specs are a few KiB
MAX_NODES = 50_000  # ~1500 sandboxes of 30 values; a bomb stops after ~0.15 s of CPU
MAX_DEPTH = 64
MERGE_TAG = "tag:yaml.org,2002:merge"
COLLECTION_TAGS = frozenset({"tag:yaml.org,2002:map", "tag:yaml.org,2002:seq"})
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
        limit = MAX_SPEC_BYTES // (1024 * 1024)
        diags.add(f"file is {len(raw)} bytes; a spec may be at most {limit} MiB",
                  pos=SourcePos(file, 1, 1))
        raise YamlReadError(diags)
    if b"\x00" in raw:
        diags.add("file is binary (contains NUL bytes), not YAML",
                  pos=_byte_pos(raw, raw.index(b"\x00"), file))
        raise YamlReadError(diags)
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        diags.add(f"file is not valid UTF-8 text (byte 0x{raw[exc.start]:02x})",
                  pos=_byte_pos(raw, exc.start, file), hint="save the file as UTF-8")
        raise YamlReadError(diags) from None


def _byte_pos(raw: bytes, offset: int, file: str) -> SourcePos:
    line_start = raw.rfind(b"\n", 0, offset) + 1
    column = len(raw[line_start:offset].decode("utf-8", errors="replace")) + 1
    return SourcePos(file, raw.count(b"\n", 0, offset) + 1, column)


def load_yaml(text: str, file: str) -> tuple[Any, SourceMap]:
    """Parse one YAML document into plain data and a source map; raise YamlReadError."""
    fast = _compose_fast(text)
    if fast is not None:
        return _built(*fast, file)
    try:
        loader = yaml.SafeLoader(text)
    except yaml.reader.ReaderError as exc:  # raised for control characters before parsing
        raise YamlReadError(_reader_error(exc, text, file)) from None
    try:
        node = loader.get_single_node()
    except yaml.reader.ReaderError as exc:
        raise YamlReadError(_reader_error(exc, text, file)) from None
    except yaml.MarkedYAMLError as exc:
        raise YamlReadError(yaml_error(exc, text, file)) from None
    except (yaml.YAMLError, RecursionError) as exc:
        diags = Diagnostics()
        problem = "document is nested too deeply" if isinstance(exc, RecursionError) else exc
        diags.add(f"invalid YAML: {problem}", pos=SourcePos(file, 1, 1))
        raise YamlReadError(diags) from None
    finally:
        loader.dispose()
    return _built(loader, node, file)


def _compose_fast(text: str) -> tuple[yaml.SafeLoader, yaml.Node] | None:
    """The document's node graph from libyaml (10x faster on a large spec), or None when
    libyaml is missing or finds anything wrong: the pure-Python parser then reads the text
    again, and every diagnostic comes from it, as before."""
    fast = getattr(yaml, "CSafeLoader", None)
    if fast is None or yaml.reader.Reader.NON_PRINTABLE.search(text):
        return None
    try:
        loader = fast(text)
    except (yaml.YAMLError, RecursionError, ValueError):
        return None
    try:
        node = loader.get_single_node()
    except (yaml.YAMLError, RecursionError, ValueError):
        return None
    finally:
        loader.dispose()
    return (loader, node) if node is not None else None


def _built(loader: yaml.SafeLoader, node: yaml.Node | None, file: str) -> tuple[Any, SourceMap]:
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


def dotted(path: Path) -> str:
    """`("sandboxes", "web", "volumes", 0)` -> `sandboxes.web.volumes[0]`."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _pos(mark: yaml.Mark | None, file: str) -> SourcePos:
    if mark is None:
        return SourcePos(file, 1, 1)
    return SourcePos(file, mark.line + 1, mark.column + 1)


def _reader_error(exc: yaml.reader.ReaderError, text: str, file: str) -> Diagnostics:
    diags = Diagnostics()
    offset = min(max(exc.position, 0), len(text))
    line = text.count("\n", 0, offset) + 1
    column = offset - (text.rfind("\n", 0, offset) + 1) + 1
    char = exc.character if isinstance(exc.character, int) else 0
    diags.add(f"invalid YAML: control character U+{char:04X} is not allowed",
              pos=SourcePos(file, line, column),
              hint="remove it, or write it as an escape inside double quotes, e.g. \"\\x01\"")
    return diags


class _Builder:
    """Turns a composed node graph into data, recording positions and counting nodes."""

    def __init__(self, loader: yaml.SafeLoader, smap: SourceMap) -> None:
        self.loader = loader
        self.smap = smap
        self.diags = Diagnostics()
        self.visited = 0
        self.seen: set[int] = set()
        self.aliased = False
        self.too_big = False

    def build(self, node: yaml.Node, path: Path) -> Any:
        if not self._count(node):
            return None
        pos = _pos(node.start_mark, self.smap.file)
        self.smap.values.setdefault(path, pos)
        if isinstance(node, yaml.ScalarNode):
            return self._scalar(node, path)
        if len(path) > MAX_DEPTH:
            self.diags.add(f"values are nested more than {MAX_DEPTH} levels deep", pos=pos,
                           path=dotted(path[:1]), hint="is an alias (*name) used inside itself?"
                           if self.aliased else None)
            return None
        if node.tag not in COLLECTION_TAGS:
            tag = node.tag.replace("tag:yaml.org,2002:", "!!")
            self.diags.add(f'invalid value: unsupported YAML tag "{tag}"', pos=pos,
                           path=dotted(path))
            return None
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, path)
        return [self.build(child, (*path, i)) for i, child in enumerate(node.value)]

    def _count(self, node: yaml.Node) -> bool:
        """Count one more value read; False (and one diagnostic) once there are too many."""
        self.visited += 1
        if id(node) in self.seen:
            self.aliased = True  # an alias: the composer hands out the anchored node again
        self.seen.add(id(node))
        if self.visited > MAX_NODES:
            self._refuse(node)
            return False
        return True

    def _refuse(self, node: yaml.Node) -> None:
        if self.too_big:
            return
        self.too_big = True
        what = (f"document expands to more than {MAX_NODES} values through aliases (a YAML bomb?)"
                if self.aliased else f"document has more than {MAX_NODES} values")
        self.diags.add(f"{what}; refusing to read it", pos=_pos(node.start_mark, self.smap.file),
                       hint="a spec this large is not supported" if not self.aliased
                       else "use fewer nested aliases (*name)")

    def _scalar(self, node: yaml.Node, path: Path) -> Any:
        try:
            return self.loader.construct_object(node, deep=True)
        except yaml.constructor.ConstructorError as exc:
            problem = exc.problem or "cannot read this value"
            if problem.startswith("could not determine a constructor"):
                tag = node.tag.replace("tag:yaml.org,2002:", "!!")
                problem = f'unsupported YAML tag "{tag}"'
            self.diags.add(f"invalid value: {problem}", pos=_pos(node.start_mark, self.smap.file),
                           path=dotted(path))
        except (ValueError, OverflowError) as exc:  # a huge integer, a date like 2001-02-30
            problem = "number has too many digits" if "digits" in str(exc) else str(exc)
            self.diags.add(f"invalid value: {problem}", pos=_pos(node.start_mark, self.smap.file),
                           path=dotted(path))
        return None

    def _mapping(self, node: yaml.MappingNode, path: Path) -> dict[Any, Any]:
        result: dict[Any, Any] = {}
        explicit: set[Any] = set()
        merges: list[yaml.Node] = []
        for key_node, value_node in node.value:
            if key_node.tag == MERGE_TAG:
                merges.append(value_node)
                continue
            key_pos = _pos(key_node.start_mark, self.smap.file)
            key = self._key(key_node, path, key_pos)
            if key is None:
                continue
            if key in explicit:
                first = self.smap.keys.get((*path, key))
                where = f" (first defined at line {first.line})" if first else ""
                self.diags.add(f'duplicate key "{key}"{where}', pos=key_pos, path=dotted(path),
                               hint="YAML keeps only one of them; remove or merge the other")
                continue
            explicit.add(key)
            self.smap.keys.setdefault((*path, key), key_pos)
            result[key] = self.build(value_node, (*path, key))
        for merge in merges:
            self._merge_into(result, merge, path)
        return result

    def _key(self, node: yaml.Node, path: Path, pos: SourcePos) -> str | None:
        key = self._scalar(node, path) if isinstance(node, yaml.ScalarNode) else None
        if isinstance(key, str):
            return key
        if isinstance(key, int | float) and not isinstance(key, bool):
            return str(key)
        self.diags.add("mapping keys must be plain strings", pos=pos, path=dotted(path))
        return None

    def _merge_into(self, result: dict[Any, Any], merge: yaml.Node, path: Path) -> None:
        sources = merge.value if isinstance(merge, yaml.SequenceNode) else [merge]
        for source in sources:
            if not self._count(source):
                return
            if not isinstance(source, yaml.MappingNode):
                self.diags.add(
                    "a merge key (<<) needs a mapping or a list of mappings",
                    pos=_pos(source.start_mark, self.smap.file), path=dotted(path),
                )
                continue
            merged = self._mapping(source, path)
            for key, value in merged.items():
                result.setdefault(key, value)
