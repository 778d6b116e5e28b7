"""Failed pulls become one sentence naming the image and the cause, with a hint, for podman,
docker and Apple container; golden tests on their stderr (tests/fixtures/runtime/*/pull/)."""

from __future__ import annotations

from pathlib import Path

import pytest

from asbx.errors import AsbxError, RuntimeCommandError, RuntimeUnavailableError
from asbx.runtime.apple import AppleRuntime
from asbx.runtime.docker import DockerRuntime
from asbx.runtime.podman import PodmanRuntime
from asbx.runtime.pull_errors import PullCause, PullError, classify_pull_failure, registry_host
from tests.fakes.runtime import ScriptedRunner

FIXTURES = Path(__file__).parents[2] / "fixtures" / "runtime"
RUNTIMES = {"podman": PodmanRuntime, "docker": DockerRuntime, "apple": AppleRuntime}
LOGIN = "log in with `{login} {host}`; registries also answer this way for an image that does " \
        "not exist, so check the name too"
UNREACHABLE_HINT = ("check the registry's host name and port, the network or proxy, and that it "
                    "is up")
NOT_FOUND_HINT = "check the repository name and the tag or digest"


def _not_found(ref: str, host: str) -> str:
    return f"cannot pull {ref}: the registry {host} has no such image or tag (manifest unknown)"


def _unreachable(ref: str, host: str, why: str) -> str:
    return f"cannot pull {ref}: the registry {host} is unreachable ({why})"


def _refused(ref: str, host: str, why: str) -> str:
    return f"cannot pull {ref}: the registry {host} refused access ({why})"


LOCAL = "127.0.0.1:34061/asbxhelper/missing:v1"
AUTH = "127.0.0.1:41453/asbxhelper/missing:v1"
EXAMPLE = "registry.example.com/asbxhelper/missing:v1"
DIGEST = "127.0.0.1:34061/asbxhelper/missing@sha256:" + "0" * 64

# (runtime, fixture) -> (cause, message); the hint is checked per cause below.
GOLDEN: dict[tuple[str, str], tuple[PullCause, str]] = {
    ("podman", "not-found-manifest-unknown"): (PullCause.NOT_FOUND,
                                               _not_found(LOCAL, "127.0.0.1:34061")),
    ("podman", "not-found-digest"): (PullCause.NOT_FOUND, _not_found(DIGEST, "127.0.0.1:34061")),
    ("podman", "unauthorized-no-credentials"): (
        PullCause.UNAUTHORIZED, _refused(AUTH, "127.0.0.1:41453", "authentication required")),
    ("podman", "unauthorized-wrong-credentials"): (
        PullCause.UNAUTHORIZED, _refused(AUTH, "127.0.0.1:41453", "authentication required")),
    ("podman", "unreachable-connection-refused"): (PullCause.UNREACHABLE, _unreachable(
        "127.0.0.1:1/asbxhelper/missing:v1", "127.0.0.1:1", "connection refused")),
    ("podman", "unreachable-localhost-namespace"): (PullCause.UNREACHABLE, _unreachable(
        "localhost/asbxhelper-missing:v1", "localhost", "connection refused")),
    ("podman", "unreachable-no-such-host"): (PullCause.UNREACHABLE, _unreachable(
        "nonexistent.invalid/asbxhelper/missing:v1", "nonexistent.invalid", "no such host")),
    ("podman", "unreachable-tls-handshake-timeout"): (PullCause.UNREACHABLE, _unreachable(
        "127.0.0.1:35815/asbxhelper/missing:v1", "127.0.0.1:35815", "timed out")),
    ("podman", "unreachable-http-registry"): (
        PullCause.TLS, f"cannot pull {LOCAL}: cannot reach the registry 127.0.0.1:34061 over "
                       "HTTPS (it serves plain HTTP, not HTTPS)"),
    ("podman", "other-short-name"): (
        PullCause.OTHER, 'cannot pull asbxhelper-missing:v1: short-name "asbxhelper-missing:v1" '
                         "did not resolve to an alias and no unqualified-search registries are "
                         'defined in "/etc/containers/registries.conf"'),
    ("docker", "not-found-manifest-unknown"): (PullCause.NOT_FOUND, _not_found(
        "127.0.0.1:5000/asbxhelper/missing:v1", "127.0.0.1:5000")),
    ("docker", "unauthorized-pull-access-denied"): (PullCause.UNAUTHORIZED, _refused(
        "asbxhelper-missing:v1", "docker.io",
        "access denied: the repository does not exist or needs a login")),
    ("docker", "unauthorized-no-basic-auth"): (
        PullCause.UNAUTHORIZED, _refused(EXAMPLE, "registry.example.com", "no credentials for it")),
    ("docker", "unauthorized-authentication-required"): (PullCause.UNAUTHORIZED, _refused(
        EXAMPLE, "registry.example.com", "authentication required")),
    ("docker", "unreachable-connection-refused"): (PullCause.UNREACHABLE, _unreachable(
        "registry.example.com:5000/asbxhelper/missing:v1", "registry.example.com:5000",
        "connection refused")),
    ("docker", "unreachable-no-such-host"): (PullCause.UNREACHABLE, _unreachable(
        "nonexistent.invalid/asbxhelper/missing:v1", "nonexistent.invalid", "no such host")),
    ("docker", "unreachable-timeout"): (PullCause.UNREACHABLE, _unreachable(
        "asbxhelper/missing:v1", "docker.io", "timed out")),
    ("docker", "unreachable-http-registry"): (
        PullCause.TLS, "cannot pull 192.0.2.10:5000/asbxhelper/missing:v1: cannot reach the "
                       "registry 192.0.2.10:5000 over HTTPS (it serves plain HTTP, not HTTPS)"),
    ("apple", "not-found-404"): (PullCause.NOT_FOUND, _not_found(LOCAL, "127.0.0.1:34061")),
    ("apple", "unauthorized-401"): (
        PullCause.UNAUTHORIZED, _refused(AUTH, "127.0.0.1:41453", "authentication required")),
    ("apple", "unreachable-connection-refused"): (PullCause.UNREACHABLE, _unreachable(
        "127.0.0.1:1/asbxhelper/missing:v1", "127.0.0.1:1", "connection refused")),
}
LOGIN_COMMAND = {"podman": "podman login", "docker": "docker login",
                 "apple": "container registry login"}


