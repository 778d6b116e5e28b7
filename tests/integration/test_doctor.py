"""`asbx doctor` on real podman: it passes here, and names a CNI backend without plugins."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.integration.conftest import BASE_IMAGE, REPO, Project

pytestmark = pytest.mark.integration

SPEC = f"""version: 1
name: NAME
sandboxes:
  box: {{image: "{BASE_IMAGE}"}}
"""


def _probe_objects(project: Project) -> set[str]:
    """Every container and network a doctor run labelled (to see that it left none)."""
    label = "label=dev.asbx.doctor"
    names = project.podman("ps", "-a", "--filter", label, "--format", "{{.Names}}").stdout
    networks = project.podman("network", "ls", "--filter", label, "--format", "{{.Name}}").stdout
    return set(names.split()) | set(networks.split())


def test_doctor_passes_here_and_leaves_nothing_behind(project: Project) -> None:
    project.write(SPEC)
    before = _probe_objects(project)
    result = project.asbx("doctor")
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[:8] == [line for line in lines[:8] if line.startswith("ok ")], result.stdout
    assert "ok   allowlists asbx can install the host firewall rules" in result.stdout
    assert any(line.startswith("ok   network    backend netavark: a container ran on an "
                               "--internal network") for line in lines)
    assert f"ok   images     present locally: {BASE_IMAGE}" in lines
    assert lines[-1] == "asbx can run sandboxes here."
    assert _probe_objects(project) - before == set()
    assert project.containers() == {}  # the project itself is untouched


def _cni_conf(tmp_path: Path) -> Path:
    """scripts/containers.conf with the CNI backend and an empty plugin directory; CNI's
    network configs go under tmp_path too, never into /etc/cni/net.d."""
    shipped = (REPO / "scripts" / "containers.conf").read_text()
    assert '[network]\n' in shipped
    (tmp_path / "cni-plugins").mkdir()
    (tmp_path / "cni-networks").mkdir()
    conf = tmp_path / "cni.conf"
    conf.write_text(shipped.replace(
        'network_backend = "netavark"',
        f'network_backend = "cni"\ncni_plugin_dirs = ["{tmp_path / "cni-plugins"}"]\n'
        f'network_config_dir = "{tmp_path / "cni-networks"}"'))
    return conf


def test_doctor_names_a_cni_backend_without_plugins_and_the_fix(project: Project,
                                                               tmp_path: Path) -> None:
    project.extra_env["CONTAINERS_CONF"] = str(_cni_conf(tmp_path))
    result = project.asbx("doctor")
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert "Traceback" not in output
    network = next(line for line in result.stdout.splitlines() if line.startswith("FAIL network"))
    assert "backend cni: podman's CNI network backend is selected but its CNI plugins are " \
           "missing" in network
    assert "asbx's network allowlists need the netavark backend, podman uses cni" in network
    assert 'fix: install netavark and aardvark-dns and set network_backend = "netavark"' in network
    assert result.stdout.rstrip().endswith("1 check failed: fix it and run `asbx doctor` again.")

    as_json = project.asbx("doctor", "--json")
    assert as_json.returncode == 1
    checks = {check["name"]: check for check in json.loads(as_json.stdout)}
    assert list(checks) == ["runtime", "service", "containers", "network", "allowlists",
                            "images", "home", "disk"]
    assert checks["network"]["status"] == "fail"
    assert "netavark" in checks["network"]["fix"]
    assert checks["containers"]["status"] == "ok"  # --network none needs no plugin


def test_apply_on_that_host_names_the_cause_and_points_to_doctor(project: Project,
                                                                tmp_path: Path) -> None:
    project.write(f'version: 1\nname: NAME\nsandboxes:\n  box: {{image: "{BASE_IMAGE}", '
                  "network: open}\n")
    project.extra_env["CONTAINERS_CONF"] = str(_cni_conf(tmp_path))
    result = project.asbx("apply", "-y")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert ("error: sandbox.box (create): podman cannot start containers on this host: podman's "
            "CNI network backend is selected but its CNI plugins are missing") in result.stderr
    hint = next(line for line in result.stderr.splitlines() if line.startswith("  hint:"))
    assert hint.endswith("`asbx doctor` checks this machine")
