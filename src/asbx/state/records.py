"""What asbx stores per project and per resource (the runtime cannot hold these)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from asbx.addresses import Address


@dataclass(frozen=True)
class ProjectMeta:
    """A project's identity in the store: `serial` bumps on every write, `lineage` never changes."""

    name: str
    lineage: str
    serial: int
    salt: str
    spec_path: str = ""


@dataclass(frozen=True)
class ResourceRecord:
    """One applied resource: its config hash, the normalised spec it was applied with, and outputs.

    `applied` never holds secrets: env values are salted hashes. `outputs` carries what apply learnt
    (image id and digest, container name, workspace path, snapshot digest, setup result).
    `status` is "ok" or "tainted" (setup failed or never finished: the next plan replaces it).
    """

    address: Address
    config_hash: str
    hash_version: int
    applied: Mapping[str, Any] = field(default_factory=dict)
    outputs: Mapping[str, Any] = field(default_factory=dict)
    dependencies: tuple[Address, ...] = ()
    status: str = "ok"
    created_at: float = 0.0
    updated_at: float = 0.0

    @property
    def tainted(self) -> bool:
        return self.status == "tainted"

    @property
    def label_hash(self) -> str:
        """The config hash the runtime object's label carries: the one it was made with, which
        an in-place limits update (`outputs.label_hash`) leaves behind the recorded one."""
        return str(self.outputs.get("label_hash") or self.config_hash)


@dataclass(frozen=True)
class LockInfo:
    pid: int
    host: str
    started_at: float
    command: str


@dataclass(frozen=True)
class StateSnapshot:
    """Everything the planner needs from the store for one project, read in one go."""

    meta: ProjectMeta
    records: Mapping[Address, ResourceRecord]
    activity: Mapping[Address, float] = field(default_factory=dict)
    # Sandboxes `asbx reap` deleted (record gone, nothing done to them since): the reason.
    reaped: Mapping[Address, str] = field(default_factory=dict)


@dataclass(frozen=True)
class SnapshotOutputs:
    """A snapshot record's outputs, typed: its archive and where it came from. `origin` is
    "capture" (from `source`, a sandbox address), "import" (`asbx snapshot import`; `source`
    names the file) or "archive" (the spec's `archive:` file, `source`). An imported archive is
    the snapshot's value until the user retakes it (`--replace snapshot.NAME`)."""

    digest: str
    size: int = 0
    content_bytes: int = 0
    files: int = 0
    source: str = ""
    source_config_hash: str = ""
    origin: str = "capture"

    @property
    def imported(self) -> bool:
        return self.origin != "capture"

    def to_outputs(self) -> dict[str, Any]:
        return {
            "digest": self.digest,
            "size": self.size,
            "content_bytes": self.content_bytes,
            "files": self.files,
            "source": self.source,
            "source_config_hash": self.source_config_hash,
            "origin": self.origin,
        }

    @classmethod
    def of(cls, record: ResourceRecord) -> SnapshotOutputs:
        """The typed outputs of a snapshot record (records written before `origin` existed
        said an import by a source of "import FILE")."""
        out = record.outputs
        source = str(out.get("source", ""))
        legacy = "import" if source.startswith("import ") else "capture"
        return cls(
            digest=str(out.get("digest", "")),
            size=int(out.get("size") or 0),
            content_bytes=int(out.get("content_bytes") or 0),
            files=int(out.get("files") or 0),
            source=source,
            source_config_hash=str(out.get("source_config_hash", "")),
            origin=str(out.get("origin") or legacy),
        )
