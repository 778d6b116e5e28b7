"""Start-up cost of asbx commands: wall and CPU time (asbx plus the runtime processes it waits
for) of `--version`, a no-op `plan` and `apply`, and `exec` on a running sandbox, beside
`python -c pass` and the three listings a no-op needs, run one after the other.

Run it in a directory whose sandboxes.yaml is applied and has a sandbox S:
    CONTAINERS_CONF=... python bench/cli_bench.py --sandbox s1 --runs 7 [--before SRC]
With --before, each asbx command also runs, alternating, on the asbx source tree SRC (e.g. an
older commit's `src/`, from `git archive`), so both are measured under the same load.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time


def measure(argv: list[str], src: str | None = None) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the process and the children it waited for)."""
    env = {**os.environ, **({"PYTHONPATH": src} if src else {})}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   env=env)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sandbox", default="s1")
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--before", metavar="SRC")
    args = parser.parse_args()
    from apply_bench import compile_bytecode

    compile_bytecode(*([args.before] if args.before else []))
    asbx = [sys.executable, "-m", "asbx"]
    cases = {
        "python -c pass": [sys.executable, "-c", "pass"],
        "asbx --version": [*asbx, "--version"],
        "asbx plan (no changes)": [*asbx, "plan"],
        "asbx apply -y (no changes)": [*asbx, "apply", "-y"],
        f"asbx exec {args.sandbox} -- true": [*asbx, "exec", args.sandbox, "--", "true"],
        "podman exec (alone)": ["podman", "exec", "-i", "", "true"],
    }
    print("| command | wall min / median s | CPU median s |"
          + (" before: wall min / median s | before: CPU median s |" if args.before else ""))
    print("|---|---|---|" + ("---|---|" if args.before else ""))
    for label, argv in cases.items():
        if argv[:2] == ["podman", "exec"]:
            found = subprocess.run(["podman", "ps", "--filter", f"label=dev.asbx.address=sandbox."
                                    f"{args.sandbox}", "--format", "{{.Names}}"],
                                   capture_output=True, text=True, check=True).stdout.split()
            argv[3] = found[0]
        compare = bool(args.before) and argv[0] == sys.executable and "asbx" in argv
        runs, before = [], []
        for _ in range(args.runs):
            runs.append(measure(argv))
            if compare:
                before.append(measure(argv, args.before))
        print(f"| `{label}` | {cell(runs)} |" + (f" {cell(before)} |" if compare else ""),
              flush=True)
    phases(args.runs)


PHASES = """
import time
from pathlib import Path
marks = [time.process_time()]
import click
marks.append(time.process_time())
import pydantic
marks.append(time.process_time())
import asbx.spec.model
marks.append(time.process_time())
from asbx.spec.loader import load_spec
marks.append(time.process_time())
load_spec(Path("sandboxes.yaml"))
marks.append(time.process_time())
print(" ".join(f"{(b - a) * 1000:.1f}" for a, b in zip(marks, marks[1:])))
"""
PHASE_NAMES = ("import click", "import pydantic", "import asbx.spec.model (pydantic models)",
               "import asbx.spec.loader (+ yaml, graph)", "load_spec (validate)")


def phases(runs: int) -> None:
    """CPU milliseconds of what every spec-loading command pays before its first runtime
    call, each in a fresh interpreter (median of `runs`)."""
    rows = [subprocess.run([sys.executable, "-c", PHASES], check=True, capture_output=True,
                           text=True).stdout.split() for _ in range(runs)]
    print("\n| phase (fresh interpreter) | CPU median ms |\n|---|---|")
    for index, name in enumerate(PHASE_NAMES):
        print(f"| {name} | {statistics.median(float(r[index]) for r in rows):.0f} |")


def cell(runs: list[tuple[float, float]]) -> str:
    walls = [w for w, _ in runs]
    return (f"{min(walls):.3f} / {statistics.median(walls):.3f} | "
            f"{statistics.median(c for _, c in runs):.3f}")


if __name__ == "__main__":
    main()
