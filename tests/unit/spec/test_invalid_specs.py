"""Table-driven invalid specs: every fixture's diagnostics equal its `.expected.txt` exactly.

Each `tests/fixtures/specs/invalid/<failure-mode>.yaml` is loaded from its own directory (so
relative paths resolve there) with an empty environment; the expected file holds each
diagnostic's `str()` (`file:line:col: path: message` and an indented `hint:` line).
Regenerate after an intended wording change with `ASBX_UPDATE_GOLDEN=1 pytest <this file>`
and review the diff.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from asbx.errors import SpecError
from asbx.spec.loader import load_spec, load_spec_text
from asbx.spec.yaml_source import MAX_SPEC_BYTES

INVALID = Path(__file__).parents[2] / "fixtures" / "specs" / "invalid"
CASES = sorted(INVALID.glob("*.yaml"))


def _rendered(error: SpecError) -> str:
    return "".join(f"{diagnostic}\n" for diagnostic in error.diagnostics)


def _load_error(spec_file: Path) -> SpecError:
    with pytest.raises(SpecError) as caught:
        load_spec(Path(spec_file.name), environ={})
    return caught.value


@pytest.mark.parametrize("spec_file", CASES, ids=lambda p: p.stem)
def test_invalid_spec_gives_exactly_the_expected_diagnostics(
    spec_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(INVALID)
    actual = _rendered(_load_error(spec_file))
    expected_file = spec_file.with_suffix(".expected.txt")
    if os.environ.get("ASBX_UPDATE_GOLDEN"):
        expected_file.write_text(actual, encoding="utf-8")
    assert expected_file.is_file(), f"missing {expected_file.name}"
    assert actual == expected_file.read_text(encoding="utf-8")


@pytest.mark.parametrize("spec_file", CASES, ids=lambda p: p.stem)
def test_every_invalid_spec_diagnostic_has_a_position_in_its_file(
    spec_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(INVALID)
    lines = spec_file.read_bytes().split(b"\n")
    for diagnostic in _load_error(spec_file).diagnostics:
        assert diagnostic.pos is not None, str(diagnostic)
        assert diagnostic.pos.file == spec_file.name
        assert 1 <= diagnostic.pos.line <= max(len(lines), 1), str(diagnostic)
        assert diagnostic.pos.column >= 1


def test_the_suite_covers_at_least_thirty_failure_modes_and_has_no_orphans() -> None:
    assert len(CASES) >= 30
    expected = {p.name.removesuffix(".expected.txt") for p in INVALID.glob("*.expected.txt")}
    assert expected == {p.stem for p in CASES}


def test_billion_laughs_fails_fast(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(INVALID)
    started = time.process_time()
    error = _load_error(INVALID / "billion-laughs.yaml")
    assert time.process_time() - started < 1.0
    assert "through aliases" in error.diagnostics[0].message


def test_an_oversized_file_is_refused_before_parsing(tmp_path: Path) -> None:
    raw = b"version: 1\n" + b"# padding\n" * (MAX_SPEC_BYTES // 10 + 1)
    started = time.process_time()
    with pytest.raises(SpecError) as caught:
        load_spec_text(raw, tmp_path / "sandboxes.yaml", {})
    assert time.process_time() - started < 0.5
    assert [str(d) for d in caught.value.diagnostics] == [
        f"sandboxes.yaml:1:1: file is {len(raw)} bytes; a spec may be at most 1 MiB"
    ]


def test_random_binary_input_is_refused_with_its_position(tmp_path: Path) -> None:
    raw = bytes(range(256)) * 4
    with pytest.raises(SpecError) as caught:
        load_spec_text(raw, tmp_path / "sandboxes.yaml", {})
    assert [str(d) for d in caught.value.diagnostics] == [
        "sandboxes.yaml:1:1: file is binary (contains NUL bytes), not YAML"
    ]


def test_deep_nesting_is_refused_not_a_recursion_crash(tmp_path: Path) -> None:
    raw = b"version: 1\nx-deep: " + b"[" * 5000 + b"]" * 5000 + b"\n"
    with pytest.raises(SpecError) as caught:
        load_spec_text(raw, tmp_path / "sandboxes.yaml", {})
    # libyaml reads it and the builder's depth limit names the place; a parser that recursed
    # too deep says so at 1:1. Either way a positioned error, never a RecursionError.
    message = caught.value.diagnostics[0].message
    assert "nested" in message
    assert "deep" in message
    assert caught.value.diagnostics[0].pos is not None
