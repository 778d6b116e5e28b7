"""Benchmark: asbx against podman-compose and against the runtime's floor, side by side.

Four measures, each in the same invocation on the same podman storage, alternating tools:
cold apply, no-op apply, destroy (N busybox sandboxes, a named volume each, no network,
`--init`), and time to ready (apply one new sandbox, then `asbx exec one -- true`).

The floor is what podman itself needs for the same work, at asbx's parallelism (8):
`volume create` + `run -d` of N; the three listings asbx needs, run at once; `rm -f` of N
then `volume rm`; `run -d` + `exec`.

Usage: CONTAINERS_CONF=scripts/containers.conf python bench/apply_bench.py --n 10 30 --runs 3
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
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

IMAGE = "localhost/asbx/busybox:latest"
PARALLELISM = 8  # asbx's default --parallelism
Timings = dict[str, float]


def test_name() -> str:
    """A project name the test session's guard recognises as a bench's or test's own."""
    return f"asbxtest-{uuid.uuid4().hex[:8]}"


ASBX_N, ASBX_1, COMPOSE_N, COMPOSE_1 = (test_name() for _ in range(4))


def asbx_spec(n: int, name: str = ASBX_N) -> str:
    lines = ["version: 1", f"name: {name}", "volumes:"]
    lines += [f"  v{i}: {{}}" for i in range(n)]
    lines.append("sandboxes:")
    for i in range(n):
        lines += [f"  s{i}:", f"    image: {IMAGE}", f'    volumes: ["v{i}:/data"]']
    return "\n".join(lines) + "\n"


def one_sandbox_spec(name: str) -> str:
    return f"version: 1\nname: {name}\nsandboxes:\n  one:\n    image: {IMAGE}\n"


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


def one_service_compose() -> str:
    return (f"services:\n  one:\n    image: {IMAGE}\n    command: [tail, -f, /dev/null]\n"
            "    init: true\n    network_mode: none\n")


class CommandFailed(Exception):
    """A benchmarked command failed: the round is cleaned up and run again."""


