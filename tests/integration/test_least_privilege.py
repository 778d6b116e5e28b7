"""Every sandbox runs with asbx's capability set on real podman: no NET_RAW, no raw sockets."""

from __future__ import annotations

import json

import pytest

from asbx.spec import capabilities
from tests.integration.conftest import Project

pytestmark = pytest.mark.integration

SPEC = """
version: 1
name: NAME
sandboxes:
  closed:
    image: localhost/asbx/busybox:latest
  open:
    image: localhost/asbx/busybox:latest
    network: open
  listed:
    image: localhost/asbx/busybox:latest
    network: {allow: ["10.0.0.0/8"]}
  pinger:
    image: localhost/asbx/busybox:latest
    cap_add: [cap_net_raw]
"""
NET_RAW = 1 << capabilities.KNOWN.index("NET_RAW")


def status(project: Project, sandbox: str, pid: str = "self") -> dict[str, str]:
    """The Cap* and NoNewPrivs lines of /proc/PID/status inside the sandbox."""
    out = project.podman("exec", f"{project.name}-{sandbox}", "cat", f"/proc/{pid}/status").stdout
    fields = dict(line.split(":\t", 1) for line in out.splitlines() if ":\t" in line)
    return {k: v.strip() for k, v in fields.items() if k.startswith("Cap") or k == "NoNewPrivs"}


def ping(project: Project, sandbox: str) -> tuple[int, str]:
    result = project.podman("exec", f"{project.name}-{sandbox}", "ping", "-c", "1", "-W", "2",
                            "127.0.0.1")
    return result.returncode, result.stdout + result.stderr


def test_every_kind_of_sandbox_gets_exactly_the_default_set_and_cap_add_adds_one(
        project: Project) -> None:
    project.write(SPEC)
    project.asbx("apply", "-y", check=True)
    default = capabilities.mask(capabilities.DEFAULT)
    for sandbox in ("closed", "open", "listed"):
        for pid in ("self", "1"):  # an exec'd command and the main process alike
            caps = status(project, sandbox, pid)
            for field in ("CapEff", "CapPrm", "CapBnd"):
                assert int(caps[field], 16) == default, (sandbox, pid, field, caps)
                assert not int(caps[field], 16) & NET_RAW
            assert caps["NoNewPrivs"] == "1", (sandbox, pid)
    added = status(project, "pinger")
    assert int(added["CapEff"], 16) == default | NET_RAW
    assert int(added["CapBnd"], 16) == default | NET_RAW

    for sandbox in ("closed", "listed"):  # busybox ping needs a raw socket
        code, out = ping(project, sandbox)
        assert code != 0, out
        assert "permission denied" in out, out
    code, out = ping(project, "pinger")
    assert code == 0, out

    plan = project.asbx("plan", "--detailed-exitcode")
    assert plan.returncode == 0, plan.stdout + plan.stderr


def test_a_sandbox_made_before_least_privilege_is_replaced_and_says_why(
        project: Project) -> None:
    project.write(SPEC.split("  open:")[0])
    project.asbx("apply", "-y", check=True)
    container = f"{project.name}-closed"
    # what an older asbx made: the runtime's default capabilities and no privileges label
    config = json.loads(project.podman("inspect", container).stdout)[0]["Config"]["Labels"]
    assert config["dev.asbx.privileges"] == capabilities.PROFILE
    workspace = project.workspace("closed")
    (workspace / "kept.txt").write_text("still here\n")
    project.podman("rm", "-f", "-t", "0", container)
    old_labels = [arg for k, v in config.items() if k != "dev.asbx.privileges"
                  for arg in ("--label", f"{k}={v}")]
    made = project.podman("run", "-d", "--name", container, *old_labels, "--network", "none",
                          "-v", f"{workspace}:/workspace", "localhost/asbx/busybox:latest",
                          "tail", "-f", "/dev/null")
    assert made.returncode == 0, made.stderr
    assert int(status(project, "closed")["CapEff"], 16) & NET_RAW

    plan = project.asbx("plan")
    assert "sandbox.closed must be replaced (runs with more privileges than asbx now grants)" \
        in plan.stdout, plan.stdout
    assert "NET_RAW" in plan.stdout
    project.asbx("apply", "-y", check=True)
    assert not int(status(project, "closed")["CapEff"], 16) & NET_RAW
    assert (workspace / "kept.txt").read_text() == "still here\n"
