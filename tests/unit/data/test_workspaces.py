"""Workspaces: the path layout, seeding from a host directory, and guarded removal."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from asbx.data import workspaces
from asbx.data.workspaces import remove_workspace, seed_workspace, workspace_path
from asbx.errors import DataError
from tests.unit.data.trees import describe_tree, make_tree


@pytest.fixture
def source(tmp_path: Path) -> Path:
    root = make_tree(
        tmp_path / "src",
        {
            "app.py": "print('app')\n",
            "run.sh": "#!/bin/sh\n",
            "private.pem": "key",
            "debug.log": "noise",
            "keep.log": "wanted",
            "build/out.o": "obj",
            "docs/build": "a file named build",
            "cache/blob": "x",
            ".git/HEAD": "ref: refs/heads/main\n",
            "empty/": "",
            "nested/deep/file.txt": "deep",
        },
    )
    (root / "run.sh").chmod(0o755)
    (root / "private.pem").chmod(0o600)
    return root


def seeded_names(dest: Path) -> set[str]:
    return set(describe_tree(dest))


def test_workspace_path_layout(tmp_path: Path) -> None:
    assert workspace_path(tmp_path, "app-1a2b", "web") == (
        tmp_path / "projects/app-1a2b/sandboxes/web/workspace"
    )


@pytest.mark.parametrize("name", ["", ".", "..", "a/b", "a\\b", "x\0y"])
def test_workspace_path_refuses_unsafe_names(tmp_path: Path, name: str) -> None:
    with pytest.raises(DataError, match="cannot be used as a directory name"):
        workspace_path(tmp_path, name, "web")
    with pytest.raises(DataError, match="cannot be used as a directory name"):
        workspace_path(tmp_path, "app", name)


def test_seed_copies_everything_without_ignores(source: Path, tmp_path: Path) -> None:
    result = seed_workspace(source, tmp_path / "ws", include=["*.pem"])

    assert describe_tree(tmp_path / "ws") == describe_tree(source)
    assert result.files == 10
    assert result.bytes == sum(p.stat().st_size for p in source.rglob("*") if p.is_file())
    assert result.skipped_links == ()


SECRETS = {
    ".env": "TOKEN=1", ".env.local": "TOKEN=2", ".env.example": "TOKEN=", "key.pem": "k",
    "tls/server.key": "k", ".ssh/id_rsa": "k", ".ssh/id_rsa.pub": "pub", "id_ed25519": "k",
    ".npmrc": "t", ".pypirc": "t", ".netrc": "t", "cert.p12": "k", "config/.env": "c",
    "src/app.py": "code",
}


def test_seed_leaves_secret_files_out_unless_included(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "secrets", SECRETS)
    result = seed_workspace(root, tmp_path / "ws")
    left_out = {".env", ".env.local", "key.pem", "tls/server.key", ".ssh/id_rsa", "id_ed25519",
                ".npmrc", ".pypirc", ".netrc", "cert.p12", "config/.env"}
    assert set(result.skipped_secrets) == left_out
    copied = {p for p, (kind, *_) in describe_tree(tmp_path / "ws").items() if kind == "file"}
    assert copied == set(SECRETS) - left_out  # .env.example, id_rsa.pub, src/app.py
    again = seed_workspace(root, tmp_path / "ws2", include=["config/.env", "*.pem"])
    assert set(again.skipped_secrets) == left_out - {"config/.env", "key.pem"}
    assert (tmp_path / "ws2/config/.env").read_text() == "c"


def test_plan_lists_the_same_secret_files_seeding_leaves_out(tmp_path: Path) -> None:
    from asbx.data.secrets import secrets_in_source

    root = make_tree(tmp_path / "secrets", SECRETS)
    seeded = seed_workspace(root, tmp_path / "ws", ignore=["tls/"], include=[".npmrc"])
    assert secrets_in_source(root, ["tls/"], [".npmrc"]) == tuple(sorted(seeded.skipped_secrets))
    assert "tls/server.key" not in seeded.skipped_secrets  # ignored: nothing to say
    assert secrets_in_source(tmp_path / "missing") == ()


def test_seed_keeps_modes_and_mtimes(source: Path, tmp_path: Path) -> None:
    os.utime(source / "app.py", ns=(10**18, 10**18))
    seed_workspace(source, tmp_path / "ws", include=["private.pem"])

    assert stat.S_IMODE((tmp_path / "ws/run.sh").stat().st_mode) == 0o755
    assert stat.S_IMODE((tmp_path / "ws/private.pem").stat().st_mode) == 0o600
    assert (tmp_path / "ws/app.py").stat().st_mtime_ns == 10**18


def test_seed_drops_setid_bits(source: Path, tmp_path: Path) -> None:
    (source / "run.sh").chmod(0o6755)
    seed_workspace(source, tmp_path / "ws")
    assert stat.S_IMODE((tmp_path / "ws/run.sh").stat().st_mode) == 0o755


def test_seed_honours_ignore_patterns(source: Path, tmp_path: Path) -> None:
    seed_workspace(source, tmp_path / "ws", ignore=["*.log", "!keep.log", "build/", "/cache"])

    names = seeded_names(tmp_path / "ws")
    assert "debug.log" not in names
    assert "keep.log" in names
    assert "build" not in names  # the directory and all below it
    assert "docs/build" in names  # `build/` matches directories only (gitignore)
    assert "cache" not in names
    assert ".git/HEAD" in names  # .git is not special unless ignored


def test_seed_honours_asbxignore(source: Path, tmp_path: Path) -> None:
    (source / ".asbxignore").write_text("# local state\n.git/\nnested/**/*.txt\n")
    seed_workspace(source, tmp_path / "ws", ignore=["*.pem"])

    names = seeded_names(tmp_path / "ws")
    assert ".git" not in names
    assert "nested/deep/file.txt" not in names
    assert "nested/deep" in names
    assert "private.pem" not in names
    assert ".asbxignore" in names


def test_seed_skips_symlinks_escaping_the_source(source: Path, tmp_path: Path) -> None:
    (tmp_path / "secret").write_text("host secret")
    (source / "abs-out").symlink_to(tmp_path / "secret")
    (source / "rel-out").symlink_to("../secret")
    (source / "nested/chain").symlink_to("../abs-out")  # inside, but resolves outside
    (source / "etc").symlink_to("/etc")

    result = seed_workspace(source, tmp_path / "ws")

    assert set(result.skipped_links) == {"abs-out", "rel-out", "nested/chain", "etc"}
    names = seeded_names(tmp_path / "ws")
    assert names.isdisjoint({"abs-out", "rel-out", "nested/chain", "etc"})


def test_seed_keeps_symlinks_inside_and_rewrites_absolute_ones(
    source: Path, tmp_path: Path
) -> None:
    (source / "current").symlink_to("app.py")
    (source / "nested/up").symlink_to("../docs")
    (source / "abs-in").symlink_to(source / "nested/deep/file.txt")
    (source / "nested/detour").symlink_to(f"../../{source.name}/app.py")  # leaves and returns

    result = seed_workspace(source, tmp_path / "ws")

    ws = tmp_path / "ws"
    assert result.skipped_links == ()
    assert os.readlink(ws / "current") == "app.py"
    assert os.readlink(ws / "nested/up") == "../docs"
    assert os.readlink(ws / "abs-in") == "nested/deep/file.txt"
    assert os.readlink(ws / "nested/detour") == "../app.py"
    assert (ws / "nested/detour").read_text() == "print('app')\n"


def test_seed_skips_fifos(source: Path, tmp_path: Path) -> None:
    os.mkfifo(source / "pipe")
    result = seed_workspace(source, tmp_path / "ws")
    assert result.skipped_special == ("pipe",)
    assert not (tmp_path / "ws/pipe").exists()


def test_seed_refuses_a_non_empty_destination(source: Path, tmp_path: Path) -> None:
    make_tree(tmp_path / "ws", {"mine.txt": "keep"})

    with pytest.raises(DataError, match="not empty"):
        seed_workspace(source, tmp_path / "ws")
    assert seeded_names(tmp_path / "ws") == {"mine.txt"}


def test_seed_into_an_existing_empty_directory(source: Path, tmp_path: Path) -> None:
    (tmp_path / "ws").mkdir()
    seed_workspace(source, tmp_path / "ws")
    assert (tmp_path / "ws/app.py").exists()


def test_seed_refuses_a_source_that_is_not_a_directory(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="not a directory"):
        seed_workspace(tmp_path / "missing", tmp_path / "ws")


def test_seed_into_a_destination_inside_the_source(source: Path) -> None:
    dest = source / ".asbx/projects/p/sandboxes/s/workspace"
    seed_workspace(source, dest)
    assert (dest / "app.py").exists()
    assert list((dest / ".asbx/projects/p/sandboxes/s").iterdir()) == []  # not copied into itself


def test_seed_failure_leaves_nothing_behind(
    source: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = []

    def failing_copy(src_fd: int, dst_fd: int) -> int:
        calls.append(src_fd)
        if len(calls) == 3:
            raise OSError(28, "No space left on device", "some-file")
        return 0

    monkeypatch.setattr(workspaces, "_copy_fd", failing_copy)
    with pytest.raises(DataError, match="No space left on device"):
        seed_workspace(source, tmp_path / "ws")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["src"]


def test_remove_workspace(tmp_path: Path) -> None:
    ws = workspace_path(tmp_path, "app", "web")
    make_tree(ws, {"a/b.txt": "x"})
    (ws / "a").chmod(0o555)

    remove_workspace(ws, home=tmp_path)
    assert not ws.exists()
    assert ws.parent.exists()
    remove_workspace(ws)  # already gone: fine


@pytest.mark.parametrize(
    "rel",
    ["projects/app", "projects/app/sandboxes/web", "other/app/sandboxes/web/workspace",
     "projects/app/sandboxes/web/workspace/..", "projects/app/sandboxes/web/data"],
)
def test_remove_workspace_refuses_other_shapes(tmp_path: Path, rel: str) -> None:
    target = tmp_path / rel
    target.mkdir(parents=True, exist_ok=True)
    with pytest.raises(DataError, match="not a workspace"):
        remove_workspace(target)
    assert target.exists()


def test_remove_workspace_refuses_a_symlinked_workspace(tmp_path: Path) -> None:
    precious = make_tree(tmp_path / "precious", {"data": "x"})
    ws = workspace_path(tmp_path / "home", "app", "web")
    ws.parent.mkdir(parents=True)
    ws.symlink_to(precious)

    with pytest.raises(DataError):
        remove_workspace(ws)
    assert (precious / "data").exists()


def test_remove_workspace_refuses_paths_outside_home(tmp_path: Path) -> None:
    ws = workspace_path(tmp_path / "elsewhere", "app", "web")
    ws.mkdir(parents=True)
    with pytest.raises(DataError, match="not inside"):
        remove_workspace(ws, home=tmp_path / "home")
    assert ws.exists()
