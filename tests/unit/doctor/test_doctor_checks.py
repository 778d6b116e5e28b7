"""Each doctor check's texts, through the real podman/docker backends and a scripted runner."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pytest

from asbx.doctor import (
    BASE_IMAGE,
    CHECKS,
    CheckResult,
    Found,
    Machine,
    Status,
    check_allowlists,
    check_disk,
    check_home,
    passed,
    run_checks,
    spec_image_refs,
)
from asbx.errors import SpecError
from asbx.spec.loader import load_spec_text
from tests.fakes.runtime import ScriptedRunner

FIXTURES = Path(__file__).parents[2] / "fixtures" / "runtime" / "podman" / "host"
INTERNAL = json.dumps([{"name": "n", "internal": True,
                        "subnets": [{"subnet": "10.89.7.0/24", "gateway": "10.89.7.1"}]}])


def info(backend: str = "netavark", cgroup: str = "cgroupfs") -> str:
    return json.dumps({"host": {"networkBackend": backend, "cgroupManager": cgroup,
                                "cgroupVersion": "v1", "ociRuntime": {"name": "runc"}}})


def images(*names: str) -> str:
    return json.dumps([{"Id": f"{i:064x}", "Names": [name]} for i, name in enumerate(names, 1)])


@pytest.fixture
def runner() -> ScriptedRunner:
    """A healthy podman 4.3 with netavark and the base image."""
    runner = ScriptedRunner()
    runner.on("--version", stdout="podman version 4.3.1\n")
    runner.on("info", stdout=info())
    runner.on("images", stdout=images(BASE_IMAGE))
    runner.on("run", stdout="c0ffee\n")
    runner.on("network", "inspect", stdout=INTERNAL)
    return runner


def machine(runner: ScriptedRunner, tmp_path: Path, *, refs: Sequence[str] | None = None,
            which: dict[str, str] | None = None, free: int = 50 * 1024**3,
            requested: str | None = "podman", blocker: str = "") -> Machine:
    paths = {"podman": "/usr/bin/podman", "docker": "/usr/bin/docker"} if which is None else which
    return Machine(requested=requested, runner=runner, home=tmp_path / "home",
                   spec_refs=lambda: refs, env={}, platform="linux", which=paths.get,
                   free_bytes=lambda _path: free, token="t0k3n", allowlist_blocker=lambda: blocker)


def by_name(results: Sequence[CheckResult]) -> dict[str, CheckResult]:
    return {result.name: result for result in results}


def test_a_healthy_podman_passes_every_check(runner: ScriptedRunner, tmp_path: Path) -> None:
    results = by_name(run_checks(machine(runner, tmp_path, refs=[BASE_IMAGE])))
    assert [r.status for r in results.values()] == [Status.OK] * len(CHECKS)
    assert results["runtime"].detail == "podman version 4.3.1 (/usr/bin/podman)"
    assert "cgroup manager cgroupfs" in results["service"].detail
    assert results["network"].detail == "backend netavark: a container ran on an --internal network"
    assert passed(results.values())


def test_the_probes_are_labelled_and_cleaned_up(runner: ScriptedRunner, tmp_path: Path) -> None:
    run_checks(machine(runner, tmp_path))
    argvs = [list(argv[1:]) for argv in runner.argvs()]
    runs = [a for a in argvs if a[:2] == ["run", "-d"]]
    assert len(runs) == 2
    assert all("dev.asbx.doctor=t0k3n" in a for a in runs)
    assert runs[0][runs[0].index("--network"):][:2] == ["--network", "none"]
    assert ["rm", "-v", "-f", "asbx-doctor-t0k3n-run"] in argvs
    assert ["rm", "-v", "-f", "asbx-doctor-t0k3n-net"] in argvs
    assert argvs[-1] == ["network", "rm", "asbx-doctor-t0k3n"]


def test_no_runtime_on_path_fails_with_how_to_install(runner: ScriptedRunner,
                                                      tmp_path: Path) -> None:
    results = by_name(run_checks(machine(runner, tmp_path, which={}, requested=None)))
    assert results["runtime"].status is Status.FAIL
    assert results["runtime"].detail == "no container runtime found on PATH"
    assert results["runtime"].fix is not None
    assert "install podman" in results["runtime"].fix
    assert {results[n].status for n in ("service", "containers", "network")} == {Status.SKIP}
    assert not passed(results.values())


def test_the_selected_runtime_missing_names_it(runner: ScriptedRunner, tmp_path: Path) -> None:
    result = by_name(run_checks(machine(runner, tmp_path, which={}, requested="docker")))
    assert result["runtime"].detail == "docker: no `docker` on PATH"
    assert result["runtime"].fix is not None
    assert "docker.io" in result["runtime"].fix


def test_podman_info_failing_fails_the_service(runner: ScriptedRunner, tmp_path: Path) -> None:
    runner.on("info", returncode=125, stderr="Error: cannot open the database: disk I/O error\n")
    result = by_name(run_checks(machine(runner, tmp_path)))["service"]
    assert result.status is Status.FAIL
    assert result.detail == ("`podman info` failed: podman is not working: Error: cannot open the "
                             "database: disk I/O error")
    assert result.fix == "check that `podman info` works"


def test_netavark_missing_fails_the_service_with_the_install(runner: ScriptedRunner,
                                                             tmp_path: Path) -> None:
    runner.on("info", returncode=125, stderr=(FIXTURES / "netavark-missing.txt").read_text())
    result = by_name(run_checks(machine(runner, tmp_path)))["service"]
    assert result.status is Status.FAIL
    assert "netavark is not installed" in result.detail
    assert result.fix == ("install netavark and aardvark-dns "
                          "(`apt-get install netavark aardvark-dns`)")


@pytest.mark.parametrize(("name", "fix"), [
    ("rlimits.txt", "default_ulimits"),
    ("cgroup-manager-systemd.txt", 'cgroup_manager = "cgroupfs"'),
    ("oci-runtime-missing.txt", 'runtime = "runc"'),
])
def test_a_container_that_cannot_start_names_the_cause(name: str, fix: str,
                                                      runner: ScriptedRunner,
                                                      tmp_path: Path) -> None:
    runner.on("run", returncode=126, stderr=(FIXTURES / name).read_text())
    results = by_name(run_checks(machine(runner, tmp_path)))
    assert results["containers"].status is Status.FAIL
    assert results["containers"].fix is not None
    assert fix in results["containers"].fix
    assert "asbx doctor" not in results["containers"].fix  # doctor does not point at itself
    assert results["network"].status is Status.SKIP
    assert results["network"].detail == ("backend netavark: not probed: no container runs "
                                         "(see containers)")
    assert ["rm", "-v", "-f", "asbx-doctor-t0k3n-run"] in [list(a[1:]) for a in runner.argvs()]


def test_iptables_missing_fails_the_network(runner: ScriptedRunner, tmp_path: Path) -> None:
    def answer(request: object) -> tuple[int, str, str]:
        argv = request.argv  # type: ignore[attr-defined]
        if "none" in argv:
            return 0, "c0ffee\n", ""
        return 127, "", (FIXTURES / "iptables-missing.txt").read_text()

    runner.on("run", then=answer)
    results = by_name(run_checks(machine(runner, tmp_path)))
    assert results["containers"].status is Status.OK
    network = results["network"]
    assert network.status is Status.FAIL
    assert network.detail.startswith("backend netavark: podman's network backend netavark could "
                                     "not run a program it needs: iptables is missing")
    assert network.fix == "install iptables (`apt-get install iptables`)"
    assert list(runner.argvs()[-1][1:]) == ["network", "rm", "asbx-doctor-t0k3n"]


def test_cni_without_plugins_fails_and_says_allowlists_need_netavark(
        runner: ScriptedRunner, tmp_path: Path) -> None:
    runner.on("info", stdout=info(backend="cni"))

    def answer(request: object) -> tuple[int, str, str]:
        argv = request.argv  # type: ignore[attr-defined]
        if "none" in argv:
            return 0, "c0ffee\n", ""
        return 126, "", (FIXTURES / "cni-plugins-missing.txt").read_text()

    runner.on("run", then=answer)
    network = by_name(run_checks(machine(runner, tmp_path)))["network"]
    assert network.status is Status.FAIL
    assert "CNI plugins are missing" in network.detail
    assert "allowlists need the netavark backend, podman uses cni" in network.detail
    assert network.fix is not None
    assert 'network_backend = "netavark"' in network.fix
    argvs = [list(a[1:]) for a in runner.argvs()]
    assert not any(a[:2] == ["network", "create"] for a in argvs)  # CNI: the default network


def test_cni_that_works_is_a_warning_for_allowlists(runner: ScriptedRunner,
                                                   tmp_path: Path) -> None:
    runner.on("info", stdout=info(backend="cni"))
    results = by_name(run_checks(machine(runner, tmp_path)))
    assert results["network"].status is Status.WARN
    assert "a container ran on the default network" in results["network"].detail
    assert passed(results.values())


def test_no_local_image_is_said_not_proven(runner: ScriptedRunner, tmp_path: Path) -> None:
    runner.on("images", stdout="[]")
    results = by_name(run_checks(machine(runner, tmp_path)))
    assert results["containers"].status is Status.WARN
    assert results["containers"].detail == ("no local image to run a throw-away container "
                                            "with, so not proven")
    assert results["network"].status is Status.WARN
    assert not any(a[1:3] == ("run", "-d") for a in runner.argvs())


def test_docker_daemon_down_fails_the_service(tmp_path: Path) -> None:
    runner = ScriptedRunner()
    runner.on("--version", stdout="Docker version 20.10.24\n")
    runner.on("version", returncode=1, stderr="Cannot connect to the Docker daemon at "
              "unix:///var/run/docker.sock. Is the docker daemon running?\n")
    results = by_name(run_checks(machine(runner, tmp_path, requested="docker")))
    assert results["runtime"].status is Status.OK
    assert results["service"].status is Status.FAIL
    assert results["service"].detail.startswith("the Docker daemon is not running")
    assert results["service"].fix is not None
    assert "start dockerd" in results["service"].fix


def test_images_the_spec_needs_are_present_or_will_be_pulled(runner: ScriptedRunner,
                                                             tmp_path: Path) -> None:
    refs = [BASE_IMAGE, "docker.io/library/python:3.12-slim"]
    result = by_name(run_checks(machine(runner, tmp_path, refs=refs)))["images"]
    assert result.status is Status.WARN
    assert result.detail == ("not present locally, `asbx apply` will pull: "
                             "docker.io/library/python:3.12-slim")


def test_no_spec_skips_the_images(runner: ScriptedRunner, tmp_path: Path) -> None:
    result = by_name(run_checks(machine(runner, tmp_path, refs=None)))["images"]
    assert (result.status, result.detail) == (Status.SKIP, "no sandboxes.yaml here or above")


def test_an_invalid_spec_fails_the_images_check(runner: ScriptedRunner, tmp_path: Path) -> None:
    def broken() -> list[str]:
        raise SpecError([])

    m = machine(runner, tmp_path)
    m.spec_refs = broken
    result = by_name(run_checks(m))["images"]
    assert result.status is Status.FAIL
    assert result.fix == "run `asbx validate`"


def test_spec_image_refs_are_refs_plain_images_and_foreign_froms(tmp_path: Path) -> None:
    (tmp_path / "ctx").mkdir()
    (tmp_path / "ctx" / "Dockerfile").write_text("FROM py AS deps\nFROM localhost/base:1\n"
                                                 "FROM deps\n")
    (tmp_path / "ctx2").mkdir()
    (tmp_path / "ctx2" / "Dockerfile").write_text("FROM agent\n")
    spec = ("version: 1\nimages:\n  py: {ref: 'python:3.12'}\n  agent: {build: {context: ./ctx}}\n"
            "  child: {build: {context: ./ctx2}}\n"
            "sandboxes:\n  a: {image: agent}\n  b: {image: busybox}\n  c: {image: child}\n")
    loaded = load_spec_text(spec.encode(), tmp_path / "sandboxes.yaml", {})
    assert spec_image_refs(loaded) == ["busybox", "localhost/base:1", "python:3.12"]


def test_a_crashing_check_is_a_failed_check(runner: ScriptedRunner, tmp_path: Path) -> None:
    def crash(m: Machine, f: Found) -> CheckResult:
        raise KeyError("host")

    results = run_checks(machine(runner, tmp_path), [("boom", crash), ("disk", check_disk)])
    assert results[0] == CheckResult("boom", Status.FAIL, "the check crashed: KeyError: 'host'")
    assert results[1].status is Status.OK


def test_allowlists_that_cannot_be_enforced_are_a_warning_with_the_reason(
        runner: ScriptedRunner, tmp_path: Path) -> None:
    why = "asbx is not root, so it cannot install the host firewall rules"
    results = by_name(run_checks(machine(runner, tmp_path, refs=[BASE_IMAGE], blocker=why)))
    allow = results["allowlists"]
    assert allow.status is Status.WARN
    assert allow.detail == f"`network: {{allow: ...}}` is refused: {why}"
    assert allow.fix is not None
    assert "iptables" in allow.fix
    assert "network: deny or open" in allow.fix
    assert passed(results.values()), "deny and open sandboxes still work: a warning, not a failure"


def test_allowlists_are_a_podman_matter(tmp_path: Path) -> None:
    found = Found(runtime=None)
    assert check_allowlists(machine(ScriptedRunner(), tmp_path), found).status is Status.SKIP


def test_home_not_writable_fails(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    m = machine(ScriptedRunner(), tmp_path)
    m.home = blocker / "home"
    result = check_home(m, Found())
    assert result.status is Status.FAIL
    assert result.detail == f"{blocker} is not a directory"
    assert result.fix == "set ASBX_HOME (or --home) to a writable directory"


def test_low_disk_space_warns(tmp_path: Path) -> None:
    result = check_disk(machine(ScriptedRunner(), tmp_path, free=300 * 1024**2), Found())
    assert result.status is Status.WARN
    assert result.detail == f"0.3 GiB free under {tmp_path} (less than 1 GiB)"
    assert passed([result])


def test_a_healthy_docker_is_probed_the_same_way(tmp_path: Path) -> None:
    docker = Path(__file__).parents[2] / "fixtures" / "runtime" / "docker"
    runner = ScriptedRunner()
    runner.on("--version", stdout="Docker version 20.10.24+dfsg1, build 297e128\n")
    runner.on("version", stdout=(docker / "version.json").read_text())
    runner.on("image", "ls", stdout="sha256:" + "a" * 64 + "\n")
    runner.on("image", "inspect", stdout=json.dumps([{"Id": "sha256:" + "a" * 64,
                                                      "RepoTags": [BASE_IMAGE]}]))
    runner.on("run", stdout="c0ffee\n")
    runner.on("network", "inspect", stdout=json.dumps([{"Name": "n", "Internal": True}]))
    results = by_name(run_checks(machine(runner, tmp_path, requested="docker")))
    assert results["service"].detail == "the Docker daemon answers (version 20.10.24+dfsg1)"
    assert results["containers"].status is Status.OK
    assert results["network"] == CheckResult("network", Status.OK,
                                             "a container ran on an --internal network")
    argvs = [list(a[1:]) for a in runner.argvs()]
    assert ["network", "create", "--internal", "--label", "dev.asbx.doctor=t0k3n",
            "asbx-doctor-t0k3n"] in argvs
    assert argvs[-1] == ["network", "rm", "asbx-doctor-t0k3n"]


def test_apple_with_its_service_stopped_says_how_to_start_it(tmp_path: Path) -> None:
    runner = ScriptedRunner()
    runner.on("--version", stdout="container CLI version 1.2.2 (build: release)\n")
    runner.on("system", "status", returncode=1, stderr="Error: apiserver is not running\n")
    m = machine(runner, tmp_path, requested="apple",
                which={"container": "/usr/local/bin/container"})
    results = by_name(run_checks(m))
    assert results["runtime"].detail == ("container CLI version 1.2.2 (build: release) "
                                         "(/usr/local/bin/container)")
    assert results["service"] == CheckResult(
        "service", Status.FAIL, "Apple container's system service is not running",
        "run: container system start --enable-kernel-install")
    assert results["containers"].status is Status.SKIP
