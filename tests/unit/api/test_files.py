"""Workspace file access never leaves the workspace: `..`, absolute paths, symlinks out."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from asbx.api.files import UnsafePathError, delete_file, read_file, split_path, write_file
from asbx.errors import NotFoundError


@pytest.fixture
def layout(tmp_path: Path) -> tuple[Path, Path]:
    root = tmp_path / "ws"
    outside = tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    (outside / "secret").write_text("TOPSECRET")
    (root / "dir").mkdir()
    (root / "out").symlink_to(outside)
    (root / "secret-link").symlink_to(outside / "secret")
    (root / "dir" / "up").symlink_to("..")
    os.mkfifo(root / "fifo")
    return root, outside


def test_round_trip_makes_parent_directories(layout: tuple[Path, Path]) -> None:
    root, _ = layout
    write_file(root, "a/b/c.txt", b"data")
    assert read_file(root, "a/b/c.txt") == b"data"
    assert read_file(root, "./a//b/c.txt") == b"data"
    delete_file(root, "a/b/c.txt")
    with pytest.raises(NotFoundError):
        read_file(root, "a/b/c.txt")


@pytest.mark.parametrize("path", [
    "", ".", "/etc/passwd", "../outside/secret", "dir/../../outside/secret", "a/..",
    "dir\\..\\x", "nul\0byte",
])
def test_paths_that_could_leave_are_refused_before_any_access(path: str) -> None:
    with pytest.raises(UnsafePathError):
        split_path(path)


@pytest.mark.parametrize("path", ["out/secret", "secret-link", "dir/up/secret-link",
                                  "out/new-file", "fifo"])
def test_symlinks_and_special_files_are_refused(layout: tuple[Path, Path], path: str) -> None:
    root, outside = layout
    with pytest.raises(UnsafePathError):
        read_file(root, path)
    with pytest.raises(UnsafePathError):
        write_file(root, path, b"OVERWRITTEN")
    assert sorted(p.name for p in outside.iterdir()) == ["secret"]
    assert (outside / "secret").read_text() == "TOPSECRET"


def test_deleting_a_symlink_removes_the_link_not_its_target(layout: tuple[Path, Path]) -> None:
    root, outside = layout
    delete_file(root, "secret-link")
    assert not (root / "secret-link").is_symlink()
    assert (outside / "secret").read_text() == "TOPSECRET"
    with pytest.raises(UnsafePathError):
        delete_file(root, "out/secret")
