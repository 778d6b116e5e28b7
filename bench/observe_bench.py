"""Observation cost on a real runtime: list containers + images + volumes for a project of N
sandboxes, counting runtime processes (must be 3 for podman, whatever N is) and timing them.

    CONTAINERS_CONF=scripts/containers.conf python bench/observe_bench.py --sandboxes 50
    DOCKER_HOST=unix://... python bench/observe_bench.py --runtime docker
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

from asbx.runtime.base import LABEL_ADDRESS, LABEL_PROJECT, ContainerRequest, MountRequest, Runtime
from asbx.runtime.command import RecordingRunner, SubprocessRunner
from asbx.runtime.detect import create_runtime


def populate(runtime: Runtime, project: str, count: int, image: str) -> None:
    """N running sandboxes, each with its own named volume, all labelled with the project."""

    def one(index: int) -> None:
        name = f"{project}-s{index}"
        labels = {LABEL_PROJECT: project, LABEL_ADDRESS: f"sandbox.s{index}"}
        runtime.create_volume(name, {LABEL_PROJECT: project, LABEL_ADDRESS: f"volume.s{index}"})
        runtime.create_container(ContainerRequest(
            name=name, image=image, command=("sleep", "infinity"), labels=labels,
            workdir="/", mounts=(MountRequest("volume", name, "/data"),)))
        runtime.start_container(name)

    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(one, range(count)))


def remove(runtime: Runtime, project: str) -> None:
    labels = {LABEL_PROJECT: project}
    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(lambda c: runtime.remove_container(c.name),
                      runtime.list_containers(labels)))
    for volume in runtime.list_volumes(labels):
        runtime.remove_volume(volume.name)


Run = tuple[float, int, tuple[int, int, int], list[float]]


def observe_once(runtime: Runtime, recorder: RecordingRunner, project: str,
                 concurrent: bool = False) -> Run:
    """(seconds, runtime processes, objects found, seconds of each process); `concurrent` runs
    the three listings at once, as asbx.observe does."""
    recorder.clear()
    labels = {LABEL_PROJECT: project}
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=3 if concurrent else 1) as pool:
        listed_containers = pool.submit(runtime.list_containers, labels)
        listed_images = pool.submit(runtime.list_images)
        listed_volumes = pool.submit(runtime.list_volumes, labels)
        containers, images = listed_containers.result(), listed_images.result()
        volumes = listed_volumes.result()
    elapsed = time.perf_counter() - started
    found = (len(containers), len(images), len(volumes))
    return elapsed, recorder.count, found, [result.duration for result in recorder.results]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runtime", default="podman")
    parser.add_argument("--sandboxes", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--image", default="localhost/asbx/busybox:latest")
    args = parser.parse_args(argv)

    recorder = RecordingRunner(SubprocessRunner())
    runtime = create_runtime(args.runtime, recorder)
    print(f"{runtime.name} {runtime.check()}")
    project = f"bench-{uuid.uuid4().hex[:8]}"
    setup = time.perf_counter()
    try:
        populate(runtime, project, args.sandboxes, args.image)
        print(f"set up {args.sandboxes} running sandboxes + volumes "
              f"in {time.perf_counter() - setup:.1f}s")
        runs = [observe_once(runtime, recorder, project) for _ in range(args.rounds)]
        together = [observe_once(runtime, recorder, project, concurrent=True)[0] * 1000
                    for _ in range(args.rounds)]
    finally:
        remove(runtime, project)
    times = sorted(run[0] * 1000 for run in runs)
    calls = {run[1] for run in runs}
    found = runs[0][2]
    print(f"observed containers/images/volumes = {found[0]}/{found[1]}/{found[2]}")
    print(f"runtime processes per observation: {sorted(calls)}")
    print(f"observation time over {args.rounds} rounds: median {statistics.median(times):.0f} ms,"
          f" min {times[0]:.0f} ms, max {times[-1]:.0f} ms")
    print(f"the three at once (as asbx.observe runs them): median "
          f"{statistics.median(together):.0f} ms")
    if calls == {3}:
        per_call = [statistics.median(run[3][i] * 1000 for run in runs) for i in range(3)]
        print("median per process: ps {:.0f} ms, images {:.0f} ms, volume ls {:.0f} ms".format(
            *per_call))
    return 0 if calls == {3} or runtime.name != "podman" else 1


if __name__ == "__main__":
    sys.exit(main())
