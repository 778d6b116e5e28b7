"""`asbx serve` on real podman: a real server process, driven by asbx.client and raw HTTP."""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from asbx.client import ApiError, Client
from tests.integration.conftest import BASE_IMAGE, REPO, Project

pytestmark = pytest.mark.integration


def _serve(project: Project, *args: str) -> subprocess.Popen[bytes]:
    project.home.mkdir(parents=True, exist_ok=True)
    with (project.home / "serve.log").open("ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "asbx", "serve", "--project", project.name, *args],
            cwd=project.root, env=project.env, stdout=subprocess.DEVNULL, stderr=log,
        )


def _stop(server: subprocess.Popen[bytes]) -> None:
    server.terminate()
    try:
        server.wait(10)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()


def _wait_up(address: str | tuple[str, int], server: subprocess.Popen[bytes]) -> None:
    """Until the server accepts a connection on `address` (a socket path or host/port)."""
    family = socket.AF_UNIX if isinstance(address, str) else socket.AF_INET
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise AssertionError(f"server exited {server.returncode}")
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            try:
                probe.connect(address)
                return
            except OSError:
                pass
        time.sleep(0.1)
    raise AssertionError("server did not come up")


@pytest.fixture
def server(project: Project) -> Iterator[tuple[Project, Path]]:
    sock = project.home / "asbx.sock"
    proc = _serve(project)
    _wait_up(str(sock), proc)
    yield project, sock
    _stop(proc)


@pytest.fixture
def client(server: tuple[Project, Path]) -> Iterator[Client]:
    with Client(socket=server[1]) as c:
        yield c


@pytest.fixture
def box(client: Client) -> str:
    client.create("box", BASE_IMAGE, memory="64M")
    return "box"


