"""The mapping of one sandbox onto agent-sandbox objects: images, secrets, resources,
capabilities, lifecycle, volumes, what warns, what is refused, and the CLI's files."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from asbx.cli.main import cli, run
from asbx.errors import AsbxError
from asbx.lockfile import Lock, LockEntry
from asbx.render.kubernetes.model import Rendered, RenderOptions
from asbx.render.kubernetes.render import render
from asbx.render.kubernetes.secrets import references_variable, secret_env
from asbx.render.kubernetes.validate import validate
from asbx.spec.loader import load_spec
from asbx.workflow import render_kubernetes

WHEN = datetime(2026, 1, 1, tzinfo=UTC)
DIGEST = "sha256:" + "a" * 64


def rendered(tmp_path: Path, text: str, lock: Lock | None = None, registry: str | None = None,
             environ: dict[str, str] | None = None) -> Rendered:
    (tmp_path / "sandboxes.yaml").write_text(text)
    loaded = load_spec(tmp_path / "sandboxes.yaml", environ=environ or {})
    raw = yaml.safe_load(text)
    result = render(loaded.spec, loaded.graph, lock, RenderOptions("p", WHEN, registry=registry),
                    secret_env(raw, loaded.spec))
    for manifest in result.manifests:
        validate(manifest)
    return result


def sandbox(result: Rendered, name: str = "p-box") -> dict[str, Any]:
    return next(m for m in result.manifests if m["kind"] == "Sandbox"
                and m["metadata"]["name"] == name)


def container(result: Rendered) -> dict[str, Any]:
    main: dict[str, Any] = sandbox(result)["spec"]["podTemplate"]["spec"]["containers"][0]
    return main


BUILT = """
version: 1
images: {app: {build: {context: ., inline: "FROM busybox"}}}
sandboxes: {box: {image: app}}
"""


def test_an_unlocked_build_is_refused_with_the_fix(tmp_path: Path) -> None:
    with pytest.raises(AsbxError, match=r"not in sandboxes\.lock") as caught:
        rendered(tmp_path, BUILT, registry="reg.example.com")
    assert caught.value.hint is not None
    assert "asbx lock" in caught.value.hint


def test_a_locked_build_needs_a_registry_and_is_named_by_its_locked_digest(
        tmp_path: Path) -> None:
    lock = Lock({"app": LockEntry(context_digest=DIGEST)})
    with pytest.raises(AsbxError, match="registry") as caught:
        rendered(tmp_path, BUILT, lock)
    assert caught.value.hint is not None
    assert "--registry" in caught.value.hint
    result = rendered(tmp_path, BUILT, lock, registry="reg.example.com/team/")
    assert container(result)["image"] == f"reg.example.com/team/p-app:sha256-{'a' * 64}"


def test_a_pulled_image_is_pinned_by_the_lock_where_it_has_a_digest(tmp_path: Path) -> None:
    spec = "version: 1\nsandboxes: {box: {image: docker.io/library/busybox:1.36}}\n"
    assert container(rendered(tmp_path, spec))["image"] == "docker.io/library/busybox:1.36"
    implicit = load_spec(tmp_path / "sandboxes.yaml", environ={}).graph.image_of("box").name
    lock = Lock({implicit: LockEntry(ref="docker.io/library/busybox:1.36", digest=DIGEST)})
    pinned = container(rendered(tmp_path, spec, lock))["image"]
    assert pinned == f"docker.io/library/busybox:1.36@{DIGEST}"


def test_resources_capabilities_user_and_lifecycle(tmp_path: Path) -> None:
    result = rendered(tmp_path, """
version: 1
sandboxes:
  box:
    image: busybox
    cpus: 0.5
    memory: 512M
    cap_add: [sys_ptrace, CAP_NET_RAW]
    user: "1000:1000"
    lifecycle: {max_lifetime: 90m, delete_workspace: true, idle_timeout: 5m, auto_delete: 1d}
