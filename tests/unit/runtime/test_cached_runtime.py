"""Kept listings (runtime/cached.py): a listing holds until a change to what it lists is marked
at or after its start — by asbx's own calls or by the runtime's events — and never longer."""

from __future__ import annotations

import json
import sys
import threading
import time
from dataclasses import dataclass

import pytest

from asbx.runtime.base import ContainerRequest, ContainerState, Runtime
from asbx.runtime.cached import (
    CachedRuntime,
    EventWatcher,
    ListingCache,
    containers_now,
    uncached,
)
from asbx.runtime.events import RuntimeEvent, parse_docker_event, parse_podman_event
from tests.fakes.runtime import FakeRuntime

P = {"dev.asbx.project": "p1"}
IMAGE = "localhost/asbx/busybox:latest"


@dataclass
class Clock:
    now: float = 1000.0

    def __call__(self) -> float:
        return self.now

    def tick(self, seconds: float = 1.0) -> float:
        self.now += seconds
        return self.now


def make(clock: Clock | None = None) -> tuple[CachedRuntime, FakeRuntime, Clock]:
    clock = clock or Clock()
    fake = FakeRuntime()
    fake.add_image(IMAGE)
    cache = ListingCache(clock)
    runtime = CachedRuntime(fake, cache)
    cache.enable()
    return runtime, fake, clock


def request(name: str, address: str) -> ContainerRequest:
    return ContainerRequest(name=name, image=IMAGE, labels={**P, "dev.asbx.address": address},
                            command=("sleep", "60"), start=True)


def event(kind: str, action: str, at: float, name: str = "", labels: dict[str, str] | None
          = None) -> RuntimeEvent:
    return RuntimeEvent(kind, action, at, name, "", labels)


def test_a_listing_is_kept_until_a_change_is_marked() -> None:
    runtime, fake, clock = make()
    runtime.list_containers(P)
    runtime.list_containers(P)
    assert fake.count("list_containers") == 1
    clock.tick()
    runtime.create_container(request("p1-a", "sandbox.a"))
    listed = runtime.list_containers(P)
    assert fake.count("list_containers") == 2  # the create made it stale
    assert [c.name for c in listed] == ["p1-a"]


def test_a_narrow_listing_after_an_own_create_makes_the_wide_one_true_again() -> None:
    runtime, fake, clock = make()
    runtime.list_containers(P)
    clock.tick()
    runtime.create_container(request("p1-a", "sandbox.a"))
    clock.tick()
    narrow = runtime.list_containers({**P, "dev.asbx.address": "sandbox.a"})
    assert [c.name for c in narrow] == ["p1-a"]
    wide = runtime.list_containers(P)
    assert [c.name for c in wide] == ["p1-a"]
    assert fake.count("list_containers") == 2  # the wide one came from the merge


def test_the_events_of_an_own_call_are_not_changes_but_a_later_death_is() -> None:
    runtime, fake, clock = make()
    runtime.list_containers(P)
    labels = {**P, "dev.asbx.address": "sandbox.a"}
    started = clock.tick()
    runtime.create_container(request("p1-a", "sandbox.a"))
    clock.tick(0.01)
    runtime.list_containers(labels)  # the service's look after the create
    for action in ("create", "init", "start"):  # arriving late, stamped during the run
        runtime.cache.observe(event("container", action, started, "p1-a", labels))
    runtime.cache.observe(event("image", "pull", started, IMAGE))
    runtime.list_containers(P)
    runtime.list_images()
    assert fake.count("list_containers") == 2
    assert fake.count("list_images") == 1
    runtime.cache.observe(event("container", "died", clock.tick(), "p1-a", labels))
    runtime.list_containers(P)
    assert fake.count("list_containers") == 3


def test_an_event_stamped_before_a_listing_started_is_already_in_it() -> None:
    runtime, fake, clock = make()
    before = clock.now
    clock.tick()
    runtime.list_containers(P)
    runtime.cache.observe(event("container", "remove", before, "p1-x", {**P}))
    runtime.list_containers(P)
    assert fake.count("list_containers") == 1


