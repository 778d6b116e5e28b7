"""Resource addresses: `kind.name` (image.agent, volume.cache, snapshot.deps, sandbox.web)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class ResourceKind(Enum):
    """The four kinds of resource a spec declares, in the order they are usually created."""

    IMAGE = "image"
    VOLUME = "volume"
    SANDBOX = "sandbox"
    SNAPSHOT = "snapshot"

    @property
    def section(self) -> str:
        """The spec's top-level key for this kind (`images`, `volumes`, ...)."""
        return _SECTIONS[self]


_SECTIONS = {
    ResourceKind.IMAGE: "images",
    ResourceKind.VOLUME: "volumes",
    ResourceKind.SANDBOX: "sandboxes",
    ResourceKind.SNAPSHOT: "snapshots",
}


@dataclass(frozen=True)
class Address:
    """A resource's stable identity across spec, state, runtime labels and plans."""

    kind: ResourceKind
    name: str

    def __str__(self) -> str:
        return f"{self.kind.value}.{self.name}"

    @classmethod
    def parse(cls, text: str) -> Address:
        """Parse `kind.name`; raises ValueError with a readable message."""
        kind_text, sep, name = text.partition(".")
        if not sep or not name:
            raise ValueError(f'"{text}" is not an address (expected KIND.NAME, e.g. sandbox.web)')
        try:
            kind = ResourceKind(kind_text)
        except ValueError:
            kinds = ", ".join(k.value for k in ResourceKind)
            raise ValueError(f'"{text}": unknown kind "{kind_text}" (one of {kinds})') from None
        return cls(kind, name)

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, Address):
            return NotImplemented
        return (self.kind.value, self.name) < (other.kind.value, other.name)


def image(name: str) -> Address:
    return Address(ResourceKind.IMAGE, name)


def volume(name: str) -> Address:
    return Address(ResourceKind.VOLUME, name)


def sandbox(name: str) -> Address:
    return Address(ResourceKind.SANDBOX, name)


def snapshot(name: str) -> Address:
    return Address(ResourceKind.SNAPSHOT, name)