""")
    main = container(result)
    assert main["resources"] == {"requests": {"cpu": "500m", "memory": "512Mi"},
                                 "limits": {"cpu": "500m", "memory": "512Mi"}}
    security = main["securityContext"]
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"] == {"drop": ["ALL"], "add": [
        "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID", "SETPCAP",
        "NET_BIND_SERVICE", "NET_RAW", "SYS_PTRACE"]}
    assert (security["runAsUser"], security["runAsGroup"]) == (1000, 1000)
    spec = sandbox(result)["spec"]
    assert (spec["shutdownTime"], spec["shutdownPolicy"]) == ("2026-01-01T01:30:00Z", "Delete")
    assert [w.code for w in result.warnings] == ["idle-timeout", "auto-delete"]


def test_setup_steps_are_init_containers_sharing_the_workspace(tmp_path: Path) -> None:
    result = rendered(tmp_path, """
version: 1
volumes: {cache: {size: 2G}}
sandboxes:
  box: {image: busybox, setup: ["echo one", [touch, /workspace/two]], volumes: ["cache:/c:ro"]}
""")
    pod = sandbox(result)["spec"]["podTemplate"]["spec"]
    assert [(c["name"], c["command"]) for c in pod["initContainers"]] == [
        ("setup-1", ["/bin/sh", "-c", "echo one"]), ("setup-2", ["touch", "/workspace/two"])]
    mounts = [{"name": "workspace", "mountPath": "/workspace"},
              {"name": "vol-0", "mountPath": "/c", "readOnly": True}]
    assert all(c["volumeMounts"] == mounts for c in [*pod["initContainers"], *pod["containers"]])
    assert pod["volumes"] == [{"name": "vol-0", "persistentVolumeClaim": {"claimName": "p-cache"}}]
    claim = next(m for m in result.manifests if m["kind"] == "PersistentVolumeClaim")
    assert claim["spec"]["resources"] == {"requests": {"storage": "2Gi"}}


def test_env_values_not_written_literally_are_secret_references(tmp_path: Path) -> None:
    (tmp_path / "box.env").write_text("FROM_FILE=x\n")
    result = rendered(tmp_path, """
version: 1
sandboxes:
  box:
    image: busybox
    env_file: box.env
    env: {LITERAL: plain, PRICE: "$$5", TOKEN: "${TOKEN}", HOSTS: "a-$HOST", PASSED: null}
""", environ={"TOKEN": "s3cret", "HOST": "h", "PASSED": "from-host"})
    env = {e["name"]: e for e in container(result)["env"]}
    assert env["LITERAL"] == {"name": "LITERAL", "value": "plain"}
    assert env["PRICE"] == {"name": "PRICE", "value": "$5"}
    for name in ("TOKEN", "HOSTS", "PASSED", "FROM_FILE"):
        assert env[name] == {"name": name, "valueFrom": {"secretKeyRef": {
            "name": "p-box-env", "key": name}}}
    assert [(s.name, s.keys) for s in result.secrets] == [
        ("p-box-env", ("FROM_FILE", "HOSTS", "PASSED", "TOKEN"))]
    text = yaml.safe_dump_all(result.manifests)
    assert "s3cret" not in text
    assert "from-host" not in text


@pytest.mark.parametrize(("text", "expected"), [
    ("plain", False), ("$$HOME", False), ("cost $5", False), ("$HOME", True),
    ("${A:-b}", True), ("x$${A}", False), ("$$$A", True),
])
def test_what_counts_as_a_variable_reference(text: str, expected: bool) -> None:
    assert references_variable(text) is expected


def test_unmappable_features_are_named_warnings(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    result = rendered(tmp_path, """
version: 1
sandboxes:
  box: {image: busybox, user: dev, volumes: ["./src:/src"], workspace: {from: ./src}}
""")
    assert [w.code for w in result.warnings] == ["bind-mount", "workspace-seed", "user-name"]
    assert all(w.address == "sandbox.box" for w in result.warnings)


def test_two_objects_with_one_name_are_refused(tmp_path: Path) -> None:
    with pytest.raises(AsbxError, match="Service objects would both be named p-a-egress"):
        rendered(tmp_path, """
