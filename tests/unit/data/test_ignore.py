"""Ignore rules: gitignore semantics for workspaces, Docker's for build contexts."""

from __future__ import annotations

from pathlib import Path

import pytest

from asbx.data.ignore import (
    dockerignore_file,
    dockerignore_rules,
    gitignore_rules,
    read_ignore_file,
)


@pytest.mark.parametrize(
    ("lines", "path", "excluded"),
    [
        (["*"], "a/b/c.txt", True),  # a parent matches: excluded (pathspec alone says no)
        (["sub/*"], "sub/x/y.txt", True),
        (["*.md"], "doc/x.md", False),
        (["**/*.md"], "doc/x.md", True),
        (["doc", "!doc/keep"], "doc/keep/inner.txt", False),
        (["doc", "!doc/keep", "doc/keep/no"], "doc/keep/no", True),
        (["!x"], "x", False),
        (["x", "!x"], "x", False),
        (["!x", "x"], "x", True),
        (["/abs/path"], "abs/path/f", True),
        (["a//b/"], "a/b", True),
        ([], "anything", False),
    ],
)
def test_docker_rules(lines: list[str], path: str, excluded: bool) -> None:
    assert dockerignore_rules(lines).excludes(path) is excluded


def test_docker_rules_prune_only_without_exceptions() -> None:
    assert dockerignore_rules(["node_modules"]).prune("node_modules")
    assert not dockerignore_rules(["node_modules", "!node_modules/keep"]).prune("node_modules")
    assert not dockerignore_rules(["x"]).prune("node_modules")


@pytest.mark.parametrize(
    ("lines", "path", "is_dir", "excluded"),
    [
        (["*.log"], "deep/x.log", False, True),  # git: no slash means any depth
        (["build/"], "build", True, True),
        (["build/"], "build", False, False),  # directories only
        (["/top"], "sub/top", False, False),
        (["*.log", "!keep.log"], "keep.log", False, False),
        (["# comment"], "# comment", False, False),
    ],
)
def test_git_rules(lines: list[str], path: str, is_dir: bool, excluded: bool) -> None:
    assert gitignore_rules(lines).excludes(path, is_dir=is_dir) is excluded


def test_read_ignore_file_drops_bom_and_tolerates_absence(tmp_path: Path) -> None:
    (tmp_path / "ignore").write_bytes(b"\xef\xbb\xbf*.log\nbuild/\n")
    assert read_ignore_file(tmp_path / "ignore") == ["*.log", "build/"]
    assert read_ignore_file(tmp_path / "missing") == []


def test_dockerfile_specific_ignore_file_is_preferred(tmp_path: Path) -> None:
    (tmp_path / "app.Dockerfile.dockerignore").write_text("x\n")
    assert dockerignore_file(tmp_path, tmp_path / "app.Dockerfile") == (
        tmp_path / "app.Dockerfile.dockerignore"
    )
    assert dockerignore_file(tmp_path, tmp_path / "Dockerfile") == tmp_path / ".dockerignore"
    assert dockerignore_file(tmp_path, None) == tmp_path / ".dockerignore"
