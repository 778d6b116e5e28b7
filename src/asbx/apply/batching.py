"""Coalesce concurrent removals into one runtime call each (`rm -f a b c`, `volume rm a b c`).

Apply runs its steps in parallel threads; the destroy steps of a teardown arrive together.
Every runtime process costs far more than the work it does, so the first caller of a window
waits a moment for the others and then runs one bulk call for all of them. Every bulk removal
is verified against one listing of the runtime: podman 4.3's `rm -f A B C` exits 0 and
removes nothing when one of the names is missing, so what is left is retried one name a call,
and a removal that still did not happen is an error for that name alone.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from asbx.errors import AsbxError, NotFoundError
from asbx.runtime.base import LABEL_PROJECT, Runtime

Failures = Mapping[str, BaseException]
"""Per-name errors of a bulk call (the names it could not remove)."""


@dataclass
class _Batch:
    names: list[str] = field(default_factory=list)
    done: threading.Event = field(default_factory=threading.Event)
    error: BaseException | None = None
    failures: Failures = field(default_factory=dict)


class Coalescer:
    """Blocks each `submit(name)` until a bulk call that included `name` has finished; raises
    the bulk call's error, or the error it returned for `name`."""

    def __init__(self, bulk: Callable[[Sequence[str]], Failures | None],
                 window: float = 0.02) -> None:
        self._bulk = bulk
        self._window = window
        self._lock = threading.Lock()
        self._open: _Batch | None = None

    def submit(self, name: str) -> None:
        with self._lock:
            leader = self._open is None
            if self._open is None:
                self._open = _Batch()
            batch = self._open
            batch.names.append(name)
        if leader:
            time.sleep(self._window)
            with self._lock:
                self._open = None
            try:
                batch.failures = self._bulk(list(batch.names)) or {}
            except BaseException as exc:  # handed to every caller of the batch
                batch.error = exc
            finally:
                batch.done.set()
        else:
            batch.done.wait()
        if batch.error is not None:
            raise batch.error
        if name in batch.failures:
            raise batch.failures[name]


class Removals:
    """Container and volume removals for one apply, batched per kind and verified."""

    def __init__(self, runtime: Runtime, project: str) -> None:
        self._runtime = runtime
        self._labels = {LABEL_PROJECT: project}
        self.containers = Coalescer(self._remove_containers)
        self.volumes = Coalescer(self._remove_volumes)

    def _remove_containers(self, names: Sequence[str]) -> Failures:
        def present(wanted: Iterable[str]) -> set[str]:
            listed = {c.name for c in self._runtime.list_containers(self._labels)}
            return listed & set(wanted)

        return remove_verified(names, self._runtime.remove_containers,
                               self._runtime.remove_container, present, "container")

    def _remove_volumes(self, names: Sequence[str]) -> Failures:
        def present(wanted: Iterable[str]) -> set[str]:
            return {v.name for v in self._runtime.list_volumes(self._labels)} & set(wanted)

        return remove_verified(names, self._runtime.remove_volumes,
                               self._runtime.remove_volume, present, "volume")


RETRY_PAUSES = (0.5, 1.0, 2.0)
"""Seconds between retries of a removal the runtime refused: podman 4.3 fails `rm` with
"unlinkat .../userdata/shm: device or resource busy" while another podman process briefly
holds a copy of the container's mounts (seen after a `podman run` was killed mid-way)."""


def remove_verified(
    names: Sequence[str],
    bulk: Callable[[Sequence[str]], None],
    one: Callable[[str], None],
    present: Callable[[Iterable[str]], set[str]],
    kind: str,
    pauses: Sequence[float] = RETRY_PAUSES,
) -> dict[str, BaseException]:
    """Remove `names` in one call, list what is left (one listing), retry those one by one
    (again after each of `pauses` while the runtime refuses), and return an error for each
    name still present: only a verified removal is recorded."""
    with contextlib.suppress(AsbxError):  # the listing says which ones it did not remove
        bulk(names)
    left = present(names)
    failures: dict[str, BaseException] = {}
    for pause in (0.0, *pauses):
        if not left:
            return {}
        time.sleep(pause)
        failures = {}
        for name in sorted(left):
            try:
                one(name)
            except NotFoundError:
                pass
            except AsbxError as exc:
                failures[name] = exc
        left = present(left)
        if not failures:
            break
    for name in left - failures.keys():
        failures[name] = AsbxError(f"{kind} {name!r} is still there after it was removed",
                                   hint="see what holds it, then run the command again")
    return {name: error for name, error in failures.items() if name in left}
