"""Malicious archives: each is refused by restore and by import, and nothing lands outside."""

from __future__ import annotations

import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest

from asbx.data.archive_safety import ArchiveLimits, resolve_inside
from asbx.data.snapshots import SnapshotStore
from asbx.errors import DataError
from tests.unit.data.trees import member, plant, tar_bytes, zstd

GB = 10**9
Builder = Callable[[Path], bytes]


def _file(
    name: str, data: bytes = b"pwned", *, mode: int = 0o644, size: int | None = None
) -> tuple[tarfile.TarInfo, bytes]:
    return member(name, tarfile.REGTYPE, data, mode=mode, size=size), data


def _link(name: str, target: str) -> tuple[tarfile.TarInfo, bytes]:
    return member(name, tarfile.SYMTYPE, link=target), b""


def _kind(
    name: str, kind: bytes, *, mode: int = 0o644, link: str = ""
) -> tuple[tarfile.TarInfo, bytes]:
    return member(name, kind, mode=mode, link=link), b""


def _ok() -> tuple[tarfile.TarInfo, bytes]:
    return _file("fine.txt", b"fine")


# Each case: (id, archive builder given the sentinel directory, expected message fragment;
# " | " separates alternatives).
CASES: list[tuple[str, Builder, str]] = [
    ("absolute-path", lambda s: zstd(tar_bytes([_ok(), _file(f"{s}/pwned")])), "absolute path"),
    ("dotdot", lambda s: zstd(tar_bytes([_file("../sentinel/pwned")])), "'..' component"),
    ("dotdot-inside", lambda s: zstd(tar_bytes([_file("a/../../sentinel/x")])), "'..' component"),
    (
        "dotdot-in-long-pax-name",
        lambda s: zstd(tar_bytes([_file("../" + "x" * 150 + "/pwned")])),
        "'..' component",
    ),
    (
        "dotdot-in-gnu-longname",
        lambda s: zstd(tar_bytes([_file("../" + "y" * 150)], fmt=tarfile.GNU_FORMAT)),
        "'..' component",
    ),
    (
        "absolute-symlink-then-write-through",
        lambda s: zstd(tar_bytes([_link("escape", str(s)), _file("escape/pwned")])),
        "points outside the tree",
    ),
    (
        "relative-symlink-then-write-through",
        lambda s: zstd(tar_bytes([_link("escape", "../sentinel"), _file("escape/pwned")])),
        "points outside the tree",
    ),
    (
        "write-through-inner-symlink",
        lambda s: zstd(tar_bytes([_kind("real", tarfile.DIRTYPE, mode=0o755),
                                  _link("alias", "real"), _file("alias/x")])),
        "written through the symlink 'alias'",
    ),
    (
        "symlink-chain-escaping",
        lambda s: zstd(tar_bytes([_link("here", "."), _link("esc", "here/../sentinel")])),
        "'esc': symlink to 'here/../sentinel' points outside the tree",
    ),
    (
        "symlink-loop",
        lambda s: zstd(tar_bytes([_link("a", "b"), _link("b", "a/x")])),
        "is a loop",
    ),
    (
        "hard-link-outside",
        lambda s: zstd(tar_bytes([_kind("h", tarfile.LNKTYPE, link=f"{s}/secret")])),
        "'h' is a hard link",
    ),
    (
        "hard-link-inside",
        lambda s: zstd(tar_bytes([_ok(), _kind("h", tarfile.LNKTYPE, link="fine.txt")])),
        "is a hard link",
    ),
    ("char-device", lambda s: zstd(tar_bytes([_kind("null", tarfile.CHRTYPE)])),
     "is a character device"),
    ("block-device", lambda s: zstd(tar_bytes([_kind("sda", tarfile.BLKTYPE)])),
     "is a block device"),
    ("fifo", lambda s: zstd(tar_bytes([_kind("pipe", tarfile.FIFOTYPE)])), "is a FIFO"),
    ("setuid", lambda s: zstd(tar_bytes([_file("su", b"#!", mode=0o4755)])), "setuid"),
    ("setgid-dir", lambda s: zstd(tar_bytes([_kind("d", tarfile.DIRTYPE, mode=0o2775)])),
     "setuid or setgid"),
    (
        # Only a header claiming 10 GB over 4 KB of data: restore finds it truncated (or the
        # free-space check fires first on a small disk); import refuses the claim by its ratio
        # before reading any data. A real 10 GB bomb is in test_archive_bombs.py.
        "10GB-claim",
        lambda s: zstd(tar_bytes([_file("bomb", b"\0" * 4096, size=10 * GB)])),
        "truncated | bytes free at | past the import limit of 1000:1",
    ),
    ("duplicate", lambda s: zstd(tar_bytes([_ok(), _file("fine.txt", b"again")])),
     "appears twice"),
    ("duplicate-normalised", lambda s: zstd(tar_bytes([_ok(), _file("./fine.txt")])),
     "appears twice"),
    (
        "file-then-dir-below-it",
        lambda s: zstd(tar_bytes([_ok(), _file("fine.txt/inner")])),
        "lies below the file 'fine.txt'",
    ),
    (
        "dir-then-file-same-name",
        lambda s: zstd(tar_bytes([_file("d/x"), _file("d")])),
        "needs it to be a directory",
    ),
    (
        "non-utf8-name-pax",
        lambda s: zstd(tar_bytes([_file("bad-\udcff")])),
        "not valid UTF-8",
    ),
    (
        "non-utf8-name-ustar",
        lambda s: zstd(tar_bytes([_file("bad-\udcff")], fmt=tarfile.GNU_FORMAT)),
        "not valid UTF-8",
    ),
    (
        "data-on-a-symlink",
        lambda s: zstd(tar_bytes([(member("l", tarfile.SYMTYPE, link="x", size=10), b"0" * 10)])),
        "symlink with data",
    ),
    ("truncated-stream", lambda s: zstd(tar_bytes([_ok()], end=False)), "truncated"),
    ("not-zstd", lambda s: tar_bytes([_ok()]), "not valid zstd data"),
    (
        "bad-checksum",
        lambda s: zstd(b"\x01" * 512 + b"\0" * 1024),
        "corrupt tar header",
    ),
    (
        "pax-sparse",
        lambda s: zstd(tar_bytes([(_pax_member({"GNU.sparse.major": "1"})), _ok()])),
        "sparse file",
    ),
    (
        "global-pax-path",
        lambda s: zstd(tar_bytes([_global_pax({"path": "../x"}), _ok()])),
        "global pax header setting 'path'",
    ),
]


