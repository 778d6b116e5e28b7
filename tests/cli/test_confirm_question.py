"""What apply and destroy ask before they change anything."""

from __future__ import annotations

from asbx.cli.commands.apply import confirm_question


def test_destroy_asks_a_destroy_question_and_apply_an_apply_one() -> None:
    assert confirm_question("destroy", "shop") == (
        "Do you really want to destroy the resources of project shop shown above?")
    assert confirm_question("apply", "shop") == "Do you want to apply these changes?"
