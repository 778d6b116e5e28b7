"""Decompression bombs: import refuses an archive that expands implausibly; capture/restore don't.

The bomb here is real: a valid zstd stream whose tar payload is one 10 GiB file of zeros. It
is built from concatenated zstd frames (the reader decompresses across frames): the tar header,
then one compressed 1 MiB zero chunk (a 50-byte frame) repeated 10240 times, then the end of
archive, about 0.5 MB in all.
"""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest
import zstandard

from asbx.data.archive_safety import ArchiveLimits, GiB, NullSink, check_expansion, read_archive
from asbx.data.snapshots import SnapshotStore
from asbx.data.tarstream import Entry, EntryKind
from asbx.errors import DataError
from tests.unit.data.trees import describe_tree, make_tree, member

MiB = 1 << 20
BOMB_BYTES = 10 * GiB
ZERO_MIB = b"\0" * MiB


def zero_bomb(size: int = BOMB_BYTES, name: str = "bomb") -> bytes:
    """A `.tar.zst` holding one file `name` of `size` zeros (size a multiple of 1 MiB)."""
    assert size % MiB == 0
    compressor = zstandard.ZstdCompressor()  # no checksum: the attacker picks the frame flags
    header = member(name, tarfile.REGTYPE, size=size).tobuf(tarfile.PAX_FORMAT, "utf-8")
    chunk = compressor.compress(ZERO_MIB)
    end = compressor.compress(b"\0" * (2 * tarfile.BLOCKSIZE))
    return compressor.compress(header) + chunk * (size // MiB) + end


@pytest.fixture(scope="module")
def bomb() -> bytes:
    return zero_bomb()


def store_tree(store: SnapshotStore) -> dict[str, tuple[str, int, bytes | str]]:
    return describe_tree(store.root)


def test_the_bomb_really_expands_to_10_gib_of_zeros(bomb: bytes) -> None:
    # Checked with zstandard and tarfile alone, not asbx's reader: the payload is genuine.
    assert len(bomb) < 600_000
    reader = zstandard.ZstdDecompressor().stream_reader(
        io.BytesIO(bomb), read_size=MiB, read_across_frames=True
    )
    prefix = reader.read(MiB)
    with tarfile.open(fileobj=io.BytesIO(prefix), mode="r:") as tar:
        info = tar.firstmember
    assert info is not None
    assert info.name == "bomb"
    assert info.isreg()
    assert info.size == BOMB_BYTES
    expected = info.offset_data + BOMB_BYTES + 2 * tarfile.BLOCKSIZE
    total = len(prefix)
    assert prefix[info.offset_data:] == bytes(len(prefix) - info.offset_data)
    count = 0
    while chunk := reader.read(MiB):
        count += 1
        if count % 256 == 0 or len(chunk) < MiB:  # every byte counted, 1 MiB in 256 compared
            assert chunk == ZERO_MIB[: len(chunk)]
        total += len(chunk)
    assert total == expected  # 10 GiB of zeros, then tar's end-of-archive blocks


def test_import_refuses_a_real_10_gib_bomb_and_writes_nothing(
    tmp_path: Path, bomb: bytes
) -> None:
    store = SnapshotStore(tmp_path / "store")
    store.capture(make_tree(tmp_path / "ws", {"a.txt": "a\n"}))  # a store already in use
    before = store_tree(store)
    archive = tmp_path / "bomb.tar.zst"
    archive.write_bytes(bomb)

    with pytest.raises(DataError) as caught:
        store.import_archive(archive)

    message = caught.value.message
    assert message.startswith(f"cannot import {archive}: archive entry 'bomb' declares ")
    assert f"declares {BOMB_BYTES} bytes" in message
    assert f"from {len(bomb)} compressed bytes" in message
    assert f"past the import limit of 1000:1 beyond {GiB} bytes" in message
    assert caught.value.hint is not None
    assert "decompression bomb" in caught.value.hint
    assert store_tree(store) == before
    assert len(store.list()) == 1


def test_import_into_a_fresh_store_leaves_no_file(tmp_path: Path, bomb: bytes) -> None:
    store = SnapshotStore(tmp_path / "store")
    archive = tmp_path / "bomb.tar.zst"
    archive.write_bytes(bomb)
    with pytest.raises(DataError, match="past the import limit"):
        store.import_archive(archive)
    assert [p for p in store.root.rglob("*") if not p.is_dir()] == []


def test_the_bomb_is_refused_at_its_header_before_any_data_is_decompressed(
    bomb: bytes,
) -> None:
    consumed = io.BytesIO(bomb)
    delivered: list[Entry] = []

    class Recording(NullSink):
        def file(self, entry: Entry, chunks: object) -> None:
            delivered.append(entry)

    with pytest.raises(DataError, match="'bomb' declares"):
        read_archive(consumed, Recording(), ArchiveLimits(), compressed_size=len(bomb))
    assert delivered == []
    assert consumed.tell() <= MiB  # one read of compressed input, of the ~0.5 MB file


def test_without_the_ratio_bound_the_bomb_passes_every_other_check(
    tmp_path: Path, bomb: bytes
) -> None:
    # What the bound is for: the archive is valid, so nothing else stops it.
    store = SnapshotStore(tmp_path / "store", limits=ArchiveLimits(max_import_ratio=None))
    archive = tmp_path / "bomb.tar.zst"
    archive.write_bytes(bomb)
    info = store.import_archive(archive)
    assert info.content_bytes == BOMB_BYTES
    assert info.files == 1


@pytest.fixture
def zero_workspace(tmp_path: Path) -> Path:
    root = make_tree(tmp_path / "ws", {"src/main.py": "print('hi')\n"})
    with (root / "disk.img").open("wb") as out:
        out.truncate(64 * MiB)  # reads back as 64 MiB of zeros
    return root


# A ratio bound that a 64 MiB zero file crosses (zstd packs it into ~2 KB).
TIGHT = ArchiveLimits(import_ratio_floor=16 * MiB)


def test_capture_then_restore_of_a_zero_filled_file_ignores_the_ratio_bound(
    tmp_path: Path, zero_workspace: Path
) -> None:
    store = SnapshotStore(tmp_path / "store", limits=TIGHT)
    info = store.capture(zero_workspace)
    assert info.content_bytes > TIGHT.import_ratio_floor
    assert info.content_bytes > 1000 * info.size  # the bound would refuse it on import

    restored = store.restore(info.digest, tmp_path / "restored")

    assert restored.digest == info.digest
    assert (tmp_path / "restored/disk.img").stat().st_size == 64 * MiB
    with (tmp_path / "restored/disk.img").open("rb") as data:
        assert all(chunk == ZERO_MIB for chunk in iter(lambda: data.read(MiB), b""))
    assert (tmp_path / "restored/src/main.py").read_text() == "print('hi')\n"


@pytest.mark.parametrize(
    ("limits", "accepted"),
    [
        (ArchiveLimits(), True),  # 64 MiB is under the default 1 GiB floor
        (TIGHT, False),
        (ArchiveLimits(import_ratio_floor=16 * MiB, max_import_ratio=1_000_000), True),
        (ArchiveLimits(import_ratio_floor=16 * MiB, max_import_ratio=None), True),
    ],
    ids=["defaults", "tight", "generous-ratio", "no-ratio"],
)
def test_an_exported_zero_file_archive_is_imported_unless_the_limits_refuse_it(
    tmp_path: Path, zero_workspace: Path, limits: ArchiveLimits, accepted: bool
) -> None:
    source = SnapshotStore(tmp_path / "source", limits=TIGHT)
    info = source.capture(zero_workspace)
    exported = tmp_path / "zeros.tar.zst"
    source.export(info.digest, exported)
    target = SnapshotStore(tmp_path / "target", limits=limits)
    target.capture(make_tree(tmp_path / "other", {"x": "x"}))
    before = store_tree(target)

    if accepted:
        imported = target.import_archive(exported)
        assert imported.digest == info.digest
        assert imported.content_bytes == info.content_bytes
        return
    with pytest.raises(DataError, match=r"cannot import .*zeros\.tar\.zst: archive entry "
                       r"'disk\.img' declares 67108864 bytes") as caught:
        target.import_archive(exported)
    assert f"from {exported.stat().st_size} compressed bytes" in caught.value.message
    assert store_tree(target) == before


@pytest.mark.parametrize(
    ("expanded", "compressed", "refused"),
    [
        (GiB, 1, False),  # at the floor: never refused for its ratio
        (GiB + 1, 1, True),
        (2 * 10**9, 2 * 10**6, False),  # exactly 1000:1
        (2 * 10**9, 2 * 10**6 - 1, True),
        (2 * 10**9, 0, True),  # an empty file cannot expand at all
    ],
)
def test_check_expansion_bounds(expanded: int, compressed: int, refused: bool) -> None:
    entry = Entry("f", EntryKind.FILE, 0o644, expanded)
    if refused:
        with pytest.raises(DataError, match="past the import limit of 1000:1"):
            check_expansion(entry, expanded, expanded, compressed, ArchiveLimits())
    else:
        check_expansion(entry, expanded, expanded, compressed, ArchiveLimits())
