"""The API's overhead: create + exec through a warm `asbx serve` against podman run + exec.

Run: python bench/api_bench.py --runs 5 (as root, with podman and localhost/asbx/busybox).
Uses its own ASBX_HOME and project (`asbxtest-apibench-…`) and removes what it made.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from asbx.client import Client

IMAGE = "localhost/asbx/busybox:latest"
# The baseline's own containers: not labelled as the API project's (they are not its sandboxes,
# and its server would see them as changes to its project, as it should).
BENCH_LABEL = "asbx-bench"
CAPS = ("CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID", "SETPCAP",
        "NET_BIND_SERVICE")


def podman(*args: str) -> str:
    return subprocess.run(["podman", *args], check=True, capture_output=True, text=True).stdout


def timed(fn: object) -> float:
    started = time.perf_counter()
    fn()  # type: ignore[operator]
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    project = f"asbxtest-apibench-{uuid.uuid4().hex[:6]}"
    home = Path(tempfile.mkdtemp(prefix="asbx-apibench-"))
    env = {**os.environ, "ASBX_HOME": str(home), "ASBX_RUNTIME": "podman"}
    sock = home / "asbx.sock"
    server = subprocess.Popen([sys.executable, "-m", "asbx", "serve", "--project", project],
                              env=env, stdout=subprocess.DEVNULL)
    rows: dict[str, list[float]] = {k: [] for k in
                                    ("podman run -d + exec true",
                                     "podman run -d (asbx's flags) + exec true",
                                     "API create + exec true",
                                     "podman exec true", "API exec true")}
    workspace = home / "bench-workspace"
    workspace.mkdir()
    try:
        while True:
            with socket.socket(socket.AF_UNIX) as probe:
                try:
                    probe.connect(str(sock))
                    break
                except OSError:
                    time.sleep(0.1)
        with Client(socket=sock) as client:
            client.health()
            for i in range(args.runs):
                name = f"{project}-raw{i}"

                def raw(name: str = name) -> None:
                    podman("run", "-d", "--name", name, "--network", "none",
                           "--label", f"{BENCH_LABEL}={project}", IMAGE, "sleep", "3600")
                    podman("exec", name, "true")

                rows["podman run -d + exec true"].append(timed(raw))

                def same(i: int = i) -> None:  # the container asbx makes, as asbx runs it
                    podman("run", "-d", "--name", f"{project}-same{i}", "--init",
                           "--label", f"{BENCH_LABEL}={project}",
                           "--mount", f"type=bind,source={workspace},target=/workspace",
                           "--network", "none", "--cap-drop", "ALL",
                           *[a for c in CAPS for a in ("--cap-add", c)],
                           "--security-opt", "no-new-privileges", "--workdir", "/workspace",
                           IMAGE, "tail", "-f", "/dev/null")
                    podman("exec", f"{project}-same{i}", "true")

                rows["podman run -d (asbx's flags) + exec true"].append(timed(same))
                rows["podman exec true"].append(timed(lambda n=name: podman("exec", n, "true")))

                def api(i: int = i) -> None:
                    client.create(f"b{i}", IMAGE)
                    client.exec(f"b{i}", ["true"])

                rows["API create + exec true"].append(timed(api))
                rows["API exec true"].append(timed(lambda i=i: client.exec(f"b{i}", ["true"])))
    finally:
        server.terminate()
        server.wait()
        ids = [i for label in ("dev.asbx.project", BENCH_LABEL)
               for i in podman("ps", "-aq", "--filter", f"label={label}={project}").split()]
        if ids:
            podman("rm", "-f", "-t", "0", *ids)
    print(f"| operation ({args.runs} runs) | min s | median s |")
    print("|---|---:|---:|")
    for key, values in rows.items():
        print(f"| {key} | {min(values):.3f} | {statistics.median(values):.3f} |")
    create = statistics.median(rows["API create + exec true"])
    base = statistics.median(rows["podman run -d + exec true"])
    exec_ratio = statistics.median(rows["API exec true"]) / statistics.median(
        rows["podman exec true"])
    same = statistics.median(rows["podman run -d (asbx's flags) + exec true"])
    print(f"\ncreate+exec: {create / base:.2f}x podman run -d + exec ({create / same:.2f}x with "
          f"asbx's flags); exec: {exec_ratio:.2f}x podman exec")


if __name__ == "__main__":
    main()
