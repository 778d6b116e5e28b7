"""sandboxes.lock: round trip, stale detection, broken files; resolve_digests and `asbx lock`
(--check) when the registry cannot answer."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from asbx.cli import main as cli_main
from asbx.cli.context import AppContext
from asbx.errors import AsbxError
from asbx.lockfile import (
    LOCK_NAME,
    Lock,
    LockEntry,
    lock_path,
    new_lock,
    read_lock,
    render_lock,
    stale_entries,
    write_lock,
)
from asbx.runtime.command import CommandResult
from asbx.runtime.pull_errors import PullCause, PullError, pull_error
from asbx.spec.loader import LoadedSpec, load_spec
from asbx.state.store import StateStore
from asbx.workflow import Session, resolve_digests
from tests.fakes.runtime import FakeRuntime

PY = "registry.test/library/python:3.12"
BASE = "localhost/asbx/busybox:latest"
SPEC = f"""\
version: 1
name: locktest
images:
  py:
    ref: {PY}
  app:
    build: {{ context: ./ctx }}
sandboxes:
  web:
    image: app
"""
DIGEST_A = "sha256:" + "a" * 64
DIGEST_B = "sha256:" + "b" * 64


def write_spec(root: Path, text: str = SPEC) -> LoadedSpec:
    (root / "ctx").mkdir(exist_ok=True)
    (root / "ctx" / "Dockerfile").write_text("FROM scratch\n")
    (root / "sandboxes.yaml").write_text(text)
    return load_spec(root / "sandboxes.yaml")


def registry_failure(ref: str, stderr: str) -> PullError:
    result = CommandResult(("podman", "pull", ref), 125, "", stderr)
    return pull_error(ref, result, login="podman login", tls_fix=lambda host, plain: "fix TLS")


UNREACHABLE = ('Error: initializing source docker://{ref}: pinging container registry {host}: '
               'Get "https://{host}/v2/": dial tcp 127.0.0.1:443: connect: connection refused\n')
UNAUTHORIZED = ("Error: initializing source docker://{ref}: reading manifest v1 in {host}/x: "
                "unauthorized: authentication required\n")


def unreachable(ref: str) -> PullError:
    return registry_failure(ref, UNREACHABLE.format(ref=ref, host=ref.split("/")[0]))


# -- the file


def test_write_then_read_is_the_same_lock(tmp_path: Path) -> None:
    lock = Lock({"py": LockEntry(ref=PY, digest=DIGEST_A),
                 "app": LockEntry(context_digest=DIGEST_B)})
    path = tmp_path / LOCK_NAME
    write_lock(path, lock)

    assert read_lock(path) == lock
    assert read_lock(path).pinned() == {"py": DIGEST_A}  # type: ignore[union-attr]
    assert not (tmp_path / "sandboxes.lock.tmp").exists(), "written through a temporary file"


def test_the_file_is_stable_sorted_json(tmp_path: Path) -> None:
    lock = Lock({"z": LockEntry(ref=PY, digest=DIGEST_A), "a": LockEntry(context_digest=DIGEST_B)})
    text = render_lock(lock)

    assert json.loads(text) == {"lock_version": 1, "images": {
        "a": {"context_digest": DIGEST_B}, "z": {"ref": PY, "digest": DIGEST_A}}}
    assert text.index('"a"') < text.index('"z"')
    assert text.endswith("}\n")
    assert render_lock(Lock(dict(reversed(list(lock.images.items()))))) == text


def test_no_lock_file_is_none(tmp_path: Path) -> None:
    assert read_lock(tmp_path / LOCK_NAME) is None
    assert lock_path(tmp_path / "sandboxes.yaml") == tmp_path / LOCK_NAME


@pytest.mark.parametrize(("content", "reason"), [
    ("{not json", "Expecting property name"),
    ('{"lock_version": 2, "images": {}}', "unsupported lock_version 2"),
    ('{"images": {}}', "unsupported lock_version None"),
    ('{"lock_version": 1, "images": []}', "has no attribute 'items'"),
    ('{"lock_version": 1, "images": {"py": "sha256:abc"}}', "has no attribute 'get'"),
    ("[]", "has no attribute 'get'"),
])
def test_a_malformed_lock_is_a_clear_error_naming_the_file(tmp_path: Path, content: str,
                                                           reason: str) -> None:
    path = tmp_path / LOCK_NAME
    path.write_text(content)

    with pytest.raises(AsbxError) as caught:
        read_lock(path)

    assert caught.value.message.startswith(f"{path} is not a valid lock file: ")
    assert reason in caught.value.message
    assert caught.value.hint == "regenerate it with `asbx lock`"


# -- staleness


def test_a_fresh_lock_is_up_to_date(tmp_path: Path) -> None:
    graph = write_spec(tmp_path).graph
    lock = new_lock(graph, {"py": DIGEST_A}, {"app": DIGEST_B})

    assert lock.images == {"py": LockEntry(ref=PY, digest=DIGEST_A),
                           "app": LockEntry(context_digest=DIGEST_B)}
    assert stale_entries(lock, graph, {"app": DIGEST_B}) == []
    assert stale_entries(lock, graph, {"app": DIGEST_B}, {"py": DIGEST_A}) == []


def test_every_kind_of_staleness_is_one_line(tmp_path: Path) -> None:
    graph = write_spec(tmp_path, SPEC.replace("python:3.12", "python:3.13")).graph
    lock = Lock({"py": LockEntry(ref=PY, digest=DIGEST_A),
                 "app": LockEntry(context_digest=DIGEST_A),
                 "gone": LockEntry(ref="registry.test/gone:1", digest=DIGEST_A)})

    assert stale_entries(lock, graph, {"app": DIGEST_B}) == [
        f"image.py: ref changed ({PY} -> registry.test/library/python:3.13)",
        "image.app: build context changed since the lock was written",
        "image.gone is locked but no longer in the spec",
    ]
    assert stale_entries(Lock(), graph, {}) == ["image.py is not in the lock",
                                                "image.app is not in the lock"]


def test_a_tag_that_moved_is_stale_only_when_resolved(tmp_path: Path) -> None:
    graph = write_spec(tmp_path).graph
    lock = new_lock(graph, {"py": DIGEST_A}, {"app": DIGEST_B})

    assert stale_entries(lock, graph, {"app": DIGEST_B}) == [], "apply --locked resolves nothing"
    assert stale_entries(lock, graph, {"app": DIGEST_B}, {"py": DIGEST_B}) == [
        f"image.py: {PY} now resolves to {DIGEST_B} (locked {DIGEST_A})"]


# -- resolving digests: a registry failure is an error, never the local copy


def session_for(tmp_path: Path, runtime: FakeRuntime, text: str = SPEC) -> Session:
    home = tmp_path / "home"
    return Session.create(write_spec(tmp_path, text), runtime, StateStore(home / "state.db"),
                          home)


def test_digests_come_from_the_registry(tmp_path: Path) -> None:
    fake = FakeRuntime()
    digest = fake.publish(PY)

    assert resolve_digests(session_for(tmp_path, fake)) == {"py": digest}


@pytest.mark.parametrize("stderr", [UNREACHABLE, UNAUTHORIZED])
def test_a_registry_failure_is_not_hidden_by_a_local_copy(tmp_path: Path, stderr: str) -> None:
    fake = FakeRuntime()
    fake.add_image(PY, digest=DIGEST_A)  # pulled yesterday: must not answer for the registry
    failure = registry_failure(PY, stderr.format(ref=PY, host="registry.test"))
    fake.fail("pull", failure)
    warnings: list[str] = []

    with pytest.raises(PullError) as caught:
        resolve_digests(session_for(tmp_path, fake), warn=warnings.append)

    assert caught.value is failure
    assert caught.value.message.startswith(f"cannot pull {PY}: the registry registry.test ")
    assert warnings == []


def test_a_local_only_image_is_pinned_to_its_local_digest_with_a_warning(tmp_path: Path) -> None:
    fake = FakeRuntime()
    fake.publish(PY, DIGEST_B)
    fake.add_image(BASE, digest=DIGEST_A)
    fake.fail("pull", unreachable(BASE), when=lambda args: args[0] == BASE)
    text = SPEC + "  base:\n    image: localhost/asbx/busybox:latest\n"
    warnings: list[str] = []

    resolved = resolve_digests(session_for(tmp_path, fake, text), warn=warnings.append)

    assert resolved == {"py": DIGEST_B, "busybox-latest": DIGEST_A}
    assert warnings == [
        f"image.busybox-latest: {BASE} is a local image that no registry serves (the pull said: "
        f"unreachable); locked to its local digest {DIGEST_A}, which only a machine holding this "
        "very image can use"]


def test_a_local_only_image_the_registry_refuses_is_still_an_error(tmp_path: Path) -> None:
    fake = FakeRuntime()
    fake.add_image(BASE, digest=DIGEST_A)
    fake.fail("pull", registry_failure(BASE, UNAUTHORIZED.format(ref=BASE, host="localhost")))
    text = "version: 1\nname: locktest\nsandboxes:\n  base:\n    image: " + BASE + "\n"

    with pytest.raises(PullError) as caught:
        resolve_digests(session_for(tmp_path, fake, text))
    assert caught.value.cause is PullCause.UNAUTHORIZED


def test_a_missing_local_only_image_is_the_pull_error(tmp_path: Path) -> None:
    fake = FakeRuntime()
    fake.fail("pull", unreachable(BASE))
    text = "version: 1\nname: locktest\nsandboxes:\n  base:\n    image: " + BASE + "\n"

    with pytest.raises(PullError, match="the registry localhost is unreachable"):
        resolve_digests(session_for(tmp_path, fake, text))


# -- `asbx lock` and `asbx lock --check` through the CLI's error boundary


def run_cli(tmp_path: Path, fake: FakeRuntime, monkeypatch: pytest.MonkeyPatch,
            *args: str) -> int:
    class WithFake(AppContext):
        def runtime(self) -> FakeRuntime:
            return fake

    monkeypatch.setattr(cli_main, "AppContext", WithFake)
    return cli_main.run(["--home", str(tmp_path / "home"), "-f",
                         str(tmp_path / "sandboxes.yaml"), *args])


def test_lock_check_fails_when_the_registry_is_unreachable(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    write_spec(tmp_path)
    fake = FakeRuntime()
    fake.publish(PY, DIGEST_A)
    assert run_cli(tmp_path, fake, monkeypatch, "lock") == 0
    assert read_lock(tmp_path / LOCK_NAME).pinned() == {"py": DIGEST_A}  # type: ignore[union-attr]
    assert run_cli(tmp_path, fake, monkeypatch, "lock", "--check") == 0
    capsys.readouterr()

    fake.fail("pull", unreachable(PY), times=2)  # the local copy is still there
    assert run_cli(tmp_path, fake, monkeypatch, "lock", "--check") == 1
    err = capsys.readouterr().err
    assert err.startswith(f"error: cannot pull {PY}: the registry registry.test is unreachable "
                          "(connection refused)\n  hint: ")
    assert "up to date" not in err
    assert "command failed" not in err, "the raw output only with -v"

    before = (tmp_path / LOCK_NAME).read_text()
    assert run_cli(tmp_path, fake, monkeypatch, "lock") == 1
    assert (tmp_path / LOCK_NAME).read_text() == before, "nothing written"


def test_lock_verbose_shows_the_runtime_output(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    write_spec(tmp_path)
    fake = FakeRuntime()
    fake.fail("pull", unreachable(PY))

    assert run_cli(tmp_path, fake, monkeypatch, "-v", "lock", "--check") == 1
    err = capsys.readouterr().err
    assert f"command failed (exit 125): podman pull {PY}" in err
    assert "connect: connection refused" in err
    assert f"error: cannot pull {PY}" in err


def test_lock_check_with_a_malformed_lock_names_the_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    write_spec(tmp_path)
    (tmp_path / LOCK_NAME).write_text("{")
    fake = FakeRuntime()
    fake.publish(PY, DIGEST_A)

    assert run_cli(tmp_path, fake, monkeypatch, "lock", "--check") == 1
    assert f"{tmp_path / LOCK_NAME} is not a valid lock file" in capsys.readouterr().err
