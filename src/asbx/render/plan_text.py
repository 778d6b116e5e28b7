"""Human plan text (Terraform-like), rendered from the plan's JSON structure."""

from __future__ import annotations

import json
from typing import Any

import click

_COLORS = {"+": "green", "-": "red", "-/+": "yellow", "~": "yellow", ">": "cyan", "=": None}


def render_plan_text(data: dict[str, Any], *, color: bool) -> str:
    """The plan as text: one block per change, then the summary line."""
    changes = [c for c in data["changes"] if c["action"] != "noop" or c["record_only"]]
    lines: list[str] = []
    for problem in data["errors"]:
        lines.append(_style("error: ", "red", color, bold=True) + problem)
    for warning in data["warnings"]:
        lines.append(_style("warning: ", "yellow", color, bold=True) + warning)
    for change in data["changes"]:
        if change["action"] == "noop" and not change["record_only"]:
            lines.extend(
                _style(f"note: {change['address']}: {note}", "cyan", color)
                for note in change["notes"]
            )
    if lines:
        lines.append("")
    if not changes:
        lines.append("No changes. The runtime matches sandboxes.yaml.")
        return "\n".join(lines)
    lines.append("asbx will perform the following actions:")
    lines.append("")
    for change in changes:
        lines.extend(_change_block(change, color))
        lines.append("")
    lines.append(_summary(data["summary"]))
    return "\n".join(lines)


def _change_block(change: dict[str, Any], color: bool) -> list[str]:
    symbol = change["symbol"] if change["action"] != "noop" else "~"
    headline = f"  # {change['address']} {_phrase(change)}"
    if change["holds_data"]:
        headline += " — holds data"
    out = [
        _style(headline, None, color, dim=True),
        _style(f"{symbol:>3}", _COLORS.get(symbol), color, bold=True) + f" {change['address']}",
    ]
    for field in change["fields"]:
        if field["sensitive"]:
            text = f"      ~ {field['path']}: (sensitive value changed)"
        else:
            text = f"      ~ {field['path']}: {_value(field['before'])} -> {_value(field['after'])}"
        if field["forces_replacement"] and change["action"] == "replace":
            text += _style("   # forces replacement", "red", color)
        out.append(text)
    for note in change["notes"]:
        out.append(_style(f"      # {note}", None, color, dim=True))
    return out


def _phrase(change: dict[str, Any]) -> str:
    action, verb = change["action"], change["verb"]
    if change["record_only"] and action == "update" and change["reason"] == "adopted":
        base = "will be adopted"
    elif change["record_only"] and action == "update" and not change["fields"]:
        base = "will be recorded in state"
    elif action == "create":
        base = {
            "build": "will be built",
            "pull": "will be pulled",
            "local": "will be taken from this machine's images (locked, never pulled)",
            "capture": "will be captured",
            "import": "will be imported",
        }.get(verb, "will be created")
    else:
        base = {
            "update": "will be updated in place",
            "replace": "must be replaced",
            "delete": "will be destroyed",
            "start": "will be started",
            "noop": "is unchanged",
        }[action]
    reason = change["reason_text"]
    detail = f": {change['detail']}" if change["detail"] else ""
    return f"{base} ({reason}{detail})"


def _value(value: Any) -> str:
    if value is None:
        return "(none)"
    return json.dumps(value, ensure_ascii=False)


def _summary(summary: dict[str, int]) -> str:
    text = (
        f"Plan: {summary['add']} to add, {summary['change']} to change, "
        f"{summary['replace']} to replace, {summary['destroy']} to destroy."
    )
    state_only = summary["state_only"]
    if state_only:
        text += f" {state_only} state-only update{'s' if state_only != 1 else ''}."
    return text


def _style(text: str, fg: str | None, color: bool, *, bold: bool = False, dim: bool = False) -> str:
    return click.style(text, fg=fg, bold=bold, dim=dim) if color else text
