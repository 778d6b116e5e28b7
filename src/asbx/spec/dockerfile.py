"""Minimal Dockerfile reading: the `FROM` references (image-to-image dependencies) and their
rewriting to the real references of images asbx built."""

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
    refs: list[str] = []
    for ref, is_stage in _from_lines(_instructions(text), args):
        if not is_stage and ref not in refs:
            refs.append(ref)
    return refs


def rewrite_from(text: str, replacements: Mapping[str, str],
                 args: Mapping[str, str] | None = None) -> str:
    """`text` with each FROM naming a key of `replacements` (after ARG substitution, as in
    `from_references`) pointing at its value instead; earlier stages are left alone.

    Only the reference of a FROM line changes (`FROM $BASE AS b` -> `FROM <real> AS b`).
    """
    lines = text.splitlines(keepends=True)
    resolved = iter(_from_lines(lines, args))
    out: list[str] = []
    for line in lines:
        match = _FROM_RE.match(line.rstrip("\r\n"))
        if match is None or line.lstrip().startswith("#"):
            out.append(line)
            continue
        ref, is_stage = next(resolved)
        if is_stage or ref not in replacements:
            out.append(line)
            continue
        start, end = match.span("ref")
        out.append(line[:start] + replacements[ref] + line[end:])
    return "".join(out)


def _from_lines(lines: list[str], args: Mapping[str, str] | None) -> list[tuple[str, bool]]:
    """(reference with global ARGs substituted, names an earlier stage) of every FROM line."""
    stages: set[str] = set()
    found: list[tuple[str, bool]] = []
    global_args: dict[str, str] = {}
    seen_from = False
    for line in lines:
        if line.lstrip().startswith("#"):
            continue
        arg = _ARG_RE.match(line)
        if arg and not seen_from:
            value = (args or {}).get(arg["name"], arg["value"])
            if value is not None:
                global_args[arg["name"]] = value
            continue
        match = _FROM_RE.match(line.rstrip("\r\n"))
        if not match:
            continue
        seen_from = True
        ref = _substitute(match["ref"], global_args)
        found.append((ref, ref.lower() in stages))
        if match["alias"]:
            stages.add(match["alias"].lower())
    return found


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
