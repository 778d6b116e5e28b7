"""Minimal Dockerfile reading: the `FROM` references, so image-to-image dependencies can be found."""

from __future__ import annotations

import re

_FROM_RE = re.compile(r"^\s*FROM\s+(?:--platform=\S+\s+)?(?P<ref>\S+)(?:\s+AS\s+(?P<alias>\S+))?",
                      re.IGNORECASE | re.MULTILINE)


def from_references(text: str) -> list[str]:
    """The images named by FROM lines, leaving out earlier stages (`FROM x AS build` ... `FROM build`)."""
    stages: set[str] = set()
    refs: list[str] = []
    for match in _FROM_RE.finditer(_join_continuations(text)):
        ref = match.group("ref")
        if ref.lower() not in stages and ref not in refs:
            refs.append(ref)
        if match.group("alias"):
            stages.add(match.group("alias").lower())
    return refs


def _join_continuations(text: str) -> str:
    return re.sub(r"\\\r?\n", " ", text)
