"""Every example renders for Kubernetes, every object validates, and the output is golden.

Each example is copied beside a sandboxes.lock that pins its built images (a fixed context
digest), loaded with an empty environment and rendered at a fixed time. Regenerate after an
intended change with `ASBX_UPDATE_GOLDEN=1 pytest <this file>`.
"""

from __future__ import annotations

import os
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest

from asbx.lockfile import Lock, LockEntry, write_lock
from asbx.render.kubernetes.model import RenderOptions
from asbx.render.kubernetes.output import stream
from asbx.spec.loader import load_spec
from asbx.workflow import render_kubernetes

ROOT = Path(__file__).resolve().parents[3]
EXAMPLES = sorted(p.name for p in (ROOT / "examples").iterdir() if (p / "sandboxes.yaml").is_file())
GOLDEN = ROOT / "tests" / "fixtures" / "kubernetes"
WHEN = datetime(2026, 1, 1, tzinfo=UTC)
CONTEXT_DIGEST = "sha256:" + "0123456789abcdef" * 4


def render_example(name: str, tmp_path: Path) -> str:
    copy = tmp_path / name
    shutil.copytree(ROOT / "examples" / name, copy)
    loaded = load_spec(copy / "sandboxes.yaml", environ={})
    built = {n: LockEntry(context_digest=CONTEXT_DIGEST)
             for n, image in loaded.spec.images.items() if image.build is not None}
    write_lock(copy / "sandboxes.lock", Lock(built))
    options = RenderOptions(name, WHEN, namespace="agents", registry="registry.example.com/team")
    rendered = render_kubernetes(loaded, options)  # raises if any object fails validation
    warnings = "".join(f"# {w.line()}\n" for w in rendered.warnings)
    secrets = "".join(f"# needs Secret {s.name}: {', '.join(s.keys)}\n" for s in rendered.secrets)
    return warnings + secrets + stream(rendered.manifests)


def test_there_are_examples() -> None:
    assert len(EXAMPLES) >= 5


@pytest.mark.parametrize("name", EXAMPLES)
def test_example_renders_as_its_golden_file(name: str, tmp_path: Path) -> None:
    text = render_example(name, tmp_path)
    golden = GOLDEN / f"{name}.yaml"
    if os.environ.get("ASBX_UPDATE_GOLDEN"):
        golden.write_text(text, encoding="utf-8")
    assert text == golden.read_text(encoding="utf-8")


@pytest.mark.parametrize("name", EXAMPLES)
def test_rendering_is_deterministic(name: str, tmp_path: Path) -> None:
    assert render_example(name, tmp_path / "a") == render_example(name, tmp_path / "b")
