"""Compose-style interpolation: every form, `$$`, nesting, errors, and `.env` precedence."""

from __future__ import annotations

from pathlib import Path

import pytest

from asbx.errors import SpecError
from asbx.spec.interpolation import (
    InterpolationError,
    interpolate,
    interpolate_tree,
)
from asbx.spec.loader import load_spec

ENV = {"SET": "value", "EMPTY": "", "USER": "ada", "TAG": "3.12"}


@pytest.mark.parametrize(
    ("text", "result"),
    [
        ("plain", "plain"),
        ("$SET", "value"),
        ("${SET}", "value"),
        ("$UNSET", ""),
        ("${UNSET}", ""),
        ("a-${SET}-b", "a-value-b"),
        ("$SET.$USER", "value.ada"),
        ("${SET}${USER}", "valueada"),
        # ${VAR:-default}: default when unset OR empty
        ("${UNSET:-d}", "d"),
        ("${EMPTY:-d}", "d"),
        ("${SET:-d}", "value"),
        # ${VAR-default}: default only when unset
        ("${UNSET-d}", "d"),
        ("${EMPTY-d}", ""),
        ("${SET-d}", "value"),
        # ${VAR:+replacement} / ${VAR+replacement}
        ("${SET:+r}", "r"),
        ("${EMPTY:+r}", ""),
        ("${EMPTY+r}", "r"),
        ("${UNSET+r}", ""),
        # required forms pass through when set
        ("${SET:?msg}", "value"),
        ("${SET?msg}", "value"),
        ("${EMPTY?msg}", ""),
        # $$ is a literal dollar, and is not re-interpolated
        ("$$", "$"),
        ("$$SET", "$SET"),
        ("cost: $$5", "cost: $5"),
        ("$${SET}", "${SET}"),
        # nested defaults, evaluated lazily
        ("${UNSET:-${SET}}", "value"),
        ("${UNSET:-${ALSO_UNSET:-deep}}", "deep"),
        ("${SET:-${MISSING:?never evaluated}}", "value"),
        ("python:${TAG:-3.11}-slim", "python:3.12-slim"),
        ("${UNSET:-a b c}", "a b c"),
        ("${UNSET:-}", ""),
        ("${UNSET:-{braces}}", "{braces}"),
    ],
)
def test_interpolation_forms(text: str, result: str) -> None:
    assert interpolate(text, ENV) == result


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("${UNSET:?set it first}", "required variable UNSET is missing: set it first"),
        ("${EMPTY:?set it first}", "required variable EMPTY is missing: set it first"),
        ("${UNSET?}", "required variable UNSET is missing: it must be set"),
        ("${UNSET:?need ${SET}}", "required variable UNSET is missing: need value"),
        ("${", 'invalid interpolation "${" (use ${VAR}, or $$ for a literal $)'),
        ("x ${ y", 'invalid interpolation "${ y" (use ${VAR}, or $$ for a literal $)'),
        ("${SET", 'invalid interpolation "${SET" (use ${VAR}, or $$ for a literal $)'),
        ("${}", 'invalid interpolation "${}" (use ${VAR} or ${VAR:-default})'),
        ("${1X}", 'invalid interpolation "${1X}" (use ${VAR} or ${VAR:-default})'),
        ("${A B}", 'invalid interpolation "${A B}" (use ${VAR} or ${VAR:-default})'),
        ("${SET:x}", 'invalid interpolation "${SET:x}" (use ${VAR} or ${VAR:-default})'),
    ],
)
def test_interpolation_errors(text: str, message: str) -> None:
    with pytest.raises(InterpolationError) as caught:
        interpolate(text, ENV)
    assert str(caught.value) == message


def test_interpolate_tree_touches_values_not_keys_and_reports_paths() -> None:
    errors: list[tuple[tuple[str | int, ...], str]] = []
    data = {"$SET": ["$SET", {"k": "${BAD"}], "n": 5, "t": True}
    result = interpolate_tree(data, ENV, lambda path, msg: errors.append((path, msg)))
    assert result == {"$SET": ["value", {"k": "${BAD"}], "n": 5, "t": True}
    assert errors == [(("$SET", 1, "k"),
                       'invalid interpolation "${BAD" (use ${VAR}, or $$ for a literal $)')]


def test_dotenv_error_is_positioned(tmp_path: Path) -> None:
    spec = _project(tmp_path, "TOKEN: ${TOKEN}", "A=1\n# c\nNOT A LINE\n")
    with pytest.raises(SpecError) as caught:
        load_spec(spec, environ={})
    assert [str(d.pos) + ": " + d.message for d in caught.value.diagnostics if d.pos
            and d.pos.file == ".env"] == [
        '.env:3:1: key "NOT A LINE" cannot contain a space']


def test_an_unset_variable_in_dotenv_is_a_positioned_warning(tmp_path: Path) -> None:
    spec = _project(tmp_path, "TOKEN: ${TOKEN}", "# c\nTOKEN=pre-${MISSING}\n")
    loaded = load_spec(spec, environ={})
    assert loaded.spec.sandboxes["web"].env == {"TOKEN": "pre-"}
    assert [f"{w.pos}: {w.message}" for w in loaded.warnings] == [
        '.env:2:1: the "MISSING" variable is not set: it becomes an empty string']


