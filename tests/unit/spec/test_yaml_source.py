"""The positioned YAML reader: source map, merge keys, duplicate keys, alias and size bounds."""

from __future__ import annotations

import pytest

from asbx.diagnostics import SourcePos
from asbx.spec import yaml_source
from asbx.spec.yaml_source import (
    MAX_NODES,
    MAX_SPEC_BYTES,
    YamlReadError,
    decode_text,
    load_yaml,
)

DOC = """\
version: 1
sandboxes:
  web:
    image: busybox
    volumes:
      - cache:/cache
      - {volume: data, target: /data}
"""


def _errors(text: str) -> list[str]:
    with pytest.raises(YamlReadError) as caught:
        load_yaml(text, "f.yaml")
    return [str(d) for d in caught.value.diagnostics]


def test_values_and_keys_have_one_based_positions() -> None:
    data, smap = load_yaml(DOC, "f.yaml")
    assert data["sandboxes"]["web"]["image"] == "busybox"
    assert smap.values[()] == SourcePos("f.yaml", 1, 1)
    assert smap.keys[("sandboxes",)] == SourcePos("f.yaml", 2, 1)
    assert smap.keys[("sandboxes", "web")] == SourcePos("f.yaml", 3, 3)
    assert smap.keys[("sandboxes", "web", "image")] == SourcePos("f.yaml", 4, 5)
    assert smap.values[("sandboxes", "web", "image")] == SourcePos("f.yaml", 4, 12)
    assert smap.values[("sandboxes", "web", "volumes", 0)] == SourcePos("f.yaml", 6, 9)
    assert smap.values[("sandboxes", "web", "volumes", 1, "target")] == SourcePos("f.yaml", 7, 32)


def test_value_pos_falls_back_to_the_nearest_ancestor() -> None:
    _, smap = load_yaml(DOC, "f.yaml")
    assert smap.value_pos(("sandboxes", "web", "volumes", 0, "target")) == SourcePos(
        "f.yaml", 6, 9
    )
    assert smap.key_pos(("sandboxes", "web", "nope")) == SourcePos("f.yaml", 4, 5)


def test_merge_keys_fill_in_without_overriding_explicit_keys() -> None:
    text = (
        "base: &base {image: busybox, cpus: 1, memory: 1G}\n"
        "extra: &extra {cpus: 3, user: me}\n"
        "web:\n"
        "  <<: [*base, *extra]\n"
        "  cpus: 2\n"
    )
    data, smap = load_yaml(text, "f.yaml")
    assert data["web"] == {"cpus": 2, "image": "busybox", "memory": "1G", "user": "me"}
    assert smap.keys[("web", "cpus")] == SourcePos("f.yaml", 5, 3)


def test_a_merge_of_a_scalar_is_an_error() -> None:
    assert _errors("web:\n  <<: 5\n") == [
        "f.yaml:2:7: web: a merge key (<<) needs a mapping or a list of mappings"
    ]


def test_duplicate_keys_are_errors_naming_the_first_line() -> None:
    errors = _errors("a: 1\nb:\n  c: 1\n  c: 2\na: 3\n")
    hint = "  hint: YAML keeps only one of them; remove or merge the other"
    assert errors == [
        f'f.yaml:4:3: b: duplicate key "c" (first defined at line 3)\n{hint}',
        f'f.yaml:5:1: duplicate key "a" (first defined at line 1)\n{hint}',
    ]


def test_keys_that_are_not_scalars_are_refused() -> None:
    assert _errors("? [a]\n: 1\n~: 2\n") == [
        "f.yaml:1:3: mapping keys must be plain strings",
        "f.yaml:3:1: mapping keys must be plain strings",
    ]


def test_numeric_keys_become_strings() -> None:
    data, _ = load_yaml("1: a\n2.5: b\n", "f.yaml")
    assert data == {"1": "a", "2.5": "b"}


def test_alias_expansion_is_bounded() -> None:
    levels = ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
    for index in range(1, 9):
        prev, name = chr(ord("a") + index - 1), chr(ord("a") + index)
        levels.append(f"{name}: &{name} [{', '.join([f'*{prev}'] * 10)}]")
    errors = _errors("\n".join(levels) + "\n")
    assert len(errors) == 1
    assert f"more than {MAX_NODES} values through aliases" in errors[0]


