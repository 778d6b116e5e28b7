"""What Docker would refuse in a `.dockerignore` or in a Dockerfile's FROM/ARG lines is a
validate-time diagnostic at its file:line."""

from __future__ import annotations

from pathlib import Path

import pytest

from asbx.errors import SpecError
from asbx.spec.loader import load_spec


def _project(tmp_path: Path, ignore_name: str, ignore_text: str, dockerfile: str = "") -> Path:
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "Dockerfile").write_text("FROM busybox\n", encoding="utf-8")
    (tmp_path / "app" / ignore_name).write_text(ignore_text, encoding="utf-8")
    spec = tmp_path / "sandboxes.yaml"
    extra = f"\n      dockerfile: {dockerfile}" if dockerfile else ""
    spec.write_text(f"version: 1\nimages:\n  app:\n    build:\n      context: ./app{extra}\n",
                    encoding="utf-8")
    return spec


@pytest.mark.parametrize(
    ("ignore_name", "text", "dockerfile", "expected"),
    [
        (".dockerignore", "# c\nnode_modules\n[\n", "",
         'app/.dockerignore:3:1: images.app.build.context: syntax error in pattern "[": '
         "a malformed [...] character class"),
        (".dockerignore", "!\n", "", 'app/.dockerignore:1:1: images.app.build.context: '
         'illegal exclusion pattern: "!"'),
        ("Dockerfile.dockerignore", "ok\n[Local-Only]/\n", "Dockerfile",
         'app/Dockerfile.dockerignore:2:1: images.app.build.context: syntax error in pattern '
         '"[Local-Only]": bad character range l-O'),
    ],
)
def test_rejected_pattern_is_reported_at_its_line(tmp_path: Path, ignore_name: str, text: str,
                                                  dockerfile: str, expected: str) -> None:
    spec = _project(tmp_path, ignore_name, text, dockerfile)
    with pytest.raises(SpecError) as caught:
        load_spec(spec, environ={})
    assert [f"{d.pos}: {d.path}: {d.message}" for d in caught.value.diagnostics] == [expected]


def test_valid_patterns_load(tmp_path: Path) -> None:
    spec = _project(tmp_path, ".dockerignore", "**/*.pyc\n!keep.pyc\n[\\]a]\n")
    assert "app" in load_spec(spec, environ={}).spec.images


def test_dockerfile_error_is_reported_at_its_line(tmp_path: Path) -> None:
    spec = _project(tmp_path, ".dockerignore", "")
    (tmp_path / "app" / "Dockerfile").write_text(
        "# syntax=docker/dockerfile:1\nARG TAG=${TAG:?set TAG}\nFROM busybox:$TAG\n",
        encoding="utf-8")
    with pytest.raises(SpecError) as caught:
        load_spec(spec, environ={})
    # the space splits the ARG into two words, as in BuildKit: quote the message to keep it
    assert [f"{d.pos}: {d.path}: {d.message}" for d in caught.value.diagnostics] == [
        'app/Dockerfile:2:1: images.app.build.context: Dockerfile: ARG: failed to process '
        '"${TAG:?set": syntax error: missing \'}\'']


def test_dockerfile_arg_defaults_make_image_dependencies(tmp_path: Path) -> None:
    (tmp_path / "base").mkdir()
    (tmp_path / "base" / "Dockerfile").write_text("FROM busybox\n", encoding="utf-8")
    spec = _project(tmp_path, ".dockerignore", "")
    (tmp_path / "app" / "Dockerfile").write_text('ARG BASE="base"\nFROM ${BASE}\n',
                                                 encoding="utf-8")
    spec.write_text(spec.read_text(encoding="utf-8")
                    + "  base:\n    build:\n      context: ./base\n", encoding="utf-8")
    order = [str(address) for address in load_spec(spec, environ={}).graph.order()]
    assert order.index("image.base") < order.index("image.app")
