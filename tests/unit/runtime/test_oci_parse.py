"""Parsers and error mapping of the podman/docker backends, fed with output captured from the real
CLIs (tests/fixtures/runtime/{podman,docker}: podman 4.3.1, docker CLI 28.2 on dockerd 20.10)."""

from __future__ import annotations

import dataclasses
import itertools
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from asbx.errors import (
    NotFoundError,
    RuntimeCommandError,
    RuntimeTimeoutError,
    RuntimeUnavailableError,
)
from asbx.images import listed_digest, repository
from asbx.runtime import oci_cli
from asbx.runtime.base import ContainerState
from asbx.runtime.docker import DockerRuntime
from asbx.runtime.oci_cli import (
    OciCliRuntime,
    load_items,
    parse_image,
    parse_labels,
    parse_time,
    pick_digest,
)
from asbx.runtime.podman import PodmanRuntime
from asbx.runtime.podman import limits_update_blocker as podman_limits_blocker
from tests.fakes.runtime import ScriptedRunner

FIXTURES = Path(__file__).parents[2] / "fixtures" / "runtime"
BUSYBOX_ID = "sha256:cb15f90dc8e24c0cb156aa722eeea626df09af3236a53f13a51bba24b4c37a6a"


def fixture(kind: str, name: str) -> str:
    return (FIXTURES / kind / name).read_text()


def runtime_with(kind: str, *rules: tuple[tuple[str, ...], str]) -> OciCliRuntime:
    runner = ScriptedRunner()
    for prefix, stdout in rules:
        runner.on(*prefix, stdout=stdout)
    return PodmanRuntime(runner) if kind == "podman" else DockerRuntime(runner)


@pytest.mark.parametrize("kind", ["podman", "docker"])
def test_containers_from_real_ps_output(kind: str) -> None:
    runtime = runtime_with(kind, (("ps",), fixture(kind, "ps.json")))
    found = {c.name: c for c in runtime.list_containers({"dev.asbx.project": "capture"})}

    assert set(found) == {"capture-web", "capture-idle"}
    web, idle = found["capture-web"], found["capture-idle"]
    assert (web.state, idle.state) == (ContainerState.RUNNING, ContainerState.STOPPED)
    assert re.fullmatch(r"[0-9a-f]{64}", web.id)
    assert web.labels["dev.asbx.address"] == "sandbox.web"
    assert web.labels["dev.asbx.hash"] == "abc123"
    assert web.image == "localhost/asbx/busybox:latest"
    assert web.created_at is not None
    assert web.created_at.year == 2026
    if kind == "podman":
        assert web.image_id == BUSYBOX_ID
        assert web.labels["note"] == "a,b=c"
        assert web.started_at is not None
        assert idle.started_at is None  # podman's "never" is Go's zero time
    else:
        # docker prints labels as one `k=v,k=v` string: a value holding ",x=" cannot be told
        # from a new label (asbx's own labels never hold "," or "=").
        assert web.labels["note"] == "a"


@pytest.mark.parametrize("kind", ["podman", "docker"])
def test_volumes_from_real_ls_output(kind: str) -> None:
    runtime = runtime_with(kind, (("volume", "ls"), fixture(kind, "volume-ls.json")))
    [volume] = runtime.list_volumes({"dev.asbx.project": "capture"})
    assert volume.name == "capture-cache"
    # Captured from `volume create --label note=a,b`: podman 4 split the value at the comma.
    note = {"note": "a,b"} if kind == "docker" else {"note": "a", "b": ""}
    assert volume.labels == {"dev.asbx.address": "volume.cache", "dev.asbx.project": "capture",
                             **note}
    assert volume.mountpoint.endswith("/capture-cache/_data")


