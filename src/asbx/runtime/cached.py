"""A runtime whose listings are kept between calls and dropped when something may change them:
asbx's own mutations (at once) and the runtime's event stream (others' changes).

For a long-lived process (`asbx serve`) that plans many times: an unchanged project is
observed without a runtime call. The rule: a listing started at time T holds until a change
to what it lists is marked at or after T. Marks come from

- every mutating call made through this runtime, from its start (in progress: the listing
  cannot be trusted) to its end;
- every event the runtime reports (`podman events`), at its time plus a margin, unless it is
  the effect of one of this runtime's own calls in progress at that moment (`podman run` says
  "create", "init", "start" and, for its image, "pull").

Events arrive late (≈ 0.2 s with podman's file event log here), so a change made by someone else
is seen that much later; a listing is at least as old when a plan acts on it without a cache.
Changes made through asbx's state store (the CLI applying the same project) are caught by the
caller comparing the store's serial (`invalidate`). When the event stream is not running, every
listing goes to the runtime.
"""

from __future__ import annotations

import itertools
import logging
import math
import queue
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import IO, Any

from asbx.images import normalise_ref
from asbx.runtime.base import (
    BuildRequest,
    Capabilities,
    ContainerRequest,
    ExecResult,
    ObservedContainer,
    ObservedImage,
    ObservedNetwork,
    ObservedVolume,
    OutputCallback,
    Runtime,
)
from asbx.runtime.command import CommandRequest, spawn_stream
from asbx.runtime.events import CONTAINER, IMAGE, VOLUME, RuntimeEvent

_log = logging.getLogger(__name__)

EVENT_MARGIN = 0.05  # an event's time may trail the change it reports by this much
OWN_SLACK = 0.02  # an own call's events may be stamped this close outside its start and end
OWN_WINDOW = 30.0  # how long after a call its events may still arrive (podman: ~0.2 s)
PRUNE_AT = 256
MAX_RESTART_PAUSE = 60.0  # a stream that keeps ending at once (runtime gone) is tried this often
CHECK_WAIT = 1.0  # how long a listing waits for pending "pull" checks before listing anew
# The events each kind of own call causes (podman and docker words).
EFFECTS = {
    "image": frozenset({"pull", "tag", "untag", "remove", "delete", "build", "load", "import"}),
    "volume": frozenset({"create", "remove", "destroy"}),
    "create_container": frozenset({"create", "init", "start"}),
    "start_container": frozenset({"init", "start"}),
    "stop_container": frozenset({"kill", "stop", "died", "die", "cleanup"}),
    "remove_container": frozenset({"kill", "stop", "died", "die", "cleanup", "remove",
                                   "destroy"}),
    "remove_containers": frozenset({"kill", "stop", "died", "die", "cleanup", "remove",
                                    "destroy"}),
    "update_limits": frozenset({"update"}),
}

Labels = frozenset[tuple[str, str]]


@dataclass
class Mark:
    """A change (or a change in progress: `time` infinite) to the objects of `kind` carrying
    `labels` (None: any of them) — what makes listings started before `time` stale."""

    kind: str
    labels: Labels | None
    time: float = math.inf
    seq: int = 0
    # for an own call in progress: the events it causes (kind, action, object) are its own
    started: float = 0.0
    effects: frozenset[tuple[str, str]] = frozenset()
    names: frozenset[str] = frozenset()  # "*": any object of the kind
    changes: bool = True  # False: only there to own a call's events (e.g. `run`'s "pull")
    pending: bool = False  # being checked (a "pull" that may have changed nothing)

    def affects(self, kind: str, labels: Labels) -> bool:
        return self.changes and self.kind == kind and (
            self.labels is None or labels <= self.labels)

    def owns(self, event: RuntimeEvent, name: str) -> bool:
        return (self.started - OWN_SLACK <= event.time <= self.time + OWN_SLACK
                and (event.kind, event.action) in self.effects
                and bool({"*", name, event.id} & self.names))


@dataclass
class _Entry:
    kind: str
    labels: Labels
    value: tuple[Any, ...]
    listed_at: float
    cleared: set[int] = field(default_factory=set)