def _raw_get(sock: Path, target: str) -> tuple[int, bytes]:
    """GET `target` byte for byte (no client normalises `..` away); (status, body)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.connect(str(sock))
        conn.sendall(f"GET {target} HTTP/1.1\r\nHost: asbx\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := conn.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


def _raw_put(sock: Path, target: str, body: bytes) -> int:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.connect(str(sock))
        conn.sendall(f"PUT {target} HTTP/1.1\r\nHost: asbx\r\nConnection: close\r\n"
                     f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
        data = b""
        while chunk := conn.recv(65536):
            data += chunk
    return int(data.split(b" ", 2)[1])


# -- the socket


def test_socket_is_owner_only(server: tuple[Project, Path]) -> None:
    mode = os.lstat(server[1]).st_mode
    assert stat.S_ISSOCK(mode)
    assert stat.S_IMODE(mode) == 0o600


def test_health(client: Client, project: Project) -> None:
    assert client.health() == {"status": "ok", "version": client.health()["version"],
                               "project": project.name}


# -- create, get, list, delete, 404s


def test_create_get_list_delete(client: Client, project: Project) -> None:
    made = client.create("a1", BASE_IMAGE, memory="64M", env={"GREETING": "hi $HOME"})
    assert made.state == "running"
    assert project.containers() == {f"{project.name}-a1": "running"}
    assert client.get("a1") == made
    assert [s.name for s in client.sandboxes()] == ["a1"]
    # env reached the sandbox literally: `$` is never interpolated from the server's environment
    assert client.exec("a1", ["sh", "-c", 'echo "$GREETING"']).stdout == "hi $HOME\n"
    client.delete("a1")
    assert project.containers() == {}
    assert client.sandboxes() == []
    with pytest.raises(ApiError) as err:
        client.get("a1")
    assert err.value.status == 404
    assert "no sandbox 'a1'" in err.value.message


def test_async_client(server: tuple[Project, Path], project: Project) -> None:
    import anyio

    from asbx.client import AsyncClient

    async def run() -> tuple[str, str, bytes, int]:
        async with AsyncClient(socket=server[1]) as c:
            made = await c.create("as1", BASE_IMAGE)
            out = await c.exec("as1", ["sh", "-c", "echo async > /workspace/f; cat /workspace/f"])
            data = await c.read_file("as1", "f")
            async with await c.exec_interactive("as1", ["sh", "-c", "read x; echo x=$x"]) as s:
                await s.send("typed\n")
                answer = await s.wait()
            assert (answer.exit_code, answer.stdout) == (0, "x=typed\n")
            await c.delete("as1")
            try:
                await c.get("as1")
            except ApiError as exc:
                return made.state, out.stdout, data, exc.status
            return made.state, out.stdout, data, 200

    assert anyio.run(run) == ("running", "async\n", b"async\n", 404)
    assert project.containers() == {}


def test_unknown_sandbox_is_404_everywhere(client: Client) -> None:
    for call in (lambda: client.get("nope"), lambda: client.delete("nope"),
                 lambda: client.exec("nope", ["true"]), lambda: client.read_file("nope", "x")):
        with pytest.raises(ApiError) as err:
            call()
        assert err.value.status == 404


def test_invalid_spec_fields_are_422_with_the_spec_message(client: Client,
                                                          project: Project) -> None:
    with pytest.raises(ApiError) as err:
        client.create("bad", BASE_IMAGE, memory="2GBB")
    assert err.value.status == 422
    assert 'sandboxes.bad.memory: "2GBB" is not a size' in err.value.message
    with pytest.raises(ApiError) as err:
        client.create("bad", BASE_IMAGE, memroy="1G")
    assert err.value.status == 422
    assert 'unknown key "memroy"' in err.value.message
    assert client.sandboxes() == []
    assert project.containers() == {}


@pytest.mark.parametrize(("fields", "says"), [
    ({"env_file": ["/etc/passwd"]}, "sandboxes.h.env_file: reads files on the server"),
    ({"workspace": {"from": "/"}}, "sandboxes.h.workspace.from: copies a directory"),
    ({"volumes": ["/:/host"]}, "sandboxes.h.volumes[0]: mounts a directory"),
    ({"volumes": ["../..:/host:ro"]}, "sandboxes.h.volumes[0]: mounts a directory"),
    ({"volumes": [{"bind": "/", "target": "/host"}]}, "sandboxes.h.volumes[0]: mounts"),
    ({"env": {"HOME": None}}, "sandboxes.h.env.HOME: no value takes the server's own"),
    ({"env": ["PATH"]}, "sandboxes.h.env: 'PATH' without a value"),
])
def test_fields_reaching_the_server_host_are_refused(
        client: Client, project: Project, fields: dict[str, object], says: str) -> None:
    with pytest.raises(ApiError) as err:
        client.create("h", BASE_IMAGE, **fields)
    assert err.value.status == 422
    assert says in err.value.message
    assert "not accepted through the API" in err.value.message
    assert client.sandboxes() == []
    assert project.containers() == {}


def test_a_create_whose_apply_fails_is_taken_back(client: Client, project: Project) -> None:
    with pytest.raises(ApiError) as err:
        client.create("broken", "localhost/asbx/no-such-image:never")
    assert err.value.status == 500
    assert "sandbox.broken" in err.value.message or "no-such-image" in err.value.message
    assert client.sandboxes() == []
    assert project.containers() == {}
    assert client.create("broken", BASE_IMAGE).state == "running"  # the name is free again


def test_duplicate_name_is_409(client: Client, box: str) -> None:
    with pytest.raises(ApiError) as err:
        client.create(box, BASE_IMAGE)
    assert err.value.status == 409


def test_five_concurrent_creates_all_succeed(client: Client, project: Project) -> None:
    names = [f"c{i}" for i in range(5)]
    with ThreadPoolExecutor(5) as pool:
        made = list(pool.map(lambda n: client.create(n, BASE_IMAGE, memory="32M"), names))
    assert [m.state for m in made] == ["running"] * 5
    assert sorted(s.name for s in client.sandboxes()) == names
    assert set(project.containers()) == {f"{project.name}-{n}" for n in names}


def test_a_held_lock_is_409_naming_the_holder(project: Project) -> None:
    from asbx.state.store import open_store

    proc = _serve(project, "--lock-timeout", "0.5")
    with Client(socket=project.home / "asbx.sock") as c:
        _wait_up(str(project.home / "asbx.sock"), proc)
        store = open_store(project.home)
        store.acquire_lock(project.name, "a test")
        try:
            with pytest.raises(ApiError) as err:
                c.create("late", BASE_IMAGE)
        finally:
            store.release_lock(project.name)
            _stop(proc)
    assert err.value.status == 409
    assert f"locked by pid {os.getpid()}" in err.value.message
    assert "(a test)" in err.value.message


# -- exec


def test_exec_exit_code_stdout_stderr_stdin(client: Client, box: str) -> None:
    result = client.exec(box, ["sh", "-c", "cat; echo oops >&2; exit 7"], stdin="in\n",
                         env={"X": "1"})
    assert (result.exit_code, result.stdout, result.stderr) == (7, "in\n", "oops\n")
    assert client.exec(box, ["sh", "-c", 'echo "$X"'], env={"X": "y"}).stdout == "y\n"


def test_exec_timeout_kills_the_command(client: Client, box: str) -> None:
    started = time.monotonic()
    result = client.exec(box, ["sh", "-c", "echo begun; sleep 30"], timeout=1)
    assert result.exit_code == 124
    assert time.monotonic() - started < 15


def test_exec_stream_gives_output_as_it_comes(client: Client, box: str) -> None:
    started = time.monotonic()
    arrivals: list[tuple[float, dict[str, object]]] = []
    for event in client.exec_stream(box, ["sh", "-c", "echo one; sleep 2; echo two >&2; exit 5"]):
        arrivals.append((time.monotonic() - started, event))
    events = [e for _, e in arrivals]
    assert events[0] == {"stream": "stdout", "data": "one\n"}
    assert {"stream": "stderr", "data": "two\n"} in events
    assert events[-1] == {"exit_code": 5}
    assert arrivals[0][0] < arrivals[-1][0] - 1.5  # the first line came before the sleep ended
    with pytest.raises(ApiError) as err:
        list(client.exec_stream("nope", ["true"]))
    assert err.value.status == 404


def test_exec_starts_a_stopped_sandbox(client: Client, box: str, project: Project) -> None:
    project.podman("stop", "-t", "0", f"{project.name}-{box}")
    assert client.get(box).state == "stopped"
    assert client.exec(box, ["true"]).exit_code == 0
    assert client.get(box).state == "running"


def test_exec_enters_only_the_container_asbx_made(client: Client, box: str,
                                                  project: Project) -> None:
    """A container removed behind asbx's back and replaced by a same-named one made by someone
    else is never entered: exec goes by the recorded container id, and then by the project's
    labels, which the impostor lacks."""
    name = f"{project.name}-{box}"
    assert client.exec(box, ["sh", "-c", "echo mine > /who"]).exit_code == 0
    project.podman("rm", "-f", "-t", "0", name)
    made = project.podman("run", "-d", "--name", name, "localhost/asbx/busybox:latest",
                          "sh", "-c", "echo impostor > /who; sleep 3600")
    assert made.returncode == 0, made.stderr
    try:
        with pytest.raises(ApiError) as err:
            client.exec(box, ["cat", "/who"])
        assert err.value.status == 404
        assert "has no container" in err.value.message
        who = project.podman("exec", name, "cat", "/who").stdout
        assert who == "impostor\n"  # untouched, and nothing ran in it
    finally:
        project.podman("rm", "-f", "-t", "0", name)


def test_interactive_exec_streams_stdin_and_output_both_ways(client: Client, box: str) -> None:
    """A shell reading lines: each answer comes back before the next line is sent, stdin EOF
    ends it, and its exit code arrives last."""
    script = ('while read -r line; do echo "got $line"; [ "$line" = err ] && echo oops >&2; '
              'done; exit 3')
    with client.exec_interactive(box, ["sh", "-c", script]) as session:
        events = session.events()
        for word in ("one", "two"):
            session.send(f"{word}\n")
            assert next(events) == {"stream": "stdout", "data": f"got {word}\n"}
        session.send(b"err\n")
        seen = [next(events), next(events)]
        assert {"stream": "stdout", "data": "got err\n"} in seen
        assert {"stream": "stderr", "data": "oops\n"} in seen
        session.close_stdin()
        assert list(events) == [{"exit_code": 3}]
    with client.exec_interactive(box, ["cat"]) as session:
        session.send(b"x" * 200_000)
        session.close_stdin()
        assert session.wait().stdout == "x" * 200_000
    with pytest.raises(ApiError) as err, client.exec_interactive("nope", ["true"]) as gone:
        gone.wait()
    assert err.value.status == 404


def test_stop_and_start(client: Client, box: str, project: Project) -> None:
    assert client.stop(box, grace=0).state == "stopped"
    assert project.containers() == {f"{project.name}-{box}": "exited"}
    assert client.stop(box).state == "stopped"  # idempotent
    assert client.start(box).state == "running"
    assert client.exec(box, ["true"]).exit_code == 0
    with pytest.raises(ApiError) as err:
        client.stop("nope")
    assert err.value.status == 404


def test_snapshot_then_create_from_it(client: Client, box: str, project: Project) -> None:
    client.write_file(box, "state.txt", "v1")
    first = client.snapshot(box, "base")
    assert first["digest"].startswith("sha256:")
    made = client.create("child", BASE_IMAGE, workspace={"snapshot": "base"})
    assert made.state == "running"
    assert client.exec("child", ["cat", "/workspace/state.txt"]).stdout == "v1"
    client.write_file(box, "state.txt", "v2")
    assert client.snapshot(box, "base")["digest"] != first["digest"]  # retaken
    spec = str(project.home / "api" / "sandboxes.yaml")
    status = project.asbx("-f", spec, "status", check=True).stdout.splitlines()
    assert any(line.split()[:2] == ["snapshot", "base"] for line in status), status
    with pytest.raises(ApiError) as err:
        client.snapshot("nope", "x")
    assert err.value.status == 404
    with pytest.raises(ApiError) as err:
        client.delete(box)  # snapshot.base still captures it
    assert err.value.status == 422, err.value.message
    assert client.get(box).state == "running"


def test_snapshots_are_listed_and_deleted_with_their_archive(client: Client, box: str,
                                                            project: Project) -> None:
    client.write_file(box, "state.txt", "kept")
    base = client.snapshot(box, "base")
    other = client.snapshot(box, "other")
    listed = {s["name"]: s for s in client.snapshots()}
    assert listed["base"] == {"name": "base", "sandbox": box, "digest": base["digest"]}
    client.create("child", BASE_IMAGE, workspace={"snapshot": "base"})
    with pytest.raises(ApiError) as err:
        client.delete_snapshot("base")  # child is restored from it
    assert err.value.status == 422, err.value.message
    archives = project.home / "snapshots" / "sha256"
    client.delete_snapshot("other")
    assert [s["name"] for s in client.snapshots()] == ["base"]
    # the two snapshots took the same workspace: one archive, still used by base
    assert other["digest"] == base["digest"]
    assert [p for p in archives.rglob("*") if base["digest"].split(":", 1)[1] in p.name], \
        "base's archive went with other"
    with pytest.raises(ApiError) as err:
        client.delete_snapshot("other")
    assert err.value.status == 404
    client.delete("child")
    client.delete_snapshot("base")
    assert client.snapshots() == []
    hexdigest = base["digest"].split(":", 1)[1]
    assert not [p for p in archives.rglob("*") if hexdigest in p.name]  # the archive went
    assert client.delete(box) is None  # nothing captures it now
    plan = project.asbx("-f", str(project.home / "api" / "sandboxes.yaml"), "plan",
                        "--detailed-exitcode")
    assert plan.returncode == 0, plan.stdout + plan.stderr


# -- files


def test_file_round_trip_is_seen_inside(client: Client, box: str, project: Project) -> None:
    client.write_file(box, "dir/sub/hello.txt", "hello\n")
    assert client.read_file(box, "dir/sub/hello.txt") == b"hello\n"
    assert client.exec(box, ["cat", "/workspace/dir/sub/hello.txt"]).stdout == "hello\n"
    client.exec(box, ["sh", "-c", "printf made-inside > /workspace/inside.bin"])
    assert client.read_file(box, "inside.bin") == b"made-inside"
    client.delete_file(box, "dir/sub/hello.txt")
    with pytest.raises(ApiError) as err:
        client.read_file(box, "dir/sub/hello.txt")
    assert err.value.status == 404


HOSTILE = [
    "../../../../../outside/secret.txt",
    "dir/../../../../../../outside/secret.txt",
    "%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/outside/secret.txt",
    "%2E%2E/%2E%2E/%2E%2E/%2E%2E/%2E%2E/outside/secret.txt",
    "dir/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/outside/secret.txt",
    "..%2f..%2f..%2f..%2f..%2foutside%2fsecret.txt",
    "%2F{outside}/secret.txt",
    "/{outside}/secret.txt",
    "out/secret.txt",          # a directory symlink pointing out
    "secret-link",             # a file symlink pointing out
    "out%2fsecret.txt",
    "dir\\..\\..\\..\\..\\..\\..\\outside\\secret.txt",
    "%00secret",
    ".",
]


@pytest.mark.parametrize("path", HOSTILE)
def test_hostile_paths_are_refused_and_nothing_outside_is_touched(
    server: tuple[Project, Path], client: Client, box: str, path: str
) -> None:
    project, sock = server
    outside = project.home / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("TOPSECRET")
    workspace = project.workspace(box)
    (workspace / "dir").mkdir()
    (workspace / "out").symlink_to(outside)
    (workspace / "secret-link").symlink_to(outside / "secret.txt")
    target = f"/v1/sandboxes/{box}/files/" + path.replace("/{outside}", str(outside)).replace(
        "{outside}", str(outside).lstrip("/"))
    status, body = _raw_get(sock, target)
    assert 400 <= status < 500, (status, body)
    assert b"TOPSECRET" not in body
    status = _raw_put(sock, target, b"OVERWRITTEN")
    assert 400 <= status < 500
    assert sorted(p.name for p in outside.iterdir()) == ["secret.txt"]
    assert (outside / "secret.txt").read_text() == "TOPSECRET"
    assert (outside / "secret.txt").read_text() == "TOPSECRET"


# -- TCP and the token


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_tcp_needs_the_bearer_token(project: Project) -> None:
    port = _free_port()
    proc = _serve(project, "--listen", f"127.0.0.1:{port}")
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_up(("127.0.0.1", port), proc)
        token_file = project.home / "api-token"
        assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
        token = token_file.read_text().strip()
        assert httpx.get(url + "/v1/health").status_code == 401
        assert httpx.get(url + "/v1/sandboxes",
                         headers={"Authorization": "Bearer wrong"}).status_code == 401
        ok = httpx.get(url + "/v1/health", headers={"Authorization": f"Bearer {token}"})
        assert ok.status_code == 200
        with Client(url=url, token=token) as c:
            assert c.health()["project"] == project.name
        with Client(url=url) as c, pytest.raises(ApiError) as err:
            c.sandboxes()
        assert err.value.status == 401
        # the WebSocket exec is behind the same token (HTTP middleware never sees it)
        with Client(url=url, token=token) as c:
            c.create("ws", BASE_IMAGE)
            for wrong in (None, "wrong"):
                with Client(url=url, token=wrong) as other, pytest.raises(ApiError) as err:
                    other.exec_interactive("ws", ["sh", "-c", "echo ran > /ran"]).wait()
                assert err.value.status == 403  # the handshake itself is refused
            assert c.exec("ws", ["cat", "/ran"]).exit_code != 0  # nothing ran
            with c.exec_interactive("ws", ["sh", "-c", "read x; echo $x"]) as session:
                session.send("over tcp\n")
                assert session.wait().stdout == "over tcp\n"
            c.delete("ws")
    finally:
        _stop(proc)


# -- one implementation: the CLI sees what the API made


def test_cli_and_api_see_the_same_sandboxes(client: Client, box: str, project: Project) -> None:
    spec = project.home / "api" / "sandboxes.yaml"
    status = project.asbx("-f", str(spec), "status", check=True).stdout
    assert "box" in status
    assert "running" in status
    plan = project.asbx("-f", str(spec), "plan", "--detailed-exitcode")
    assert plan.returncode == 0, plan.stdout + plan.stderr
    assert project.asbx("-f", str(spec), "exec", "box", "--", "true").returncode == 0


# -- MCP


def test_mcp_lists_tools_and_runs_create_exec_delete(project: Project) -> None:
    import anyio
    from mcp.client.session import ClientSession
    from mcp.client.stdio import StdioServerParameters, stdio_client

    params = StdioServerParameters(
        command=sys.executable, args=["-m", "asbx", "mcp", "--project", project.name],
        env=project.env, cwd=str(project.root))

    async def session() -> tuple[set[str], list[str]]:
        texts: list[str] = []
        async with stdio_client(params) as (read, write), ClientSession(read, write) as mcp:
            await mcp.initialize()
            tools = {t.name for t in (await mcp.list_tools()).tools}
            for name, args in [
                ("create", {"name": "m1", "image": BASE_IMAGE, "fields": {"memory": "64M"}}),
                ("write_file", {"name": "m1", "path": "hi.txt", "content": "from mcp"}),
                ("exec", {"name": "m1", "command": ["sh", "-c", "cat /workspace/hi.txt; exit 3"]}),
                ("read_file", {"name": "m1", "path": "hi.txt"}),
                ("delete", {"name": "m1"}),
            ]:
                result = await mcp.call_tool(name, args)
                assert not result.is_error, result  # type: ignore[union-attr]
                texts.append(" ".join(c.text for c in result.content))  # type: ignore[attr-defined]
            failed = await mcp.call_tool("snapshot", {"name": "nope", "snapshot": "s"})
            assert failed.is_error  # type: ignore[union-attr]
            texts.append(" ".join(c.text for c in failed.content))  # type: ignore[union-attr]
        return tools, texts

    tools, texts = anyio.run(session)
    assert tools >= {"create", "exec", "read_file", "write_file", "snapshot", "delete"}
    assert '"state":"running"' in texts[0].replace(" ", "")
    assert '"exit_code":3' in texts[2].replace(" ", "")
    assert "from mcp" in texts[2]
    assert texts[3] == "from mcp"
    assert "no sandbox 'nope'" in texts[5]  # the service's error, as a tool error
    assert project.containers() == {}


# -- projects


def test_plan_of_a_project_is_the_cli_plan(client: Client, project: Project) -> None:
    import json

    spec = project.write(f"version: 1\nname: NAME-p\nsandboxes:\n  web:\n    image: {BASE_IMAGE}\n")
    planned = client.plan(spec)
    assert ("sandbox.web", "create") in [(c["address"], c["action"]) for c in planned["changes"]]
    cli = json.loads(project.asbx("plan", "--json", check=True).stdout)
    assert planned["changes"] == cli["changes"]
    try:
        project.asbx("apply", "-y", check=True)
        again = client.plan(project.root)  # a directory holding sandboxes.yaml, as -f takes
        assert {c["address"]: c["action"] for c in again["changes"]}["sandbox.web"] == "noop"
        assert again["changes"] == json.loads(project.asbx("plan", "--json").stdout)["changes"]
    finally:
        project.asbx("destroy", "-y")
    with pytest.raises(ApiError) as err:
        client.plan("relative/sandboxes.yaml")
    assert err.value.status == 404
    assert "not an absolute path" in err.value.message
    with pytest.raises(ApiError) as err:
        client.plan(project.root / "missing.yaml")
    assert err.value.status == 404


def test_apply_of_a_project_streams_its_steps(client: Client, project: Project) -> None:
    project.write(f"version: 1\nname: NAME-a\nsandboxes:\n  web:\n    image: {BASE_IMAGE}\n"
                  "    setup: [echo set-up-ran]\n")
    try:
        events = list(client.apply(project.root / "sandboxes.yaml"))
        assert events[0]["event"] == "plan"
        assert "sandbox.web" in events[0]["pending"]
        assert {"event": "started", "address": "sandbox.web", "phase": "create",
                "action": "create"} in events
        assert any(e["event"] == "output" and "set-up-ran" in e["data"] for e in events)
        finished = [e for e in events if e["event"] == "finished"
                    and e["address"] == "sandbox.web"]
        assert finished[0]["status"] == "ok"
        assert events[-1] == {"event": "done", "ok": True, "added": events[-1]["added"],
                              "changed": 0, "replaced": 0, "destroyed": 0}
        assert events[-1]["added"] >= 1
        names = project.podman("ps", "--filter", f"label=dev.asbx.project={project.name}-a",
                               "--format", "{{.Names}}").stdout.split()
        assert names == [f"{project.name}-a-web"]
        again = project.asbx("plan", "--detailed-exitcode")
        assert again.returncode == 0, again.stdout + again.stderr
        assert list(client.apply(project.root))[-1]["event"] == "done"  # nothing to do
    finally:
        project.asbx("destroy", "-y")
    with pytest.raises(ApiError) as err:
        list(client.apply("relative"))
    assert "not an absolute path" in err.value.message


# -- a server killed mid-apply


def test_server_killed_during_an_apply_then_the_next_apply_converges(project: Project) -> None:
    import threading

    sock = project.home / "asbx.sock"
    proc = _serve(project)
    _wait_up(str(sock), proc)
    errors: list[BaseException] = []

    def create() -> None:
        try:
            with Client(socket=sock) as c:
                c.create("slow", BASE_IMAGE, setup=["[ -e /workspace/go ] || sleep 60"])
        except BaseException as exc:  # the connection dies with the server
            errors.append(exc)

    caller = threading.Thread(target=create)
    caller.start()
    deadline = time.monotonic() + 60
    while not project.containers() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert project.containers(), "the apply never created the container"
    proc.kill()  # mid-setup
    proc.wait()
    caller.join(30)
    assert errors
    proc = _serve(project)
    try:
        _wait_up(str(sock), proc)
        with Client(socket=sock) as c:
            assert [s.name for s in c.sandboxes()] == ["slow"]  # declared before it was applied
            made = c.create("next", BASE_IMAGE)  # the dead server's lock is taken over
            assert made.state == "running"
    finally:
        _stop(proc)
    (project.workspace("slow") / "go").touch()  # the next setup finishes at once
    spec = str(project.home / "api" / "sandboxes.yaml")
    plan = project.asbx("-f", spec, "plan")
    assert "sandbox.slow" in plan.stdout  # its setup never finished: replaced
    project.asbx("-f", spec, "apply", "-y", check=True, timeout=120)
    again = project.asbx("-f", spec, "plan", "--detailed-exitcode")
    assert again.returncode == 0, again.stdout + again.stderr
    assert set(project.containers().values()) == {"running"}


def test_socket_option_and_one_listener_only(project: Project, tmp_path: Path) -> None:
    sock = tmp_path / "run" / "api.sock"
    proc = _serve(project, "--socket", str(sock))
    try:
        _wait_up(str(sock), proc)
        assert stat.S_IMODE(sock.parent.stat().st_mode) == 0o700
        assert stat.S_IMODE(os.lstat(sock).st_mode) == 0o600
        with Client(socket=sock) as c:
            assert c.health()["status"] == "ok"
        second = project.asbx("serve", "--project", project.name, "--socket", str(sock))
        assert second.returncode == 1
        assert "already listens" in second.stderr
    finally:
        _stop(proc)
    assert not sock.exists()  # removed on shutdown
    both = project.asbx("serve", "--socket", str(sock), "--listen", "127.0.0.1:1")
    assert both.returncode == 1
    assert "not both" in both.stderr


def test_the_readme_python_example_runs_as_written(server: tuple[Project, Path]) -> None:
    project, _sock = server
    readme = (REPO / "README.md").read_text()
    block = readme.split("## The API", 1)[1].split("```python\n", 1)[1].split("```", 1)[0]
    assert "Client()" in block, "the example uses the default socket under ASBX_HOME"
    run = subprocess.run([sys.executable, "-c", block], env=project.env, cwd=project.root,
                         capture_output=True, text=True, timeout=300, check=False)
    assert run.returncode == 0, run.stderr
    assert project.containers() == {}, "the example deletes what it creates"