def captured(kind: str, name: str) -> tuple[str, int, str]:
    """(ref, exit code, stderr) of a fixture: `# $ CMD ... REF  => exit N`, then the stderr."""
    head, _, stderr = (FIXTURES / kind / "pull" / f"{name}.txt").read_text().partition("\n")
    command, _, code = head.partition("  => exit ")
    return command.split()[-1], int(code), stderr


def failing_pull(kind: str, name: str) -> tuple[AsbxError, str, str]:
    """Pull the fixture's ref through a runtime whose CLI answers with the fixture's output."""
    ref, code, stderr = captured(kind, name)
    runner = ScriptedRunner()
    runner.on("pull", returncode=code, stderr=stderr)
    runner.on("image", "pull", returncode=code, stderr=stderr)
    runtime = RUNTIMES[kind](runner)
    with pytest.raises(AsbxError) as caught:
        runtime.pull(ref)
    return caught.value, ref, stderr


def test_every_fixture_has_a_golden_answer() -> None:
    files = {(p.parent.parent.name, p.stem) for p in FIXTURES.glob("*/pull/*.txt")}
    assert files - {("docker", "daemon-down")} == set(GOLDEN)


@pytest.mark.parametrize(("kind", "name"), sorted(GOLDEN), ids=[f"{k}:{n}" for k, n in
                                                                 sorted(GOLDEN)])
def test_real_pull_failures_become_one_sentence_with_a_hint(kind: str, name: str) -> None:
    error, ref, stderr = failing_pull(kind, name)
    cause, message = GOLDEN[kind, name]

    assert isinstance(error, PullError)
    assert (error.cause, error.message) == (cause, message)
    assert "\n" not in error.message
    assert ref in error.message
    assert str(error) == error.message
    host = registry_host(ref, stderr)
    expected_hint = {
        PullCause.NOT_FOUND: NOT_FOUND_HINT,
        PullCause.UNAUTHORIZED: LOGIN.format(login=LOGIN_COMMAND[kind], host=host),
        PullCause.UNREACHABLE: UNREACHABLE_HINT,
        PullCause.OTHER: "asbx -v shows the runtime's full output",
    }
    if cause is PullCause.TLS:
        fix = {"podman": f'[[registry]] location = "{host}" insecure = true',
               "docker": f'add "{host}" to "insecure-registries" in /etc/docker/daemon.json'}
        assert fix[kind] in (error.hint or "")
    else:
        assert error.hint == expected_hint[cause]


