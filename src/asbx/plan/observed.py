"""What the runtime holds for a project, gathered by label (one listing call per kind)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from asbx.addresses import Address
from asbx.runtime.base import ObservedContainer, ObservedImage, ObservedVolume


@dataclass(frozen=True)
class Orphan:
    """A runtime object labelled with the project that neither spec nor state knows."""

    kind: str
    name: str
    address: str


@dataclass(frozen=True)
class Observed:
    containers: Mapping[Address, ObservedContainer] = field(default_factory=dict)
    images: tuple[ObservedImage, ...] = ()
    volumes: Mapping[Address, ObservedVolume] = field(default_factory=dict)
    archives: frozenset[str] = frozenset()
    unlabelled: tuple[Orphan, ...] = ()
    proxies_down: frozenset[Address] = frozenset()

    def has_image(self, ref: str, image_id: str = "") -> bool:
        """Whether a local image carries `ref` (normalised) or has id `image_id`."""
        wanted = normalise_ref(ref)
        for image in self.images:
            if image_id and (
                image.id == image_id or image.id.startswith(image_id.removeprefix("sha256:"))
            ):
                return True
            if wanted in (normalise_ref(n) for n in image.names):
                return True
            if "@" in wanted and image.digest and wanted.endswith(image.digest):
                return True
        return False


def normalise_ref(ref: str) -> str:
    """`busybox` -> `docker.io/library/busybox:latest`; registry hosts and digests kept."""
    name, at, digest = ref.partition("@")
    first, slash, _ = name.partition("/")
    if not slash:
        name = f"docker.io/library/{name}"
    elif "." not in first and ":" not in first and first != "localhost":
        name = f"docker.io/{name}"
    if at:
        return f"{name}@{digest}"
    last = name.rsplit("/", 1)[-1]
    if ":" not in last:
        name += ":latest"
    return name


def pin_reference(ref: str, digest: str) -> str:
    """`python:3.12` pinned to `sha256:ab..` -> `docker.io/library/python@sha256:ab..`."""
    name = normalise_ref(ref).split("@")[0]
    last = name.rsplit("/", 1)[-1]
    if ":" in last:
        name = name[: name.rfind(":")]
    return f"{name}@{digest}"
