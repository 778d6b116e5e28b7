"""Known host causes, matched in the captured podman texts, named in one sentence with a fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from asbx.errors import RuntimeUnavailableError
from asbx.runtime.base import ContainerRequest
from asbx.runtime.command import CommandResult
from asbx.runtime.host_problems import HostCause, HostProblemError, diagnose
from asbx.runtime.podman import PodmanRuntime
from tests.fakes.runtime import ScriptedRunner

FIXTURES = Path(__file__).parents[2] / "fixtures" / "runtime" / "podman" / "host"
CAUSES = {
    "iptables-missing.txt": (HostCause.IPTABLES_MISSING, "iptables is missing", "iptables"),
    "netavark-missing.txt": (HostCause.NETAVARK_MISSING, "netavark is not installed",
                             "apt-get install netavark"),
    "cni-plugins-missing.txt": (HostCause.CNI_PLUGINS_MISSING, "CNI plugins are missing",
                                'network_backend = "netavark"'),
    "rlimits.txt": (HostCause.RLIMITS, "resource limits", "default_ulimits"),
    "cgroup-manager-systemd.txt": (HostCause.CGROUP_MANAGER, "systemd cgroup manager",
                                   'cgroup_manager = "cgroupfs"'),
    "oci-runtime-missing.txt": (HostCause.OCI_RUNTIME_MISSING, "OCI runtime is not installed",
                                'runtime = "runc"'),
}
EXIT = {"iptables-missing.txt": 127, "netavark-missing.txt": 125, "oci-runtime-missing.txt": 125}


def test_every_fixture_has_a_cause() -> None:
    assert sorted(p.name for p in FIXTURES.glob("*.txt")) == sorted(CAUSES)


@pytest.mark.parametrize("name", sorted(CAUSES))
def test_each_captured_text_names_its_cause_and_fix(name: str) -> None:
    cause, words, fix = CAUSES[name]
    problem = diagnose((FIXTURES / name).read_text())
    assert problem is not None
    assert problem.cause is cause
    assert words in problem.sentence
    assert fix in problem.fix


@pytest.mark.parametrize("text", [
    "Error: no such container web",
    "Error: creating container storage: the container name \"web\" is already in use",
    "",
])
def test_other_failures_are_not_host_problems(text: str) -> None:
    assert diagnose(text) is None


@pytest.mark.parametrize("name", sorted(CAUSES))
def test_a_failed_create_during_apply_names_the_cause_and_points_to_doctor(name: str) -> None:
    runner = ScriptedRunner()
    runner.on("run", returncode=EXIT.get(name, 126), stderr=(FIXTURES / name).read_text())
    request = ContainerRequest(name="web", image="i", command=(), network="lab", start=True)
    with pytest.raises(HostProblemError) as caught:
        PodmanRuntime(runner).create_container(request)
    error = caught.value
    assert isinstance(error, RuntimeUnavailableError)
    assert error.message.startswith("podman cannot start containers on this host: ")
    assert CAUSES[name][1] in error.message
    assert error.hint is not None
    assert error.hint.endswith("`asbx doctor` checks this machine")
    assert "\n" not in error.message.split(" (", 1)[0]  # the cause: one sentence before the quote


def test_netavarks_exit_127_is_not_read_as_podman_missing() -> None:
    runner = ScriptedRunner()
    runner.on("network", "create", returncode=127,
              stderr=(FIXTURES / "iptables-missing.txt").read_text())
    with pytest.raises(HostProblemError, match="iptables is missing"):
        PodmanRuntime(runner).create_network("n", {}, internal=False)


def test_podman_missing_is_still_podman_missing() -> None:
    runner = ScriptedRunner()
    runner.on("network", "create", returncode=127, stderr="podman: No such file or directory")
    with pytest.raises(RuntimeUnavailableError, match="podman is not installed"):
        PodmanRuntime(runner).create_network("n", {}, internal=False)


def test_the_error_keeps_the_runtimes_own_words_for_verbose_output() -> None:
    result = CommandResult(("podman", "run", "x"), 126, "", (FIXTURES / "rlimits.txt").read_text())
    problem = diagnose(result.stderr)
    assert problem is not None
    error = HostProblemError(problem, result, "podman")
    assert "podman run x" in error.output
    assert "rlimit type 7" in error.output