def test_other_projects_containers_and_harmless_actions_change_nothing() -> None:
    runtime, fake, clock = make()
    runtime.list_containers(P)
    later = clock.tick()
    runtime.cache.observe(event("container", "start", later, "x", {"dev.asbx.project": "p2"}))
    runtime.cache.observe(event("container", "start", later, "y", {"other": "1"}))
    runtime.cache.observe(event("container", "exec_died", later, "p1-a", {**P}))
    runtime.cache.observe(event("container", "health_status", later, "p1-a", {**P}))
    runtime.list_containers(P)
    assert fake.count("list_containers") == 1
    runtime.cache.observe(event("container", "create", later, "p1-z", {**P}))
    runtime.list_containers(P)
    assert fake.count("list_containers") == 2


def test_a_container_event_without_labels_touches_every_kept_container_listing() -> None:
    runtime, fake, clock = make()
    runtime.list_containers(P)
    runtime.cache.observe(event("container", "remove", clock.tick(), "whatever", None))
    runtime.list_containers(P)
    assert fake.count("list_containers") == 2


def test_volume_events_have_no_labels_a_kept_name_scopes_them() -> None:
    runtime, fake, clock = make()
    fake.create_volume("p1-v", {**P, "dev.asbx.address": "volume.v"})
    fake.create_volume("q-v", {"dev.asbx.project": "q"})
    runtime.list_volumes(P)
    runtime.list_volumes({"dev.asbx.project": "q"})
    runtime.cache.observe(event("volume", "remove", clock.tick(), "q-v"))
    runtime.list_volumes(P)
    assert fake.count("list_volumes") == 2  # q's listing knew q-v: p1's stays true
    runtime.cache.observe(event("volume", "create", clock.tick(), "new-unknown"))
    runtime.list_volumes(P)
    assert fake.count("list_volumes") == 3  # an unknown volume may be anyone's


def test_a_call_in_progress_keeps_listings_stale_until_one_starts_after_it_ends() -> None:
    runtime, fake, clock = make()
    release = threading.Event()
    entered = threading.Event()
    original = fake.create_container

    def slow(req: ContainerRequest) -> str:
        entered.set()
        release.wait(5)
        return original(req)

    fake.create_container = slow  # type: ignore[method-assign]
    worker = threading.Thread(target=runtime.create_container, args=(request("p1-a", "sandbox.a"),))
    worker.start()
    entered.wait(5)
    runtime.list_containers(P)  # during the call: listed, but not trusted afterwards
    runtime.list_containers(P)
    assert fake.count("list_containers") == 2
    release.set()
    worker.join(5)
    clock.tick()
    assert [c.name for c in runtime.list_containers(P)] == ["p1-a"]


def test_a_failed_call_still_marks_its_change() -> None:
    runtime, fake, clock = make()
    runtime.list_containers(P)
    fake.fail("create_container")
    with pytest.raises(Exception, match="injected"):
        runtime.create_container(request("p1-a", "sandbox.a"))
    clock.tick()
    runtime.list_containers(P)
    assert fake.count("list_containers") == 2


def test_removals_by_name_are_scoped_by_the_kept_labels() -> None:
    runtime, fake, clock = make()
    runtime.create_container(request("p1-a", "sandbox.a"))
    runtime.create_container(request("p1-b", "sandbox.b"))
    clock.tick()
    runtime.list_containers(P)
    runtime.list_containers({**P, "dev.asbx.address": "sandbox.b"})
    clock.tick()
    runtime.remove_container("p1-a")
    clock.tick()
    assert runtime.list_containers({**P, "dev.asbx.address": "sandbox.b"})[0].name == "p1-b"
    assert [c.name for c in runtime.list_containers(P)] == ["p1-b"]
    assert fake.count("list_containers") == 3  # b's was kept; the wide one was listed again


