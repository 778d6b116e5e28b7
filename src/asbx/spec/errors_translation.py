"""Turn pydantic validation errors into positioned diagnostics in the user's terms."""

from __future__ import annotations

import types
import typing
from typing import Any

from pydantic import BaseModel
from pydantic_core import ErrorDetails

from asbx.diagnostics import Diagnostic, did_you_mean
from asbx.spec.model import Spec
from asbx.spec.yaml_source import SourceMap

Loc = tuple[str | int, ...]

_TYPE_NAMES = {dict: "a mapping", list: "a list", str: "a string", int: "a number",
               float: "a number", bool: "true/false", type(None): "nothing (null)"}
_EXPECTED = {
    "dict_type": "a mapping", "model_type": "a mapping", "model_attributes_type": "a mapping",
    "list_type": "a list", "tuple_type": "a list", "string_type": "a string",
    "int_type": "a whole number", "int_parsing": "a whole number", "int_from_float": "a whole number",
    "float_type": "a number", "float_parsing": "a number", "bool_type": "true or false",
    "bool_parsing": "true or false",
}


def type_name(value: Any) -> str:
    return _TYPE_NAMES.get(type(value), type(value).__name__)


def dotted(loc: Loc) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def diagnostic_for(error: ErrorDetails, data: Any, smap: SourceMap) -> Diagnostic:
    """One pydantic error as a Diagnostic with a file position, a dotted path and a hint."""
    raw_loc = tuple(error["loc"])
    kind = error["type"]
    is_key = "[key]" in raw_loc
    loc = _existing_prefix(tuple(p for p in raw_loc if p != "[key]"), data)
    if kind == "extra_forbidden":
        key = str(raw_loc[-1])
        choices = _allowed_keys(raw_loc[:-1])
        return Diagnostic(f'unknown key "{key}"', smap.key_pos(raw_loc), dotted(raw_loc[:-1]),
                          hint=did_you_mean(key, choices) or _list_hint(choices))
    if kind == "missing":
        return Diagnostic(f'missing required key "{raw_loc[-1]}"',
                          smap.key_pos(raw_loc[:-1]) if raw_loc[:-1] else smap.value_pos(()),
                          dotted(raw_loc[:-1]) or "(top level)")
    message = _message(error, kind)
    pos = smap.key_pos(loc) if is_key else smap.value_pos(loc)
    return Diagnostic(message, pos, dotted(loc))


def _message(error: ErrorDetails, kind: str) -> str:
    if kind in _EXPECTED:
        return f"expected {_EXPECTED[kind]}, got {type_name(error['input'])}"
    if kind == "value_error":
        return str(error["msg"]).removeprefix("Value error, ")
    if kind == "literal_error" and error["loc"] == ("version",):
        return f"unsupported version {error['input']!r} (this asbx reads version: 1)"
    if kind == "literal_error":
        return f"{error['input']!r} is not one of {error.get('ctx', {}).get('expected', '')}"
    if kind in ("greater_than", "less_than_equal", "greater_than_equal", "less_than"):
        return f"{error['input']!r} is out of range ({error['msg'].lower()})"
    return str(error["msg"])


def _list_hint(choices: list[str]) -> str | None:
    return f"allowed keys: {', '.join(choices)}" if choices else None


def _existing_prefix(loc: Loc, data: Any) -> Loc:
    """The longest prefix of `loc` that exists in the raw data (coerced forms add parts)."""
    node = data
    for index, part in enumerate(loc):
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            node = node[part]
        else:
            return loc[:index]
    return loc


def _allowed_keys(loc: Loc) -> list[str]:
    """The keys the model accepts at `loc` (for did-you-mean), found by walking the annotations."""
    current: Any = Spec
    for part in loc:
        current = _step(current, part)
        if current is None:
            return []
    model = _unwrap_model(current)
    if model is None:
        return []
    return sorted(f.alias or name for name, f in model.model_fields.items())


def _step(annotation: Any, part: str | int) -> Any:
    model = _unwrap_model(annotation)
    if model is not None and isinstance(part, str):
        for name, info in model.model_fields.items():
            if (info.alias or name) == part:
                return info.annotation
        return None
    inner = _strip(annotation)
    origin = typing.get_origin(inner)
    args = typing.get_args(inner)
    if origin is dict and args:
        return args[1]
    if origin in (list, tuple) and args:
        return args[0]
    return None


def _strip(annotation: Any) -> Any:
    while typing.get_origin(annotation) is typing.Annotated:
        annotation = typing.get_args(annotation)[0]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(options) == 1:
            return _strip(options[0])
    return annotation


def _unwrap_model(annotation: Any) -> type[BaseModel] | None:
    inner = _strip(annotation)
    if isinstance(inner, type) and issubclass(inner, BaseModel):
        return inner
    return None
