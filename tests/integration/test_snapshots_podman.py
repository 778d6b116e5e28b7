"""Workspaces, volumes and snapshots on real podman: restore fidelity, no data loss, digests."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from pathlib import Path

import pytest
import zstandard

from tests.integration.conftest import Project

pytestmark = pytest.mark.integration

SPEC = """
version: 1
name: NAME
volumes:
  data: {}
sandboxes:
  builder:
    image: localhost/asbx/busybox:latest
    workspace: {from: ./src, ignore: ["*.tmp"]}
    volumes: ["data:/data"]
    setup:
      - mkdir -p /workspace/bin && printf '#!/bin/sh\\necho tool\\n' > /workspace/bin/tool
      - chmod 755 /workspace/bin/tool && ln -sf bin/tool /workspace/tool-link
      - mkdir -p /workspace/.venv/bin && ln -sf /bin/busybox /workspace/.venv/bin/sh
      - echo persisted > /data/keep.txt
  worker-a:
    image: localhost/asbx/busybox:latest
    workspace: {snapshot: deps}
  worker-b:
    image: localhost/asbx/busybox:latest
    workspace: {snapshot: deps}
snapshots:
  deps: {sandbox: builder}
"""


def listing(project: Project, sandbox: str) -> str:
    script = "cd /workspace && find . | sort | while read f; do stat -c '%n %a %F' \"$f\"; done"
    return project.podman("exec", f"{project.name}-{sandbox}", "sh", "-c", script).stdout


def archives(project: Project) -> list[str]:
    folder = project.home / "snapshots" / "sha256"
    return sorted(p.name for p in folder.glob("*.tar.zst")) if folder.is_dir() else []


def test_workers_restored_from_a_snapshot_see_exactly_the_builders_workspace(
    project: Project,
) -> None:
    (project.root / "src").mkdir()
    (project.root / "src" / "README").write_text("hello\n")
    (project.root / "src" / "scratch.tmp").write_text("ignored\n")
    project.write(SPEC)
    project.asbx("apply", "-y", check=True)
    builder = listing(project, "builder")
    assert "./bin/tool 755 regular file" in builder
    assert "./tool-link 777 symbolic link" in builder
    assert "./.venv/bin/sh 777 symbolic link" in builder, "a venv-style absolute link"
    assert "scratch.tmp" not in builder
    for worker in ("worker-a", "worker-b"):
        assert listing(project, worker) == builder
        run = project.podman("exec", f"{project.name}-{worker}", "/workspace/tool-link")
        assert run.stdout == "tool\n"
        venv = project.podman("exec", f"{project.name}-{worker}", "/workspace/.venv/bin/sh", "-c",
                              "echo from the venv link")
        assert venv.stdout == "from the venv link\n"
    assert len(archives(project)) == 1

    again = project.asbx("apply", "-y", "--replace", "snapshot.deps", check=True)
    assert "Apply complete" in again.stderr + again.stdout
    assert len(archives(project)) == 1, "an unchanged workspace gives the same archive"
    (project.workspace("builder") / "README").write_text("hello, changed\n")
    project.asbx("apply", "-y", "--replace", "snapshot.deps", check=True)
    assert len(archives(project)) == 2
    plan = project.asbx("plan", check=True).stdout
    assert "outdated: snapshot.deps was retaken" in plan
    ls = json.loads(project.asbx("snapshot", "ls", "--json", check=True).stdout)
    assert ls[0]["used_by"] == ["sandbox.worker-a", "sandbox.worker-b"]


def test_volume_data_survives_replacement_and_destroy(project: Project) -> None:
    (project.root / "src").mkdir()
    project.write(SPEC)
    project.asbx("apply", "-y", check=True)
    volume = f"{project.name}-data"
    created = project.podman("volume", "inspect", "--format", "{{.CreatedAt}}", volume).stdout
    # Written after setup, by the user: setup (which runs on every container creation) cannot
    # be what puts it back.
    project.asbx("exec", "builder", "--", "sh", "-c", "echo by-hand-$$ > /data/mine.txt",
                 check=True)
    written = project.podman("exec", f"{project.name}-builder", "cat", "/data/mine.txt").stdout
    assert written.startswith("by-hand-")
    project.write(
        SPEC.replace('    volumes: ["data:/data"]', '    volumes: ["data:/data"]\n    memory: 300M')
    )
    replaced = project.asbx("apply", "-y", check=True)
    assert "1 replaced" in replaced.stdout + replaced.stderr
    keep = project.podman("exec", f"{project.name}-builder", "cat", "/data/mine.txt")
    assert keep.stdout == written
    project.asbx("destroy", "-y", check=True)
    assert project.containers() == {}
    assert project.volumes() == [volume]
    project.asbx("apply", "-y", check=True)
    keep = project.podman("exec", f"{project.name}-builder", "cat", "/data/mine.txt")
    assert keep.stdout == written
    after = project.podman("volume", "inspect", "--format", "{{.CreatedAt}}", volume).stdout
    assert after == created  # the same volume object throughout, never recreated


def test_import_refuses_a_traversal_archive_and_writes_nothing(
    project: Project, tmp_path: Path
) -> None:
    (project.root / "src").mkdir()
    project.write(SPEC)
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        info = tarfile.TarInfo("../escaped.txt")
        payload = b"gotcha\n"
        info.size = len(payload)
        tar.addfile(info, io.BytesIO(payload))
    evil = tmp_path / "evil.tar.zst"
    evil.write_bytes(zstandard.ZstdCompressor().compress(raw.getvalue()))
    result = project.asbx("snapshot", "import", str(evil), "deps")
    assert result.returncode == 1
    assert ".." in result.stderr
    assert not (project.home / "snapshots" / "escaped.txt").exists()
    assert not (tmp_path / "escaped.txt").exists()
    assert archives(project) == []


def test_export_rm_import_and_gc_round_trip(project: Project, tmp_path: Path) -> None:
    (project.root / "src").mkdir()
    (project.root / "src" / "README").write_text("v1\n")
    project.write(SPEC)
    project.asbx("apply", "-y", check=True)
    (first,) = archives(project)
    exported = tmp_path / "deps.tar.zst"
    out = project.asbx("snapshot", "export", "deps", str(exported), check=True)
    assert f"to {exported}" in out.stdout
    digest = "sha256:" + hashlib.sha256(exported.read_bytes()).hexdigest()
    assert first == digest.removeprefix("sha256:") + ".tar.zst"
    refused = project.asbx("snapshot", "export", "deps", str(exported))
    assert refused.returncode == 1, "an existing file is not overwritten without --force"

    assert project.asbx("snapshot", "rm", "deps").returncode != 0, "rm needs --force"
    removed = project.asbx("snapshot", "rm", "deps", "--force", check=True)
    assert f"removed snapshot.deps and its archive {digest}" in removed.stdout
    assert archives(project) == []
    project.asbx("snapshot", "import", str(exported), "deps", check=True)
    assert archives(project) == [first]
    assert project.asbx("plan", "--detailed-exitcode").returncode == 0, "imported = as captured"

    (project.workspace("builder") / "README").write_text("v2\n")
    project.asbx("apply", "-y", "--replace", "snapshot.deps", check=True)
    assert len(archives(project)) == 2
    listed = project.asbx("gc", check=True).stdout
    assert f"unreferenced: {digest}" in listed
    assert len(archives(project)) == 2, "gc without --delete only lists"
    project.asbx("gc", "--delete", check=True)
    assert first not in archives(project)
    assert len(archives(project)) == 1
    assert "0 unreferenced archive(s)" in project.asbx("gc", check=True).stdout


def make_archive(path: Path, files: dict[str, bytes]) -> str:
    """A .tar.zst holding `files`; returns its digest (as the snapshot store names it)."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, payload in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(payload), 0o644
            tar.addfile(info, io.BytesIO(payload))
    path.write_bytes(zstandard.ZstdCompressor().compress(raw.getvalue()))
    return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()


