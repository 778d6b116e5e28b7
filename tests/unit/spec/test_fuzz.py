"""Fuzzing the loader: random bytes, random YAML, mutated valid specs (data and text level).

Properties: `load_spec_text` raises nothing but `SpecError`; every diagnostic has a position
inside the file; and whatever it accepts prints (`asbx config`) as a spec that loads back to
the same model.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from asbx.errors import SpecError
from asbx.spec.loader import LoadedSpec, load_spec_text
from asbx.spec.normalise import escape_dollars, normalised_spec

ROOT = Path(__file__).parents[3]
SEED_FILES = sorted(
    [*(ROOT / "tests" / "fixtures" / "specs" / "valid").glob("*.yaml"),
     *(ROOT / "examples").glob("*/sandboxes.yaml")]
)
SEEDS = [(path, path.read_text(encoding="utf-8")) for path in SEED_FILES]
ENV = {"GITHUB_TOKEN": "t", "HOME": "/home/fuzz"}
# Fixed examples keep the suite quick and stable; ASBX_FUZZ_EXAMPLES=5000 explores further.
EXTRA = int(os.environ.get("ASBX_FUZZ_EXAMPLES", "0"))
FUZZ = settings(max_examples=EXTRA or 100, deadline=None, derandomize=not EXTRA,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

KEYS = [
    "version", "name", "images", "volumes", "snapshots", "sandboxes", "ref", "build", "context",
    "dockerfile", "inline", "args", "target", "platform", "labels", "size", "sandbox", "image",
    "command", "cpus", "memory", "env", "env_file", "workdir", "user", "network", "allow",
    "volume", "bind", "readonly", "workspace", "from", "ignore", "snapshot", "setup",
    "lifecycle", "idle_timeout", "max_lifetime", "auto_delete", "delete_workspace", "ports",
    "depends_on", "x-ext", "<<", "web", "Web", "a", "",
]
STRINGS = [
    "1G", "512M", "1.5GiB", "0", "-1", "2GBB", "30m", "1h30m", "0s", "deny", "open", "allow",
    "busybox", "docker.io/library/python:3.12", "Not A Ref", "cache:/cache", "cache:/cache:ro",
    "./:/src", "v:/workspace", "v:relative", "/workspace", "/a/../b", ".", "./missing", "~",
    "~nosuchuser/x", "${X}", "${X:-d}", "${X:?need X}", "${", "$$", "$", "8080:80", "99999:1",
    "[::1]:53:53/udp", "*.example.com", "https://x.org/", "10.0.0.0/8", "FROM busybox",
    "A=1", "dev.asbx.project", "x-ray", "web", "a" * 70, "\u00e9", "\x7f", "yes", "null",
]
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=12),
    st.sampled_from(STRINGS),
)
keys = st.one_of(st.sampled_from(KEYS), st.text(max_size=8))
trees = st.recursive(
    scalars,
    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(keys, kids, max_size=4),
    max_leaves=12,
)


@pytest.fixture(scope="module")
def spec_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("fuzz")
    (directory / "project").mkdir()
    (directory / "Dockerfile").write_text("FROM busybox\n", encoding="utf-8")
    return directory


def _load(raw: bytes, spec_dir: Path, name: str = "sandboxes.yaml") -> LoadedSpec | None:
    """Load `raw` as `spec_dir/name`; on a SpecError check every diagnostic's position."""
    try:
        return load_spec_text(raw, spec_dir / name, ENV)
    except SpecError as exc:
        _check_positions(exc, raw, name)
        return None


def _check_positions(error: SpecError, raw: bytes, name: str) -> None:
    lines = len(raw.decode("utf-8", errors="replace").splitlines()) + 1  # YAML breaks: \r too
    assert error.diagnostics, "a SpecError must carry at least one diagnostic"
    for diagnostic in error.diagnostics:
        assert diagnostic.pos is not None, str(diagnostic)
        if diagnostic.pos.file == name:
            assert 1 <= diagnostic.pos.line <= lines, str(diagnostic)
            assert diagnostic.pos.column >= 1, str(diagnostic)


def _check_round_trip(loaded: LoadedSpec) -> None:
    printed = yaml.safe_dump(escape_dollars(normalised_spec(loaded.spec)), sort_keys=False)
    again = load_spec_text(printed.encode(), loaded.path, ENV)
    assert again.spec == loaded.spec