def test_podman_networks_from_real_ls_output() -> None:
    runtime = runtime_with("podman", (("network", "ls"), fixture("podman", "network-ls.json")))
    [network] = runtime.list_networks({"dev.asbx.project": "capture"})
    assert (network.name, network.internal) == ("capture-net", True)
    assert (network.subnet, network.gateway) == ("10.89.1.0/24", "10.89.1.1")
    assert network.labels == {"dev.asbx.project": "capture"}


def test_docker_networks_from_real_inspect_output() -> None:
    runtime = runtime_with("docker", (("network", "ls"), "71dc31451128\n"),
                           (("network", "inspect"), fixture("docker", "network-inspect.json")))
    [network] = runtime.list_networks({"dev.asbx.project": "capture"})
    assert (network.name, network.internal, network.labels) == (
        "capture-net", True, {"dev.asbx.project": "capture"})
    assert network.subnet.endswith(".0/16")
    assert network.gateway.endswith(".0.1")


def test_podman_images_from_real_output() -> None:
    runtime = runtime_with("podman", (("images",), fixture("podman", "images.json")))
    images = {image.id: image for image in runtime.list_images()}
    busybox = images[BUSYBOX_ID]
    assert "localhost/asbx/busybox:latest" in busybox.names
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", busybox.digest)
    assert busybox.labels["io.buildah.version"] == "1.28.2"
    dangling = [image for image in images.values() if not image.names]
    assert dangling, "an untagged image is listed with no names"


def test_docker_images_from_real_inspect_output() -> None:
    runtime = runtime_with("docker", (("image", "ls"), fixture("docker", "image-ls-q.txt")),
                           (("image", "inspect"), fixture("docker", "image-inspect.json")))
    images = {image.id: image for image in runtime.list_images()}
    busybox = images[BUSYBOX_ID]
    assert busybox.names == ("localhost/asbx/busybox:latest",)
    assert busybox.digest == "", "a loaded image has no registry digest"
    assert busybox.labels == {"io.buildah.version": "1.28.2"}
    assert busybox.created_at == datetime(2026, 11, 22, 4, 33, 42, 137797, tzinfo=UTC)


def test_inspect_prefers_the_digest_of_the_repository_asked_for() -> None:
    item = {"Id": "b" * 64, "RepoDigests": ["a.io/x@sha256:111", "127.0.0.1:5000/demo@sha256:222"]}
    runtime = runtime_with("docker", (("image", "inspect"), f"[{_json(item)}]"))
    image = runtime.inspect_image("127.0.0.1:5000/demo:v1")
    assert image is not None
    assert image.digest == "sha256:222"
    assert pick_digest(item, "docker.io/library/busybox:1") == ""


def _json(item: object) -> str:
    import json

    return json.dumps(item)


@pytest.mark.parametrize(("kind", "version"), [("podman", "4.3.1"), ("docker", "20.10.24+dfsg1")])
def test_check_reports_the_engine_version(kind: str, version: str) -> None:
    assert runtime_with(kind, (("version",), fixture(kind, "version.json"))).check() == version


def test_docker_daemon_down_is_unavailable_with_the_fix() -> None:
    runner = ScriptedRunner()
    runner.on("version", returncode=1, stdout=fixture("docker", "version-daemon-down.json"),
              stderr=fixture("docker", "version-daemon-down.stderr.txt"))
    with pytest.raises(RuntimeUnavailableError, match="Docker daemon is not running") as caught:
        DockerRuntime(runner).check()
    assert "start" in (caught.value.hint or "")


@pytest.mark.parametrize("kind", ["podman", "docker"])
def test_a_missing_executable_is_unavailable_with_the_fix(kind: str) -> None:
    runner = ScriptedRunner()
    runner.on("version", returncode=127, stderr=f"{kind}: No such file or directory")
    runtime = PodmanRuntime(runner) if kind == "podman" else DockerRuntime(runner)
    with pytest.raises(RuntimeUnavailableError, match="not installed") as caught:
        runtime.check()
    assert "install" in (caught.value.hint or "")