def test_an_image_pull_by_someone_else_is_checked_before_relisting() -> None:
    runtime, fake, clock = make()
    runtime.list_images()
    runtime.cache.observe(event("image", "pull", clock.tick(), IMAGE))  # `podman run` elsewhere
    runtime.list_images()
    assert fake.count("list_images") == 1
    assert fake.count("inspect_image") == 1
    fake.add_image(IMAGE, digest="sha256:" + "1" * 64)  # a real pull: the name moved
    runtime.cache.observe(event("image", "pull", clock.tick(), IMAGE))
    runtime.list_images()
    assert fake.count("list_images") == 2


def test_image_removals_and_tags_are_changes() -> None:
    runtime, fake, clock = make()
    runtime.list_images()
    runtime.cache.observe(event("image", "untag", clock.tick(), "localhost/x:1"))
    runtime.list_images()
    assert fake.count("list_images") == 2


def test_nothing_is_kept_while_disabled_and_disabling_forgets() -> None:
    runtime, fake, _clock = make()
    runtime.list_containers(P)
    runtime.cache.disable()
    runtime.list_containers(P)
    runtime.list_containers(P)
    assert fake.count("list_containers") == 3
    runtime.cache.enable()
    runtime.list_containers(P)
    runtime.list_containers(P)
    assert fake.count("list_containers") == 4


def test_an_answer_lists_now_and_keeps_it() -> None:
    runtime, fake, clock = make()
    runtime.list_containers(P)
    assert containers_now(runtime, P) == []
    assert fake.count("list_containers") == 2
    clock.tick()
    runtime.list_containers(P)
    assert fake.count("list_containers") == 2  # the fresh one is kept
    assert containers_now(fake, P) == []


def test_invalidate_forgets_and_uncached_bypasses() -> None:
    runtime, fake, _clock = make()
    runtime.list_containers(P)
    runtime.cache.invalidate()
    runtime.list_containers(P)
    uncached(runtime).list_containers(P)
    assert fake.count("list_containers") == 3
    assert uncached(fake) is fake


def test_marks_do_not_pile_up_on_a_busy_machine() -> None:
    runtime, _fake, clock = make()
    runtime.list_containers(P)
    for i in range(2000):
        runtime.cache.observe(event("container", "start", clock.tick(0.01), f"x{i}",
                                    {"dev.asbx.project": "other"}))
    clock.tick(60)
    runtime.list_containers(P)
    for _ in range(300):
        runtime.cache.observe(event("volume", "create", clock.tick(0.01), "n"))
    assert len(runtime.cache._marks) < 400


def test_every_runtime_method_is_classified() -> None:
    """A method added to the Runtime protocol must be decided here: passed through (changes
    nothing listed) or marked; __getattr__ would pass a mutating call through unmarked."""
    members = {n for n, v in vars(Runtime).items() if callable(v) and not n.startswith("_")}
    defined = {n for n, v in vars(CachedRuntime).items() if callable(v) or isinstance(v, property)}
    assert members <= defined, sorted(members - defined)


def test_container_state_survives_the_cache() -> None:
    runtime, _fake, clock = make()
    runtime.create_container(request("p1-a", "sandbox.a"))
    clock.tick()
    (found,) = runtime.list_containers(P)
    assert found.state is ContainerState.RUNNING


# -- events as the runtimes print them