def test_env_file_expands_from_the_environment_and_dotenv(tmp_path: Path) -> None:
    spec = tmp_path / "sandboxes.yaml"
    spec.write_text("version: 1\nsandboxes:\n  web:\n    image: busybox\n"
                    "    env_file: [app.env]\n", encoding="utf-8")
    (tmp_path / ".env").write_text("HOST=db\n", encoding="utf-8")
    (tmp_path / "app.env").write_text('URL="pg://${HOST}:${PORT:-5432}"\nUSER\n',
                                      encoding="utf-8")
    loaded = load_spec(spec, environ={"USER": "ada"})
    assert loaded.spec.sandboxes["web"].env == {"URL": "pg://db:5432", "USER": "ada"}


def _project(tmp_path: Path, env_line: str, dotenv: str | None) -> Path:
    spec = tmp_path / "sandboxes.yaml"
    spec.write_text(
        "version: 1\nsandboxes:\n  web:\n    image: busybox\n"
        f"    env:\n      {env_line}\n",
        encoding="utf-8",
    )
    if dotenv is not None:
        (tmp_path / ".env").write_text(dotenv, encoding="utf-8")
    return spec


def test_dotenv_beside_the_spec_supplies_variables(tmp_path: Path) -> None:
    spec = _project(tmp_path, "TOKEN: ${TOKEN}", "TOKEN=from-dotenv\n")
    assert load_spec(spec, environ={}).spec.sandboxes["web"].env == {"TOKEN": "from-dotenv"}


def test_the_environment_wins_over_dotenv(tmp_path: Path) -> None:
    spec = _project(tmp_path, "TOKEN: ${TOKEN}", "TOKEN=from-dotenv\n")
    loaded = load_spec(spec, environ={"TOKEN": "from-env"})
    assert loaded.spec.sandboxes["web"].env == {"TOKEN": "from-env"}


def test_an_empty_environment_value_still_wins_over_dotenv(tmp_path: Path) -> None:
    spec = _project(tmp_path, "TOKEN: ${TOKEN-unset}", "TOKEN=from-dotenv\n")
    assert load_spec(spec, environ={"TOKEN": ""}).spec.sandboxes["web"].env == {"TOKEN": ""}


def test_a_required_variable_is_satisfied_by_dotenv(tmp_path: Path) -> None:
    spec = _project(tmp_path, "TOKEN: ${TOKEN:?set TOKEN}", "TOKEN=t\n")
    assert load_spec(spec, environ={}).spec.sandboxes["web"].env == {"TOKEN": "t"}


def test_an_unreadable_dotenv_is_a_positioned_spec_error(tmp_path: Path) -> None:
    spec = _project(tmp_path, "TOKEN: x", None)
    (tmp_path / ".env").write_bytes(b"TOKEN=\xff\xfe\n")
    with pytest.raises(SpecError) as caught:
        load_spec(spec, environ={})
    assert [str(d) for d in caught.value.diagnostics] == [
        '.env:1:1: cannot read ".env": it is not UTF-8 text'
    ]


def test_interpolation_applies_to_every_string_value(tmp_path: Path) -> None:
    spec = tmp_path / "sandboxes.yaml"
    spec.write_text(
        "version: 1\n"
        "sandboxes:\n"
        "  web:\n"
        "    image: docker.io/library/python:${PY:-3.12}-slim\n"
        "    memory: ${MEM}\n"
        "    setup: ['echo $$HOME']\n",
        encoding="utf-8",
    )
    box = load_spec(spec, environ={"MEM": "1G"}).spec.sandboxes["web"]
    assert box.image == "docker.io/library/python:3.12-slim"
    assert box.memory == 1 << 30
    assert box.setup == (("/bin/sh", "-c", "echo $HOME"),)


@pytest.mark.parametrize(
    ("text", "unset"),
    [
        ("$NOPE", {"NOPE"}),
        ("${NOPE}/${ALSO}", {"NOPE", "ALSO"}),
        ("${NOPE:-default} ${NOPE-d} ${NOPE:+x} ${NOPE+x}", set()),  # said what to do instead
        ("${SET} $EMPTY ${EMPTY}", set()),  # set, even if empty
        ("${NOPE:-${INNER}}", {"INNER"}),
        ("$$NOPE", set()),
    ],
)
def test_unset_plain_references_are_collected(text: str, unset: set[str]) -> None:
    found: set[str] = set()
    interpolate(text, ENV, found)
    assert found == unset


def test_an_unset_variable_is_a_positioned_warning_not_an_error(tmp_path: Path) -> None:
    spec = _project(tmp_path, 'TOKEN: "${TOKEN}"\n      OTHER: "${OTHER:-x}"', "")
    loaded = load_spec(spec, environ={})
    assert loaded.spec.sandboxes["web"].env == {"TOKEN": "", "OTHER": "x"}
    (warning,) = loaded.warnings
    assert warning.message == 'the "TOKEN" variable is not set: it becomes an empty string'
    assert warning.path == "sandboxes.web.env.TOKEN"
    assert warning.hint is not None
    assert "${TOKEN:-default}" in warning.hint
    assert load_spec(spec, environ={"TOKEN": "t"}).warnings == ()
