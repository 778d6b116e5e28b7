"""Secrets that never enter the sandbox, on real podman: the egress proxy puts them into HTTPS
requests to their hosts only; the sandbox, its container config and ASBX_HOME never hold them.

Upstreams are HTTPS servers on the host's loopback (a test CA the proxy trusts through
SSL_CERT_FILE); the sandbox reaches them only through its proxy (CONNECT), with an openssl
client copied from the host into a test image (busybox's wget cannot CONNECT)."""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.contract.backends import require
from tests.integration.conftest import BASE_IMAGE, Project
from tests.tls import Authority, Upstream, make_ca, serve_https

pytestmark = pytest.mark.integration

CLIENT_IMAGE = "localhost/asbx-test/openssl:latest"
VALUE = "ghp_real-token-value-0123456789abcdef"
KEY_VALUE = "key-real-value-9876543210"

SPEC = """
version: 1
name: NAME
secrets:
  token: {env: ASBX_TEST_TOKEN}
  apikey: {file: ./apikey.txt}
sandboxes:
  agent:
    image: %(image)s
    network: {allow: ["%(granted)s", "%(other)s"]}
    secrets:
      token: {hosts: [127.0.0.1], env: GITHUB_TOKEN}
      apikey: {hosts: [127.0.0.1], header: "X-Api-Key: {}"}
"""


@pytest.fixture(scope="module")
def client_image(podman: dict[str, str]) -> str:
    """busybox plus the host's openssl and the libraries it loads (built once)."""
    if subprocess.run(["podman", "image", "exists", CLIENT_IMAGE], env=podman,
                      check=False).returncode == 0:
        return CLIENT_IMAGE
    openssl = shutil.which("openssl")
    if openssl is None:
        require("openssl is not installed (scripts/test installs it)")
        raise AssertionError("unreachable")
    libs = [line.split("=>")[-1].split("(")[0].strip()
            for line in subprocess.run(["ldd", openssl], capture_output=True, text=True,
                                       check=True).stdout.splitlines()]
    libs = [lib for lib in libs if lib.startswith("/")]
    with tempfile.TemporaryDirectory() as context:
        lines = [f"FROM {BASE_IMAGE}"]
        for index, path in enumerate([openssl, *libs]):
            shutil.copy(path, Path(context) / f"f{index}")
            target = "/bin/openssl" if index == 0 else path  # the base image's PATH is /bin
            lines.append(f"COPY f{index} {target}")
        (Path(context) / "Containerfile").write_text("\n".join(lines) + "\n")
        subprocess.run(["podman", "build", "-q", "-t", CLIENT_IMAGE, context], env=podman,
                       check=True, capture_output=True)
    return CLIENT_IMAGE


@dataclass
class Setup:
    project: Project
    authority: Authority
    granted: Upstream  # 127.0.0.1: the secrets' host
    other: Upstream  # 127.0.0.2: allowed, no secret granted to it


@pytest.fixture
def setup(project: Project, client_image: str, tmp_path: Path) -> Iterator[Setup]:
    authority = make_ca(tmp_path, "upstream-ca")
    servers: list[ThreadingHTTPServer] = []
    upstreams = []
    for ip in ("127.0.0.1", "127.0.0.2"):
        upstream, server = serve_https(ip, *authority.issue(ip, tmp_path))
        upstreams.append(upstream)
        servers.append(server)
    project.extra_env.update({"SSL_CERT_FILE": str(authority.path), "ASBX_TEST_TOKEN": VALUE})
    (project.root / "apikey.txt").write_text(KEY_VALUE + "\n")
    project.write(SPEC % {"image": client_image, "granted": upstreams[0].entry,
                          "other": upstreams[1].entry})
    yield Setup(project, authority, upstreams[0], upstreams[1])
    project.asbx("destroy", "-y", "--workspaces")
    for server in servers:
        server.shutdown()
        server.server_close()


def request(setup: Setup, upstream: Upstream, *, trust: str) -> dict[str, str]:
    """One HTTPS GET from inside the sandbox through its proxy, sending the sandbox's
    $GITHUB_TOKEN as a bearer token; the headers upstream saw."""
    script = (
        'printf "GET /x HTTP/1.1\\r\\nHost: %s\\r\\nAuthorization: Bearer %s\\r\\n'
        'Connection: close\\r\\n\\r\\n" "$1" "$GITHUB_TOKEN" | openssl s_client -quiet '
        '-ign_eof -proxy "${HTTPS_PROXY#http://}" -connect "$1" -CAfile "$2" '
        '-verify_return_error -verify_ip "${1%:*}" 2>/dev/null')
    before = len(upstream.seen)
    result = setup.project.asbx("exec", "agent", "sh", "-c", script, "sh", upstream.entry,
                                trust)
    # (openssl exits 1 when a server closes without close_notify, as Python's test server
    # does; the answer is what counts)
    assert result.stdout.startswith("HTTP/1.1 200 OK"), result.stdout + result.stderr
    assert len(upstream.seen) == before + 1, result.stdout
    return {k.lower(): v for k, v in upstream.seen[-1]["headers"]}


