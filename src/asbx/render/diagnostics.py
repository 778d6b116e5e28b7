"""Render diagnostics for a terminal: headline, the source line with a caret, the hint."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import click

from asbx.diagnostics import Diagnostic, Severity


def render_diagnostics(
    diagnostics: Iterable[Diagnostic], *, color: bool, source_dir: Path | None = None
) -> str:
    """All diagnostics as text, one block each, with source snippets where the file is readable."""
    cache: dict[str, list[str]] = {}
    blocks = [_block(d, color, cache, source_dir) for d in diagnostics]
    return "\n".join(blocks)


def _block(diag: Diagnostic, color: bool, cache: dict[str, list[str]],
           source_dir: Path | None) -> str:
    label = "error:" if diag.severity is Severity.ERROR else "warning:"
    fg = "red" if diag.severity is Severity.ERROR else "yellow"
    shown = click.style(label, fg=fg, bold=True) if color else label
    lines = [f"{shown} {diag.headline()}"]
    snippet = _snippet(diag, cache, source_dir)
    if snippet:
        lines.extend(snippet)
    if diag.hint:
        hint = click.style("hint:", fg="cyan") if color else "hint:"
        lines.append(f"  {hint} {diag.hint}")
    return "\n".join(lines)


def _snippet(diag: Diagnostic, cache: dict[str, list[str]],
             source_dir: Path | None) -> list[str] | None:
    if diag.pos is None:
        return None
    file = diag.pos.file
    if file not in cache:
        candidate = Path(file)
        if not candidate.is_absolute() and source_dir is not None and not candidate.exists():
            candidate = source_dir / candidate.name
        try:
            cache[file] = candidate.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError):
            cache[file] = []
    source = cache[file]
    if not 1 <= diag.pos.line <= len(source):
        return None
    text = source[diag.pos.line - 1]
    if len(text) > 200:
        return None
    gutter = f"{diag.pos.line:>5} | "
    caret = " " * (len(gutter) - 2) + "| " + " " * (diag.pos.column - 1) + "^"
    return [gutter + text, caret]
