"""Commands shown back as written: a string step as its line, a list step shell-quoted."""

from __future__ import annotations

from pathlib import Path

from asbx.spec import commands
from asbx.spec.loader import load_spec_text


def test_a_string_step_is_shown_as_its_line() -> None:
    argv = commands.from_line("make test && echo 'done'")
    assert argv == ("/bin/sh", "-c", "make test && echo 'done'")
    assert commands.display(argv) == "make test && echo 'done'"
    assert commands.as_written(argv) == "make test && echo 'done'"


def test_a_list_step_is_shown_quoted_and_kept_whole() -> None:
    argv = ("sh", "-c", "echo a b")
    assert commands.display(argv) == "sh -c 'echo a b'"
    assert commands.as_written(list(argv)) == argv
    # a list that happens to start like a string step, but with more words, stays a list
    assert commands.display(("/bin/sh", "-c", "echo", "x")) == "/bin/sh -c echo x"


def test_the_loader_turns_a_string_into_the_argv_display_reverses() -> None:
    loaded = load_spec_text(
        b"version: 1\nname: p\nsandboxes:\n  web:\n    image: busybox\n"
        b"    setup:\n      - echo one | tr a-z A-Z\n      - [ls, -la]\n",
        Path("/nonexistent/sandboxes.yaml"),
        environ={},
    )
    steps = loaded.spec.sandboxes["web"].setup
    assert [commands.display(step) for step in steps] == ["echo one | tr a-z A-Z", "ls -la"]
