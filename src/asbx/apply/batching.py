"""Coalesce concurrent removals into one runtime call each (`rm -f a b c`, `volume rm a b c`).

Apply runs its steps in parallel threads; the destroy steps of a teardown arrive together.
Every runtime process costs far more than the work it does, so the first caller of a window
waits a moment for the others and then runs one bulk call for all of them.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from asbx.runtime.base import Runtime


@dataclass
class _Batch:
    names: list[str] = field(default_factory=list)
    done: threading.Event = field(default_factory=threading.Event)
    error: BaseException | None = None


class Coalescer:
    """Blocks each `submit(name)` until a bulk call that included `name` has finished."""

    def __init__(self, bulk: Callable[[Sequence[str]], None], window: float = 0.02) -> None:
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
                self._bulk(list(batch.names))
            except BaseException as exc:  # handed to every caller of the batch
                batch.error = exc
            finally:
                batch.done.set()
        else:
            batch.done.wait()
        if batch.error is not None:
            raise batch.error


class Removals:
    """Container and volume removals for one apply, batched per kind."""

    def __init__(self, runtime: Runtime) -> None:
        self.containers = Coalescer(runtime.remove_containers)
        self.volumes = Coalescer(runtime.remove_volumes)
