"""Build-context digest benchmark: cold and warm digests of a generated 10 000-file context.

Run:  python bench/context_bench.py [--files 10000] [--runs 5]

The context is source-like (100 directories of 100 files, 1-8 KB each) plus ignored noise
(`node_modules/`, `*.log`, `**/__pycache__`, 10 % on top) under a 5-line `.dockerignore`.
File mtimes are set an hour back, as in a checkout: files modified within the stat cache's
2-second racy window are re-hashed every time by design. "cold" has no stat cache (every file
is read and hashed, from a warm page cache); "warm" reuses the cache written by the cold run;
"one edit" is a warm run after changing one file. Target: warm < 0.3 s.
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

from asbx.data.context import ContextDigest, context_digest

DOCKERIGNORE = "# noise\nnode_modules\n*.log\n**/__pycache__\n.git\n"


def main() -> int:
    options = _parse_args()
    base = Path(tempfile.mkdtemp(prefix="asbx-context-bench-", dir=options.dir))
    try:
        context = base / "context"
        kept = _generate(context, options.files, random.Random(options.seed))
        cache = base / "cache.json"
        rows = _measure(context, cache, options.runs)
        print(_table(rows, kept, options))
    finally:
        shutil.rmtree(base)
    return 0


def _parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=10_000, help="kept files (default 10000)")
    parser.add_argument("--runs", type=int, default=5, help="runs per case (default 5)")
    parser.add_argument("--dir", default="/tmp", help="where to build the context")
    parser.add_argument("--seed", type=int, default=11)
    return parser.parse_args()


def _generate(root: Path, files: int, rng: random.Random) -> int:
    (root / "Dockerfile").parent.mkdir(parents=True)
    (root / "Dockerfile").write_text("FROM busybox\nCOPY . /app\n")
    (root / ".dockerignore").write_text(DOCKERIGNORE)
    for index in range(files - 2):
        folder = root / "src" / f"pkg{index // 100:03d}"
        folder.mkdir(parents=True, exist_ok=True)
        text = rng.randbytes(rng.randint(512, 4096)).hex()
        (folder / f"mod{index % 100:03d}.py").write_text(text)
    for index in range(files // 10):
        noise = root / ("node_modules" if index % 2 else f"src/pkg{index % 100:03d}/__pycache__")
        noise.mkdir(parents=True, exist_ok=True)
        (noise / f"junk{index}.pyc").write_bytes(b"x" * 256)
    hour_ago = time.time_ns() - 3600 * 10**9
    for dirpath, _, names in os.walk(root):
        for name in names:
            os.utime(Path(dirpath) / name, ns=(hour_ago, hour_ago))
    return files


Row = tuple[str, list[float], ContextDigest]


def _measure(context: Path, cache: Path, runs: int) -> list[Row]:
    rows: list[Row] = []
    uncached = _repeat(runs, lambda: context_digest(context))
    rows.append(("cold, no cache (every file hashed)", *uncached))

    def cold_writing_cache() -> ContextDigest:
        cache.unlink(missing_ok=True)
        return context_digest(context, cache=cache)

    rows.append(("cold, writing the cache", *_repeat(runs, cold_writing_cache)))
    rows.append(("warm (stat cache)", *_repeat(runs, lambda: context_digest(context, cache=cache))))
    edited = context / "src/pkg000/mod000.py"

    def one_edit() -> ContextDigest:
        edited.write_bytes(os.urandom(64).hex().encode())
        os.utime(edited, ns=(1, 1))  # old mtime: outside the racy window, so it gets cached
        return context_digest(context, cache=cache)

    rows.append(("warm after editing one file", *_repeat(runs, one_edit)))
    return rows


def _repeat(runs: int, action: Callable[[], ContextDigest]) -> tuple[list[float], ContextDigest]:
    times = []
    result = None
    for _ in range(runs):
        started = time.perf_counter()
        result = action()
        times.append(time.perf_counter() - started)
    assert result is not None
    return times, result


def _table(rows: list[Row], kept: int, options: argparse.Namespace) -> str:
    lines = [
        f"context: {kept} kept files + {kept // 10} ignored, in {options.dir}; "
        f"{options.runs} runs each; {os.cpu_count()} CPUs; "
        f"load average at the end {os.getloadavg()[0]:.2f}",
        "",
        "| case | min s | median s | files hashed | from cache |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, times, result in rows:
        lines.append(
            f"| {name} | {min(times):.3f} | {statistics.median(times):.3f} "
            f"| {result.hashed_files} | {result.cached_files} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