def test_a_large_document_without_aliases_gets_its_own_message(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(yaml_source, "MAX_NODES", 50)
    text = "a: [" + ", ".join(["1"] * 60) + "]\n"
    assert _errors(text) == [
        f"f.yaml:1:{4 + 3 * 48 + 1}: document has more than 50 values; "
        "refusing to read it\n  hint: a spec this large is not supported"
    ]


def test_a_self_referencing_alias_is_refused() -> None:
    errors = _errors("a: &a [*a]\n")
    assert errors == [
        "f.yaml:1:4: a: values are nested more than 64 levels deep\n"
        "  hint: is an alias (*name) used inside itself?"
    ]


def test_merge_key_bombs_are_bounded() -> None:
    levels = ["a: &a {}"]
    for index in range(1, 9):
        prev, name = chr(ord("a") + index - 1), chr(ord("a") + index)
        levels.append(f"{name}: &{name} {{<<: [{', '.join([f'*{prev}'] * 10)}]}}")
    assert "through aliases" in _errors("\n".join(levels) + "\n")[0]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a: [1, 2\n", "f.yaml:2:1: invalid YAML: the [ opened at line 1 column 4 is not closed"
         " before this token\n  hint: close it with ] or separate its items with commas"),
        ("a: *missing\n", "f.yaml:1:4: invalid YAML: found undefined alias 'missing'"),
        ("a: 1\n b: 2\n", "f.yaml:2:3: invalid YAML: unexpected ':'; this line is indented deeper"
         " than line 1\n  hint: indent keys of one mapping to the same column, or put a nested"
         " mapping under a key that ends with ':'"),
        ("b: !custom 1\n", 'f.yaml:1:4: b: invalid value: unsupported YAML tag "!custom"'),
        ("a: !!set {x}\n", 'f.yaml:1:4: a: invalid value: unsupported YAML tag "!!set"'),
        ("a: 2001-02-30\n", "f.yaml:1:4: a: invalid value: day is out of range for month"),
        ("a: 1" + "0" * 5000 + "\n", "f.yaml:1:4: a: invalid value: number has too many digits"),
    ],
)
def test_yaml_level_problems_carry_positions(text: str, expected: str) -> None:
    assert _errors(text) == [expected]


def test_empty_and_comment_only_documents_are_refused() -> None:
    expected = ["f.yaml:1:1: file is empty; a spec needs at least `version: 1`"]
    assert _errors("") == expected
    assert _errors("# just a comment\n\n") == expected


def test_decode_text_strips_a_bom_and_refuses_binary_and_bad_utf8() -> None:
    assert decode_text("\ufeffversion: 1\n".encode(), "f.yaml") == "version: 1\n"
    with pytest.raises(YamlReadError) as binary:
        decode_text(b"version: 1\nab\x00", "f.yaml")
    assert [str(d) for d in binary.value.diagnostics] == [
        "f.yaml:2:3: file is binary (contains NUL bytes), not YAML"
    ]
    with pytest.raises(YamlReadError) as latin1:
        decode_text("version: 1\nname: é\n".encode("latin-1"), "f.yaml")
    assert [str(d) for d in latin1.value.diagnostics] == [
        "f.yaml:2:7: file is not valid UTF-8 text (byte 0xe9)\n  hint: save the file as UTF-8"
    ]


def test_decode_text_refuses_oversized_input() -> None:
    with pytest.raises(YamlReadError) as caught:
        decode_text(b" " * (MAX_SPEC_BYTES + 1), "f.yaml")
    assert caught.value.diagnostics.items[0].message.endswith("a spec may be at most 1 MiB")


# -- libyaml and the pure-Python parser read the same data, positions and problems

REPO_ROOT = __import__("pathlib").Path(__file__).resolve().parents[3]
SPEC_FILES = ("examples/*/sandboxes.yaml", "tests/fixtures/specs/*/*.yaml")
SAME_READING = [
    DOC,
    "a: &base {x: 1, y: [1, 2]}\nb:\n  <<: *base\n  y: 3\nc: *base\n",
    "s: |\n  line one\n  line two\nt: >-\n  folded\n  text\nu: 'it''s'\nv: \"tab\\there\"\n",
    "n: [1, 2.5, 0x1f, 1e3, .inf, ~, null, true, no, '007']\n\"quoted key\": {a: b}\n",
    "# comment\nversion: 1  # trailing\nempty:\nlist:\n- a\n-   b\n- {c: d}\n",
    "\ufeffversion: 1\nname: x\n",
]


def _read(text: str) -> object:
    try:
        data, smap = load_yaml(text, "f.yaml")
    except YamlReadError as exc:
        return ("error", [(d.message, d.pos) for d in exc.diagnostics])
    return data, smap.values, smap.keys


@pytest.mark.parametrize("text", [
    *SAME_READING,
    *(p.read_bytes().decode("utf-8", "replace") for pattern in SPEC_FILES
      for p in sorted(REPO_ROOT.glob(pattern))),
    "a: 1\na: 2\n",  # duplicate key: the builder's diagnostic, from either parser
    "a: !!python/object:os.system x\n",  # unsupported tag
    "a: [1, 2\n",  # a syntax error: always the pure-Python parser's message
    "a:\tb\n\x01",  # a control character
])
def test_libyaml_and_the_pure_parser_read_alike(text: str, monkeypatch: pytest.MonkeyPatch) -> None:
    fast = _read(text)
    monkeypatch.setattr(yaml_source, "_compose_fast", lambda text: None)
    assert fast == _read(text)


def test_libyaml_is_used_when_the_text_parses() -> None:
    assert yaml_source._compose_fast(DOC) is not None
    assert yaml_source._compose_fast("a: [1, 2\n") is None