def test_podman_event_lines_are_read_with_nanoseconds_and_labels() -> None:
    line = json.dumps({"ID": "3969ae", "Image": IMAGE, "Name": "p1-a", "Status": "start",
                       "Time": "2026-12-05T04:44:52.061635223Z", "Type": "container",
                       "Attributes": {"dev.asbx.project": "p1"}})
    found = parse_podman_event(line)
    assert found is not None
    assert (found.kind, found.action, found.name, found.id) == ("container", "start", "p1-a",
                                                                "3969ae")
    assert found.labels == {"dev.asbx.project": "p1"}
    assert found.time == pytest.approx(1796445892.061635223, abs=1e-6)
    volume = parse_podman_event('{"Name":"v","Status":"create","Time":"2026-12-05T04:44:51Z",'
                                '"Type":"volume","Attributes":null}')
    assert volume is not None
    assert volume.labels is None
    assert parse_podman_event('{"Type":"network","Status":"create","Time":"2026-12-05T04:44:51Z"}'
                              ) is None
    assert parse_podman_event("not json") is None


def test_docker_event_lines_are_read() -> None:
    line = json.dumps({"Type": "container", "Action": "exec_start: sh -c true",
                       "Actor": {"ID": "abc", "Attributes": {"name": "p1-a", "image": IMAGE,
                                                             "dev.asbx.project": "p1"}},
                       "time": 1796445892, "timeNano": 1796445892061635223})
    found = parse_docker_event(line)
    assert found is not None
    assert found.name == "p1-a"
    assert found.labels == {"dev.asbx.project": "p1"}
    assert found.harmless
    mounted = parse_docker_event(json.dumps({
        "Type": "volume", "Action": "mount", "Actor": {"ID": "v1", "Attributes": {}},
        "timeNano": 1796445892061635223}))
    assert mounted is not None
    assert mounted.harmless
    assert mounted.name == "v1"
    assert mounted.labels is None


# -- the stream

def test_a_stream_that_ends_is_started_again_and_what_was_kept_is_forgotten(tmp_path) -> None:
    runs = tmp_path / "runs"
    script = ("import sys, time, pathlib; p = pathlib.Path(sys.argv[1]); "
              "p.write_text(p.read_text() + 'x' if p.exists() else 'x'); time.sleep(0.3)")
    cache = ListingCache()
    watcher = EventWatcher(cache, lambda since: [sys.executable, "-c", script, str(runs)],
                           parse_podman_event)
    watcher.RESTART_PAUSE = 0.05
    watcher.start()
    try:
        cache.store(cache.begin()[0], "volume", frozenset(), [])
        assert cache.get("volume", frozenset()) == ()
        deadline = time.monotonic() + 10
        while watcher.restarts < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert watcher.restarts >= 2
        assert len(runs.read_text()) >= 2
        assert cache.get("volume", frozenset()) is None  # forgotten when the first one ended
    finally:
        watcher.stop()
    assert not cache.enabled


def test_a_stream_that_keeps_ending_at_once_is_retried_less_and_less_often() -> None:
    cache = ListingCache()
    watcher = EventWatcher(cache, lambda since: [sys.executable, "-c", "pass"],
                           parse_podman_event)
    watcher.RESTART_PAUSE = 0.05
    watcher.start()
    try:
        deadline = time.monotonic() + 20
        while watcher.restarts < 3 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert list(watcher.pauses)[:3] == [0.05, 0.1, 0.2]
        assert cache.get("volume", frozenset()) is None
    finally:
        watcher.stop()


def test_a_running_stream_feeds_the_cache_and_stop_ends_it(tmp_path) -> None:
    line = json.dumps({"Name": "v", "Status": "create", "Time": "2030-01-01T00:00:00Z",
                       "Type": "volume"})
    script = f"import sys, time; print({line!r}, flush=True); time.sleep(60)"
    cache = ListingCache()
    token, _ = cache.begin()
    watcher = EventWatcher(cache, lambda since: [sys.executable, "-c", script],
                           parse_podman_event)
    watcher.start()
    try:
        cache.store(cache.begin()[0], "volume", frozenset(), [])
        deadline = time.monotonic() + 10
        while cache.get("volume", frozenset()) is not None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert cache.get("volume", frozenset()) is None  # the event (in 2030) made it stale
        assert watcher.running
    finally:
        watcher.stop()
    cache.abandon(token)
    assert not watcher.running
