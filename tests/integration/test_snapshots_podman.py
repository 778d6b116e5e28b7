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
