"""How late the command runner sees a command end: wall time of `true`, `sleep 0.1` and
`podman ps` through asbx's runner against the command alone (one `os.posix_spawn` + waitpid).

Run: CONTAINERS_CONF=scripts/containers.conf python bench/runner_bench.py --runs 10
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

from asbx.runtime.command import CommandRequest, SubprocessRunner

CASES = (("true",), ("sleep", "0.1"), ("podman", "ps", "-a", "--format", "json"))


def alone(argv: tuple[str, ...]) -> float:
    """The command by itself: spawned and waited for with a blocking waitpid."""
    started = time.perf_counter()
    with open(os.devnull, "wb") as null:
        pid = os.posix_spawnp(argv[0], list(argv), os.environ,
                              file_actions=[(os.POSIX_SPAWN_DUP2, null.fileno(), 1),
                                            (os.POSIX_SPAWN_DUP2, null.fileno(), 2)])
        os.waitpid(pid, 0)
    return time.perf_counter() - started


def through_runner(runner: SubprocessRunner, argv: tuple[str, ...]) -> float:
    started = time.perf_counter()
    runner(CommandRequest(argv, timeout=300))
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    runner = SubprocessRunner()
    print(f"| command ({args.runs} runs) | alone median ms | runner median ms | runner min ms |")
    print("|---|---:|---:|---:|")
    for argv in CASES:
        bare = [alone(argv) for _ in range(args.runs)]
        ran = [through_runner(runner, argv) for _ in range(args.runs)]
        print(f"| `{' '.join(argv[:2])}` | {statistics.median(bare) * 1000:.1f} | "
              f"{statistics.median(ran) * 1000:.1f} | {min(ran) * 1000:.1f} |")


if __name__ == "__main__":
    main()
