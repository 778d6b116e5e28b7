"""Real-runtime fixtures for the asbx CLI: an isolated ASBX_HOME, a unique project, cleanup."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.contract.backends import require

REPO = Path(__file__).resolve().parents[2]
BASE_IMAGE = "localhost/asbx/busybox:latest"
PODMAN_CONF = """[containers]
default_ulimits = ["nofile=4096:4096", "nproc=4096:4096"]
[engine]
cgroup_manager = "cgroupfs"
runtime = "runc"
"""


def _containers_conf(tmp: Path) -> str:
    if os.environ.get("CONTAINERS_CONF"):
        return os.environ["CONTAINERS_CONF"]
    shipped = REPO / "scripts" / "containers.conf"
    if shipped.is_file():
        return str(shipped)
    path = tmp / "containers.conf"
    path.write_text(PODMAN_CONF)
    return str(path)


@pytest.fixture(scope="session")
def podman(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The environment for running podman; fails in CI when podman or the base image is missing."""
    if shutil.which("podman") is None:
        require("podman is not installed (scripts/test installs it)")
    env = {**os.environ, "CONTAINERS_CONF": _containers_conf(tmp_path_factory.mktemp("conf"))}
    probe = subprocess.run(["podman", "image", "exists", BASE_IMAGE], env=env, check=False)
    if probe.returncode != 0:
        built = subprocess.run(
            [str(REPO / "scripts" / "build-base-image")],
            env=env,
            check=False,
            capture_output=True,
            text=True,
        )
        if built.returncode != 0:
            pytest.fail(f"cannot build {BASE_IMAGE}: {built.stderr[-2000:]}")
    return env


@dataclass
class Project:
    """A temporary project directory, its own ASBX_HOME, and a CLI runner for it."""

    root: Path
    home: Path
    name: str
    env: dict[str, str]
    extra_env: dict[str, str] = field(default_factory=dict)

    def write(self, text: str) -> Path:
        spec = self.root / "sandboxes.yaml"
        spec.write_text(text.replace("NAME", self.name))
        return spec

    def asbx(
        self, *args: str, check: bool = False, timeout: float = 180, stdin: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run the CLI in the project; `stdin` (when given) is its standard input."""
        result = subprocess.run(
            [sys.executable, "-m", "asbx", *args],
            cwd=self.root,
            env={**self.env, **self.extra_env},
            input=stdin,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"asbx {' '.join(args)} exited {result.returncode}:\n"
                f"{result.stdout}\n{result.stderr}"
            )
        return result

    def popen(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, "-m", "asbx", *args],
            cwd=self.root,
            env={**self.env, **self.extra_env},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def podman(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["podman", *args], env=self.env, capture_output=True, text=True, check=False
        )

    def containers(self) -> dict[str, str]:
        """{name: state} of this project's containers."""
        out = self.podman(
            "ps", "-a", "--filter", f"label=dev.asbx.project={self.name}", "--format", "json"
        ).stdout
        return {c["Names"][0]: c["State"] for c in json.loads(out or "[]")}

    def volumes(self) -> list[str]:
        out = self.podman(
            "volume", "ls", "--filter", f"label=dev.asbx.project={self.name}", "--format", "json"
        ).stdout
        return sorted(v["Name"] for v in json.loads(out or "[]"))

    def workspace(self, sandbox: str) -> Path:
        return self.home / "projects" / self.name / "sandboxes" / sandbox / "workspace"


def _cleanup(project: Project) -> None:
    from asbx.network import firewall
    from asbx.network.manager import stop_proxy
    from asbx.runtime.command import SubprocessRunner

    for run_dir in project.home.glob("projects/*/sandboxes/*/proxy"):
        stop_proxy(run_dir)  # even when the test failed before destroy
    if not firewall.blocker():  # and the host firewall chains of its allowlist sandboxes
        runner = SubprocessRunner()
        firewall.remove_installed(
            firewall.owned_by(firewall.list_installed(runner), project.name), runner)
    label = f"label=dev.asbx.project={project.name}"
    ids = project.podman("ps", "-aq", "--filter", label).stdout.split()
    if ids:
        project.podman("rm", "-f", "-t", "0", *ids)
    vols = project.podman("volume", "ls", "-q", "--filter", label).stdout.split()
    if vols:
        project.podman("volume", "rm", "-f", *vols)
    networks = project.podman("network", "ls", "-q", "--filter", label).stdout.split()
    if networks:
        project.podman("network", "rm", "-f", *networks)
    images = project.podman("images", "-q", "--filter", label).stdout.split()
    if images:
        project.podman("rmi", "-f", *set(images))


@pytest.fixture
def project(podman: dict[str, str], tmp_path: Path) -> Iterator[Project]:
    name = f"it-{uuid.uuid4().hex[:8]}"
    root = tmp_path / "proj"
    root.mkdir()
    home = tmp_path / "home"
    env = {**podman, "ASBX_HOME": str(home), "ASBX_RUNTIME": "podman", "NO_COLOR": "1"}
    proj = Project(root, home, name, env)
    yield proj
    _cleanup(proj)


@pytest.fixture
def registry(podman: dict[str, str]) -> str:
    """The loopback registry scripts/test starts (ASBX_TEST_REGISTRY); CI fails without it."""
    address = os.environ.get("ASBX_TEST_REGISTRY", "")
    if not address or not os.environ.get("CONTAINERS_REGISTRIES_CONF"):
        require("no local registry (ASBX_TEST_REGISTRY): run the tests through scripts/test")
    return address
