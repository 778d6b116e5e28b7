"""Turn pydantic validation errors into positioned diagnostics in the user's terms."""

from __future__ import annotations

import datetime
import types
import typing
from typing import Any

from pydantic import BaseModel
from pydantic_core import ErrorDetails

from asbx.diagnostics import Diagnostic, did_you_mean
from asbx.spec.model import Spec
from asbx.spec.values import LocatedValueError
from asbx.spec.yaml_source import SourceMap, dotted

Loc = tuple[str | int, ...]

_TYPE_NAMES = {dict: "a mapping", list: "a list", str: "a string", int: "a number",
               float: "a number", bool: "true/false", type(None): "nothing (null)",
               datetime.date: "a date", datetime.datetime: "a date and time", bytes: "binary data"}
_EXPECTED = {
    "dict_type": "a mapping", "model_type": "a mapping", "model_attributes_type": "a mapping",
    "list_type": "a list", "tuple_type": "a list", "string_type": "a string",
    "int_type": "a whole number", "int_parsing": "a whole number",
    "int_from_float": "a whole number", "float_type": "a number", "float_parsing": "a number",
    "bool_type": "true or false", "bool_parsing": "true or false",
}
_MISSING_HINTS: dict[Loc, str] = {
    ("version",): "add `version: 1` as the first line",
    ("sandboxes", "*", "image"): "an images: key or a reference, e.g. docker.io/library/busybox",
    ("snapshots", "*", "sandbox"): "name the sandbox whose /workspace the snapshot captures",
}


__all__ = ["diagnostic_for", "dotted", "type_name"]


def type_name(value: Any) -> str:
    """A plain-English name for the YAML type of `value` ("a mapping", "a list", ...)."""
    return _TYPE_NAMES.get(type(value), type(value).__name__)


def diagnostic_for(error: ErrorDetails, data: Any, smap: SourceMap) -> Diagnostic:
    """One pydantic error as a Diagnostic with a file position, a dotted path and a hint."""
    raw_loc = tuple(error["loc"])
    kind = error["type"]
    if kind == "extra_forbidden":
        return _unknown_key(raw_loc, smap)
    if kind == "missing":
        return _missing_key(raw_loc, smap)
    is_key = "[key]" in raw_loc
    loc = _existing_prefix(tuple(p for p in raw_loc if p != "[key]"), data)
    cause = (error.get("ctx") or {}).get("error")
    if isinstance(cause, LocatedValueError):
        return _located(cause, loc, smap, is_key=is_key)
    if is_key:  # a bad mapping key: point at it, name the mapping that holds it
        return Diagnostic(_message(error, kind), smap.key_pos(loc), dotted(loc[:-1]))
    return Diagnostic(_message(error, kind), smap.value_pos(loc), dotted(loc))


def _unknown_key(loc: Loc, smap: SourceMap) -> Diagnostic:
    key = str(loc[-1])
    choices = _allowed_keys(loc[:-1])
    return Diagnostic(f'unknown key "{key}"', smap.key_pos(loc), dotted(loc[:-1]),
                      hint=did_you_mean(key, choices) or _list_hint(choices))


def _missing_key(loc: Loc, smap: SourceMap) -> Diagnostic:
    parent = loc[:-1]
    pattern: Loc = tuple("*" if i == 1 else p for i, p in enumerate(loc))
    return Diagnostic(f'missing required key "{loc[-1]}"',
                      smap.key_pos(parent) if parent else smap.value_pos(()),
                      dotted(parent), hint=_MISSING_HINTS.get(pattern))


def _located(cause: LocatedValueError, loc: Loc, smap: SourceMap, *, is_key: bool) -> Diagnostic:
    """A LocatedValueError: point at the key or value it names below `loc`."""
    target = (*loc, *cause.at)
    pos = smap.key_pos(target) if cause.key or is_key else smap.value_pos(target)
    shown = target[:-1] if (cause.key and cause.at) or (is_key and not cause.at) else target
    return Diagnostic(str(cause), pos, dotted(shown), hint=cause.hint)


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
        limit = str(error["msg"]).lower().removeprefix("input should be ")
        return f"{error['input']!r} is out of range (must be {limit})"
    if kind == "too_short":
        ctx = error.get("ctx") or {}
        least, got = ctx.get("min_length", 1), ctx.get("actual_length", 0)
        return f"needs at least {least} item{'s' if least != 1 else ''}, got {got or 'none'}"
    return str(error["msg"])


def _list_hint(choices: list[str]) -> str | None:
    return f"allowed keys: {', '.join(choices)}" if choices else None


def _existing_prefix(loc: Loc, data: Any) -> Loc:
    """The longest prefix of `loc` that exists in the raw data (coerced forms add parts)."""
    node = data
    for index, part in enumerate(loc):
        in_dict = isinstance(node, dict) and part in node
        in_list = isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)
        if not (in_dict or in_list):
            return loc[:index]
        node = node[part]
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
