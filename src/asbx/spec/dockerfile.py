"""Minimal Dockerfile reading: the `FROM` references, so image-to-image dependencies are found."""

from __future__ import annotations

import re
from collections.abc import Mapping

_FROM_RE = re.compile(
    r"^\s*FROM\s+(?:--[a-z-]+=\S+\s+)*(?P<ref>\S+)(?:\s+AS\s+(?P<alias>\S+))?\s*$",
    re.IGNORECASE,
)
_ARG_RE = re.compile(r"^\s*ARG\s+(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:=(?P<value>\S*))?",
                     re.IGNORECASE)
_ESCAPE_RE = re.compile(r"^\s*#\s*escape\s*=\s*(?P<char>[\\`])\s*$", re.IGNORECASE)
_VAR_RE = re.compile(
    r"\$(?:\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)\}|(?P<plain>[A-Za-z_][A-Za-z0-9_]*))"
)


def from_references(text: str, args: Mapping[str, str] | None = None) -> list[str]:
    """The images FROM lines name, leaving out earlier stages (`FROM x AS b` ... `FROM b`).

    `ARG NAME=default` lines before the first FROM are substituted into FROM lines (build
    `args` override the defaults), as `docker build` does; an unresolved `$VAR` stays as it is.
    """
    stages: set[str] = set()
    refs: list[str] = []
    global_args: dict[str, str] = {}
    seen_from = False
    for line in _instructions(text):
        arg = _ARG_RE.match(line)
        if arg and not seen_from:
            value = (args or {}).get(arg["name"], arg["value"])
            if value is not None:
                global_args[arg["name"]] = value
            continue
        match = _FROM_RE.match(line)
        if not match:
            continue
        seen_from = True
        ref = _substitute(match["ref"], global_args)
        if ref.lower() not in stages and ref not in refs:
            refs.append(ref)
        if match["alias"]:
            stages.add(match["alias"].lower())
    return refs


def _instructions(text: str) -> list[str]:
    """Logical lines: continuations joined, comment lines dropped."""
    lines = text.splitlines()
    escape = "\\"
    for line in lines:
        directive = _ESCAPE_RE.match(line)
        if directive:
            escape = directive["char"]
            break
        if line.strip() and not line.lstrip().startswith("#"):
            break
    out: list[str] = []
    current = ""
    for line in lines:
        if line.lstrip().startswith("#"):
            continue
        stripped = line.rstrip()
        if stripped.endswith(escape):
            current += stripped[:-1] + " "
            continue
        out.append(current + line)
        current = ""
    if current:
        out.append(current)
    return out


def _substitute(ref: str, values: Mapping[str, str]) -> str:
    def replace(match: re.Match[str]) -> str:
        name = match["braced"] or match["plain"]
        return values.get(name, match.group(0))

    return _VAR_RE.sub(replace, ref)