def test_secrets_reach_their_host_only_and_never_the_sandbox(setup: Setup) -> None:
    project = setup.project
    project.asbx("apply", "-y", check=True)
    # the granted host: the placeholder the sandbox holds is replaced, the header is set;
    # the sandbox's client verified the proxy's certificate with the project CA it was given
    seen = request(setup, setup.granted, trust="/etc/asbx/ca.pem")
    assert seen["authorization"] == f"Bearer {VALUE}"
    assert seen["x-api-key"] == KEY_VALUE
    # an allowed host without the secrets: a plain tunnel (the upstream's own certificate,
    # trusted through the bundle of host CAs + project CA), the placeholder as sent
    seen = request(setup, setup.other, trust="/etc/asbx/ca-bundle.pem")
    assert seen["authorization"].startswith("Bearer asbx-secret-token-")
    assert "x-api-key" not in seen
    # the values are nowhere in the sandbox: environment, files, processes
    inside = project.asbx("exec", "agent", "sh", "-c",
                          "env; cat /proc/*/environ; grep -rl . /etc /workspace /root 2>/dev/null"
                          " | xargs cat 2>/dev/null", check=True).stdout
    assert VALUE not in inside
    assert KEY_VALUE not in inside
    assert "GITHUB_TOKEN=asbx-secret-token-" in inside
    inspect = project.podman("inspect", f"{project.name}-agent").stdout
    assert VALUE not in inspect
    assert KEY_VALUE not in inspect
    # nor under ASBX_HOME (state, plans, journal, proxy files, logs)
    for path in project.home.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert VALUE.encode() not in data, path
            assert KEY_VALUE.encode() not in data, path
    saved = project.asbx("plan", "-o", "plan.json")
    assert saved.returncode == 0, saved.stderr
    assert VALUE not in (project.root / "plan.json").read_text()


def test_a_rotated_value_takes_effect_without_replacing_the_sandbox(setup: Setup) -> None:
    project = setup.project
    project.asbx("apply", "-y", check=True)
    before = project.podman("inspect", "--format", "{{.Id}}", f"{project.name}-agent").stdout
    project.extra_env["ASBX_TEST_TOKEN"] = "ghp_rotated-value"
    plan = project.asbx("plan", check=True).stdout
    assert "secret value changed" in plan
    assert "ghp_rotated-value" not in plan
    project.asbx("apply", "-y", check=True)
    after = project.podman("inspect", "--format", "{{.Id}}", f"{project.name}-agent").stdout
    assert after == before
    seen = request(setup, setup.granted, trust="/etc/asbx/ca.pem")
    assert seen["authorization"] == "Bearer ghp_rotated-value"
    assert project.asbx("plan", "--detailed-exitcode").returncode == 0


def test_a_failing_command_source_is_a_plan_error_naming_the_secret(project: Project) -> None:
    project.write("""
version: 1
name: NAME
secrets:
  github: {command: [sh, -c, "echo 'gh: not logged in' >&2; exit 4"]}
sandboxes:
  agent:
    image: IMAGE_REF
    network: {allow: [api.github.com]}
    secrets:
      github: {hosts: [api.github.com], header: "Authorization: Bearer {}"}
""".replace("IMAGE_REF", BASE_IMAGE))
    result = project.asbx("plan")
    assert result.returncode == 1
    assert "secret github: `sh -c echo 'gh: not logged in' >&2; exit 4` exited 4: " \
           "gh: not logged in" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_secret_for_a_host_outside_the_allowlist_is_a_spec_error(project: Project) -> None:
    project.write("""
version: 1
name: NAME
secrets:
  github: {env: HOME}
sandboxes:
  agent:
    image: IMAGE_REF
    network: {allow: [pypi.org]}
    secrets:
      github: {hosts: [api.github.com], header: "Authorization: Bearer {}"}
""".replace("IMAGE_REF", BASE_IMAGE))
    result = project.asbx("validate")
    assert result.returncode == 1
    assert "secret github goes to api.github.com, which the allowlist does not allow" \
        in result.stderr
    assert "sandboxes.yaml:11" in result.stderr
    assert json.loads(project.asbx("schema", check=True).stdout)["properties"]["secrets"]
