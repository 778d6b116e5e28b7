"""`asbx state journal`: what apply, destroy and reap recorded, oldest first, as text or JSON."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from asbx.cli.main import run
from asbx.state.store import StateStore


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "sandboxes.yaml").write_text(
        "version: 1\nname: jt\nsandboxes:\n  web:\n    image: busybox\n")
    return tmp_path / "home"


def test_the_journal_lists_steps_oldest_first_and_limits_to_the_newest(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = StateStore(project / "state.db")
    store.journal("jt", "apply", "sandbox.web", "create:create", "ok")
    store.journal("jt", "reap", "sandbox.web", "delete", "ok", "past max_lifetime 8h\nmore")
    store.journal("other", "apply", "sandbox.x", "create:create", "ok")
    store.close()
    assert run(["--home", str(project), "state", "journal"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2
    assert "apply   sandbox.web" in lines[0]
    assert lines[0].rstrip().endswith("create:create      ok")
    assert lines[1].endswith("delete             ok  past max_lifetime 8h")

    assert run(["--home", str(project), "state", "journal", "-n", "1", "--json"]) == 0
    (entry,) = json.loads(capsys.readouterr().out)
    assert {k: entry[k] for k in ("command", "address", "action", "outcome")} == {
        "command": "reap", "address": "sandbox.web", "action": "delete", "outcome": "ok"}


def test_an_empty_journal_says_so(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["--home", str(project), "state", "journal"]) == 0
    assert capsys.readouterr().out == "project jt: the journal is empty\n"