def _captured_errors(kind: str) -> list[tuple[str, int, str]]:
    rows = []
    for line in fixture(kind, "errors.txt").splitlines():
        command, _, rest = line.partition(" => exit ")
        code, _, stderr = rest.partition(": ")
        rows.append((command.split(" ", 1)[1], int(code), stderr))
    return rows


ERROR_CASES = [(kind, *row) for kind in ("podman", "docker") for row in _captured_errors(kind)]


@pytest.mark.parametrize(("kind", "command", "code", "stderr"), ERROR_CASES,
                         ids=[f"{c[0]}:{c[1]}" for c in ERROR_CASES])
def test_real_error_messages_map_to_the_right_error(kind: str, command: str, code: int,
                                                    stderr: str) -> None:
    runner = ScriptedRunner()
    runner.on(*command.split()[:2], returncode=code, stderr=stderr + "\n")
    runner.on(command.split()[0], returncode=code, stderr=stderr + "\n")
    runtime = PodmanRuntime(runner) if kind == "podman" else DockerRuntime(runner)
    name = command.split()[-1] if "exec" not in command else command.split()[1]
    calls = {
        "start": lambda: runtime.start_container(name),
        "stop": lambda: runtime.stop_container(name),
        "rm": lambda: runtime.remove_container(name, force=False),
        "exec": lambda: runtime.exec(name, ("true",)),
        "volume rm": lambda: runtime.remove_volume(name),
        "network rm": lambda: runtime.remove_network(name),
        "image rm": lambda: runtime.remove_image(name),
        "image inspect": lambda: runtime.inspect_image(name),
    }
    key = next(k for k in calls if command.startswith(k))
    if key == "image inspect":
        assert calls[key]() is None
    elif "(stopped)" in command:
        with pytest.raises(RuntimeCommandError) as caught:
            calls[key]()
        assert not isinstance(caught.value, NotFoundError)
    else:
        with pytest.raises(NotFoundError, match=re.escape(repr(name))):
            calls[key]()


@pytest.mark.parametrize("kind", ["podman", "docker"])
def test_forced_remove_of_a_missing_container_is_not_found(kind: str) -> None:
    runner = ScriptedRunner()  # both CLIs exit 0 for `rm -f <missing>` and print no name
    runner.on("rm", stderr="Error response from daemon: No such container: gone\n"
              if kind == "docker" else "")
    runtime = PodmanRuntime(runner) if kind == "podman" else DockerRuntime(runner)
    with pytest.raises(NotFoundError):
        runtime.remove_container("gone", force=True)


def test_command_output_that_looks_like_an_error_is_still_an_exit_code() -> None:
    runner = ScriptedRunner()
    runner.on("exec", returncode=1, stderr="Error: no such container is my app's message\n")
    result = PodmanRuntime(runner).exec("box", ("app",))
    assert result.exit_code == 1


def test_other_failures_show_argv_code_and_output() -> None:
    runner = ScriptedRunner()
    runner.on("volume", "create", returncode=125, stderr="Error: volume with name x exists\n")
    with pytest.raises(RuntimeCommandError) as caught:
        PodmanRuntime(runner).create_volume("x", {})
    assert caught.value.returncode == 125
    assert "podman volume create x" in str(caught.value)
    assert "volume with name x exists" in str(caught.value)


def test_a_stuck_call_times_out() -> None:
    runner = ScriptedRunner()
    runner.on("start", returncode=124, timed_out=True)
    with pytest.raises(RuntimeTimeoutError):
        PodmanRuntime(runner, timeout=5).start_container("box")
    assert runner.requests[0].timeout == 5


def test_a_listing_that_races_a_removal_is_retried() -> None:
    runner = ScriptedRunner()
    answers = iter([(125, "", 'Error: reading image "ab": image not known\n'), (0, "[]", "")])
    runner.on("images", then=lambda _request: next(answers))
    assert PodmanRuntime(runner).list_images() == []
    assert len(runner.requests) == 2


