"""`asbx schema` / `asbx config`, the checked-in JSON Schema, and the examples it must accept."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from asbx.cli.main import run
from asbx.spec.loader import display_name, load_spec
from asbx.spec.normalise import normalised_spec
from asbx.spec.schema import spec_json_schema

ROOT = Path(__file__).parents[2]
SCHEMA_FILE = ROOT / "schema" / "sandboxes.schema.json"
REGENERATE = "asbx schema > schema/sandboxes.schema.json"
EXAMPLES = sorted(ROOT.glob("examples/*/sandboxes.yaml"))
VALID_FIXTURES = sorted((ROOT / "tests" / "fixtures" / "specs" / "valid").glob("*.yaml"))
EXPECTED_EXAMPLES = {"quickstart", "python-agent", "node-dev", "snapshot-workers", "shared-dataset"}


def _schema() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    return data


def test_the_checked_in_schema_is_what_asbx_schema_prints(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert run(["schema"]) == 0
    printed = capsys.readouterr().out
    assert printed == json.dumps(spec_json_schema(), indent=2) + "\n"
    assert SCHEMA_FILE.read_text(encoding="utf-8") == printed, (
        f"{SCHEMA_FILE.relative_to(ROOT)} is stale; regenerate it with `{REGENERATE}`"
    )


def test_the_schema_passes_the_2020_12_metaschema() -> None:
    schema = _schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.Draft202012Validator.check_schema(schema)


def _properties(node: Any, where: str = "#") -> list[tuple[str, dict[str, Any]]]:
    found: list[tuple[str, dict[str, Any]]] = []
    if isinstance(node, dict):
        for name, prop in (node.get("properties") or {}).items():
            found.append((f"{where}/properties/{name}", prop))
        for key, value in node.items():
            found.extend(_properties(value, f"{where}/{key}"))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found.extend(_properties(value, f"{where}/{index}"))
    return found


def test_every_field_and_definition_has_a_description_for_editors() -> None:
    schema = _schema()
    properties = _properties(schema)
    assert len(properties) >= 40
    missing = [where for where, prop in properties if not prop.get("description")]
    assert missing == [], "fields without a description (add one in spec/model.py)"
    undocumented = [name for name, d in schema["$defs"].items() if not d.get("description")]
    assert undocumented == []


def test_the_examples_are_all_there_with_a_one_line_readme() -> None:
    assert {path.parent.name for path in EXAMPLES} >= EXPECTED_EXAMPLES
    for path in EXAMPLES:
        readme = (path.parent / "README.md").read_text(encoding="utf-8")
        assert len(readme.strip().splitlines()) == 1, path.parent.name


@pytest.mark.parametrize("spec_file", EXAMPLES + VALID_FIXTURES, ids=lambda p: p.parent.name
                         if p.name == "sandboxes.yaml" else p.stem)
def test_examples_and_valid_fixtures_pass_the_json_schema(spec_file: Path) -> None:
    validator = jsonschema.Draft202012Validator(_schema())
    data = yaml.safe_load(spec_file.read_text(encoding="utf-8"))
    errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
              for e in validator.iter_errors(data)]
    assert errors == []


@pytest.mark.parametrize("spec_file", EXAMPLES, ids=lambda p: p.parent.name)
def test_asbx_validate_accepts_each_example(
    spec_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["validate", str(spec_file)]) == 0
    captured = capsys.readouterr()
    assert captured.out.startswith(f"{display_name(spec_file)}: valid (")
    assert captured.err == ""


def test_asbx_validate_accepts_all_examples_at_once(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["validate", *map(str, EXAMPLES)]) == 0
    assert capsys.readouterr().out.count(": valid (") == len(EXAMPLES)


@pytest.mark.parametrize(
    ("document", "pointer"),
    [
        ({"version": 2}, "version"),
        ({"version": 1, "sandboxs": {}}, ""),
        ({"version": 1, "sandboxes": {"Web": {"image": "x"}}}, "sandboxes"),
        ({"version": 1, "sandboxes": {"a": {"image": "x", "memory": "2GBB"}}},
         "sandboxes/a/memory"),
        ({"version": 1, "sandboxes": {"a": {"image": "x", "network": "closed"}}},
         "sandboxes/a/network"),
        ({"version": 1, "sandboxes": {"a": {"image": "x", "labels": {"dev.asbx.p": "x"}}}},
         "sandboxes/a/labels"),
    ],
)
def test_the_schema_rejects_what_editors_should_flag(document: Any, pointer: str) -> None:
    validator = jsonschema.Draft202012Validator(_schema())
    paths = ["/".join(map(str, e.absolute_path)) for e in validator.iter_errors(document)]
    assert pointer in paths


def test_the_schema_allows_extension_keys_everywhere() -> None:
    document = {"version": 1, "x-anchors": {"a": 1},
                "sandboxes": {"x-template": {"any": "thing"},
                              "web": {"image": "busybox", "x-note": "hi",
                                      "workspace": {"from": ".", "x-why": 1}}}}
    assert list(jsonschema.Draft202012Validator(_schema()).iter_errors(document)) == []


def test_config_prints_yaml_that_loads_back_to_the_same_spec(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GITHUB_TOKEN", "t$ken")
    project = tmp_path / "python-agent"
    shutil.copytree(ROOT / "examples" / "python-agent", project)
    assert run(["-f", str(project / "sandboxes.yaml"), "config"]) == 0
    printed = capsys.readouterr().out
    assert "GITHUB_TOKEN: t$$ken" in printed          # `$` escaped: the output is a spec
    (project / "printed.yaml").write_text(printed, encoding="utf-8")
    original = load_spec(project / "sandboxes.yaml").spec
    assert load_spec(project / "printed.yaml").spec == original
    assert original.sandboxes["agent"].env["GITHUB_TOKEN"] == "t$ken"


def test_config_json_is_the_normalised_spec_with_raw_values(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GITHUB_TOKEN", "t$ken")
    source = ROOT / "examples" / "python-agent" / "sandboxes.yaml"
    assert run(["-f", str(source), "config", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data == normalised_spec(load_spec(source).spec)
    assert data["sandboxes"]["agent"]["env"]["GITHUB_TOKEN"] == "t$ken"
    assert data["sandboxes"]["agent"]["memory"] == "2G"


def test_config_of_an_invalid_spec_exits_1_with_diagnostics(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = tmp_path / "sandboxes.yaml"
    spec.write_text("version: 1\nsandboxes:\n  a: {image: busybox, memroy: 1G}\n")
    assert run(["-f", str(spec), "config"]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert 'unknown key "memroy"' in captured.err


@pytest.mark.parametrize("declared", ["", "name: declared\n"])
def test_config_shows_the_project_name_given_with_p(
    declared: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    (tmp_path / "sandboxes.yaml").write_text(
        f"version: 1\n{declared}sandboxes:\n  web:\n    image: busybox\n", encoding="utf-8"
    )
    monkeypatch.chdir(tmp_path)
    assert run(["-p", "override", "config"]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("version: 1\nname: override\nimages: {}\n")
    assert yaml.safe_load(printed)["name"] == "override"
    assert run(["-p", "override", "config", "--json"]) == 0
    assert list(json.loads(capsys.readouterr().out))[:3] == ["version", "name", "images"]
    assert run(["config"]) == 0
    assert ("name: declared\n" in capsys.readouterr().out) == bool(declared)
