"""Benchmark: `asbx plan` machinery on a 500-sandbox spec against the in-memory FakeRuntime.

Times load + observe + plan (cold: nothing applied; warm: everything applied and unchanged) and
counts runtime calls. Usage: python bench/plan_bench.py [--n 500] [--runs 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from asbx.plan.model import PlanOptions
from asbx.spec.loader import load_spec
from asbx.state.store import StateStore
from asbx.workflow import Session, make_plan, run_apply
from tests.fakes.runtime import FakeRuntime


def spec_text(n: int) -> str:
    lines = [
        "version: 1",
        "name: planbench",
        "images:",
        "  base: {ref: localhost/asbx/busybox:latest}",
        "volumes:",
        *[f"  v{i}: {{}}" for i in range(n)],
        "sandboxes:",
    ]
    for i in range(n):
        lines += [f"  s{i}:", "    image: base", "    memory: 256M", f'    volumes: ["v{i}:/data"]']
    return "\n".join(lines) + "\n"


def timed_plan(root: Path, runtime: FakeRuntime, home: Path) -> tuple[float, int, int]:
    started = time.perf_counter()
    loaded = load_spec(root / "sandboxes.yaml")
    session = Session.create(loaded, runtime, StateStore(home / "state.db"), home)
    before = len(runtime.calls)
    planned = make_plan(session, PlanOptions())
    elapsed = time.perf_counter() - started
    return elapsed, len(runtime.calls) - before, len(planned.plan.pending)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=500)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root, home = Path(tmp), Path(tmp) / "home"
        (root / "sandboxes.yaml").write_text(spec_text(args.n))
        runtime = FakeRuntime()
        runtime.publish("localhost/asbx/busybox:latest")
        cold = [timed_plan(root, runtime, home) for _ in range(args.runs)]
        loaded = load_spec(root / "sandboxes.yaml")
        session = Session.create(loaded, runtime, StateStore(home / "state.db"), home)
        run_apply(session, make_plan(session, PlanOptions()), parallelism=8, hooks=_Quiet())
        warm = [timed_plan(root, runtime, home) for _ in range(args.runs)]
    for label, rows in (("cold (nothing applied)", cold), ("warm (no changes)", warm)):
        times = [r[0] for r in rows]
        print(
            f"{label}: {args.n} sandboxes, min {min(times):.3f} s, median "
            f"{statistics.median(times):.3f} s, {rows[0][1]} runtime calls, "
            f"{rows[0][2]} changes"
        )


class _Quiet:
    def step_started(self, *args: object) -> None:
        pass

    def step_output(self, *args: object) -> None:
        pass

    def step_finished(self, *args: object) -> None:
        pass

    def note(self, *args: object) -> None:
        pass


if __name__ == "__main__":
    main()
