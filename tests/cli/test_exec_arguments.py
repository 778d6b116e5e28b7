"""`asbx exec`: everything after the sandbox's name is the command, as with `docker exec`."""

from __future__ import annotations

import click
import pytest

from asbx.cli.commands.exec import exec_command


def _params(*argv: str) -> dict[str, object]:
    with exec_command.make_context("exec", list(argv)) as ctx:
        return dict(ctx.params)


def test_options_after_the_name_belong_to_the_command() -> None:
    params = _params("dev", "ls", "-la", "--color", "-w", "x")
    assert params["sandbox"] == "dev"
    assert params["command"] == ("ls", "-la", "--color", "-w", "x")
    assert params["workdir"] is None


def test_a_double_dash_before_the_command_is_still_accepted_and_dropped() -> None:
    assert _params("dev", "--", "ls", "-la")["command"] == ("ls", "-la")
    assert _params("dev", "--", "sh", "-c", "echo --")["command"] == ("sh", "-c", "echo --")
    assert _params("dev", "echo", "--", "x")["command"] == ("echo", "--", "x")


def test_asbx_options_go_before_the_name() -> None:
    params = _params("-e", "A=1", "-w", "/w", "--timeout", "5", "-d", "dev", "make", "-j2")
    assert params["env"] == ("A=1",)
    assert params["workdir"] == "/w"
    assert params["timeout"] == 5
    assert params["detach"] is True
    assert params["command"] == ("make", "-j2")


@pytest.mark.parametrize("argv", [("dev", "--timeout", "1", "--", "sh"),
                                  ("dev", "-e", "A=1", "ls")])
def test_an_asbx_option_after_the_name_is_refused_with_a_hint(argv: tuple[str, ...]) -> None:
    with pytest.raises(click.UsageError, match="asbx's own options go before the sandbox's name"):
        _params(*argv)


@pytest.mark.parametrize("argv", [("dev",), ("dev", "--")])
def test_a_missing_command_is_a_usage_error(argv: tuple[str, ...]) -> None:
    with pytest.raises(click.UsageError):
        _params(*argv)