class ListingCache:
    """Listings by (kind, label filter), and the marks that make them stale."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: dict[tuple[str, Labels], _Entry] = {}
        self._marks: list[Mark] = []
        self._seq = itertools.count(1)
        self._listing_since: dict[int, float] = {}  # listings in flight: their start times
        self._checked = threading.Condition(self._lock)
        self._checks: queue.Queue[tuple[Mark, str]] = queue.Queue()
        self._checker: threading.Thread | None = None
        self._prune_at = PRUNE_AT
        # How to look up one image (a "pull" event names a ref, not what it points at now).
        self.inspect_image: Callable[[str], ObservedImage | None] | None = None
        self.enabled = False

    # -- reading
    def get(self, kind: str, labels: Labels) -> tuple[Any, ...] | None:
        """The kept listing, if it is still true (None: list again)."""
        with self._lock:
            if not self.enabled:
                return None
            self._checked.wait_for(lambda: not any(
                m.pending and m.kind == kind for m in self._marks), timeout=CHECK_WAIT)
            entry = self._entries.get((kind, labels))
            if entry is not None and not self._stale(entry):
                return entry.value
            return self._from_wider(kind, labels)

    def _stale(self, entry: _Entry) -> bool:
        return any(m.time >= entry.listed_at and m.seq not in entry.cleared
                   and m.affects(entry.kind, entry.labels) for m in self._marks)

    def _from_wider(self, kind: str, labels: Labels) -> tuple[Any, ...] | None:
        """A narrower filter answered from a wider kept listing that is still true."""
        for entry in self._entries.values():
            if entry.kind == kind and entry.labels < labels and not self._stale(entry):
                return tuple(o for o in entry.value if labels <= _labels_of(o))
        return None

    # -- listing
    def begin(self) -> tuple[int, float]:
        """Note a listing about to start: (its token, its start time)."""
        with self._lock:
            token, started = next(self._seq), self._clock()
            self._listing_since[token] = started
            return token, started

    def store(self, token: int, kind: str, labels: Labels, value: Iterable[Any]) -> None:
        """Keep what a listing begun with `token` returned; merge it into wider listings whose
        only stale part it covers."""
        with self._lock:
            started = self._listing_since.pop(token, None)
            if started is None or not self.enabled:
                return
            entry = _Entry(kind, labels, tuple(value), started)
            self._entries[(kind, labels)] = entry
            for wider in list(self._entries.values()):
                if wider.kind == kind and wider.labels < labels:
                    self._merge(wider, entry)
            self._prune()

    def abandon(self, token: int) -> None:
        with self._lock:
            self._listing_since.pop(token, None)

    def _merge(self, wider: _Entry, narrow: _Entry) -> None:
        stale = [m for m in self._marks if m.time >= wider.listed_at
                 and m.seq not in wider.cleared and m.affects(wider.kind, wider.labels)]
        if not stale or not all(m.labels is not None and narrow.labels <= m.labels
                                and m.time < narrow.listed_at for m in stale):
            return
        kept = tuple(o for o in wider.value if not narrow.labels <= _labels_of(o))
        wider.value = kept + narrow.value
        wider.cleared.update(m.seq for m in stale)

    # -- marking
    def mark(self, kind: str, labels: Labels | None, *, effects: Iterable[tuple[str, str]] = (),
             names: Iterable[str] = (), changes: bool = True) -> Mark:
        """A change of `kind` (labels None: any object) starting now; `done` ends it. Its
        `effects` (kind, action) on objects named in `names` are its own events."""
        with self._lock:
            mark = Mark(kind, labels, math.inf, next(self._seq), self._clock(),
                        frozenset(effects), frozenset(names), changes)
            self._marks.append(mark)
            return mark

    def done(self, mark: Mark) -> None:
        with self._lock:
            mark.time = self._clock()

    def observe(self, event: RuntimeEvent) -> None:
        """Take an event from the runtime into account."""
        if event.harmless:
            return
        with self._lock:
            name = normalise_ref(event.name) if event.kind == IMAGE else event.name
            if any(m.owns(event, name) for m in self._marks):
                return  # the effect of an own call, which marked the change itself
            labels = self._event_labels(event)
            mark = Mark(event.kind, labels, event.time + EVENT_MARGIN, next(self._seq))
            if event.kind == IMAGE and event.action == "pull" and self.inspect_image:
                # `podman run` of a local image says "pull" too: look before relisting
                mark.time, mark.pending = math.inf, True
                self._start_checker()
                self._checks.put((mark, name))
            elif mark.time < self._clock() and not self._matters(mark):
                return  # e.g. another project's container: nothing kept or being listed shows it
            self._marks.append(mark)
            if len(self._marks) > self._prune_at:
                self._prune()
                self._prune_at = max(PRUNE_AT, 2 * len(self._marks))

    def _start_checker(self) -> None:
        if self._checker is None:
            self._checker = threading.Thread(target=self._check_pulls, daemon=True,
                                             name="asbx-pull-check")
            self._checker.start()

    def _check_pulls(self) -> None:
        """Settle each pending "pull": no change when the kept images listing already has the
        image its ref points at now; else a change at the event's time."""
        while True:
            mark, ref = self._checks.get()
            inspect = self.inspect_image
            try:
                found = inspect(ref) if inspect is not None else None
            except Exception:  # any failure: count it as a change
                found = None
            with self._lock:
                kept = self._entries.get((IMAGE, frozenset()))
                same = found is not None and kept is not None and any(
                    i.id == found.id and ref in {normalise_ref(n) for n in i.names}
                    for i in kept.value)
                mark.pending = False
                mark.changes = not same
                mark.time = self._clock() if not same else mark.started
                self._checked.notify_all()

    def _event_labels(self, event: RuntimeEvent) -> Labels | None:
        if event.labels is not None:
            return frozenset(event.labels.items())
        if event.kind == VOLUME:  # events carry no labels: the kept listing may know them
            for entry in self._entries.values():
                for volume in entry.value:
                    if entry.kind == VOLUME and volume.name == event.name:
                        return frozenset(volume.labels.items())
        return None

    def labels_of_container(self, name: str) -> Labels | None:
        """The labels of a kept container named `name` (None if none is kept)."""
        with self._lock:
            for entry in self._entries.values():
                for item in entry.value:
                    if entry.kind == CONTAINER and name in (item.name, item.id):
                        return _labels_of(item)
        return None

    # -- on and off
    def enable(self) -> None:
        with self._lock:
            self.enabled = True

    def disable(self) -> None:
        """Forget everything (the event stream stopped): every listing goes to the runtime."""
        with self._lock:
            self.enabled = False
            self._entries.clear()
            self._marks = [m for m in self._marks if math.isinf(m.time)]

    def invalidate(self) -> None:
        """Forget every kept listing (something outside this process may have changed)."""
        with self._lock:
            self._entries.clear()

    def _prune(self) -> None:
        """Keep the marks that can still matter: changes stamped from now on (a margin ahead),
        own calls in progress or just ended (their events may still come), and changes that
        make a kept listing, or one in flight, stale."""
        now = self._clock()
        self._marks = [m for m in self._marks if m.time >= now or self._matters(m)
                       or (m.effects and m.time >= now - OWN_WINDOW)]

    def _matters(self, mark: Mark) -> bool:
        """Whether `mark` makes a kept listing stale or may make one in flight stale."""
        in_flight = min(self._listing_since.values(), default=math.inf)
        return mark.time >= in_flight or any(
            mark.time >= e.listed_at and mark.seq not in e.cleared
            and mark.affects(e.kind, e.labels) for e in self._entries.values())


