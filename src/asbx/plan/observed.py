"""What the runtime holds for a project, gathered by label (one listing call per kind)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from asbx.addresses import Address
from asbx.images import normalise_ref
from asbx.runtime.base import (
    LABEL_PROJECT,
    LABEL_SALT,
    ObservedContainer,
    ObservedImage,
    ObservedVolume,
)


@dataclass(frozen=True)
class Orphan:
    """A runtime object labelled with the project that neither spec nor state knows."""

    kind: str
    name: str
    address: str


@dataclass(frozen=True)
class Leftover:
    """A piece of an allowlist sandbox's networking (its egress proxy or its firewall chain)
    that outlived what it guarded: its network is gone, or the sandbox is no longer allowlisted.
    """

    kind: str  # "egress proxy" or "firewall chain"
    sandbox: str
    name: str  # e.g. "pid 123 on 10.89.0.1:40000" or "ASBX-0123456789AB"
    reason: str

    def describe(self) -> str:
        return f"{self.kind} of sandbox.{self.sandbox} ({self.name}): {self.reason}"


@dataclass(frozen=True)
class Observed:
    containers: Mapping[Address, ObservedContainer] = field(default_factory=dict)
    images: tuple[ObservedImage, ...] = ()
    volumes: Mapping[Address, ObservedVolume] = field(default_factory=dict)
    archives: frozenset[str] = frozenset()
    unlabelled: tuple[Orphan, ...] = ()
    proxies_down: frozenset[Address] = frozenset()
    guards_down: frozenset[Address] = frozenset()  # allowlist sandboxes missing firewall rules
    leftovers: tuple[Leftover, ...] = ()
    # Sandboxes whose setup finished, by the id of the container it ran in (a host-side marker:
    # a container's labels are fixed before its setup runs, so they cannot say it finished).
    setup_done: Mapping[Address, str] = field(default_factory=dict)
    # Sandboxes whose limits were set in place: (container id, config hash it now has), from a
    # host-side note (its label keeps the hash it was made with).
    limits_set: Mapping[Address, tuple[str, str]] = field(default_factory=dict)
    # Names of the project's sandboxes that have a workspace directory on the host.
    workspaces: frozenset[str] = frozenset()
    # Snapshots' last captured archives and config hashes, from host-side notes (see
    # data/recovery.py), by snapshot name: how a lost database's snapshots are adopted.
    snapshot_marks: Mapping[str, tuple[str, str]] = field(default_factory=dict)

    def labelled_salt(self, project: str) -> str:
        """The hashing salt `project`'s objects are labelled with ("" if none says)."""
        labelled = [
            *(self.containers[a].labels for a in sorted(self.containers)),
            *(self.volumes[a].labels for a in sorted(self.volumes)),
            *(i.labels for i in self.images if i.labels.get(LABEL_PROJECT) == project),
        ]
        return next((str(labels[LABEL_SALT]) for labels in labelled if labels.get(LABEL_SALT)), "")

    def has_image(self, ref: str, image_id: str = "") -> bool:
        """Whether a local image carries `ref` (normalised) or has id `image_id`."""
        return self.find_image(ref, image_id) is not None

    def find_image(self, ref: str, image_id: str = "") -> ObservedImage | None:
        """The local image carrying `ref` (normalised) or having id `image_id`, if any."""
        wanted = normalise_ref(ref)
        for image in self.images:
            if image_id and (
                image.id == image_id or image.id.startswith(image_id.removeprefix("sha256:"))
            ):
                return image
            if wanted in (normalise_ref(n) for n in image.names):
                return image
            if "@" in wanted and image.digest and wanted.endswith(image.digest):
                return image
        return None
