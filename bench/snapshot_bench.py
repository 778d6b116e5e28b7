"""Snapshot benchmark: capture/restore of a generated mixed tree against `tar czf` and tar+zstd.

Run:  python bench/snapshot_bench.py [--size-mb 500] [--runs 3] [--keep]

The workspace (under /tmp unless --dir) is about 30 % source-like text (many small files,
Zipf-distributed words), 30 % random blobs (incompressible, like wheels or images) and 40 %
real binaries copied from /usr/lib and /usr/bin (compressible machine code). Every tool reads
the same tree from a warm page cache; each run writes a fresh archive / a fresh target, after
an `os.sync()` so no run pays for the previous one's writeback. Outputs are deleted only at
the end: on the 2-core VM this was written on (ext4 mounted with `discard`), creating files
right after deleting ~500 MB is several times slower for a while, which skewed whichever tool
ran next. Capture fsyncs its archive (data safety); the tar baselines do not.
Use --dir /dev/shm to take the disk out of the figures. Needs ~8 GB free for 5 runs.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from asbx.data.snapshots import SnapshotStore
from asbx.runtime.command import CommandRequest, SubprocessRunner

MB = 1 << 20
_VOCABULARY = (
    "def class return import from self if else elif for while in not and or None True False "
    "try except finally with as yield lambda pass break continue raise assert global print "
    "value result config path name data items index count error request response handler "
    "client server user session token cache buffer stream reader writer parser node graph "
    "state plan apply image volume sandbox snapshot digest archive entry limit size offset"
)
_WORDS = _VOCABULARY.split()
_RUNNER = SubprocessRunner()


def main() -> int:
    options = _parse_args()
    base = Path(tempfile.mkdtemp(prefix="asbx-snapshot-bench-", dir=options.dir))
    try:
        tree = base / "workspace"
        generated = _generate(tree, options.size_mb * MB, random.Random(options.seed))
        _warm(tree)
        print(f"workspace: {_describe(generated)} at {tree}", file=sys.stderr)
        rows = _measure(tree, base, options.runs)
        print(_table(rows, generated, options))
    finally:
        if options.keep:
            print(f"kept {base}", file=sys.stderr)
        else:
            shutil.rmtree(base)
    return 0


def _parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=500, help="workspace size (default 500)")
    parser.add_argument("--runs", type=int, default=3, help="runs per tool (default 3)")
    parser.add_argument("--dir", default="/tmp", help="where to build the tree (default /tmp)")
    parser.add_argument("--seed", type=int, default=7, help="random seed for the tree")
    parser.add_argument("--keep", action="store_true", help="keep the generated tree")
    return parser.parse_args()


def _generate(root: Path, total: int, rng: random.Random) -> dict[str, tuple[int, int]]:
    """Write the mixed tree; returns {kind: (files, bytes)}."""
    return {
        "source text": _write_text(root / "src", int(total * 0.3), rng),
        "random blobs": _write_random(root / "assets", int(total * 0.3), rng),
        "binaries": _copy_binaries(root / "vendor", total - int(total * 0.3) * 2),
    }


def _write_text(root: Path, budget: int, rng: random.Random) -> tuple[int, int]:
    weights = [1 / (rank + 1) for rank in range(len(_WORDS))]
    files = written = 0
    while written < budget:
        package = root / f"pkg{files // 100:03d}" / f"mod{files % 7}"
        package.mkdir(parents=True, exist_ok=True)
        words = rng.choices(_WORDS, weights, k=rng.randint(300, 3000))
        lines = [" ".join(words[i:i + 9]) for i in range(0, len(words), 9)]
        text = f"# file {files}\n" + "\n    ".join(lines) + "\n"
        (package / f"file{files}.py").write_text(text)
        files += 1
        written += len(text)
    return files, written


def _write_random(root: Path, budget: int, rng: random.Random) -> tuple[int, int]:
    root.mkdir(parents=True)
    files = written = 0
    while written < budget:
        size = min(rng.randint(MB // 4, 16 * MB), budget - written)
        (root / f"blob{files}.bin").write_bytes(rng.randbytes(size))
        files += 1
        written += size
    return files, written


def _copy_binaries(root: Path, budget: int) -> tuple[int, int]:
    root.mkdir(parents=True)
    files = written = 0
    for source in _binaries():
        size = source.stat().st_size
        if written + size > budget:
            continue
        target = root / f"{files:05d}-{source.name}"
        shutil.copyfile(source, target)
        target.chmod(0o755)
        files += 1
        written += size
        if budget - written < 64 * 1024:
            break
    return files, written


def _binaries() -> list[Path]:
    found: list[Path] = []
    folders = ("/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/bin", "/usr/lib")
    for folder in folders:
        if Path(folder).is_dir():
            found += [p for p in sorted(Path(folder).iterdir())
                      if p.is_file() and not p.is_symlink() and p.stat().st_size >= 16 * 1024]
    return found


def _warm(tree: Path) -> None:
    for path in tree.rglob("*"):
        if path.is_file():
            with path.open("rb") as source:
                while source.read(MB):
                    pass


def _describe(generated: dict[str, tuple[int, int]]) -> str:
    parts = [f"{kind} {n} files / {size / MB:.0f} MB" for kind, (n, size) in generated.items()]
    total = sum(size for _, size in generated.values())
    return f"{total / MB:.0f} MB ({'; '.join(parts)})"


Row = tuple[str, list[float], int | None]


def _measure(tree: Path, base: Path, runs: int) -> list[Row]:
    rows: list[Row] = []
    capture_times, digest, size = _repeat_capture(tree, base, runs)
    rows.append(("asbx capture (zstd -3, threads=all, fsync)", capture_times, size))
    store = SnapshotStore(base / "store-keep")
    store.capture(tree)
    restore_times = _repeat(runs, lambda i: _restore(store, digest, base, i))
    rows.append(("asbx restore (verify + safe extract)", restore_times, None))
    gz_times, gz_size = _repeat_tar(base, runs, "tar czf", ["-czf"], {}, tree)
    rows.append(("tar czf (gzip -6)", gz_times, gz_size))
    if shutil.which("zstd"):
        env = {"ZSTD_NBTHREADS": "0", "ZSTD_CLEVEL": "3"}
        zst_times, zst_size = _repeat_tar(base, runs, "tar --zstd", ["--zstd", "-cf"], env, tree)
        rows.append(("tar --zstd (zstd -3, ZSTD_NBTHREADS=0)", zst_times, zst_size))
    untar_times = _repeat(runs, lambda i: _untar(base, i))
    rows.append(("tar xzf (extract the gzip archive)", untar_times, None))
    return rows


def _repeat(runs: int, action: Callable[[int], None]) -> list[float]:
    times = []
    for run in range(runs):
        os.sync()  # start each run without the previous run's dirty pages being written back
        started = time.perf_counter()
        action(run)
        times.append(time.perf_counter() - started)
    return times


def _repeat_capture(tree: Path, base: Path, runs: int) -> tuple[list[float], str, int]:
    times: list[float] = []
    digest, size = "", 0
    for run in range(runs):
        store = SnapshotStore(base / f"store-{run}")
        os.sync()
        started = time.perf_counter()
        info = store.capture(tree)
        times.append(time.perf_counter() - started)
        if digest and info.digest != digest:
            raise SystemExit("capture is not deterministic: digests differ between runs")
        digest, size = info.digest, info.size
    return times, digest, size


def _restore(store: SnapshotStore, digest: str, base: Path, run: int) -> None:
    store.restore(digest, base / f"restored-{run}")


def _repeat_tar(
    base: Path, runs: int, name: str, flags: list[str], env: dict[str, str], tree: Path
) -> tuple[list[float], int]:
    def archive(run: int) -> Path:
        return base / f"{name.replace(' ', '_')}-{run}.tar"

    def once(run: int) -> None:
        _run(["tar", *flags, str(archive(run)), "-C", str(tree), "."], env)

    times = _repeat(runs, once)
    return times, archive(0).stat().st_size


def _untar(base: Path, run: int) -> None:
    target = base / f"untar-{run}"
    target.mkdir()
    _run(["tar", "-xzf", str(base / "tar_czf-0.tar"), "-C", str(target)], {})


def _run(argv: list[str], env: dict[str, str]) -> None:
    result = _RUNNER(CommandRequest(argv=tuple(argv), env=env))
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({result.returncode}): {result.stderr}")


def _table(
    rows: list[Row], generated: dict[str, tuple[int, int]], options: argparse.Namespace
) -> str:
    gzip_median = statistics.median(next(t for name, t, _ in rows if name.startswith("tar czf")))
    lines = [
        f"workspace: {_describe(generated)} in {options.dir}; {options.runs} runs each; "
        f"{os.cpu_count()} CPUs; load average at the end {os.getloadavg()[0]:.2f}",
        "",
        "| tool | min s | median s | MB/s (median) | archive MB | vs tar czf (median) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    total = sum(size for _, size in generated.values())
    for name, times, size in rows:
        median = statistics.median(times)
        archive = f"{size / MB:.1f}" if size is not None else "-"
        lines.append(
            f"| {name} | {min(times):.2f} | {median:.2f} | {total / MB / median:.0f} | {archive} "
            f"| {gzip_median / median:.2f}x |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