def _labels_of(obj: Any) -> Labels:
    return frozenset(getattr(obj, "labels", {}).items())


class CachedRuntime:
    """`inner` with its listings kept by a ListingCache fed by `inner`'s events."""

    def __init__(self, inner: Runtime, cache: ListingCache | None = None) -> None:
        self.inner = inner
        self.cache = cache or ListingCache()
        self.cache.inspect_image = inner.inspect_image
        self.name = inner.name

    @property
    def capabilities(self) -> Capabilities:
        return self.inner.capabilities

    @capabilities.setter
    def capabilities(self, value: Capabilities) -> None:
        self.inner.capabilities = value

    def __getattr__(self, attribute: str) -> Any:  # a backend's own helpers (read-only)
        return getattr(self.inner, attribute)

    # -- what changes nothing a kept listing holds (networks are not kept)
    def check(self) -> str:
        return self.inner.check()

    def probe_capabilities(self) -> Capabilities:
        return self.inner.probe_capabilities()

    def list_networks(self, labels: Mapping[str, str]) -> list[ObservedNetwork]:
        return self.inner.list_networks(labels)

    def create_network(self, name: str, labels: Mapping[str, str], internal: bool
                       ) -> ObservedNetwork:
        return self.inner.create_network(name, labels, internal)

    def remove_network(self, name: str) -> None:
        self.inner.remove_network(name)

    def inspect_image(self, ref: str) -> ObservedImage | None:
        return self.inner.inspect_image(ref)

    def container_limits(self, name: str) -> tuple[float | None, int | None]:
        return self.inner.container_limits(name)

    def exec(self, name: str, argv: tuple[str, ...], **options: Any) -> ExecResult:
        return self.inner.exec(name, argv, **options)

    def exec_argv(self, name: str, argv: tuple[str, ...], **options: Any) -> list[str]:
        return self.inner.exec_argv(name, argv, **options)

    def logs_argv(self, name: str, *, follow: bool, tail: int | None) -> list[str]:
        return self.inner.logs_argv(name, follow=follow, tail=tail)

    # -- listings
    def list_containers(self, labels: Mapping[str, str], *, now: bool = False
                        ) -> list[ObservedContainer]:
        """Kept containers, or (`now`) a listing made now, kept for what follows."""
        return self._listed(CONTAINER, labels, lambda: self.inner.list_containers(labels), now)

    def list_volumes(self, labels: Mapping[str, str]) -> list[ObservedVolume]:
        return self._listed(VOLUME, labels, lambda: self.inner.list_volumes(labels))

    def list_images(self) -> list[ObservedImage]:
        return self._listed(IMAGE, {}, self.inner.list_images)

    def _listed(self, kind: str, labels: Mapping[str, str], call: Callable[[], list[Any]],
                now: bool = False) -> list[Any]:
        key = frozenset(labels.items())
        kept = None if now else self.cache.get(kind, key)
        if kept is not None:
            return list(kept)
        token, _ = self.cache.begin()
        try:
            value = call()
        except BaseException:
            self.cache.abandon(token)
            raise
        self.cache.store(token, kind, key, value)
        return value

    # -- containers
    def create_container(self, request: ContainerRequest) -> str:
        # `run --pull never` reports a "pull" of its image: its own, and no change
        image = self.cache.mark(IMAGE, None, effects=[(IMAGE, "pull")],
                                names=[normalise_ref(request.image)], changes=False)
        try:
            return str(self._changing(CONTAINER, frozenset(request.labels.items()),
                                      "create_container", [request.name],
                                      lambda: self.inner.create_container(request)))
        finally:
            self.cache.done(image)

    def start_container(self, name: str) -> None:
        self._by_name("start_container", [name], lambda: self.inner.start_container(name))

    def stop_container(self, name: str, timeout: float = 10) -> None:
        self._by_name("stop_container", [name],
                      lambda: self.inner.stop_container(name, timeout=timeout))

    def remove_container(self, name: str, force: bool = True) -> None:
        self._by_name("remove_container", [name],
                      lambda: self.inner.remove_container(name, force=force))

    def remove_containers(self, names: Sequence[str]) -> None:
        self._by_name("remove_containers", list(names),
                      lambda: self.inner.remove_containers(names))

    def update_limits(self, name: str, cpus: float | None, memory: int | None) -> None:
        self._by_name("update_limits", [name],
                      lambda: self.inner.update_limits(name, cpus, memory))

    def _by_name(self, call: str, names: list[str], run: Callable[[], Any]) -> None:
        known = [self.cache.labels_of_container(n) for n in names]
        labels = known[0] if len(known) == 1 else None  # unknown or several: any container
        self._changing(CONTAINER, labels, call, names, run)

    # -- images and volumes (image events name refs or ids: an own call owns them all)
    def pull(self, ref: str, platform: str | None = None,
             on_output: OutputCallback | None = None) -> ObservedImage:
        image: ObservedImage = self._changing(IMAGE, None, "image", ["*"],
                                              lambda: self.inner.pull(ref, platform, on_output))
        return image

    def build(self, request: BuildRequest, on_output: OutputCallback | None = None
              ) -> ObservedImage:
        image: ObservedImage = self._changing(IMAGE, None, "image", ["*"],
                                              lambda: self.inner.build(request, on_output))
        return image

    def remove_image(self, ref: str) -> None:
        self._changing(IMAGE, None, "image", ["*"], lambda: self.inner.remove_image(ref))

    def create_volume(self, name: str, labels: Mapping[str, str], size: int | None = None
                      ) -> None:
        self._changing(VOLUME, frozenset(labels.items()), "volume", [name],
                       lambda: self.inner.create_volume(name, labels, size))

    def remove_volume(self, name: str) -> None:
        self._changing(VOLUME, None, "volume", [name], lambda: self.inner.remove_volume(name))

    def remove_volumes(self, names: Sequence[str]) -> None:
        self._changing(VOLUME, None, "volume", list(names),
                       lambda: self.inner.remove_volumes(names))

    def _changing(self, kind: str, labels: Labels | None, call: str, names: Sequence[str],
                  run: Callable[[], Any]) -> Any:
        """Run a mutating call with its change marked from its start to its end."""
        mark = self.cache.mark(kind, labels, effects=[(kind, a) for a in EFFECTS[call]],
                               names=names)
        try:
            return run()
        finally:
            self.cache.done(mark)


