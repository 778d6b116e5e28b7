"""SnapshotStore: deterministic capture, verified restore, import/export, remove and gc."""

from __future__ import annotations

import os
import stat
import tarfile
import time
from pathlib import Path

import pytest

from asbx.data.archive_safety import ArchiveLimits
from asbx.data.snapshots import SnapshotStore
from asbx.errors import DataError, NotFoundError
from tests.unit.data.trees import describe_tree, make_tree, zstd

LONG_NAME = "deep/" + "n" * 120 + "/file.txt"


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    root = make_tree(
        tmp_path / "ws",
        {
            "README.md": "hello\n",
            "src/app.py": "print('hi')\n",
            "bin/run": "#!/bin/sh\necho run\n",
            "secret.key": "k",
            "empty/": "",
            "blob.bin": os.urandom(3 * (1 << 20) + 17),  # crosses the 1 MiB chunk size
            "ünïcode/naïve.txt": "utf-8 names\n",
            LONG_NAME: "a name longer than ustar's 100 bytes\n",
        },
    )
    (root / "bin/run").chmod(0o755)
    (root / "secret.key").chmod(0o600)
    (root / "src/current").symlink_to("app.py")
    (root / "links").mkdir()
    (root / "links/to-src").symlink_to("../src")
    (root / "links/dangling").symlink_to("../not-there")
    return root


@pytest.fixture
def store(tmp_path: Path) -> SnapshotStore:
    return SnapshotStore(tmp_path / "store")


def archives(store: SnapshotStore) -> list[str]:
    return sorted(p.name for p in (store.root / "sha256").glob("*.tar.zst"))


def test_capture_then_restore_reproduces_contents_modes_and_symlinks(
    store: SnapshotStore, workspace: Path, tmp_path: Path
) -> None:
    info = store.capture(workspace)
    restored = store.restore(info.digest, tmp_path / "restored")

    assert describe_tree(tmp_path / "restored") == describe_tree(workspace)
    assert restored.digest == info.digest
    assert (tmp_path / "restored/bin/run").stat().st_mode & 0o777 == 0o755
    assert os.readlink(tmp_path / "restored/links/to-src") == "../src"


def test_capture_reports_sizes_and_counts(store: SnapshotStore, workspace: Path) -> None:
    info = store.capture(workspace)

    regular = [p for p in workspace.rglob("*") if p.is_file() and not p.is_symlink()]
    content = sum(p.stat().st_size for p in regular)
    assert info.content_bytes == content
    assert info.files == 7 + 3  # regular files + symlinks
    assert info.size == info.path.stat().st_size
    assert info.path == store.path_of(info.digest)
    assert info.digest.startswith("sha256:")
    assert len(info.digest) == 7 + 64


def test_unchanged_workspace_gives_same_digest_and_no_new_file(
    store: SnapshotStore, workspace: Path
) -> None:
    first = store.capture(workspace)
    os.utime(workspace / "README.md", ns=(1, 1))  # mtimes are normalised away
    second = store.capture(workspace)

    assert second == first
    assert archives(store) == [first.path.name]
    assert list((store.root / "tmp").iterdir()) == []


def test_same_tree_elsewhere_gives_same_digest(tmp_path: Path, store: SnapshotStore) -> None:
    tree = {"a.txt": "a", "d/b.txt": "b"}
    one = store.capture(make_tree(tmp_path / "one", tree))
    two = store.capture(make_tree(tmp_path / "two", tree))
    assert one.digest == two.digest


def test_digest_does_not_depend_on_thread_count(tmp_path: Path, workspace: Path) -> None:
    digests = {
        SnapshotStore(tmp_path / f"store-{threads}", threads=threads).capture(workspace).digest
        for threads in (1, 2, 4, -1)
    }
    assert len(digests) == 1


def test_one_changed_byte_gives_new_digest(store: SnapshotStore, workspace: Path) -> None:
    first = store.capture(workspace)
    (workspace / "src/app.py").write_text("print('hI')\n")
    second = store.capture(workspace)

    assert second.digest != first.digest
    assert len(archives(store)) == 2


def test_mode_change_gives_new_digest(store: SnapshotStore, workspace: Path) -> None:
    first = store.capture(workspace)
    (workspace / "README.md").chmod(0o755)
    assert store.capture(workspace).digest != first.digest


