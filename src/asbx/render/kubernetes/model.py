"""Records of one Kubernetes render: its options, warnings, needed Secrets and result."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

Manifest = dict[str, Any]

PROXY_PORT = 3128
K8S_VERSION = "1.33"
SANDBOX_API = "agents.x-k8s.io/v1beta1"
WORKSPACE_SIZE = "10Gi"
VOLUME_SIZE = "1Gi"


@dataclass(frozen=True)
class RenderOptions:
    """What the command line gives the renderer."""

    project: str
    created_at: datetime
    namespace: str | None = None
    registry: str | None = None
    proxy_image: str | None = None


@dataclass(frozen=True)
class RenderWarning:
    """A spec feature that does not map (or maps only partly) onto Kubernetes."""

    code: str
    address: str
    message: str

    def line(self) -> str:
        return f"warning[{self.code}] {self.address}: {self.message}"


@dataclass(frozen=True)
class SecretNeed:
    """A Secret the sandbox's env refers to: created by the user, never rendered with values."""

    name: str
    keys: tuple[str, ...]


@dataclass(frozen=True)
class Rendered:
    """Every manifest in apply order, with what could not be mapped and what must exist."""

    manifests: tuple[Manifest, ...]
    warnings: tuple[RenderWarning, ...] = ()
    secrets: tuple[SecretNeed, ...] = field(default_factory=tuple)
