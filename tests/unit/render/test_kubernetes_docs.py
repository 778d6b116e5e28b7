"""docs/kubernetes.md's worked example is exactly what `asbx render kubernetes` renders.

The spec block in the doc is rendered through the CLI; every documented object must equal the
rendered object of its kind and name, and the documented env list the sandbox's container env.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from asbx.cli.main import cli

DOC = Path(__file__).resolve().parents[3] / "docs" / "kubernetes.md"
BLOCK = re.compile(r"<!-- k8s-example: (\w+)(?: (\S+))? -->\n```yaml\n(.*?)```", re.DOTALL)


def blocks() -> list[tuple[str, str | None, Any]]:
    return [(m[1], m[2], yaml.safe_load(m[3])) for m in BLOCK.finditer(DOC.read_text())]


def render(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[list[Any], str]:
    monkeypatch.delenv("GITHUB_TOKEN", raising=False)
    spec = next(text for kind, _, text in blocks() if kind == "spec")
    (tmp_path / "sandboxes.yaml").write_text(yaml.safe_dump(spec))
    result = CliRunner().invoke(cli, ["-f", str(tmp_path / "sandboxes.yaml"), "render",
                                      "kubernetes", "--created-at", "2026-01-01T00:00:00Z"],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return [d for d in yaml.safe_load_all(result.stdout) if d], result.stderr


def test_the_doc_shows_the_three_policies_the_service_and_the_secret() -> None:
    kinds = [(kind, spec["kind"] if kind == "object" else target)
             for kind, target, spec in blocks()]
    assert kinds.count(("object", "NetworkPolicy")) == 3
    assert ("object", "Service") in kinds
    assert ("env", "team-agent") in kinds


def test_every_documented_object_is_rendered_exactly(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    rendered, _ = render(tmp_path, monkeypatch)
    by_name = {(m["kind"], m["metadata"]["name"]): m for m in rendered}
    for kind, target, documented in blocks():
        if kind == "object":
            assert by_name[(documented["kind"], documented["metadata"]["name"])] == documented
        elif kind == "env":
            container = by_name[("Sandbox", target)]["spec"]["podTemplate"]["spec"]["containers"][0]
            assert container["env"] == documented


def test_open_sandboxes_get_no_policy_and_the_secret_value_is_nowhere(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITHUB_TOKEN", "ghp_do-not-leak")
    spec = next(text for kind, _, text in blocks() if kind == "spec")
    (tmp_path / "sandboxes.yaml").write_text(yaml.safe_dump(spec))
    result = CliRunner().invoke(cli, ["-f", str(tmp_path / "sandboxes.yaml"), "render",
                                      "kubernetes"], catch_exceptions=False)
    assert "ghp_do-not-leak" not in result.output
    policies = [d["metadata"]["name"] for d in yaml.safe_load_all(result.stdout)
                if d and d["kind"] == "NetworkPolicy"]
    assert policies == ["team-agent-allow", "team-agent-egress", "team-offline-deny"]


def test_stderr_names_what_is_not_mapped_and_the_secret_to_create(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _, stderr = render(tmp_path, monkeypatch)
    assert "warning[idle-timeout] sandbox.agent: agent-sandbox has no idle timer" in stderr
    assert ("needs Secret team-agent-env: kubectl create secret generic team-agent-env "
            "--from-literal=GITHUB_TOKEN=...") in stderr
