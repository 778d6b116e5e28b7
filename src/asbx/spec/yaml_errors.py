"""Plain-language YAML syntax errors: the offending token's position and a hint for the cause."""

from __future__ import annotations

import yaml

from asbx.diagnostics import Diagnostics, SourcePos

CLOSERS = {"flow sequence": ("[", "]"), "flow mapping": ("{", "}")}


def yaml_error(exc: yaml.MarkedYAMLError, text: str, file: str) -> Diagnostics:
    """One diagnostic for a parser error, worded for the common causes with a hint."""
    diags = Diagnostics()
    mark = exc.problem_mark or exc.context_mark
    problem = exc.problem or "syntax error"
    started = exc.context_mark
    lines = text.splitlines()
    message, hint = _explain(problem, exc.context or "", mark, started, lines)
    if message is None:
        context = f" ({exc.context})" if exc.context else ""
        if exc.context and started is not None and mark is not None and started.line != mark.line:
            context = f" ({exc.context} started at line {started.line + 1})"
        message = f"{problem}{context}"
    pos = _pos(mark, file)
    if _unclosed(problem, exc.context or ""):
        pos = _pos(started, file)  # the end of the file says nothing; point at the opening quote
    colonless = _colonless_line(mark, lines) if problem.startswith("mapping values") else None
    if colonless is not None:  # the line to fix is the one without a colon, not this one
        pos = SourcePos(file, colonless[0] + 1, _indent(colonless[1]) + 1)
    diags.add(f"invalid YAML: {message}", pos=pos, hint=hint)
    return diags


def _explain(problem: str, context: str, mark: yaml.Mark | None, started: yaml.Mark | None,
             lines: list[str]) -> tuple[str | None, str | None]:
    """(message, hint) for a recognised cause; message None keeps the parser's own words."""
    if problem.startswith("but found another document"):
        return "found a second document (after ---); a spec is one document", None
    if "'\\t'" in problem:
        return ("a tab character here; YAML indentation must be spaces",
                "indent with spaces; YAML does not allow tabs")
    if _unclosed(problem, context):
        return _unclosed_quote(started, lines)
    for kind, (opener, closer) in CLOSERS.items():
        if kind in context and problem.startswith("expected ','") and started is not None:
            return (f"the {opener} opened at line {started.line + 1} column {started.column + 1}"
                    f" is not closed before this token",
                    f"close it with {closer} or separate its items with commas")
    if problem.startswith("expected <block end>") and mark is not None and started is not None:
        return _bad_indent(problem, mark, started, lines)
    if problem.startswith("mapping values are not allowed here") and mark is not None:
        return _stray_colon(mark, lines)
    if problem.startswith("could not find expected ':'") and started is not None:
        return (f"line {started.line + 1} has no colon after its key",
                "write `key: value` (with a space after the colon)")
    return None, None


def _unclosed(problem: str, context: str) -> bool:
    return problem.startswith("found unexpected end of stream") and "quoted scalar" in context


def _unclosed_quote(started: yaml.Mark | None, lines: list[str]) -> tuple[str, str]:
    quote = '"'
    if started is not None and started.line < len(lines):
        quote = lines[started.line][started.column:started.column + 1] or quote
    return (f"this {quote} quote is never closed",
            f"add the closing {quote} at the end of the value")


def _bad_indent(problem: str, mark: yaml.Mark, started: yaml.Mark,
                lines: list[str]) -> tuple[str, str]:
    what = "list item" if "sequence" in problem.rsplit("found", 1)[-1] else "line"
    previous = _previous_line(lines, mark.line)
    above = (f"line {previous[0] + 1} starts at column {_indent(previous[1]) + 1}, "
             if previous is not None and previous[0] != started.line else "")
    return (f"this {what} is indented to column {mark.column + 1}, which matches no block above",
            f"line up keys of one mapping (and items of one list) with each other: {above}the"
            f" block started at line {started.line + 1} uses column {started.column + 1};"
            f" indent with spaces")


def _colonless_line(mark: yaml.Mark | None, lines: list[str]) -> tuple[int, str] | None:
    """The line above a stray ':' when it is a key that lacks its colon (`image busybox`)."""
    if mark is None:
        return None
    previous = _previous_line(lines, mark.line)
    here = lines[mark.line] if mark.line < len(lines) else ""
    if previous is None:
        return None
    body = previous[1].strip()
    if ":" in body or body.startswith("-") or _indent(previous[1]) > _indent(here):
        return None
    return previous


def _stray_colon(mark: yaml.Mark, lines: list[str]) -> tuple[str, str]:
    colonless = _colonless_line(mark, lines)
    if colonless is not None:
        return (f"line {colonless[0] + 1} (`{colonless[1].strip()}`) has no colon, so the"
                f" ':' on line {mark.line + 1} is unexpected",
                "write `key: value` (with a space after the colon) on that line")
    previous = _previous_line(lines, mark.line)
    here = lines[mark.line] if mark.line < len(lines) else ""
    if previous is not None:
        number, text = previous
        if _indent(here) > _indent(text):
            return (f"unexpected ':'; this line is indented deeper than line {number + 1}",
                    "indent keys of one mapping to the same column, or put a nested mapping"
                    " under a key that ends with ':'")
    return ("unexpected ':' inside a value",
            "quote a value that contains ': ', e.g. \"a: b\"")


def _previous_line(lines: list[str], index: int) -> tuple[int, str] | None:
    for number in range(min(index, len(lines)) - 1, -1, -1):
        stripped = lines[number].strip()
        if stripped and not stripped.startswith("#"):
            return number, lines[number]
    return None


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _pos(mark: yaml.Mark | None, file: str) -> SourcePos:
    if mark is None:
        return SourcePos(file, 1, 1)
    return SourcePos(file, mark.line + 1, mark.column + 1)
