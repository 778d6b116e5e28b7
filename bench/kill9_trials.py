"""Crash recovery: `kill -9` an apply that replaces every sandbox, then one plain `apply -y`.

The project: 6 sandboxes with a setup step (s0 mounts a volume, s5 is restored from a snapshot
of s0), one volume, one snapshot. Each trial changes every sandbox's env (so each is replaced
and the snapshot retaken), starts `asbx apply -y`, kills it with SIGKILL at a random moment
between --min and --max seconds, then runs one plain `asbx apply -y` and checks:
it exits 0, `plan --detailed-exitcode` is 0, every sandbox runs with this trial's config and
its setup ran in its current container, and no data was lost (the volume's file, every
workspace's file, the file s5's workspace was restored with, the snapshot archive).

Usage: python bench/kill9_trials.py [--trials 30] [--seed N] [--min 0.05] [--max 2.5]
Runs on real podman (CONTAINERS_CONF defaults to scripts/containers.conf); touches only its
own project (a unique name, its own ASBX_HOME), removed at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

IMAGE = "localhost/asbx/busybox:latest"
REPO = Path(__file__).resolve().parents[1]
SANDBOXES = [f"s{i}" for i in range(6)]


def spec(name: str, trial: int) -> str:
    lines = ["version: 1", f"name: {name}", "volumes:", "  data: {}", "sandboxes:"]
    for box in SANDBOXES:
        lines += [f"  {box}:", f"    image: {IMAGE}", f'    env: {{TRIAL: "{trial}"}}',
                  "    setup:", '      - echo "$$TRIAL" > /setup-done']  # $$: not interpolated
        if box == "s0":
            lines += ["      - echo seeded > /workspace/from-s0", '    volumes: ["data:/data"]']
        if box == "s5":
            lines += ["    workspace: {snapshot: seed}", "    depends_on: [s0]"]
    lines += ["snapshots:", "  seed: {sandbox: s0}"]
    return "\n".join(lines) + "\n"


@dataclass
class Trial:
    number: int
    kill_after: float
    recovery_rc: int
    recovery_seconds: float
    plan_rc: int
    problems: list[str]

    @property
    def ok(self) -> bool:
        return self.recovery_rc == 0 and self.plan_rc == 0 and not self.problems


class Bench:
    def __init__(self, root: Path, env: dict[str, str], name: str) -> None:
        self.root = root
        self.env = env
        self.name = name

    def asbx(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "asbx", *args], cwd=self.root, env=self.env,
                              capture_output=True, text=True, check=False, timeout=600)

    def podman(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["podman", *args], env=self.env, capture_output=True, text=True,
                              check=False, timeout=120)

    def write(self, trial: int) -> None:
        (self.root / "sandboxes.yaml").write_text(spec(self.name, trial))

    def container(self, box: str) -> str:
        return f"{self.name}-{box}"

    def seed_data(self) -> None:
        """Data no apply may lose: a volume file, a file in each workspace."""
        self.podman("exec", self.container("s0"), "sh", "-c", "echo precious > /data/keep")
        for box in SANDBOXES:
            self.podman("exec", self.container(box), "sh", "-c",
                        f"echo mine-{box} > /workspace/keep-{box}")

    def check(self, trial: int) -> list[str]:
        problems = []
        states = self.states()
        for box in SANDBOXES:
            name = self.container(box)
            if states.get(name) != "running":
                problems.append(f"{box} is {states.get(name, 'missing')}")
                continue
            done = self.podman("exec", name, "cat", "/setup-done").stdout.strip()
            if done != str(trial):
                problems.append(f"{box}: setup did not run in its container ({done!r})")
            keep = self.podman("exec", name, "cat", f"/workspace/keep-{box}").stdout.strip()
            if keep != f"mine-{box}":
                problems.append(f"{box}: workspace file lost ({keep!r})")
        if states.get(self.container("s0")) == "running":
            data = self.podman("exec", self.container("s0"), "cat", "/data/keep").stdout.strip()
            if data != "precious":
                problems.append(f"volume file lost ({data!r})")
        if states.get(self.container("s5")) == "running":
            restored = self.podman("exec", self.container("s5"), "cat",
                                   "/workspace/from-s0").stdout.strip()
            if restored != "seeded":
                problems.append(f"s5: restored snapshot file lost ({restored!r})")
        archives = list((Path(self.env["ASBX_HOME"]) / "snapshots").rglob("*.tar.zst"))
        if not archives:
            problems.append("no snapshot archive left")
        return problems

    def states(self) -> dict[str, str]:
        out = self.podman("ps", "-a", "--filter", f"label=dev.asbx.project={self.name}",
                          "--format", "json").stdout
        return {c["Names"][0]: c["State"] for c in json.loads(out or "[]")}

    def trial(self, number: int, kill_after: float) -> Trial:
        self.write(number)
        process = subprocess.Popen([sys.executable, "-m", "asbx", "apply", "-y"], cwd=self.root,
                                   env=self.env, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)
        time.sleep(kill_after)
        if process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)
        process.wait()
        started = time.monotonic()
        recovery = self.asbx("apply", "-y")
        seconds = time.monotonic() - started
        plan = self.asbx("plan", "--detailed-exitcode")
        problems = self.check(number)
        if recovery.returncode != 0:
            problems.append("recovery apply: " + recovery.stderr.strip()[-600:])
        if plan.returncode != 0:
            problems.append("plan after recovery: " + plan.stdout.strip()[-600:])
        return Trial(number, kill_after, recovery.returncode, seconds, plan.returncode, problems)

    def cleanup(self) -> None:
        self.asbx("destroy", "-y", "--volumes", "--snapshots", "--workspaces")
        label = f"label=dev.asbx.project={self.name}"
        ids = self.podman("ps", "-aq", "--filter", label).stdout.split()
        if ids:
            self.podman("rm", "-f", "-t", "0", *ids)
        volumes = self.podman("volume", "ls", "-q", "--filter", label).stdout.split()
        if volumes:
            self.podman("volume", "rm", "-f", *volumes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=30)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--min", type=float, default=0.05)
    parser.add_argument("--max", type=float, default=2.5)
    args = parser.parse_args()
    seed = args.seed if args.seed is not None else random.randrange(1 << 30)
    rng = random.Random(seed)
    conf = os.environ.get("CONTAINERS_CONF") or str(REPO / "scripts" / "containers.conf")
    work = Path(tempfile.mkdtemp(prefix="asbx-kill9-"))
    # Named as a test's project, so the suite's guard (tests/user_objects.py) does not take
    # this benchmark's replacements for a test touching a user's project.
    name = f"asbxtest-{uuid.uuid4().hex[:8]}"
    env = {**os.environ, "CONTAINERS_CONF": conf, "ASBX_HOME": str(work / "home"),
           "ASBX_RUNTIME": "podman", "NO_COLOR": "1"}
    root = work / "proj"
    root.mkdir()
    bench = Bench(root, env, name)
    trials: list[Trial] = []
    try:
        bench.write(0)
        first = bench.asbx("apply", "-y")
        if first.returncode != 0:
            sys.exit(f"the first apply failed:\n{first.stderr}")
        bench.seed_data()
        for number in range(1, args.trials + 1):
            result = bench.trial(number, rng.uniform(args.min, args.max))
            trials.append(result)
            mark = "ok" if result.ok else "FAILED: " + " | ".join(result.problems)
            print(f"trial {number:2d}: killed at {result.kill_after:.2f}s, recovery "
                  f"{result.recovery_seconds:.1f}s, {mark}", flush=True)
    finally:
        bench.cleanup()
        shutil.rmtree(work, ignore_errors=True)
    converged = sum(t.ok for t in trials)
    seconds = sorted(t.recovery_seconds for t in trials)
    print(f"\nseed {seed}: {converged}/{len(trials)} trials converged with one plain apply "
          f"(recovery apply median {seconds[len(seconds) // 2]:.1f}s, max {seconds[-1]:.1f}s)")
    sys.exit(0 if converged == len(trials) else 1)


if __name__ == "__main__":
    main()
