"""The README's first command: scripts/quickstart applies examples/quickstart for real."""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path

import pytest

from tests.integration.conftest import REPO

pytestmark = pytest.mark.integration


def test_quickstart_applies_execs_and_ends_with_a_noop_plan(
    podman: dict[str, str], tmp_path: Path
) -> None:
    # A project name of its own: the user's `quickstart` project (same spec, default name) may be
    # running on this machine, and this test must neither adopt nor destroy it.
    name = f"qs-{uuid.uuid4().hex[:10]}"
    env = {
        **podman,
        "ASBX_HOME": str(tmp_path / "home"),
        "ASBX_PROJECT_NAME": name,
        "NO_COLOR": "1",
    }
    script = str(REPO / "scripts" / "quickstart")
    try:
        run = subprocess.run(
            [script], env=env, capture_output=True, text=True, timeout=600, check=False
        )
        assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
        out = run.stdout
        assert "asbx can run sandboxes here." in out, "asbx doctor runs first and passes"
        assert f"project {name} (podman)" in out, "asbx status names the test's own project"
        assert "Apply complete: 5 added" in out + run.stderr
        assert "hello from the quickstart image" in out
        assert "set up by asbx" in out, "the second sandbox is restored from the snapshot"
        assert out.rstrip().splitlines()[-3] == "No changes. The runtime matches sandboxes.yaml."
    finally:
        subprocess.run(
            [script, "--destroy"], env=env, capture_output=True, timeout=300, check=False
        )
    left = subprocess.run(
        ["podman", "ps", "-aq", "--filter", f"label=dev.asbx.project={name}"],
        env=podman,
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    assert left.strip() == ""
