"""The proxy process under a burst (bench/proxy_bench.py, smaller): every request is served."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[3] / "bench" / "proxy_bench.py"


def test_a_burst_past_the_worker_limit_is_queued_and_all_served() -> None:
    # 400 requests at once against 32 workers: 368 of them wait in the queue, none is refused
    result = subprocess.run(
        [sys.executable, str(BENCH), "--requests", "400", "--rounds", "1", "--json",
         "--max-connections", "32", "--timeout", "60"],
        capture_output=True, text=True, timeout=240, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    row = json.loads(result.stdout.splitlines()[-1])
    assert (row["ok"], row["others"]) == (400, {})
    assert row["peak_threads"] <= 32 + 2  # the workers, the accept loop, the main thread
    assert row["peak_rss_mib"] < 100


def test_past_the_queue_the_overflow_is_answered_503_not_dropped() -> None:
    result = subprocess.run(
        [sys.executable, str(BENCH), "--requests", "200", "--rounds", "1", "--json",
         "--max-connections", "8", "--max-queued", "8", "--timeout", "60"],
        capture_output=True, text=True, timeout=240, check=False)
    row = json.loads(result.stdout.splitlines()[-1])
    assert result.returncode == 1
    assert row["ok"] >= 16
    assert row["ok"] + row["others"].get("503", 0) == 200
