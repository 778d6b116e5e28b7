"""guess_declared_name: the project name a spec declares, read without YAML; and the CLI's guess
agrees with the loaded spec's project."""

from __future__ import annotations

from pathlib import Path

import pytest

from asbx.cli.context import AppContext
from asbx.spec.locate import guess_declared_name


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("version: 1\nname: agent-lab\n", (True, "agent-lab")),
        ("name: 'lab_2'  # comment\nversion: 1\n", (True, "lab_2")),
        ('version: 1\r\nname: "x1"\r\n', (True, "x1")),
        ("version: 1\nsandboxes:\n  a:\n    name: nested\n", (True, None)),
        ("version: 1\n", (True, None)),
        ("version: 1\nname: ${PROJECT}\n", (False, None)),
        ("version: 1\nname: Upper\n", (False, None)),
        ("name :  spaced\n", (False, None)),
        ("{version: 1, name: flow}\n", (False, None)),
    ],
)
def test_the_declared_name_is_read_or_the_guess_says_it_is_unsure(
    text: str, expected: tuple[bool, str | None]
) -> None:
    assert guess_declared_name(text.encode()) == expected


@pytest.mark.parametrize(
    "spec",
    [
        "version: 1\nname: guessed\nsandboxes:\n  a: {image: busybox}\n",
        "version: 1\nsandboxes:\n  a: {image: busybox}\n",
    ],
)
def test_the_cli_guess_is_the_loaded_project(
    spec: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "My Dir").mkdir()
    (tmp_path / "My Dir" / "sandboxes.yaml").write_text(spec)
    monkeypatch.chdir(tmp_path / "My Dir")
    app = AppContext()
    assert app.guess_project() == app.effective_project_name()
    assert AppContext(project_name="other").guess_project() == "other"


def test_no_spec_means_no_guess(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert AppContext().guess_project() is None