version: 1
sandboxes:
  a: {image: busybox, network: {allow: [example.com]}}
  a-egress: {image: busybox, network: open, ports: ["8080:80"]}
""")


def test_cli_writes_one_file_per_object_and_removes_only_its_own_stale_files(
        tmp_path: Path) -> None:
    spec = tmp_path / "sandboxes.yaml"
    spec.write_text("version: 1\nname: p\nsandboxes:\n  a: {image: busybox}\n"
                    "  b: {image: busybox, network: open}\n")
    out = tmp_path / "k8s"
    out.mkdir()
    (out / "kustomization.yaml").write_text("resources: []\n")
    args = ["-f", str(spec), "render", "kubernetes", "-o", str(out), "--namespace", "ns"]
    assert CliRunner().invoke(cli, args, catch_exceptions=False).exit_code == 0
    assert sorted(p.name for p in out.iterdir()) == [
        "01-networkpolicy-p-a-deny.yaml", "02-sandbox-p-a.yaml", "03-sandbox-p-b.yaml",
        "kustomization.yaml"]
    written = yaml.safe_load((out / "02-sandbox-p-a.yaml").read_text())
    assert written["metadata"]["namespace"] == "ns"
    spec.write_text("version: 1\nname: p\nsandboxes:\n  b: {image: busybox, network: open}\n")
    assert CliRunner().invoke(cli, args, catch_exceptions=False).exit_code == 0
    assert sorted(p.name for p in out.iterdir()) == ["01-sandbox-p-b.yaml", "kustomization.yaml"]


def test_cli_refuses_an_unlocked_build_with_exit_1(tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "sandboxes.yaml").write_text(BUILT)
    code = run(["-f", str(tmp_path / "sandboxes.yaml"), "render", "kubernetes",
                "--registry", "reg.example.com"])
    assert code == 1
    err = capsys.readouterr().err
    assert "image.app is built from a Dockerfile and is not in sandboxes.lock" in err
    assert "asbx lock" in err


@pytest.mark.parametrize("registry", ["ghcr.io/acme team", "reg.example.com/../x", "UPPER.io"])
def test_a_registry_that_is_not_one_is_refused(tmp_path: Path, registry: str) -> None:
    lock = Lock({"app": LockEntry(context_digest=DIGEST)})
    with pytest.raises(AsbxError, match="is not a registry"):
        rendered(tmp_path, BUILT, lock, registry=registry)


def test_a_bad_namespace_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "sandboxes.yaml").write_text("version: 1\nsandboxes: {a: {image: busybox}}\n")
    code = run(["-f", str(tmp_path / "sandboxes.yaml"), "render", "kubernetes",
                "--namespace", "Not/A_Namespace"])
    assert code == 1
    err = capsys.readouterr().err
    assert "metadata.namespace: 'Not/A_Namespace' is not a DNS-1123 label" in err


def test_the_cli_does_not_write_through_a_symlink(tmp_path: Path) -> None:
    spec = tmp_path / "sandboxes.yaml"
    spec.write_text("version: 1\nname: p\nsandboxes: {a: {image: busybox, network: open}}\n")
    out, target = tmp_path / "k8s", tmp_path / "elsewhere.txt"
    out.mkdir()
    target.write_text("keep me\n")
    (out / "01-sandbox-p-a.yaml").symlink_to(target)
    code = run(["-f", str(spec), "render", "kubernetes", "-o", str(out)])
    assert code == 1
    assert target.read_text() == "keep me\n"


def test_a_variable_outside_env_is_named_because_its_value_is_inlined(tmp_path: Path) -> None:
    (tmp_path / "sandboxes.yaml").write_text("""
version: 1
sandboxes:
  box: {image: busybox, command: "serve --token ${TOKEN}", env: {A: "${A}"}}
""")
    loaded = load_spec(tmp_path / "sandboxes.yaml", environ={"TOKEN": "t", "A": "a"})
    result = render_kubernetes(loaded, RenderOptions("p", WHEN))
    assert [(w.code, w.address) for w in result.warnings] == [("interpolated", "sandbox.box")]
    assert result.warnings[0].message.startswith("sandboxes.box.command takes a variable")
