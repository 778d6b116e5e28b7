"""Runtime calls started ahead of need: a later identical request takes the early result once."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future

from asbx.runtime.base import OutputCallback
from asbx.runtime.command import CommandRequest, CommandResult, CommandRunner

_log = logging.getLogger(__name__)


class EarlyRunner:
    """Wraps a runner. Commands run through a `primer()` (by work started ahead of need, see
    `ahead`) are remembered, and the first later request to this runner equal to one of them
    (same argv, env, cwd, timeout; no stdin, no output callback) gets that command's result
    instead of running again. A result is handed out once: a further identical request runs
    afresh. `forget()` drops what was not taken, and what primers made before it start later."""

    def __init__(self, inner: CommandRunner) -> None:
        self._inner = inner
        self._lock = threading.Lock()
        self._early: list[tuple[CommandRequest, Future[CommandResult]]] = []
        self._generation = 0

    @staticmethod
    def ahead(work: Callable[[], object]) -> threading.Thread:
        """Start `work` in a daemon thread; its errors are left to the later, real call."""

        def body() -> None:
            try:
                work()
            except Exception as exc:  # the caller's own identical call meets it again
                _log.debug("early runtime work failed: %s", exc)

        thread = threading.Thread(target=body, name="asbx-early", daemon=True)
        thread.start()
        return thread

    def forget(self) -> None:
        """Drop every early result not yet taken (the world may have changed since); primers
        made before this keep nothing from now on."""
        with self._lock:
            self._early.clear()
            self._generation += 1

    def primer(self) -> CommandRunner:
        """The runner for work started ahead: runs each request and keeps its result, until
        the next `forget()`."""
        with self._lock:
            generation = self._generation

        def prime(request: CommandRequest,
                  on_output: OutputCallback | None = None) -> CommandResult:
            return self._prime(generation, request, on_output)

        return prime

    def _prime(self, generation: int, request: CommandRequest,
               on_output: OutputCallback | None) -> CommandResult:
        future: Future[CommandResult] = Future()
        with self._lock:
            if generation != self._generation:  # forgotten: run it, keep nothing
                return self._inner(request, on_output)
            self._early.append((request, future))
        try:
            result = self._inner(request, on_output)
        except BaseException as exc:
            future.set_exception(exc)
            raise
        future.set_result(result)
        return result

    def __call__(self, request: CommandRequest,
                 on_output: OutputCallback | None = None) -> CommandResult:
        if on_output is None and request.stdin is None:
            taken = self._take(request)
            if taken is not None:
                try:
                    return taken.result()
                except Exception as exc:  # it failed early: run it now, as asked
                    _log.debug("early result failed (%s); running %s again", exc, request.argv)
        return self._inner(request, on_output)

    def _take(self, request: CommandRequest) -> Future[CommandResult] | None:
        with self._lock:
            for index, (early, future) in enumerate(self._early):
                if early == request:
                    del self._early[index]
                    return future
        return None