def test_a_listing_that_races_an_image_being_made_is_retried() -> None:
    # podman 4.3, seen here while another process committed an image
    half_made = ('Error: checking if image "9ff4" is dangling: locating item named "manifest" '
                 'for image with ID "40b1" (consider removing the image to resolve the issue): '
                 "file does not exist\n")
    runner = ScriptedRunner()
    answers = iter([(125, "", half_made), (0, "[]", "")])
    runner.on("images", then=lambda _request: next(answers))
    assert PodmanRuntime(runner).list_images() == []
    assert len(runner.requests) == 2


def test_a_listing_that_keeps_failing_raises_after_growing_pauses(
        monkeypatch: pytest.MonkeyPatch) -> None:
    pauses: list[float] = []
    monkeypatch.setattr(oci_cli.time, "sleep", pauses.append)
    runner = ScriptedRunner()
    runner.on("ps", returncode=125, stderr="Error: image not known\n")
    with pytest.raises(RuntimeCommandError):
        PodmanRuntime(runner).list_containers({})
    assert len(runner.requests) == oci_cli.LIST_ATTEMPTS
    # no pause before the first call; then each pause doubles (a removal takes a moment)
    assert len(pauses) == oci_cli.LIST_ATTEMPTS - 1
    assert all(later == 2 * earlier for earlier, later in itertools.pairwise(pauses))
    assert 1.0 <= sum(pauses) <= 2.0


# -- pure helpers


def test_load_items_takes_arrays_lines_and_nothing() -> None:
    assert load_items("") == []
    assert load_items("null") == []
    assert load_items("[]") == []
    assert load_items('[{"a": 1}]') == [{"a": 1}]
    assert load_items('{"a": 1}\n\n{"a": 2}\n') == [{"a": 1}, {"a": 2}]
    with pytest.raises(ValueError, match="Expecting"):
        load_items("{not json")


@pytest.mark.parametrize(("value", "expected"), [
    ({"a": "1"}, {"a": "1"}),
    (None, {}),
    ("", {}),
    ("a=1,b=2", {"a": "1", "b": "2"}),
    ("a=x,y,b=", {"a": "x,y", "b": ""}),
    ("a=b=c", {"a": "b=c"}),
])
def test_parse_labels(value: object, expected: dict[str, str]) -> None:
    assert parse_labels(value) == expected


@pytest.mark.parametrize(("value", "expected"), [
    (1795323114, datetime(2026, 11, 22, 4, 51, 54, tzinfo=UTC)),
    (-62135596800, None),
    ("2026-11-22T04:33:42.13779749Z", datetime(2026, 11, 22, 4, 33, 42, 137797, tzinfo=UTC)),
    ("2026-11-22 04:51:58 +0000 UTC", datetime(2026, 11, 22, 4, 51, 58, tzinfo=UTC)),
    ("2026-11-22 06:51:58.5 +0200 CEST", datetime(2026, 11, 22, 4, 51, 58, 500000, tzinfo=UTC)),
    ("0001-01-01T00:00:00Z", None),
    ("2 minutes ago", None),
    (None, None),
])
def test_parse_time(value: object, expected: datetime | None) -> None:
    assert parse_time(value) == expected


@pytest.mark.parametrize(("ref", "repo"), [
    ("busybox", "busybox"),
    ("localhost/asbx/busybox:latest", "localhost/asbx/busybox"),
    ("127.0.0.1:5000/demo:v1", "127.0.0.1:5000/demo"),
    ("127.0.0.1:5000/demo@sha256:abc", "127.0.0.1:5000/demo"),
])
def test_repository(ref: str, repo: str) -> None:
    assert repository(ref) == repo


