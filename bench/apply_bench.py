"""Benchmark: asbx apply / no-op apply / destroy against podman-compose up / up / down, same podman.

N long-lived busybox sandboxes, each with its own named volume, no network (`deny` /
`network_mode: none`), `--init`. Both tools run in the same invocation, alternating, on the
same podman storage. Usage: python bench/apply_bench.py [--n 30] [--runs 3] [--out FILE].
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

IMAGE = "localhost/asbx/busybox:latest"


def asbx_spec(n: int) -> str:
    lines = ["version: 1", "name: benchasbx", "volumes:"]
    lines += [f"  v{i}: {{}}" for i in range(n)]
    lines.append("sandboxes:")
    for i in range(n):
        lines += [f"  s{i}:", f"    image: {IMAGE}", f'    volumes: ["v{i}:/data"]']
    return "\n".join(lines) + "\n"


def compose_file(n: int) -> str:
    lines = ["services:"]
    for i in range(n):
        lines += [
            f"  s{i}:",
            f"    image: {IMAGE}",
            "    command: [tail, -f, /dev/null]",
            "    init: true",
            "    network_mode: none",
            "    volumes:",
            f"      - v{i}:/data",
        ]
    lines.append("volumes:")
    lines += [f"  v{i}: {{}}" for i in range(n)]
    return "\n".join(lines) + "\n"


def timed(argv: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, str]:
    start = time.perf_counter()
    result = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        command = " ".join(argv)
        sys.exit(f"{command} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return elapsed, result.stderr


def runtime_processes(stderr: str) -> int:
    return sum(1 for line in stderr.splitlines() if line.startswith("$ "))


def one_round(n: int, work: Path, env: dict[str, str]) -> dict[str, float]:
    asbx = [sys.executable, "-m", "asbx"]
    out: dict[str, float] = {}
    out["asbx apply (cold)"], _ = timed([*asbx, "apply", "-y"], work / "asbx", env)
    out["asbx apply (no-op)"], err = timed([*asbx, "-vv", "apply", "-y"], work / "asbx", env)
    out["asbx no-op runtime processes"] = runtime_processes(err)
    out["asbx destroy"], _ = timed(
        [*asbx, "destroy", "-y", "--volumes", "--workspaces"], work / "asbx", env
    )
    pc = ["podman-compose", "-p", "benchpc"]
    out["podman-compose up -d (cold)"], _ = timed([*pc, "up", "-d"], work / "compose", env)
    out["podman-compose up -d (unchanged)"], _ = timed([*pc, "up", "-d"], work / "compose", env)
    out["podman-compose down"], _ = timed([*pc, "down", "-v"], work / "compose", env)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=30)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    if shutil.which("podman-compose") is None:
        sys.exit("podman-compose is not installed: pip install 'podman-compose==1.6.0'")
    with tempfile.TemporaryDirectory(prefix="asbx-bench-") as tmp:
        work = Path(tmp)
        (work / "asbx").mkdir()
        (work / "compose").mkdir()
        (work / "asbx" / "sandboxes.yaml").write_text(asbx_spec(args.n))
        (work / "compose" / "compose.yaml").write_text(compose_file(args.n))
        env = {
            **os.environ,
            "ASBX_HOME": str(work / "home"),
            "ASBX_RUNTIME": "podman",
            "NO_COLOR": "1",
        }
        rounds = [one_round(args.n, work, env) for _ in range(args.runs)]
    report = render(args.n, rounds)
    print(report)
    if args.out:
        args.out.write_text(report)


def render(n: int, rounds: list[dict[str, float]]) -> str:
    def stat(key: str) -> tuple[float, float]:
        values = [r[key] for r in rounds]
        return min(values), statistics.median(values)

    lines = [
        f"N = {n} sandboxes, {len(rounds)} runs (min / median, seconds)",
        "",
        "| step | asbx | podman-compose | ratio (median) | target |",
        "|---|---|---|---|---|",
    ]
    pairs = [
        ("cold apply vs up -d", "asbx apply (cold)", "podman-compose up -d (cold)", 0.4),
        (
            "no-op apply vs unchanged up -d",
            "asbx apply (no-op)",
            "podman-compose up -d (unchanged)",
            0.3,
        ),
        ("destroy vs down", "asbx destroy", "podman-compose down", 0.4),
    ]
    for label, mine, theirs, target in pairs:
        a, b = stat(mine), stat(theirs)
        ratio = a[1] / b[1]
        verdict = "met" if ratio <= target else "MISSED"
        lines.append(
            f"| {label} | {a[0]:.2f} / {a[1]:.2f} | {b[0]:.2f} / {b[1]:.2f} | "
            f"{ratio:.2f} | ≤ {target} {verdict} |"
        )
    procs = stat("asbx no-op runtime processes")
    lines += ["", f"asbx no-op apply started {procs[1]:.0f} runtime processes (target ≤ 4)."]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
