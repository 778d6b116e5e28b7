"""Start-up cost of asbx commands: wall and CPU time (asbx plus the runtime processes it waits
for) of `--version`, a no-op `plan` and `apply`, and `exec` on a running sandbox, beside
`python -c pass` and the three listings a no-op needs, run one after the other.

Run it in a directory whose sandboxes.yaml is applied and has a sandbox S:
    CONTAINERS_CONF=... python bench/cli_bench.py --sandbox s1 --runs 7
"""

from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys
import time


def measure(argv: list[str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the process and the children it waited for)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sandbox", default="s1")
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    asbx = [sys.executable, "-m", "asbx"]
    cases = {
        "python -c pass": [sys.executable, "-c", "pass"],
        "asbx --version": [*asbx, "--version"],
        "asbx plan (no changes)": [*asbx, "plan"],
        "asbx apply -y (no changes)": [*asbx, "apply", "-y"],
        f"asbx exec {args.sandbox} -- true": [*asbx, "exec", args.sandbox, "--", "true"],
        "podman exec (alone)": ["podman", "exec", "-i", "", "true"],
    }
    print("| command | wall min / median s | CPU median s |")
    print("|---|---|---|")
    for label, argv in cases.items():
        if argv[:2] == ["podman", "exec"]:
            found = subprocess.run(["podman", "ps", "--filter", f"label=dev.asbx.address=sandbox."
                                    f"{args.sandbox}", "--format", "{{.Names}}"],
                                   capture_output=True, text=True, check=True).stdout.split()
            argv[3] = found[0]
        runs = [measure(argv) for _ in range(args.runs)]
        walls = [w for w, _ in runs]
        print(f"| `{label}` | {min(walls):.3f} / {statistics.median(walls):.3f} | "
              f"{statistics.median(c for _, c in runs):.3f} |", flush=True)


if __name__ == "__main__":
    main()