def test_create_with_a_missing_network_or_image_says_which_in_the_clis_words() -> None:
    from asbx.runtime.base import ContainerRequest

    runner = ScriptedRunner()
    runner.on("create", returncode=125, stderr="Error: unable to find network with name or ID "
              "lab: network not found\n")
    request = ContainerRequest(name="web", image="i", command=(), network="lab")
    with pytest.raises(NotFoundError, match=r"cannot create 'web': .*network not found"):
        PodmanRuntime(runner).create_container(request)


def test_a_host_that_cannot_raise_rlimits_says_how_to_configure_podman() -> None:
    from asbx.errors import RuntimeUnavailableError
    from asbx.runtime.base import ContainerRequest

    runner = ScriptedRunner()
    # as podman 4.3 + runc printed it on a host without CAP_SYS_RESOURCE and no containers.conf
    runner.on("run", returncode=126, stderr=(
        "Error: runc: runc create failed: unable to start container process: error during "
        "container init: error setting rlimits for ready process: error setting rlimit type 7: "
        "operation not permitted: OCI permission denied\n"))
    request = ContainerRequest(name="web", image="i", command=(), start=True)
    with pytest.raises(RuntimeUnavailableError, match="cannot start containers on this host") as e:
        PodmanRuntime(runner).create_container(request)
    assert e.value.hint is not None
    assert "default_ulimits" in e.value.hint


# podman pairs every name of an image with every manifest digest it was ever pushed or pulled
# as (seen on podman 4.3: a base image pushed in two formats lists both under each repository).
SEVERAL = {
    "Id": "c" * 64,
    "RepoDigests": [
        "127.0.0.1:5000/demo@sha256:111",
        "127.0.0.1:5000/demo@sha256:222",
        "localhost/base@sha256:111",
        "localhost/base@sha256:222",
    ],
}


def test_a_digest_named_in_the_ref_is_the_one_picked() -> None:
    assert pick_digest(SEVERAL, "127.0.0.1:5000/demo@sha256:222") == "sha256:222"
    assert pick_digest(SEVERAL, "127.0.0.1:5000/demo:v1") == "sha256:111"
    own = {**SEVERAL, "Digest": "sha256:222"}
    assert pick_digest(own, "localhost/base:latest") == "sha256:222", "stable across pushes"


def test_podman_pull_asks_the_registry_which_of_several_digests_it_serves() -> None:
    served = '{"manifests": [{"digest": "sha256:222", "mediaType": "x"}]}'
    runner = ScriptedRunner()
    runner.on("image", "inspect", stdout=f"[{_json(SEVERAL)}]")
    runner.on("manifest", "inspect", stdout=served)
    image = PodmanRuntime(runner).pull("127.0.0.1:5000/demo:v1")
    assert image.digest == "sha256:222"
    verbs = [argv[1:3] for argv in runner.argvs()]
    assert ("manifest", "create") in verbs
    assert ("manifest", "rm") in verbs, "the probe is removed"
    added = next(argv for argv in runner.argvs() if argv[1:3] == ("manifest", "add"))
    assert added[-1] == "127.0.0.1:5000/demo:v1"


def test_podman_pull_with_one_recorded_digest_asks_nothing_more() -> None:
    item = {"Id": "c" * 64, "RepoDigests": ["127.0.0.1:5000/demo@sha256:333"]}
    runner = ScriptedRunner()
    runner.on("image", "inspect", stdout=f"[{_json(item)}]")
    assert PodmanRuntime(runner).pull("127.0.0.1:5000/demo:v1").digest == "sha256:333"
    assert not any(argv[1] == "manifest" for argv in runner.argvs())


# -- podman: in-place limits need a podman whose `update` persists


