"""Compose-style interpolation: $VAR, ${VAR}, ${VAR:-d}, ${VAR-d}, ${VAR:?e}, ${VAR:+r}, $$."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

_NAME = r"[A-Za-z_][A-Za-z0-9_]*"
_NAME_RE = re.compile(_NAME)
_BRACED_RE = re.compile(rf"(?P<name>{_NAME})(?:(?P<op>:?[-?+])(?P<arg>.*))?", re.DOTALL)


class InterpolationError(ValueError):
    """A variable reference is malformed or a required variable is unset."""


def interpolate(text: str, env: Mapping[str, str], unset: set[str] | None = None) -> str:
    """Substitute variables in one string as Compose does; raises InterpolationError.

    The names of plain `$VAR` / `${VAR}` references that were unset (and so became "") are
    added to `unset`, for Compose's "variable is not set" warning.
    """
    out: list[str] = []
    i = 0
    while i < len(text):
        dollar = text.find("$", i)
        if dollar < 0:
            out.append(text[i:])
            break
        out.append(text[i:dollar])
        value, i = _reference(text, dollar, env, unset)
        out.append(value)
    return "".join(out)


def _reference(text: str, start: int, env: Mapping[str, str],
               unset: set[str] | None) -> tuple[str, int]:
    """Resolve the reference starting at text[start] == "$"; return (value, next index)."""
    rest = text[start + 1 :]
    if rest.startswith("$"):
        return "$", start + 2
    named = _NAME_RE.match(rest)
    if named:
        return _plain(named.group(0), env, unset), start + 1 + named.end()
    if not rest.startswith("{"):
        return "$", start + 1  # a `$` that starts no variable is text, as in Compose
    close = _matching_brace(text, start + 1)
    if close is not None:
        return _braced(text[start + 2 : close], env, unset), close + 1
    shown = text[start : start + 12]
    raise InterpolationError(
        f'invalid interpolation "{shown}" (use ${{VAR}}, or $$ for a literal $)'
    )


def _matching_brace(text: str, open_at: int) -> int | None:
    depth = 0
    for index in range(open_at, len(text)):
        if text[index] == "{":
            depth += 1
        elif text[index] == "}":
            depth -= 1
            if depth == 0:
                return index
    return None


def _plain(name: str, env: Mapping[str, str], unset: set[str] | None) -> str:
    value = env.get(name)
    if value is None and unset is not None:
        unset.add(name)
    return value or ""


def _braced(inner: str, env: Mapping[str, str], unset: set[str] | None) -> str:
    """`${name}`, `${name-d}`, `${name:-d}`, `${name?e}`, `${name:?e}`, `${name+r}`, `${name:+r}`.

    With a colon the operator treats an empty value like an unset one, as in Compose and sh.
    """
    match = _BRACED_RE.fullmatch(inner)
    if not match:
        raise InterpolationError(
            f'invalid interpolation "${{{inner}}}" (use ${{VAR}} or ${{VAR:-default}})'
        )
    name, op, arg = match.group("name"), match.group("op"), match.group("arg") or ""
    value = env.get(name)
    missing = value is None or (value == "" and op is not None and op.startswith(":"))
    if op in (":-", "-"):
        return interpolate(arg, env, unset) if missing else str(value)
    if op in (":+", "+"):
        return "" if missing else interpolate(arg, env, unset)
    if op in (":?", "?"):
        if missing:
            detail = interpolate(arg, env) if arg else "it must be set"
            raise InterpolationError(f"required variable {name} is missing: {detail}")
        return str(value)
    return _plain(name, env, unset)


Report = Callable[[tuple[str | int, ...], str], None]


def interpolate_tree(data: Any, env: Mapping[str, str], on_error: Report,
                     on_warning: Report | None = None) -> Any:
    """Interpolate every string value (not keys) of plain YAML data; report errors by path,
    and the name of each unset variable that became an empty string to `on_warning` (Compose
    warns about those)."""

    def walk(node: Any, path: tuple[str | int, ...]) -> Any:
        if isinstance(node, dict):
            return {k: walk(v, (*path, k)) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v, (*path, i)) for i, v in enumerate(node)]
        if isinstance(node, str) and "$" in node:
            unset: set[str] = set()
            try:
                value = interpolate(node, env, unset)
            except InterpolationError as exc:
                on_error(path, str(exc))
                return node
            if on_warning is not None:
                for name in sorted(unset):
                    on_warning(path, name)
            return value
        return node

    return walk(data, ())