def test_restore_verifies_digest_before_extracting(
    store: SnapshotStore, workspace: Path, tmp_path: Path
) -> None:
    info = store.capture(workspace)
    data = bytearray(info.path.read_bytes())
    data[len(data) // 2] ^= 0x01
    info.path.chmod(0o644)
    info.path.write_bytes(bytes(data))

    with pytest.raises(DataError, match="is corrupt: its archive hashes to sha256:"):
        store.restore(info.digest, tmp_path / "out")
    assert {p.name for p in tmp_path.iterdir()} == {"ws", "store"}  # no out, no staging dir


def test_restore_into_empty_directory_is_allowed(
    store: SnapshotStore, workspace: Path, tmp_path: Path
) -> None:
    (tmp_path / "empty").mkdir()
    info = store.capture(workspace)
    store.restore(info.digest, tmp_path / "empty")
    assert (tmp_path / "empty/README.md").read_text() == "hello\n"


def test_restore_refuses_non_empty_destination(
    store: SnapshotStore, workspace: Path, tmp_path: Path
) -> None:
    info = store.capture(workspace)
    make_tree(tmp_path / "busy", {"mine.txt": "keep me"})

    with pytest.raises(DataError, match="not empty"):
        store.restore(info.digest, tmp_path / "busy")
    assert describe_tree(tmp_path / "busy") == {"mine.txt": ("file", 0o644, b"keep me")}


def test_restore_of_unknown_digest_is_not_found(store: SnapshotStore, tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match="not in the store"):
        store.restore("sha256:" + "0" * 64, tmp_path / "out")


@pytest.mark.parametrize(
    "digest", ["sha256:../../etc/passwd", "sha256:" + "A" * 64, "md5:" + "0" * 32, "0" * 64, ""]
)
def test_path_of_refuses_anything_but_a_sha256_digest(store: SnapshotStore, digest: str) -> None:
    with pytest.raises(DataError, match="not a snapshot digest"):
        store.path_of(digest)


def test_capture_refuses_symlink_pointing_outside_by_default(
    store: SnapshotStore, workspace: Path
) -> None:
    (workspace / "venv-python").symlink_to("/usr/bin/python3")

    with pytest.raises(DataError, match=r"'venv-python'.*absolute path '/usr/bin/python3'"):
        store.capture(workspace)
    assert archives(store) == []


def test_capture_refuses_relative_symlink_chain_escaping(
    store: SnapshotStore, workspace: Path
) -> None:
    (workspace / "here").symlink_to(".")
    (workspace / "escape").symlink_to("here/../outside")  # lexically inside, really outside

    with pytest.raises(DataError, match=r"'escape'.*points outside the tree"):
        store.capture(workspace)


def test_external_symlinks_can_be_allowed(tmp_path: Path, workspace: Path) -> None:
    (workspace / "venv-python").symlink_to("/usr/bin/python3")
    store = SnapshotStore(tmp_path / "store", limits=ArchiveLimits(external_symlinks=True))

    info = store.capture(workspace)
    store.restore(info.digest, tmp_path / "out")
    assert os.readlink(tmp_path / "out/venv-python") == "/usr/bin/python3"


def test_capture_drops_setid_bits_and_skips_fifos(
    store: SnapshotStore, workspace: Path, tmp_path: Path
) -> None:
    (workspace / "bin/run").chmod(0o4755)
    os.mkfifo(workspace / "pipe")

    info = store.capture(workspace)
    store.restore(info.digest, tmp_path / "out")
    assert stat.S_IMODE((tmp_path / "out/bin/run").stat().st_mode) == 0o755
    assert not (tmp_path / "out/pipe").exists()


def test_capture_refuses_non_utf8_names(store: SnapshotStore, tmp_path: Path) -> None:
    root = tmp_path / "ws"
    root.mkdir()
    with open(os.path.join(os.fsencode(root), b"bad-\xff.txt"), "wb") as out:
        out.write(b"x")

    with pytest.raises(DataError, match="not valid UTF-8"):
        store.capture(root)


def test_capture_refuses_a_missing_or_symlinked_workspace(
    store: SnapshotStore, workspace: Path, tmp_path: Path
) -> None:
    (tmp_path / "alias").symlink_to(workspace)
    with pytest.raises(DataError, match="not a directory"):
        store.capture(tmp_path / "alias")
    with pytest.raises(DataError, match="not a directory"):
        store.capture(tmp_path / "missing")


def test_capture_refuses_trees_beyond_the_limits(tmp_path: Path, workspace: Path) -> None:
    store = SnapshotStore(tmp_path / "store", limits=ArchiveLimits(max_total_bytes=1 << 20))
    with pytest.raises(DataError, match=r"'blob\.bin' takes the archive past 1048576 bytes"):
        store.capture(workspace)


def test_export_then_import_into_another_store(
    store: SnapshotStore, workspace: Path, tmp_path: Path
) -> None:
    info = store.capture(workspace)
    store.export(info.digest, tmp_path / "snap.tar.zst")
    other = SnapshotStore(tmp_path / "other")

    imported = other.import_archive(tmp_path / "snap.tar.zst")
    assert imported.digest == info.digest
    assert (imported.files, imported.content_bytes, imported.size) == (
        info.files, info.content_bytes, info.size,
    )
    other.restore(imported.digest, tmp_path / "out")
    assert describe_tree(tmp_path / "out") == describe_tree(workspace)


def test_import_of_known_archive_adds_no_file(
    store: SnapshotStore, workspace: Path, tmp_path: Path
) -> None:
    info = store.capture(workspace)
    store.export(info.digest, tmp_path / "snap.tar.zst")
    assert store.import_archive(tmp_path / "snap.tar.zst").digest == info.digest
    assert archives(store) == [info.path.name]


def test_import_accepts_archives_from_tarfile_with_dot_prefixes(
    store: SnapshotStore, tmp_path: Path
) -> None:
    tree = make_tree(tmp_path / "tree", {"a.txt": "a", "sub/b.txt": "b"})
    raw = tmp_path / "plain.tar"
    with tarfile.open(raw, "w", format=tarfile.GNU_FORMAT) as tar:
        tar.add(tree, arcname=".")  # "./", "./a.txt", "./sub", ... as `tar -C tree -c .` writes
    (tmp_path / "plain.tar.zst").write_bytes(zstd(raw.read_bytes()))

    info = store.import_archive(tmp_path / "plain.tar.zst")
    store.restore(info.digest, tmp_path / "out")
    assert {k: v[2] for k, v in describe_tree(tmp_path / "out").items() if v[0] == "file"} == {
        "a.txt": b"a", "sub/b.txt": b"b",
    }


def test_import_of_missing_file_is_not_found(store: SnapshotStore, tmp_path: Path) -> None:
    with pytest.raises(NotFoundError):
        store.import_archive(tmp_path / "nope.tar.zst")


def test_export_refuses_to_overwrite_unless_asked(
    store: SnapshotStore, workspace: Path, tmp_path: Path
) -> None:
    info = store.capture(workspace)
    target = tmp_path / "snap.tar.zst"
    target.write_text("precious")

    with pytest.raises(DataError, match="already exists"):
        store.export(info.digest, target)
    assert target.read_text() == "precious"
    store.export(info.digest, target, overwrite=True)
    assert target.read_bytes() == info.path.read_bytes()
    assert [p.name for p in tmp_path.glob(".snap*")] == []


def test_export_refuses_a_corrupt_archive(
    store: SnapshotStore, workspace: Path, tmp_path: Path
) -> None:
    info = store.capture(workspace)
    info.path.chmod(0o644)
    info.path.write_bytes(info.path.read_bytes()[:-1] + b"!")

    with pytest.raises(DataError, match="corrupt"):
        store.export(info.digest, tmp_path / "snap.tar.zst")
    assert not (tmp_path / "snap.tar.zst").exists()


def test_remove_deletes_archive_and_sidecar(store: SnapshotStore, workspace: Path) -> None:
    info = store.capture(workspace)
    store.remove(info.digest)

    assert list((store.root / "sha256").iterdir()) == []
    with pytest.raises(NotFoundError):
        store.remove(info.digest)


def test_list_and_gc_of_unreferenced_archives(
    store: SnapshotStore, workspace: Path, tmp_path: Path
) -> None:
    kept = store.capture(workspace)
    dropped = store.capture(make_tree(tmp_path / "other", {"x": "y"}))
    assert {i.digest for i in store.list()} == {kept.digest, dropped.digest}

    assert store.gc({kept.digest}) == [dropped]  # dry run by default
    assert dropped.path.exists()
    assert store.gc({kept.digest}, dry_run=False) == [dropped]
    assert store.list() == [kept]


def test_gc_clears_stale_temporary_files_only(store: SnapshotStore, workspace: Path) -> None:
    store.capture(workspace)
    stale = store.root / "tmp/capture-dead.part"
    fresh = store.root / "tmp/capture-live.part"
    stale.write_bytes(b"x")
    fresh.write_bytes(b"x")
    day_ago = time.time() - 2 * 24 * 3600
    os.utime(stale, (day_ago, day_ago))

    store.gc(set(), dry_run=True)
    assert stale.exists()
    store.gc(set(), dry_run=False)
    assert not stale.exists()
    assert fresh.exists()


def test_list_of_an_empty_store(tmp_path: Path) -> None:
    assert SnapshotStore(tmp_path / "nothing").list() == []


def test_info_recomputes_a_missing_sidecar(store: SnapshotStore, workspace: Path) -> None:
    info = store.capture(workspace)
    sidecar = info.path.with_name(info.path.name.replace(".tar.zst", ".json"))
    sidecar.unlink()

    assert store.info(info.digest) == info
    assert sidecar.exists()


def test_os_errors_become_data_errors_naming_the_operation(
    store: SnapshotStore, workspace: Path, tmp_path: Path
) -> None:
    info = store.capture(workspace)
    (tmp_path / "a-file").write_text("x")

    with pytest.raises(DataError, match=r"cannot export snapshot sha256:.* to .*missing"):
        store.export(info.digest, tmp_path / "missing/dir/snap.tar.zst")
    with pytest.raises(DataError, match=r"cannot restore snapshot sha256:.* into .*a-file"):
        store.restore(info.digest, tmp_path / "a-file/ws")


def test_secret_files_names_what_looks_like_secrets_in_an_archive(
    store: SnapshotStore, tmp_path: Path
) -> None:
    root = make_tree(tmp_path / "ws", {".env": "T=1", "deploy/id_ed25519": "k",
                                       "src/app.py": "x", ".env.example": "T="})
    info = store.capture(root)
    assert store.secret_files(info.digest) == [".env", "deploy/id_ed25519"]
    clean = store.capture(make_tree(tmp_path / "clean", {"src/app.py": "x"}))
    assert store.secret_files(clean.digest) == []