@FUZZ
@given(raw=st.binary(max_size=600))
def test_random_bytes(raw: bytes, spec_dir: Path) -> None:
    _load(raw, spec_dir)


@FUZZ
@given(text=st.text(alphabet=st.characters(codec="utf-8"), max_size=300))
def test_random_text(text: str, spec_dir: Path) -> None:
    _load(text.encode("utf-8"), spec_dir)


@FUZZ
@given(tree=trees)
def test_random_yaml_documents(tree: Any, spec_dir: Path) -> None:
    _load(yaml.safe_dump(tree).encode(), spec_dir)
    _load(yaml.safe_dump({"version": 1, "sandboxes": tree}).encode(), spec_dir)


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(node, dict):
        for key, value in node.items():
            found.extend(_paths(value, (*prefix, key)))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found.extend(_paths(value, (*prefix, index)))
    return found


def _get(node: Any, path: tuple[Any, ...]) -> Any:
    for part in path:
        node = node[part]
    return node


def _similar(value: Any) -> st.SearchStrategy[Any]:
    if isinstance(value, bool):
        return st.booleans()
    if isinstance(value, int | float):
        return st.one_of(st.integers(-2, 70000), st.floats(-1, 1e6))
    if isinstance(value, str):
        return st.sampled_from(STRINGS)
    return trees


def _mutate(data: Any, draw: st.DrawFn) -> Any:
    path = draw(st.sampled_from(_paths(data)))
    op = draw(st.sampled_from(
        ["similar", "similar", "replace", "delete", "rename", "insert", "wrap", "duplicate"]
    ))
    if not path:
        return draw(trees) if op == "replace" else [data] if op == "wrap" else data
    parent, last = _get(data, path[:-1]), path[-1]
    if op == "similar":  # a value of the same type: more mutants stay valid and reach the model
        parent[last] = draw(_similar(parent[last]))
    elif op == "replace":
        parent[last] = draw(trees)
    elif op == "delete":
        del parent[last]
    elif op == "wrap":
        parent[last] = draw(st.sampled_from([[parent[last]], {"x": parent[last]}]))
    elif op == "duplicate" and isinstance(parent, list):
        parent.append(parent[last])
    elif isinstance(parent, dict) and op == "rename":
        parent[draw(keys)] = parent.pop(last)
    elif isinstance(parent, dict):
        parent[draw(keys)] = draw(trees)
    return data


@FUZZ
@given(data=st.data())
def test_mutated_valid_specs(data: st.DataObject) -> None:
    seed, text = data.draw(st.sampled_from(SEEDS))
    tree = yaml.safe_load(text)
    for _ in range(data.draw(st.integers(1, 3))):
        tree = _mutate(tree, data.draw)
    loaded = _load(yaml.safe_dump(tree, sort_keys=False).encode(), seed.parent, seed.name)
    if loaded is not None:
        _check_round_trip(loaded)


NOISE = [*":-[]{}&*!|>#%@`'\"\t\n ,?$~", "\n  ", "<<: ", "---\n", "...", "\ufeff", "\x00"]


@FUZZ
@given(data=st.data())
def test_mutated_spec_text(data: st.DataObject) -> None:
    seed, text = data.draw(st.sampled_from(SEEDS))
    for _ in range(data.draw(st.integers(1, 3))):
        at = data.draw(st.integers(0, len(text)))
        end = data.draw(st.integers(at, min(len(text), at + 20)))
        op = data.draw(st.sampled_from(["insert", "delete", "replace", "truncate"]))
        noise = "".join(data.draw(st.lists(st.sampled_from(NOISE), min_size=1, max_size=3)))
        if op == "insert":
            text = text[:at] + noise + text[at:]
        elif op == "delete":
            text = text[:at] + text[end:]
        elif op == "replace":
            text = text[:at] + noise + text[end:]
        else:
            text = text[:at]
    loaded = _load(text.encode("utf-8"), seed.parent, seed.name)
    if loaded is not None:
        _check_round_trip(loaded)


def test_there_are_seeds_to_mutate() -> None:
    assert len(SEEDS) >= 3