class EventWatcher:
    """Reads the runtime's event stream into a ListingCache. The cache is used only while a
    stream runs, and each stream starts `--since` a moment before the cache is enabled, so no
    change is missed. A stream that ends (podman ends it when it rotates its event log) is
    started again, the kept listings forgotten first."""

    RESTART_PAUSE = 1.0  # after a stream that lasted less than this

    def __init__(self, cache: ListingCache, argv: Callable[[float], list[str]],
                 parse: Callable[[str], RuntimeEvent | None]) -> None:
        self.cache = cache
        self._argv = argv
        self._parse = parse
        self._process: subprocess.Popen[bytes] | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self.restarts = 0
        self.pauses: deque[float] = deque(maxlen=16)  # the last waits before a restart

    def start(self) -> None:
        """Start the first stream (the cache is enabled once it runs) and its reader."""
        if self._spawn():
            self._thread = threading.Thread(target=self._loop, name="asbx-runtime-events",
                                            daemon=True)
            self._thread.start()

    def _spawn(self) -> bool:
        since = time.time() - 1.0  # replayed events from before a listing only cost a re-list
        try:
            self._process = spawn_stream(CommandRequest(tuple(self._argv(since))))
        except OSError as exc:
            _log.warning("runtime events not available (%s): every listing goes to the runtime",
                         exc)
            return False
        self.cache.enable()
        return True

    def _loop(self) -> None:
        pause = self.RESTART_PAUSE
        while not self._stopping.is_set():
            started = time.monotonic()
            code = self._read()
            self.cache.disable()  # until the next stream runs: every listing is fresh
            if self._stopping.is_set():
                return
            _log.info("the runtime's event stream ended (exit %s); starting it again", code)
            if time.monotonic() - started < self.RESTART_PAUSE:  # ending at once: back off
                self.pauses.append(pause)
                self._stopping.wait(pause)
                pause = min(pause * 2, MAX_RESTART_PAUSE)
            else:
                pause = self.RESTART_PAUSE
            if self._stopping.is_set() or not self._spawn():
                return
            self.restarts += 1
            if self._stopping.is_set():  # stop() ran while this one started
                self._end(self._process)
                return

    def _read(self) -> int | None:
        process = self._process
        assert process is not None
        assert process.stdout is not None
        errors = threading.Thread(target=_drain, args=(process.stderr,), daemon=True)
        errors.start()
        with process.stdout:
            for raw in iter(process.stdout.readline, b""):
                event = self._parse(raw.decode("utf-8", errors="replace"))
                if event is not None:
                    self.cache.observe(event)
        errors.join(timeout=5)
        return process.wait()

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None and self.cache.enabled

    def stop(self) -> None:
        self._stopping.set()
        self.cache.disable()
        self._end(self._process)
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._end(self._process)

    @staticmethod
    def _end(process: subprocess.Popen[bytes] | None) -> None:
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _drain(pipe: IO[bytes] | None) -> None:
    """Read a stream's stderr to its end (a full pipe would stall it); log its last words."""
    if pipe is None:
        return
    with pipe:
        tail = b""
        for chunk in iter(lambda: pipe.read(4096), b""):
            tail = (tail + chunk)[-2048:]
    if tail.strip():
        _log.info("runtime event stream: %s", tail.decode("utf-8", errors="replace").strip())