@pytest.mark.parametrize(("version", "backend", "can"), [
    ("4.3.1", "boltdb", False),
    ("5.0.2", "sqlite", False),
    ("5.1.0", "sqlite", True),
    ("5.4.2", "SQLite", True),
    ("6.0.0-dev", "sqlite", True),
    ("5.2.1", "boltdb", False),
    ("5.2.1", "", False),
    ("unknown", "sqlite", False),
])
def test_podman_keeps_an_update_only_from_5_1_on_sqlite(version: str, backend: str,
                                                        can: bool) -> None:
    asked: list[str] = []

    def database() -> str:
        asked.append(backend)
        return backend

    blocker = podman_limits_blocker(version, database)
    assert (blocker == "") is can
    if not can:
        assert version in blocker or "SQLite" in blocker
    # the database is asked only of a podman new enough for it to matter
    assert bool(asked) == version.startswith(("5.1", "5.2", "5.4", "6."))


def test_podman_probe_asks_version_then_database_and_keeps_other_capabilities() -> None:
    runner = ScriptedRunner()
    runner.on("version", stdout="5.2.1\n")
    runner.on("info", stdout="sqlite\n")
    runtime = PodmanRuntime(runner)
    probed = runtime.probe_capabilities()
    assert probed.limits_update_blocker == ""
    assert probed == dataclasses.replace(runtime.capabilities, limits_update_blocker="")
    assert [list(r.argv[1:]) for r in runner.requests] == [
        ["version", "--format", "{{.Client.Version}}"],
        ["info", "--format", "{{.Host.DatabaseBackend}}"],
    ]


def test_podman_4_probe_runs_one_command_and_names_its_version() -> None:
    runner = ScriptedRunner()
    runner.on("version", stdout="4.3.1\n")
    probed = PodmanRuntime(runner).probe_capabilities()
    assert "podman 4.3.1 changes only the running cgroup" in probed.limits_update_blocker
    assert len(runner.requests) == 1


def test_a_command_exiting_127_silently_is_its_own_exit_not_a_missing_runtime() -> None:
    runner = ScriptedRunner()
    runner.on("exec", returncode=127)  # e.g. `sh -c 'missing-tool 2>/dev/null'`
    assert PodmanRuntime(runner).exec("box", ("sh", "-c", "nope 2>/dev/null")).exit_code == 127
    gone = ScriptedRunner()
    gone.on("exec", returncode=127, stderr="podman: No such file or directory")
    with pytest.raises(RuntimeUnavailableError):
        PodmanRuntime(gone).exec("box", ("true",))


# Recording an image from podman's `images` listing (no `image inspect`) must give what an
# inspect records: one digest rule for both (asbx.images.choose_digest).
LISTED = [
    SEVERAL,
    {**SEVERAL, "Digest": "sha256:222"},
    {**SEVERAL, "Digest": "sha256:999"},  # own digest not among the repository's
    {"Id": "d" * 64, "Digest": "sha256:333", "RepoDigests": []},  # built here
    {"Id": "e" * 64, "Digest": "sha256:444",
     "RepoDigests": ["a.io/x@sha256:555", "b.io/y@sha256:444", "a.io/x@sha256:444"]},
]
REFS = ["127.0.0.1:5000/demo:v1", "localhost/base:latest", "a.io/x:1", "b.io/y:2",
        "docker.io/library/busybox:1", "127.0.0.1:5000/demo@sha256:222"]


@pytest.mark.parametrize("item", LISTED)
@pytest.mark.parametrize("ref", REFS)
def test_a_listed_image_records_the_digest_an_inspect_records(item: dict[str, object],
                                                              ref: str) -> None:
    listed = parse_image(item)
    assert listed is not None
    assert listed_digest(listed, ref) == pick_digest(item, ref)


def test_the_podman_fixture_listing_and_inspect_agree() -> None:
    import json

    listing = {i["Id"]: i for i in json.loads(fixture("podman", "images.json"))}
    compared = 0
    for inspected in json.loads(fixture("podman", "image-inspect.json")):
        listed = parse_image(listing[inspected["Id"]])
        assert listed is not None
        for ref in inspected.get("RepoTags") or []:
            assert listed_digest(listed, ref) == pick_digest(inspected, ref)
            assert listed.id == parse_image(inspected).id  # type: ignore[union-attr]
            compared += 1
    assert compared
