"""EarlyRunner: a command run ahead of need answers the first identical request, once."""

from __future__ import annotations

import threading

from asbx.runtime.base import OutputCallback
from asbx.runtime.command import CommandRequest, CommandResult
from asbx.runtime.early import EarlyRunner


class CountingRunner:
    """Answers every request with its argv joined, counting how many really ran."""

    def __init__(self, fail: bool = False) -> None:
        self.ran: list[tuple[str, ...]] = []
        self.fail = fail
        self.lock = threading.Lock()

    def __call__(self, request: CommandRequest,
                 on_output: OutputCallback | None = None) -> CommandResult:
        with self.lock:
            self.ran.append(request.argv)
            number = len(self.ran)
        if self.fail:
            raise OSError("cannot start")
        return CommandResult(request.argv, 0, f"{' '.join(request.argv)} #{number}", "")


PS = CommandRequest(("podman", "ps", "-a"))


def prime(early: EarlyRunner, *requests: CommandRequest) -> None:
    primer = early.primer()
    early.ahead(lambda: [primer(r) for r in requests]).join()


def test_an_identical_request_takes_the_early_result_once() -> None:
    inner = CountingRunner()
    early = EarlyRunner(inner)
    prime(early, PS)
    assert early(CommandRequest(("podman", "ps", "-a"))).stdout == "podman ps -a #1"
    assert inner.ran == [PS.argv]  # not run again
    assert early(PS).stdout == "podman ps -a #2"  # the second one runs afresh
    assert len(inner.ran) == 2


def test_a_different_request_runs_and_the_early_one_waits() -> None:
    inner = CountingRunner()
    early = EarlyRunner(inner)
    prime(early, PS)
    other = CommandRequest(("podman", "ps", "-a"), env={"X": "1"})
    assert early(other).stdout == "podman ps -a #2"
    assert early(PS).stdout == "podman ps -a #1"


def test_requests_with_stdin_or_an_output_callback_always_run() -> None:
    inner = CountingRunner()
    early = EarlyRunner(inner)
    prime(early, PS)
    assert early(PS, on_output=lambda stream, text: None).stdout == "podman ps -a #2"
    piped = CommandRequest(PS.argv, stdin=b"x")
    assert early(piped).stdout == "podman ps -a #3"


def test_forget_drops_what_was_not_taken() -> None:
    inner = CountingRunner()
    early = EarlyRunner(inner)
    prime(early, PS)
    early.forget()
    assert early(PS).stdout == "podman ps -a #2"


def test_a_primer_made_before_forget_keeps_nothing_it_starts_later() -> None:
    inner = CountingRunner()
    early = EarlyRunner(inner)
    late = early.primer()
    early.forget()
    late(PS)  # e.g. a background thread that only got to run now
    assert early(PS).stdout == "podman ps -a #2"
    fresh = early.primer()
    fresh(PS)
    assert early(PS).stdout == "podman ps -a #3"


def test_an_early_failure_is_not_handed_on_the_request_runs_now() -> None:
    inner = CountingRunner(fail=True)
    early = EarlyRunner(inner)
    prime(early, PS)  # the background thread swallows it
    inner.fail = False
    assert early(PS).stdout == "podman ps -a #2"


def test_the_taker_waits_for_a_command_still_running() -> None:
    release = threading.Event()
    inner = CountingRunner()

    def slow(request: CommandRequest, on_output: OutputCallback | None = None) -> CommandResult:
        release.wait(5)
        return inner(request)

    early = EarlyRunner(slow)
    started = threading.Event()
    primer = early.primer()
    early.ahead(lambda: (started.set(), primer(PS)))
    started.wait(5)
    while not early._early:  # until the early command is registered
        threading.Event().wait(0.001)
    threading.Timer(0.05, release.set).start()
    assert early(PS).stdout == "podman ps -a #1"
    assert inner.ran == [PS.argv]