def snapshot_digest(project: Project, name: str) -> str:
    rows = json.loads(project.asbx("snapshot", "ls", "--json", check=True).stdout)
    return str(next(r["digest"] for r in rows if r["name"] == name))


IMPORT_SPEC = """
version: 1
name: NAME
sandboxes:
  builder:
    image: localhost/asbx/busybox:latest
    setup: ["echo SETUP > /workspace/made.txt"]
  worker:
    image: localhost/asbx/busybox:latest
    workspace: {snapshot: deps}
snapshots:
  deps: {sandbox: builder}
"""


def test_an_imported_snapshot_is_kept_until_replaced(project: Project, tmp_path: Path) -> None:
    project.write(IMPORT_SPEC)
    project.asbx("lock", check=True)  # pins the local base image: hashes must still agree
    project.asbx("apply", "-y", "--locked", check=True)
    captured = snapshot_digest(project, "deps")
    shared = tmp_path / "shared.tar.zst"
    imported = make_archive(shared, {"imported.txt": b"from a teammate\n"})

    out = project.asbx("snapshot", "import", str(shared), "deps", check=True)
    assert imported in out.stdout
    plan = project.asbx("plan", "--detailed-exitcode")
    assert plan.returncode == 0, plan.stdout
    assert "snapshot.deps: imported from shared.tar.zst" in plan.stdout
    project.asbx("apply", "-y", "--locked", check=True)
    assert snapshot_digest(project, "deps") == imported, "apply never overwrites an import"

    project.write(IMPORT_SPEC.replace("echo SETUP", "echo SETUP2"))
    planned = json.loads(project.asbx("plan", "--json", check=True).stdout)
    actions = {c["address"]: (c["action"], c["reason"]) for c in planned["changes"]}
    assert actions["sandbox.builder"][0] == "replace"
    assert actions["snapshot.deps"] == ("noop", "imported"), "nor does replacing its sandbox"
    project.asbx("apply", "-y", check=True)
    assert snapshot_digest(project, "deps") == imported

    project.asbx("apply", "-y", "--replace", "snapshot.deps", check=True)
    retaken = snapshot_digest(project, "deps")
    assert retaken not in (imported, captured)
    assert project.asbx("plan", "--detailed-exitcode").returncode == 0


