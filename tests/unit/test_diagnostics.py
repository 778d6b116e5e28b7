"""Diagnostics: the one-line form, ordering, did-you-mean, and the terminal rendering."""

from __future__ import annotations

from pathlib import Path

from asbx.diagnostics import Diagnostic, Diagnostics, Severity, SourcePos, did_you_mean
from asbx.render.diagnostics import render_diagnostics


def test_str_is_file_line_col_path_message_and_an_indented_hint() -> None:
    diag = Diagnostic("unknown key \"memroy\"", SourcePos("s.yaml", 5, 5), "sandboxes.web",
                      hint='did you mean "memory"?')
    assert str(diag) == (
        's.yaml:5:5: sandboxes.web: unknown key "memroy"\n  hint: did you mean "memory"?'
    )
    assert str(Diagnostic("no position")) == "no position"
    assert str(Diagnostic("top", SourcePos("s.yaml", 1, 1))) == "s.yaml:1:1: top"


def test_sorted_orders_by_position_drops_duplicates_and_puts_unpositioned_last() -> None:
    diags = Diagnostics()
    diags.add("late", pos=SourcePos("s.yaml", 9, 1))
    diags.add("nowhere")
    diags.add("early", pos=SourcePos("s.yaml", 2, 7))
    diags.add("early", pos=SourcePos("s.yaml", 2, 7))
    diags.add("same line, earlier column", pos=SourcePos("s.yaml", 2, 3))
    assert [d.message for d in diags.sorted()] == [
        "same line, earlier column", "early", "late", "nowhere",
    ]


def test_errors_and_warnings_are_separated() -> None:
    diags = Diagnostics()
    diags.add("careful", severity=Severity.WARNING)
    assert not diags.has_errors()
    diags.add("broken")
    assert diags.has_errors()
    assert [d.message for d in diags.errors] == ["broken"]
    assert [d.message for d in diags.warnings] == ["careful"]
    assert len(diags) == 2


def test_did_you_mean() -> None:
    assert did_you_mean("memroy", ["memory", "cpus"]) == 'did you mean "memory"?'
    assert did_you_mean("zzz", ["memory", "cpus"]) is None
    assert did_you_mean("x", []) is None


def test_render_shows_the_source_line_with_a_caret(tmp_path: Path) -> None:
    spec = tmp_path / "sandboxes.yaml"
    spec.write_text("version: 1\nsandboxes:\n  a: {image: busybox, memroy: 1G}\n")
    diag = Diagnostic('unknown key "memroy"', SourcePos(str(spec), 3, 23), "sandboxes.a",
                      hint='did you mean "memory"?')
    text = render_diagnostics([diag], color=False)
    assert text.splitlines() == [
        f'error: {spec}:3:23: sandboxes.a: unknown key "memroy"',
        "    3 |   a: {image: busybox, memroy: 1G}",
        "      |                       ^",
        '  hint: did you mean "memory"?',
    ]


def test_render_without_a_readable_source_keeps_the_headline(tmp_path: Path) -> None:
    diags = [
        Diagnostic("gone", SourcePos(str(tmp_path / "missing.yaml"), 3, 1)),
        Diagnostic("careful", severity=Severity.WARNING),
    ]
    assert render_diagnostics(diags, color=False).splitlines() == [
        f"error: {tmp_path / 'missing.yaml'}:3:1: gone",
        "warning: careful",
    ]


def test_render_with_colour_uses_ansi_styles(tmp_path: Path) -> None:
    text = render_diagnostics([Diagnostic("broken", hint="fix it")], color=True)
    assert "\x1b[" in text
    assert "broken" in text
    assert "fix it" in text
