"""Runtime objects of projects no test created, so the suite can prove it never touches them."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from dataclasses import dataclass

# Every project a test creates is named by a fixture with one of these shapes (a random suffix).
TEST_PROJECT = re.compile(r"^(it|asbxtest|qs)-[0-9a-f]{8,}$")
LABEL_PROJECT = "dev.asbx.project"


@dataclass(frozen=True, order=True)
class UserObject:
    """One runtime object of a project that no test created."""

    kind: str
    project: str
    ident: str
    state: str = ""


def _listing(args: list[str], env: dict[str, str]) -> list[dict[str, object]]:
    result = subprocess.run(
        ["podman", *args, "--format", "json"], env=env, capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        return []
    return json.loads(result.stdout or "[]") or []


def _project_of(labels: object) -> str | None:
    if not isinstance(labels, dict):
        return None
    project = labels.get(LABEL_PROJECT)
    if not isinstance(project, str) or TEST_PROJECT.match(project):
        return None
    return project


def user_objects(env: dict[str, str]) -> set[UserObject]:
    """Containers (with their state), volumes and networks of projects no test created."""
    if shutil.which("podman") is None:
        return set()
    found: set[UserObject] = set()
    for item in _listing(["ps", "-a"], env):
        project = _project_of(item.get("Labels"))
        if project:
            found.add(UserObject("container", project, str(item["Id"]), str(item.get("State"))))
    for item in _listing(["volume", "ls"], env):
        project = _project_of(item.get("Labels"))
        if project:
            found.add(UserObject("volume", project, str(item["Name"])))
    for item in _listing(["network", "ls"], env):
        project = _project_of(item.get("labels") or item.get("Labels"))
        if project:
            found.add(UserObject("network", project, str(item.get("id") or item.get("Id"))))
    return found | _firewall_chains()


def _firewall_chains() -> set[UserObject]:
    """The host firewall chains (ASBX-...) of allowlist sandboxes of projects no test created."""
    from asbx.network import firewall
    from asbx.runtime.command import SubprocessRunner

    if firewall.blocker():
        return set()
    try:
        chains = firewall.list_installed(SubprocessRunner())
    except firewall.FirewallError:
        return set()
    return {
        UserObject("firewall chain", c.project, f"{c.chain} {c.family}")
        for c in chains
        if not TEST_PROJECT.match(c.project)
    }
