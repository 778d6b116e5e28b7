"""Which env values count as secret: any not written literally in sandboxes.yaml."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from asbx.spec.model import Spec

# `$NAME` or `${...}` (searched after removing `$$`, a literal dollar).
_REFERENCE = re.compile(r"\$[A-Za-z_{]")


def references_variable(text: str) -> bool:
    """True when `text` (raw, before interpolation) takes a value from a variable."""
    return bool(_REFERENCE.search(text.replace("$$", "")))


def secret_env(raw: Any, spec: Spec) -> dict[str, frozenset[str]]:
    """{sandbox: env names that are secret}: interpolated, from an env_file, or from the host.

    `raw` is the spec's YAML data before interpolation; a value written literally in it is
    checked in already and stays inline.
    """
    sandboxes = raw.get("sandboxes", {}) if isinstance(raw, Mapping) else {}
    result: dict[str, frozenset[str]] = {}
    for name, box in spec.sandboxes.items():
        raw_box = sandboxes.get(name, {}) if isinstance(sandboxes, Mapping) else {}
        literal = _literal_env(raw_box.get("env") if isinstance(raw_box, Mapping) else None)
        result[name] = frozenset(k for k in box.env if k not in literal)
    return result


def _literal_env(raw_env: Any) -> set[str]:
    """Names whose raw value is written in the spec without a variable reference."""
    pairs: list[tuple[str, Any]] = []
    if isinstance(raw_env, Mapping):
        pairs = [(str(k), v) for k, v in raw_env.items()]
    elif isinstance(raw_env, list):
        for item in raw_env:
            if isinstance(item, str) and "=" in item:
                key, _, value = item.partition("=")
                pairs.append((key, value))
    return {k for k, v in pairs
            if v is not None and not (isinstance(v, str) and references_variable(v))}


def inlined_references(raw: Any) -> list[tuple[str, str]]:
    """(address, dotted path) of each value outside `env` that takes a variable: its value is
    written into the manifests as it is interpolated (a command, an image, a label...)."""
    found: list[tuple[str, str]] = []
    sandboxes = raw.get("sandboxes", {}) if isinstance(raw, Mapping) else {}
    if not isinstance(sandboxes, Mapping):
        return found

    def walk(node: Any, path: tuple[str, ...], address: str) -> None:
        if isinstance(node, Mapping):
            for key, value in node.items():
                walk(value, (*path, str(key)), address)
        elif isinstance(node, list):
            for index, value in enumerate(node):
                walk(value, (*path, str(index)), address)
        elif isinstance(node, str) and references_variable(node):
            found.append((address, ".".join(path)))

    for name, box in sandboxes.items():
        if isinstance(box, Mapping):
            for key, value in box.items():
                if key != "env":
                    walk(value, ("sandboxes", str(name), str(key)), f"sandbox.{name}")
    return found