def _pax_member(
    records: dict[str, str], kind: bytes = tarfile.XHDTYPE
) -> tuple[tarfile.TarInfo, bytes]:
    payload = b"".join(_pax_record(k, v) for k, v in records.items())
    return member("././@PaxHeader", kind, payload), payload


def _global_pax(records: dict[str, str]) -> tuple[tarfile.TarInfo, bytes]:
    return _pax_member(records, tarfile.XGLTYPE)


def _pax_record(key: str, value: str) -> bytes:
    body = f" {key}={value}\n".encode()
    length = len(body) + len(str(len(body)))
    if len(str(length)) != len(str(len(body))):
        length += 1
    return str(length).encode() + body


@pytest.fixture
def box(tmp_path: Path) -> Path:
    """tmp_path/box holds the store and the restore target; tmp_path/sentinel must stay empty."""
    (tmp_path / "sentinel").mkdir()
    (tmp_path / "box").mkdir()
    return tmp_path / "box"


def assert_nothing_written_outside(tmp_path: Path, box: Path) -> None:
    assert list((tmp_path / "sentinel").iterdir()) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["box", "sentinel"]
    assert not (box / "target").exists()
    assert [p.name for p in box.iterdir() if p.name.startswith(".target")] == []  # no staging


@pytest.mark.parametrize(("build", "message"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_restore_refuses_malicious_archive(
    tmp_path: Path, box: Path, build: Builder, message: str
) -> None:
    store = SnapshotStore(box / "store")
    digest = plant(store, build(tmp_path / "sentinel"))

    with pytest.raises(DataError, match="cannot restore snapshot sha256:") as caught:
        store.restore(digest, box / "target")
    assert any(part in caught.value.message for part in message.split(" | "))
    assert_nothing_written_outside(tmp_path, box)


@pytest.mark.parametrize(("build", "message"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_import_refuses_malicious_archive(
    tmp_path: Path, box: Path, build: Builder, message: str
) -> None:
    store = SnapshotStore(box / "store")
    archive = box / "evil.tar.zst"
    archive.write_bytes(build(tmp_path / "sentinel"))

    with pytest.raises(DataError, match=r"cannot import .*evil\.tar\.zst") as caught:
        store.import_archive(archive)
    assert any(part in caught.value.message for part in message.split(" | "))
    assert store.list() == []
    assert list((store.root / "tmp").iterdir()) == []
    assert_nothing_written_outside(tmp_path, box)


def test_size_caps_refuse_before_anything_is_written(tmp_path: Path, box: Path) -> None:
    limits = ArchiveLimits(max_total_bytes=3 << 20, max_entry_bytes=2 << 20)
    store = SnapshotStore(box / "store", limits=limits)
    big = _file("big", b"\0" * (2 << 20 + 1))
    digest = plant(store, zstd(tar_bytes([big])))
    with pytest.raises(DataError, match="'big' declares 4194304 bytes, over the limit"):
        store.restore(digest, box / "target")

    total = [_file(f"part{i}", b"\0" * (1 << 20)) for i in range(4)]
    digest = plant(store, zstd(tar_bytes(total)))
    with pytest.raises(DataError, match="'part3' takes the archive past 3145728 bytes"):
        store.restore(digest, box / "target")
    assert_nothing_written_outside(tmp_path, box)


def test_entry_count_cap(box: Path) -> None:
    store = SnapshotStore(box / "store", limits=ArchiveLimits(max_entries=3))
    digest = plant(store, zstd(tar_bytes([_file(f"f{i}") for i in range(4)])))
    with pytest.raises(DataError, match="more than 3 entries"):
        store.restore(digest, box / "target")


def test_oversized_extended_header_is_refused_without_reading_it(box: Path) -> None:
    store = SnapshotStore(box / "store", limits=ArchiveLimits(max_header_bytes=1024))
    header = member("././@PaxHeader", tarfile.XHDTYPE, size=5 * GB)
    digest = plant(store, zstd(tar_bytes([(header, b"")])))
    with pytest.raises(DataError, match="5000000000-byte extended header"):
        store.restore(digest, box / "target")


def test_gnu_tar_style_root_entry_and_inside_links_are_accepted(box: Path) -> None:
    store = SnapshotStore(box / "store")
    archive = zstd(tar_bytes([
        _kind("./", tarfile.DIRTYPE, mode=0o755),
        _kind("./d", tarfile.DIRTYPE, mode=0o555),
        _file("./d/x", b"x"),
        _link("./up", "d/../d/x"),
        _link("./d/self", "."),
        _link("./via", "d/self/x"),
    ]))
    digest = plant(store, archive)
    store.restore(digest, box / "target")
    assert (box / "target/via").read_bytes() == b"x"
    assert (box / "target/d").stat().st_mode & 0o777 == 0o555  # applied after its contents


@pytest.mark.parametrize(
    ("start", "target", "links", "verdict"),
    [
        ("", "a/b", {}, None),
        ("a", "../b", {}, None),
        ("a", "../../b", {}, "points outside the tree"),
        ("", "/etc", {}, "points outside the tree"),
        ("", "l/..", {"l": "."}, "points outside the tree"),
        ("", "l/x", {"l": "d/e"}, None),
        ("", "l/../..", {"l": "d/e"}, None),
        ("", "l/../../..", {"l": "d/e"}, "points outside the tree"),
        ("", "l", {"l": "/abs"}, "points outside the tree"),
        ("", "a", {"a": "b", "b": "a"}, "is a loop"),
    ],
)
def test_resolve_inside_follows_link_chains(
    start: str, target: str, links: dict[str, str], verdict: str | None
) -> None:
    assert resolve_inside(links, start, target) == verdict