def run(argv: list[str], cwd: Path, env: dict[str, str],
        check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    if check and result.returncode != 0:
        command = " ".join(argv)
        raise CommandFailed(f"{command} failed ({result.returncode}):\n{result.stdout}\n"
                            f"{result.stderr}")
    return result


def timed(argv: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, str]:
    start = time.perf_counter()
    result = run(argv, cwd, env)
    return time.perf_counter() - start, result.stderr


def clock(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def runtime_processes(stderr: str) -> int:
    return sum(1 for line in stderr.splitlines() if line.startswith("$ "))


def asbx_round(n: int, work: Path, env: dict[str, str]) -> Timings:
    asbx = [sys.executable, "-m", "asbx"]
    here = work / f"asbx{n}"
    out: Timings = {}
    out["asbx cold"], _ = timed([*asbx, "apply", "-y"], here, env)
    out["asbx no-op"], err = timed([*asbx, "-vv", "apply", "-y"], here, env)
    out["asbx no-op processes"] = runtime_processes(err)
    out["asbx destroy"], _ = timed([*asbx, "destroy", "-y", "--volumes", "--workspaces"], here,
                                   env)
    one = work / "asbx1"
    out["asbx ready"] = clock(lambda: (run([*asbx, "apply", "-y"], one, env),
                                       run([*asbx, "exec", "one", "--", "true"], one, env)))
    run([*asbx, "destroy", "-y", "--workspaces"], one, env)
    return out


def compose_round(n: int, work: Path, env: dict[str, str]) -> Timings:
    pc = ["podman-compose", "-p", COMPOSE_N]
    here = work / f"compose{n}"
    out: Timings = {}
    out["compose cold"], _ = timed([*pc, "up", "-d"], here, env)
    out["compose no-op"], _ = timed([*pc, "up", "-d"], here, env)
    out["compose destroy"], _ = timed([*pc, "down", "-v"], here, env)
    one, pc1 = work / "compose1", ["podman-compose", "-p", COMPOSE_1]
    out["compose ready"] = clock(lambda: (run([*pc1, "up", "-d"], one, env),
                                          run([*pc1, "exec", "-T", "one", "true"], one, env)))
    run([*pc1, "down", "-v"], one, env)
    return out


def floor_round(n: int, work: Path, env: dict[str, str]) -> Timings:
    """What podman needs for the same work, started as asbx starts it (8 at once)."""
    project = test_name()
    label = f"dev.asbx.project={project}"
    names = [f"{project}-s{i}" for i in range(n)]

    def podman(*args: str) -> subprocess.CompletedProcess[str]:
        return run(["podman", *args], work, env)

    def create(name: str) -> None:
        podman("volume", "create", "--label", label, f"{name}-v")
        podman("run", "-d", "--name", name, "--init", "--label", label, "--network", "none",
               "--mount", f"type=volume,source={name}-v,target=/data", IMAGE,
               "tail", "-f", "/dev/null")

    def listings() -> None:
        with ThreadPoolExecutor(3) as pool:
            list(pool.map(lambda argv: podman(*argv), [
                ("ps", "-a", "--filter", f"label={label}", "--format", "json"),
                ("volume", "ls", "--filter", f"label={label}", "--format", "json"),
                ("images", "--format", "json"),
            ]))

    def remove() -> None:
        chunks = [names[i::PARALLELISM] for i in range(PARALLELISM) if names[i::PARALLELISM]]
        with ThreadPoolExecutor(PARALLELISM) as pool:
            list(pool.map(lambda chunk: podman("rm", "-v", "-f", *chunk), chunks))
        podman("volume", "rm", *(f"{name}-v" for name in names))

    out: Timings = {}
    one = f"{project}-one"
    left = list(names)
    try:
        with ThreadPoolExecutor(PARALLELISM) as pool:
            out["floor cold"] = clock(lambda: list(pool.map(create, names)))
        out["floor no-op"] = clock(listings)
        out["floor destroy"] = clock(remove)
        left = []
        out["floor ready"] = clock(lambda: (
            podman("run", "-d", "--name", one, "--init", "--network", "none", IMAGE,
                   "tail", "-f", "/dev/null"),
            podman("exec", "-i", one, "true")))
    finally:  # one name at a time: podman 4.3's rm of several removes none if one is missing
        for leftover in [one, *left]:
            run(["podman", "rm", "-f", "-t", "0", leftover], work, env, check=False)
        for name in left:
            run(["podman", "volume", "rm", f"{name}-v"], work, env, check=False)
    return out


def clean_up(n: int, work: Path, env: dict[str, str]) -> None:
    """After a failed round: remove what asbx and podman-compose made (the floor cleans up
    itself)."""
    asbx = [sys.executable, "-m", "asbx", "destroy", "-y", "--volumes", "--workspaces"]
    run(asbx, work / f"asbx{n}", env, check=False)
    run(asbx, work / "asbx1", env, check=False)
    run(["podman-compose", "-p", COMPOSE_N, "down", "-v"], work / f"compose{n}", env, check=False)
    run(["podman-compose", "-p", COMPOSE_1, "down", "-v"], work / "compose1", env, check=False)


def one_round(n: int, work: Path, env: dict[str, str], attempts: int = 3) -> Timings:
    """asbx, podman-compose and the floor, one after the other; a round in which a command
    fails (another user's podman work can make a listing fail) is cleaned up and run again."""
    for attempt in range(1, attempts + 1):
        timings: Timings = {}
        try:
            for measure in (asbx_round, compose_round, floor_round):
                timings.update(measure(n, work, env))
            return timings
        except CommandFailed as exc:
            print(f"round failed (attempt {attempt} of {attempts}), cleaning up: {exc}",
                  file=sys.stderr, flush=True)
            clean_up(n, work, env)
    sys.exit(f"N={n}: {attempts} attempts failed")


def compile_bytecode(*trees: str) -> None:
    """Write asbx's .pyc files first, as `pip install` does: with PYTHONDONTWRITEBYTECODE set
    (as on the project's machines) every run would otherwise compile every module again,
    which podman-compose, installed with its bytecode, never pays."""
    import compileall

    import asbx

    for tree in (str(Path(asbx.__file__).parent), *trees):
        compileall.compile_dir(tree, quiet=1)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, nargs="+", default=[10, 30])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    if shutil.which("podman-compose") is None:
        sys.exit("podman-compose is not installed: pip install 'podman-compose==1.6.0'")
    compile_bytecode()
    reports = []
    with tempfile.TemporaryDirectory(prefix="asbx-bench-") as tmp:
        work = Path(tmp)
        env = {**os.environ, "ASBX_HOME": str(work / "home"), "ASBX_RUNTIME": "podman",
               "NO_COLOR": "1"}
        for name, text in [("asbx1/sandboxes.yaml", one_sandbox_spec(ASBX_1)),
                           ("compose1/compose.yaml", one_service_compose())]:
            (work / name).parent.mkdir()
            (work / name).write_text(text)
        for n in args.n:
            (work / f"asbx{n}").mkdir()
            (work / f"compose{n}").mkdir()
            (work / f"asbx{n}" / "sandboxes.yaml").write_text(asbx_spec(n))
            (work / f"compose{n}" / "compose.yaml").write_text(compose_file(n))
            rounds = [one_round(n, work, env) for _ in range(args.runs)]
            reports.append(render(n, rounds))
            print(reports[-1], flush=True)
    if args.out:
        args.out.write_text("\n\n".join(reports) + "\n")


TARGETS = {  # measure: (target vs podman-compose, target vs the floor)
    "cold": (0.4, None),
    "no-op": (None, 1.5),
    "destroy": (0.4, None),
    "ready": (None, 1.5),
}
LABELS = {
    "cold": "cold apply (`up -d`; `volume create` + `run -d`)",
    "no-op": "no-op apply (unchanged `up -d`; 3 listings at once)",
    "destroy": "destroy (`down -v`; `rm -f` + `volume rm`)",
    "ready": "time to ready: apply 1 + `exec true` (`up -d` + `exec`; `run -d` + `exec`)",
}


def render(n: int, rounds: list[Timings]) -> str:
    def stat(key: str) -> tuple[float, float]:
        values = [r[key] for r in rounds]
        return min(values), statistics.median(values)

    def verdict(ratio: float, target: float | None) -> str:
        if target is None:
            return f"{ratio:.2f}"
        return f"**{ratio:.2f}** (≤ {target}: {'met' if ratio <= target else 'MISSED'})"

    lines = [
        f"N = {n} sandboxes, {len(rounds)} runs (min / median, seconds)",
        "",
        "| measure | asbx | podman-compose | floor | asbx / compose | asbx / floor |",
        "|---|---|---|---|---|---|",
    ]
    for key, (vs_compose, vs_floor) in TARGETS.items():
        mine, theirs, floor = stat(f"asbx {key}"), stat(f"compose {key}"), stat(f"floor {key}")
        lines.append(
            f"| {LABELS[key]} | {mine[0]:.2f} / {mine[1]:.2f} | {theirs[0]:.2f} / {theirs[1]:.2f}"
            f" | {floor[0]:.2f} / {floor[1]:.2f} | {verdict(mine[1] / theirs[1], vs_compose)}"
            f" | {verdict(mine[1] / floor[1], vs_floor)} |"
        )
    procs = stat("asbx no-op processes")
    lines += ["", f"asbx no-op apply started {procs[1]:.0f} runtime processes."]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
