"""Secret files on real podman: left out of a seeded /workspace unless included, said in the
plan and by apply, and `snapshot export` warns about an archive that holds them."""

from __future__ import annotations

import pytest

from tests.integration.conftest import Project

pytestmark = pytest.mark.integration

SPEC = """
version: 1
name: NAME
sandboxes:
  web:
    image: localhost/asbx/busybox:latest
    workspace: {from: ./src}
  keys:
    image: localhost/asbx/busybox:latest
    workspace: {from: ./src, include: [.env]}
snapshots:
  keyed: {sandbox: keys}
"""


def test_secret_files_stay_out_unless_included_and_export_warns(project: Project) -> None:
    src = project.root / "src"
    (src / "deploy").mkdir(parents=True)
    (src / "app.py").write_text("print('hi')\n")
    (src / ".env").write_text("TOKEN=secret\n")
    (src / ".env.example").write_text("TOKEN=\n")
    (src / "deploy" / "id_ed25519").write_text("key\n")
    project.write(SPEC)

    planned = project.asbx("plan").stdout
    assert ("# left out 2 secret files of the workspace source: .env, deploy/id_ed25519 "
            "(list them under workspace.include to copy them)") in planned
    assert "# left out 1 secret file of the workspace source: deploy/id_ed25519" in planned

    applied = project.asbx("apply", "-y", check=True)
    assert "left out 2 secret files" in applied.stdout + applied.stderr
    web = project.podman("exec", f"{project.name}-web", "ls", "-A", "/workspace",
                         "/workspace/deploy")
    assert web.stdout.split() == ["/workspace:", ".env.example", "app.py", "deploy",
                                  "/workspace/deploy:"]
    keys = project.podman("exec", f"{project.name}-keys", "cat", "/workspace/.env")
    assert keys.stdout == "TOKEN=secret\n"

    exported = project.asbx("snapshot", "export", "keyed", str(project.root / "keyed.tar.zst"),
                            check=True)
    assert "warning:" in exported.stderr
    assert "holds 1 file(s) that look like secrets: .env" in exported.stderr
