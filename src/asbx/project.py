"""Project identity: the explicit name, else the spec directory's name plus a short path hash."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from asbx.spec.values import check_name


def project_name(spec_dir: Path, declared: str | None, override: str | None = None) -> str:
    """`-p` wins, then `name:` in the spec, then `<dirname>-<6 hex of the absolute path>`."""
    if override:
        return check_name(override)
    if declared:
        return declared
    base = re.sub(r"[^a-z0-9_-]+", "-", spec_dir.name.lower()).strip("-_")[:40] or "project"
    digest = hashlib.sha256(str(spec_dir.resolve()).encode()).hexdigest()[:6]
    return f"{base}-{digest}"


def container_name(project: str, sandbox: str) -> str:
    return f"{project}-{sandbox}"


def volume_name(project: str, volume: str) -> str:
    return f"{project}-{volume}"


def image_tag(project: str, image: str, config_hash: str) -> str:
    """The tag of a built image: `localhost/<project>-<image>:<hash12>`."""
    return f"localhost/{project}-{image}:{config_hash.removeprefix('sha256:')[:12]}"


def network_name(project: str, sandbox: str) -> str:
    return f"asbx-{project}-{sandbox}"
