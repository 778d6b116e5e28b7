"""Host problems: runtime failures with a known cause on this machine, as one sentence and a fix."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from asbx.errors import RuntimeUnavailableError
from asbx.runtime.command import CommandResult
from asbx.runtime.pull_errors import last_error

DOCTOR_POINTER = "`asbx doctor` checks this machine"


class HostCause(StrEnum):
    IPTABLES_MISSING = "iptables missing"
    NETAVARK_MISSING = "netavark missing"
    CNI_PLUGINS_MISSING = "CNI plugins missing"
    RLIMITS = "rlimits"
    CGROUP_MANAGER = "cgroup manager"
    OCI_RUNTIME_MISSING = "OCI runtime missing"


@dataclass(frozen=True)
class HostProblem:
    """A known cause: `sentence` names it (one sentence), `fix` says what to change."""

    cause: HostCause
    sentence: str
    fix: str


_ULIMITS = ('set default_ulimits = ["nofile=4096:4096", "nproc=4096:4096"] (no higher than '
            "`ulimit -Hn` / `ulimit -Hu`) in the [containers] table of containers.conf; asbx's "
            "scripts/containers.conf is an example")

# First match wins, against stderr + stdout. Texts captured from podman 4.3.1, see
# tests/fixtures/runtime/podman/host/README.md for how each was made.
_RULES: tuple[tuple[re.Pattern[str], HostProblem], ...] = tuple(
    (re.compile(pattern), HostProblem(cause, sentence, fix)) for pattern, cause, sentence, fix in (
        (r"could not find \"?netavark\"?", HostCause.NETAVARK_MISSING,
         "podman's network backend netavark is not installed (or not in helper_binaries_dir)",
         "install netavark and aardvark-dns (`apt-get install netavark aardvark-dns`)"),
        (r"netavark: No such file or directory", HostCause.IPTABLES_MISSING,
         "podman's network backend netavark could not run a program it needs: iptables is "
         "missing",
         "install iptables (`apt-get install iptables`)"),
        (r"failed to find plugin \"[\w-]+\" in path", HostCause.CNI_PLUGINS_MISSING,
         "podman's CNI network backend is selected but its CNI plugins are missing",
         "install netavark and aardvark-dns and set network_backend = \"netavark\" in the "
         "[network] table of containers.conf (asbx's allowlists need netavark), or install "
         "the CNI plugins (`apt-get install containernetworking-plugins`)"),
        (r"error setting rlimit", HostCause.RLIMITS,
         "podman's OCI runtime may not raise the containers' resource limits on this host",
         _ULIMITS),
        (r"cannot use systemd cgroups manager|systemd not running on this host",
         HostCause.CGROUP_MANAGER,
         "podman is set to the systemd cgroup manager but systemd does not run on this host",
         'set cgroup_manager = "cgroupfs" in the [engine] table of containers.conf'),
        (r"default OCI runtime \"?[\w.-]+\"? not found", HostCause.OCI_RUNTIME_MISSING,
         "podman's OCI runtime is not installed",
         "install it (`apt-get install runc` or `crun`) or name an installed one with "
         "runtime = \"runc\" in the [engine] table of containers.conf"),
    )
)


def diagnose(text: str) -> HostProblem | None:
    """The known host problem a runtime's output shows, if any."""
    for pattern, problem in _RULES:
        if pattern.search(text):
            return problem
    return None


class HostProblemError(RuntimeUnavailableError):
    """A runtime command failed for a known reason of this machine; `output` keeps its words."""

    def __init__(self, problem: HostProblem, result: CommandResult, runtime: str) -> None:
        self.problem = problem
        self.result = result
        self.detail = f"{problem.sentence} ({last_error(result)})"
        super().__init__(f"{runtime} cannot start containers on this host: {self.detail}",
                         hint=f"{problem.fix}; {DOCTOR_POINTER}")

    @property
    def output(self) -> str:
        """The runtime command, its exit code and its output."""
        return (f"command failed (exit {self.result.returncode}): {' '.join(self.result.argv)}\n"
                f"{self.result.stderr.strip()}")


def host_problem_error(result: CommandResult, runtime: str) -> HostProblemError | None:
    """The error naming the known cause of a failed command, or None if it is not one."""
    problem = diagnose(result.stderr + "\n" + result.stdout)
    return None if problem is None else HostProblemError(problem, result, runtime)