def watched(runtime: Runtime) -> tuple[Runtime, EventWatcher | None]:
    """`runtime` with kept listings if it has an event stream (podman, docker), else itself."""
    argv = getattr(runtime, "events_argv", None)
    parse = getattr(runtime, "parse_event", None)
    if argv is None or parse is None:
        return runtime, None
    cached = CachedRuntime(runtime)
    watcher = EventWatcher(cached.cache, argv, parse)
    watcher.start()
    kept: Runtime = cached
    return kept, watcher


def containers_now(runtime: Runtime, labels: Mapping[str, str]) -> list[ObservedContainer]:
    """The containers carrying `labels` as the runtime lists them now (what an answer about
    a sandbox's state says; a runtime keeping listings keeps this one too)."""
    if isinstance(runtime, CachedRuntime):
        return runtime.list_containers(labels, now=True)
    return runtime.list_containers(labels)


def uncached(runtime: Runtime) -> Runtime:
    """`runtime` without kept listings: what a verification must list with."""
    return runtime.inner if isinstance(runtime, CachedRuntime) else runtime


def forget_listings(runtime: Runtime) -> None:
    """Drop `runtime`'s kept listings, if it keeps any (something changed outside it)."""
    if isinstance(runtime, CachedRuntime):
        runtime.cache.invalidate()
