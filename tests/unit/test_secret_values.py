"""Secret sources on the host (env, file, command): values in memory only, errors that name the
secret and never hold a value, and a command's ttl that keeps only a salted hash."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from asbx import secret_values
from asbx.errors import SpecError
from asbx.plan.model import PlanOptions
from asbx.runtime.command import SubprocessRunner
from asbx.secret_values import FETCHED, FetchLog, SecretSourceError, SecretValues
from asbx.spec.loader import load_spec, load_spec_text
from asbx.spec.model import SecretSpec
from asbx.state.store import StateStore
from asbx.workflow import Session, _secret_hashes
from tests.fakes.runtime import FakeRuntime


def values(tmp_path: Path, environ: dict[str, str] | None = None,
           **sources: SecretSpec) -> SecretValues:
    return SecretValues(sources, tmp_path, environ=environ or {}, runner=SubprocessRunner())


def test_each_source_gives_its_value_without_the_final_line_break(tmp_path: Path) -> None:
    (tmp_path / "token").write_text("from-file\n")
    got = values(tmp_path, {"TOKEN": "from-env"}, a=SecretSpec(env="TOKEN"),
                 b=SecretSpec(file="token"), c=SecretSpec(command=("echo", "from-command")))
    assert (got.value("a"), got.value("b"), got.value("c")) == (
        "from-env", "from-file", "from-command")


@pytest.mark.parametrize(("source", "message"), [
    (SecretSpec(env="NOT_SET"), "secret s: the environment variable NOT_SET is not set"),
    (SecretSpec(file="missing"), "secret s: cannot read"),
    (SecretSpec(command=("sh", "-c", "printf %s%s partial- VALUE; echo nope >&2; exit 3")),
     "secret s: `sh -c printf %s%s partial- VALUE; echo nope >&2; exit 3` exited 3: nope"),
    (SecretSpec(command=("asbx-no-such-program",)),
     "secret s: `asbx-no-such-program` was not found"),
    (SecretSpec(command=("printf", "two\\nlines")), "holds a line break"),
    (SecretSpec(command=("true",)), "secret s: the value is empty"),
])
def test_a_failing_source_names_the_secret_and_holds_no_value(
        tmp_path: Path, source: SecretSpec, message: str) -> None:
    with pytest.raises(SecretSourceError) as err:
        values(tmp_path, s=source).value("s")
    assert message in str(err.value)
    assert "partial-VALUE" not in str(err.value)  # stdout never goes into an error


def test_a_file_larger_than_a_value_can_be_is_refused(tmp_path: Path) -> None:
    (tmp_path / "big").write_bytes(b"x" * (64 * 1024 + 1))
    with pytest.raises(SecretSourceError, match="larger than 64 KiB"):
        values(tmp_path, s=SecretSpec(file="big")).value("s")


def test_ttl_goes_with_a_command_only() -> None:
    with pytest.raises(SpecError):
        load_spec_text(b"version: 1\nsecrets:\n  a: {env: X, ttl: 1h}\n",
                       Path("/x/sandboxes.yaml"), environ={})


SPEC = """\
version: 1
name: ttl
secrets:
  gh: {command: [sh, -c, "echo run >> runs.txt; cat value.txt"], ttl: 1h}
sandboxes:
  agent:
    image: busybox
    network: {allow: [api.github.com]}
    secrets:
      gh: {hosts: [api.github.com], header: "Authorization: Bearer {}"}
"""


def _session(tmp_path: Path, spec: str = SPEC) -> Session:
    (tmp_path / "sandboxes.yaml").write_text(spec)
    home = tmp_path / "home"
    loaded = load_spec(tmp_path / "sandboxes.yaml")
    return Session.create(loaded, FakeRuntime(), StateStore(home / "state.db"), home)


def test_within_its_ttl_a_command_is_not_run_again_and_only_a_hash_is_kept(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # the command's relative files
    (tmp_path / "value.txt").write_text("v1-secret\n")
    first = _secret_hashes(_session(tmp_path), "salt", PlanOptions())
    again = _secret_hashes(_session(tmp_path), "salt", PlanOptions())  # a new process, in effect
    assert first == again
    assert (tmp_path / "runs.txt").read_text() == "run\n"  # ran once
    log = tmp_path / "home" / "projects" / "ttl" / FETCHED
    assert "v1-secret" not in log.read_text()
    assert oct(log.stat().st_mode & 0o777) == "0o600"
    # past the ttl it runs again, and sees the new value
    (tmp_path / "value.txt").write_text("v2-secret\n")
    source = _session(tmp_path).loaded.spec.secrets["gh"]
    assert FetchLog(log).fresh_hash("gh", source, now=10 ** 12) is None
    monkeypatch.setattr("asbx.workflow.time.time", lambda: 10 ** 12)
    later = _secret_hashes(_session(tmp_path), "salt", PlanOptions())
    assert later != first
    assert (tmp_path / "runs.txt").read_text() == "run\nrun\n"


def test_a_changed_command_does_not_trust_the_old_hash(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "value.txt").write_text("v1\n")
    _secret_hashes(_session(tmp_path), "salt", PlanOptions())
    changed = SPEC.replace("cat value.txt", "cat value.txt; true")
    _secret_hashes(_session(tmp_path, changed), "salt", PlanOptions())
    assert (tmp_path / "runs.txt").read_text() == "run\nrun\n"


def test_destroy_reads_no_secret(tmp_path: Path) -> None:
    assert _secret_hashes(_session(tmp_path), "salt", PlanOptions(destroy=True)) == {}
    assert not (tmp_path / "runs.txt").exists()


@pytest.mark.parametrize("header", ["Proxy-Authorization: Basic {}", "Host: {}",
                                    "connection: {}", "Content-Length: {}"])
def test_a_header_the_proxy_drops_or_writes_cannot_carry_a_secret(header: str) -> None:
    spec = SPEC.replace("Authorization: Bearer {}", header).encode()
    with pytest.raises(SpecError) as err:
        load_spec_text(spec, Path("/x/sandboxes.yaml"), environ={})
    assert "cannot carry a secret" in str(err.value.diagnostics[0].message)


@pytest.mark.parametrize(("content", "message"), [
    (b"\xffnot-utf8-VALUE", "is not UTF-8 text"),
    (b"two\nlines-VALUE\n", "holds a line break"),
    (b"nul\0-VALUE", "holds a line break or NUL"),
    (b"\n", "the value is empty"),
])
def test_a_bad_file_is_an_error_naming_the_secret_not_a_crash(
        tmp_path: Path, content: bytes, message: str) -> None:
    (tmp_path / "token").write_bytes(content)
    with pytest.raises(SecretSourceError) as err:
        values(tmp_path, s=SecretSpec(file="token")).value("s")
    assert str(err.value).startswith("secret s: ")
    assert message in str(err.value)
    assert "VALUE" not in str(err.value)


def test_a_source_that_is_not_a_regular_file_is_refused_without_reading_it(
        tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "fifo")  # opening it to read would wait for a writer forever
    (tmp_path / "dir").mkdir()
    for name in ("fifo", "dir"):
        with pytest.raises(SecretSourceError, match=f"secret s: .*{name} is not a regular file"):
            values(tmp_path, s=SecretSpec(file=name)).value("s")


def test_a_command_that_does_not_finish_is_an_error_naming_the_secret(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(secret_values, "COMMAND_TIMEOUT", 0.5)
    with pytest.raises(SecretSourceError, match=r"secret s: `sleep 30` did not finish in 0.5s"):
        values(tmp_path, s=SecretSpec(command=("sleep", "30"))).value("s")
