"""`asbx init`: a commented starter that validates, the schema line, never overwriting."""

from __future__ import annotations

from pathlib import Path

import pytest

from asbx.cli.main import run
from asbx.spec.loader import load_spec


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("ASBX_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("ASBX_FILE", raising=False)
    project = tmp_path / "work" / "app"
    project.mkdir(parents=True)
    monkeypatch.chdir(project)
    return project


def test_init_writes_a_starter_that_validates(home: Path, capsys: pytest.CaptureFixture[str]
                                              ) -> None:
    assert run(["init"]) == 0
    spec = home / "sandboxes.yaml"
    text = spec.read_text()
    assert text.splitlines()[0] == (
        "# yaml-language-server: $schema=https://asbx.dev/schema/sandboxes.schema.json")
    loaded = load_spec(spec)
    assert set(loaded.spec.sandboxes) == {"dev"}
    assert loaded.spec.sandboxes["dev"].lifecycle is not None
    assert "# setup:" in text
    assert "# snapshots:" in text
    assert f"wrote {spec}" in capsys.readouterr().out
    assert run(["validate"]) == 0


def test_init_refuses_to_overwrite(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = home / "sandboxes.yaml"
    spec.write_text("version: 1\n# mine\n")
    assert run(["init"]) == 1
    assert spec.read_text() == "version: 1\n# mine\n"
    assert "already exists" in capsys.readouterr().err


def test_init_refuses_when_a_yml_spec_is_there(home: Path) -> None:
    (home / "sandboxes.yml").write_text("version: 1\n")
    assert run(["init"]) == 1
    assert not (home / "sandboxes.yaml").exists()


def test_init_points_at_a_schema_checked_in_above(home: Path) -> None:
    schema = home.parent / "schema" / "sandboxes.schema.json"
    schema.parent.mkdir()
    schema.write_text("{}")
    assert run(["init"]) == 0
    first = (home / "sandboxes.yaml").read_text().splitlines()[0]
    assert first == "# yaml-language-server: $schema=../schema/sandboxes.schema.json"


def test_init_beside_the_schema_uses_a_dot_path(home: Path) -> None:
    (home / "schema").mkdir()
    (home / "schema" / "sandboxes.schema.json").write_text("{}")
    assert run(["init"]) == 0
    first = (home / "sandboxes.yaml").read_text().splitlines()[0]
    assert first.endswith("$schema=./schema/sandboxes.schema.json")


def test_init_at_a_chosen_path_with_a_chosen_image(home: Path) -> None:
    target = home / "sub"
    target.mkdir()
    assert run(["-f", str(target), "init", "--image", "localhost/asbx/busybox:latest"]) == 0
    loaded = load_spec(target / "sandboxes.yaml")
    assert loaded.spec.images["base"].ref == "localhost/asbx/busybox:latest"
