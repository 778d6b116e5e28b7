"""load_spec / find_spec on valid input: forms, defaults, env files, extensions, round trips."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from asbx import addresses as addr
from asbx.errors import SpecError, SpecNotFoundError
from asbx.spec.loader import find_spec, load_spec, load_spec_text
from asbx.spec.model import DEFAULT_COMMAND, MountSpec, PortSpec
from asbx.spec.normalise import normalised_spec

VALID = Path(__file__).parents[2] / "fixtures" / "specs" / "valid"


def _write(directory: Path, text: str, name: str = "sandboxes.yaml") -> Path:
    path = directory / name
    path.write_text(text, encoding="utf-8")
    return path


def test_find_spec_searches_upward_like_compose(tmp_path: Path) -> None:
    spec = _write(tmp_path, "version: 1\n")
    nested = tmp_path / "a" / "b"
    nested.mkdir(parents=True)
    assert find_spec(nested) == spec


def test_find_spec_accepts_the_yml_spelling_and_an_explicit_directory(tmp_path: Path) -> None:
    spec = _write(tmp_path, "version: 1\n", "sandboxes.yml")
    assert find_spec(tmp_path) == spec
    assert find_spec(Path("/"), tmp_path) == spec


def test_find_spec_explains_a_missing_spec(tmp_path: Path) -> None:
    with pytest.raises(SpecNotFoundError) as caught:
        find_spec(tmp_path, tmp_path / "nope.yaml")
    assert caught.value.message == f"spec file {tmp_path / 'nope.yaml'} does not exist"
    assert caught.value.hint == "pass an existing file with -f, or run `asbx init`"


def test_load_spec_of_an_unreadable_path_is_a_known_error(tmp_path: Path) -> None:
    with pytest.raises(SpecNotFoundError, match="cannot read"):
        load_spec(tmp_path)


def test_the_design_example_loads_with_the_expected_graph() -> None:
    loaded = load_spec(VALID / "design-example.yaml", environ={"GITHUB_TOKEN": "t0k"})
    spec = loaded.spec
    assert spec.name == "agent-lab"
    assert spec.sandboxes["builder"].env == {"PIP_CACHE_DIR": "/cache", "TOKEN": "t0k"}
    assert spec.sandboxes["builder"].memory == 2 << 30
    assert spec.sandboxes["worker"].lifecycle is not None
    assert spec.sandboxes["worker"].lifecycle.idle_timeout == 1800
    assert [str(a) for a in loaded.graph.order()] == [
        "image.python", "image.agent", "volume.pip-cache", "volume.datasets",
        "sandbox.builder", "snapshot.deps", "sandbox.worker",
    ]
    assert loaded.graph.dependencies(addr.image("agent")) == {addr.image("python")}
    assert loaded.dockerfiles["agent"].startswith("FROM python AS runtime")
    assert loaded.resolve("docker/agent") == (VALID / "docker" / "agent").resolve()


def test_defaults_are_filled_in(tmp_path: Path) -> None:
    box = load_spec(_write(tmp_path, "version: 1\nsandboxes:\n  a: {image: busybox}\n"),
                    environ={}).spec.sandboxes["a"]
    assert box.network.mode == "deny"
    assert box.workdir == "/workspace"
    assert box.effective_command == DEFAULT_COMMAND
    assert (box.cpus, box.memory, box.workspace, box.lifecycle) == (None, None, None, None)


def test_short_and_long_forms_normalise_to_the_same_model(tmp_path: Path) -> None:
    text = (
        "version: 1\nvolumes: {v: {}}\nsandboxes:\n  a:\n    image: busybox\n"
        "    network: open\n"
        "    volumes: ['v:/data:ro', {volume: v, target: /other/./dir/}, './:/src']\n"
        "    ports: [8080, '0.0.0.0:9000:90/udp']\n"
        "    env: [A=1, B=x=y, FROM_HOST, NOT_SET]\n"
    )
    box = load_spec(_write(tmp_path, text), environ={"FROM_HOST": "h"}).spec.sandboxes["a"]
    assert box.volumes == (
        MountSpec(type="volume", source="v", target="/data", readonly=True),
        MountSpec(type="volume", source="v", target="/other/dir"),
        MountSpec(type="bind", source="./", target="/src"),
    )
    assert box.ports == (
        PortSpec(host=8080, container=8080),
        PortSpec(host_ip="0.0.0.0", host=9000, container=90, protocol="udp"),
    )
    assert box.env == {"A": "1", "B": "x=y", "FROM_HOST": "h"}


def test_env_files_merge_under_env(tmp_path: Path) -> None:
    _write(tmp_path, "A=file-a\nB=file-b\n", "one.env")
    _write(tmp_path, "B=file-two\nC=file-c\n", "two.env")
    text = ("version: 1\nsandboxes:\n  a:\n    image: busybox\n"
            "    env_file: [one.env, two.env]\n    env: {C: spec}\n")
    box = load_spec(_write(tmp_path, text), environ={}).spec.sandboxes["a"]
    assert box.env == {"A": "file-a", "B": "file-two", "C": "spec"}


def test_extension_keys_are_ignored_everywhere_but_inside_free_form_maps(tmp_path: Path) -> None:
    text = (
        "version: 1\nx-top: 1\nsandboxes:\n  a:\n    image: busybox\n    x-note: hi\n"
        "    labels: {x-keep: 'yes'}\n"
        "    workspace: {from: ., x-why: because}\n"
    )
    box = load_spec(_write(tmp_path, text), environ={}).spec.sandboxes["a"]
    assert box.labels == {"x-keep": "yes"}


def test_an_extension_named_resource_is_ignored_with_a_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    text = "version: 1\nsandboxes:\n  x-ray: {image: busybox}\n  web: {image: busybox}\n"
    loaded = load_spec(_write(tmp_path, text), environ={})
    assert list(loaded.spec.sandboxes) == ["web"]
    assert [str(d) for d in loaded.warnings] == [
        'sandboxes.yaml:3:3: sandboxes: "x-ray" is ignored: keys starting with "x-" are '
        "extensions\n  hint: rename it if it is meant to be a resource"
    ]


def test_references_to_an_entry_with_errors_are_not_reported_twice(tmp_path: Path) -> None:
    # sandbox a and volume data fail validation; b's references to them are not "unknown"
    text = (
        "version: 1\nvolumes:\n  data: {size: huge}\nsnapshots:\n  s: {sandbox: a}\n"
        "sandboxes:\n  a:\n    image: busybox\n    memory: lots\n"
        "  b:\n    image: busybox\n    volumes: ['data:/d']\n    depends_on: [a]\n"
        "    workspace: {snapshot: s}\n"
    )
    with pytest.raises(SpecError) as caught:
        load_spec(_write(tmp_path, text), environ={})
    assert [d.path for d in caught.value.diagnostics] == [
        "volumes.data.size", "sandboxes.a.memory",
    ]


def test_a_wrong_top_level_type_stops_before_cross_references(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # with no usable volumes: section, "unknown volume" errors would only be noise
    monkeypatch.chdir(tmp_path)
    text = "version: 1\nvolumes: [a]\nsandboxes:\n  a: {image: busybox, volumes: ['a:/a']}\n"
    with pytest.raises(SpecError) as caught:
        load_spec(_write(tmp_path, text), environ={})
    assert [str(d) for d in caught.value.diagnostics] == [
        "sandboxes.yaml:2:10: volumes: expected a mapping, got a list"
    ]


@pytest.mark.parametrize("name", ["design-example.yaml", "every-field.yaml", "minimal.yaml"])
def test_normalised_config_round_trips(name: str, tmp_path: Path) -> None:
    first = load_spec(VALID / name, environ={"GITHUB_TOKEN": "t"})
    printed = yaml.safe_dump(normalised_spec(first.spec), sort_keys=False)
    again = load_spec_text(printed.encode(), VALID / name, environ={})
    assert again.spec == first.spec
    assert normalised_spec(again.spec) == normalised_spec(first.spec)


def test_load_spec_text_uses_the_given_display_name(tmp_path: Path) -> None:
    with pytest.raises(SpecError) as caught:
        load_spec_text(b"version: 3\n", tmp_path / "sandboxes.yaml", {}, display="shown.yaml")
    assert str(caught.value.diagnostics[0]).startswith("shown.yaml:1:10: version:")
    assert caught.value.message == "1 error in the spec"