@pytest.mark.parametrize(("kind", "name"), [*sorted(GOLDEN)[:3], ("podman", "other-short-name")])
def test_the_raw_output_stays_available_for_verbose(kind: str, name: str) -> None:
    error, ref, stderr = failing_pull(kind, name)

    assert isinstance(error, PullError)
    assert isinstance(error, RuntimeCommandError), "callers catching the old type still do"
    assert error.stderr == stderr
    assert error.returncode != 0
    assert error.argv[-1] == ref
    assert error.output.startswith(f"command failed (exit {error.returncode}): ")
    assert stderr.strip().splitlines()[-1].strip() in error.output


def test_podman_insecure_hint_names_registries_conf_and_tls_verify() -> None:
    error, _, _ = failing_pull("podman", "unreachable-http-registry")
    assert "registries.conf" in (error.hint or "")
    assert "--tls-verify=false" in (error.hint or "")


def test_docker_daemon_down_during_a_pull_is_the_daemon_not_the_registry() -> None:
    error, _, _ = failing_pull("docker", "daemon-down")
    assert isinstance(error, RuntimeUnavailableError)
    assert "Docker daemon is not running" in error.message


def test_podman_machine_down_during_a_pull_is_unavailable() -> None:
    runner = ScriptedRunner()
    runner.on("pull", returncode=125, stderr="Cannot connect to Podman. Please verify your "
              "connection to the Linux system using `podman system connection list`\n")
    with pytest.raises(RuntimeUnavailableError, match="podman is not working"):
        PodmanRuntime(runner).pull("docker.io/library/busybox:latest")


def test_apple_service_down_during_a_pull_is_unavailable() -> None:
    runner = ScriptedRunner()
    runner.on("image", "pull", returncode=1, stderr=(
        'Error: interrupted: "internalError: "failed to pull image" (cause: "interrupted: '
        '"XPC connection error: Connection invalid"")"\nEnsure container system service has '
        "been started with `container system start`.\n"))
    with pytest.raises(RuntimeUnavailableError, match="system service is not running"):
        AppleRuntime(runner).pull("docker.io/library/busybox:latest")


def test_apple_usage_errors_stay_command_errors() -> None:
    runner = ScriptedRunner()
    runner.on("image", "pull", returncode=64, stderr="Error: Unknown option '--bogus'\n")
    with pytest.raises(RuntimeCommandError) as caught:
        AppleRuntime(runner).pull("busybox")
    assert not isinstance(caught.value, PullError)


@pytest.mark.parametrize("kind", ["podman", "docker"])
def test_a_missing_executable_is_still_unavailable(kind: str) -> None:
    runner = ScriptedRunner()
    runner.on("pull", returncode=127, stderr=f"{kind}: No such file or directory")
    with pytest.raises(RuntimeUnavailableError, match="not installed"):
        RUNTIMES[kind](runner).pull("busybox")


@pytest.mark.parametrize(("text", "cause"), [
    ("x509: certificate signed by unknown authority", PullCause.TLS),
    ("reading manifest latest in docker.io/library/nope: requested access to the resource is "
     "denied", PullCause.UNAUTHORIZED),
    ("reading manifest v1 in quay.io/x/y: name unknown: repository name not known to registry",
     PullCause.NOT_FOUND),
    ('Get "https://r.example/v2/": dial tcp 192.0.2.1:443: i/o timeout', PullCause.UNREACHABLE),
    ("dial tcp 192.0.2.1:443: connect: no route to host", PullCause.UNREACHABLE),
    ("writing blob: open /var/lib/containers/x: permission denied", PullCause.OTHER),
    ("no space left on device", PullCause.OTHER),
])
def test_classification_of_other_documented_texts(text: str, cause: PullCause) -> None:
    assert classify_pull_failure(text)[0] is cause


def test_short_names_report_the_registry_podman_tried() -> None:
    stderr = ("Error: initializing source docker://quay.io/x/tool:v1: reading manifest v1 in "
              "quay.io/x/tool: manifest unknown: manifest unknown")
    assert registry_host("x/tool:v1", stderr) == "quay.io"
    assert registry_host("x/tool:v1") == "docker.io"
    assert registry_host("localhost/asbx/busybox:latest") == "localhost"
    assert registry_host("localhost:5000/a:b") == "localhost:5000"