ARCHIVE_SPEC = """
version: 1
name: NAME
sandboxes:
  worker:
    image: localhost/asbx/busybox:latest
    workspace: {snapshot: deps}
snapshots:
  deps: {archive: ./deps.tar.zst}
"""


def test_a_declared_archive_is_imported_and_reimported_when_it_changes(
    project: Project, tmp_path: Path
) -> None:
    first = make_archive(project.root / "deps.tar.zst", {"shared.txt": b"v1\n"})
    project.write(ARCHIVE_SPEC)
    plan = project.asbx("plan", check=True).stdout
    assert "snapshot.deps will be imported (new: from ./deps.tar.zst)" in plan
    project.asbx("apply", "-y", check=True)
    assert snapshot_digest(project, "deps") == first
    worker = f"{project.name}-worker"
    assert project.podman("exec", worker, "cat", "/workspace/shared.txt").stdout == "v1\n"
    assert project.asbx("plan", "--detailed-exitcode").returncode == 0

    second = make_archive(project.root / "deps.tar.zst", {"shared.txt": b"v2\n"})
    planned = json.loads(project.asbx("plan", "--json", check=True).stdout)
    deps = next(c for c in planned["changes"] if c["address"] == "snapshot.deps")
    assert (deps["action"], deps["verb"], deps["detail"]) == (
        "create", "import", "./deps.tar.zst changed"
    )
    project.asbx("apply", "-y", check=True)
    assert snapshot_digest(project, "deps") == second
    refused = project.asbx("snapshot", "import", str(project.root / "deps.tar.zst"), "deps")
    assert refused.returncode == 1
    assert "replace that file instead" in refused.stderr

    (tmp_path / "outside.tar.zst").write_bytes((project.root / "deps.tar.zst").read_bytes())
    project.write(ARCHIVE_SPEC.replace("./deps.tar.zst", "../outside.tar.zst"))
    invalid = project.asbx("validate")
    assert invalid.returncode == 1
    assert "is not a file inside the spec's directory" in invalid.stderr


def test_a_declared_archive_is_checked_like_an_import(project: Project) -> None:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        info = tarfile.TarInfo("../escaped.txt")
        info.size = 3
        tar.addfile(info, io.BytesIO(b"bad"))
    (project.root / "deps.tar.zst").write_bytes(zstandard.ZstdCompressor().compress(raw.getvalue()))
    project.write(ARCHIVE_SPEC)
    result = project.asbx("apply", "-y")
    assert result.returncode == 1
    assert ".." in result.stderr
    assert archives(project) == []
    assert project.containers() == {}
