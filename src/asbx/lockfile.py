"""sandboxes.lock: pinned image digests and build-context digests, checked in beside the spec."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from asbx.addresses import ResourceKind
from asbx.errors import AsbxError
from asbx.graph import ResourceGraph
from asbx.spec.model import ImageSpec

LOCK_NAME = "sandboxes.lock"
LOCK_VERSION = 1


@dataclass(frozen=True)
class LockEntry:
    """One image: a pulled `ref` pinned to `digest`, or a build pinned to its `context_digest`."""

    ref: str = ""
    digest: str = ""
    context_digest: str = ""


@dataclass(frozen=True)
class Lock:
    images: Mapping[str, LockEntry] = field(default_factory=dict)

    def pinned(self) -> dict[str, str]:
        """{image name: digest} for pulled images (what plan and apply pull by digest)."""
        return {name: e.digest for name, e in self.images.items() if e.ref and e.digest}


def lock_path(spec_path: Path) -> Path:
    return spec_path.parent / LOCK_NAME


def lock_files(spec_path: Path) -> tuple[Path, Path]:
    """The files `asbx lock` writes beside the spec (the lock and its temporary): asbx's own,
    so they never count toward a build context (a lock must not invalidate itself)."""
    path = lock_path(spec_path)
    return path, _temporary(path)


def _temporary(path: Path) -> Path:
    return path.with_suffix(".lock.tmp")


def read_lock(path: Path) -> Lock | None:
    """The lock at `path`, or None if there is none; a broken lock is a clear error."""
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("lock_version") != LOCK_VERSION:
            raise ValueError(f"unsupported lock_version {data.get('lock_version')!r}")
        images = {
            str(name): LockEntry(
                str(e.get("ref", "")), str(e.get("digest", "")), str(e.get("context_digest", ""))
            )
            for name, e in data.get("images", {}).items()
        }
    except (ValueError, AttributeError, TypeError) as exc:
        raise AsbxError(
            f"{path} is not a valid lock file: {exc}", hint="regenerate it with `asbx lock`"
        ) from None
    return Lock(images)


def render_lock(lock: Lock) -> str:
    images: dict[str, Any] = {}
    for name in sorted(lock.images):
        entry = lock.images[name]
        images[name] = (
            {"ref": entry.ref, "digest": entry.digest}
            if entry.ref
            else {"context_digest": entry.context_digest}
        )
    return json.dumps({"lock_version": LOCK_VERSION, "images": images}, indent=2) + "\n"


def write_lock(path: Path, lock: Lock) -> None:
    temporary = _temporary(path)
    temporary.write_text(render_lock(lock), encoding="utf-8")
    temporary.replace(path)


def stale_entries(
    lock: Lock,
    graph: ResourceGraph,
    context_digests: Mapping[str, str],
    resolved: Mapping[str, str] | None = None,
) -> list[str]:
    """Why the lock no longer matches: one line per image (empty when it is up to date).

    `resolved` (image name -> digest the registry reports now) is given by `lock --check`;
    without it, tags are not looked up (`apply --locked` resolves nothing new).
    """
    problems: list[str] = []
    images = {
        a.name: s
        for a, s in graph.resources.items()
        if a.kind is ResourceKind.IMAGE and isinstance(s, ImageSpec)
    }
    for name, spec in images.items():
        entry = lock.images.get(name)
        if entry is None:
            problems.append(f"image.{name} is not in the lock")
        elif spec.ref is not None and entry.ref != spec.ref:
            problems.append(f"image.{name}: ref changed ({entry.ref} -> {spec.ref})")
        elif spec.ref is not None and resolved and resolved.get(name, entry.digest) != entry.digest:
            problems.append(
                f"image.{name}: {spec.ref} now resolves to {resolved[name]} (locked {entry.digest})"
            )
        elif spec.build is not None and entry.context_digest != context_digests.get(name):
            problems.append(f"image.{name}: build context changed since the lock was written")
    problems += [
        f"image.{name} is locked but no longer in the spec"
        for name in sorted(set(lock.images) - set(images))
    ]
    return problems


def new_lock(
    graph: ResourceGraph, digests: Mapping[str, str], context_digests: Mapping[str, str]
) -> Lock:
    entries: dict[str, LockEntry] = {}
    for address, spec in graph.resources.items():
        if address.kind is not ResourceKind.IMAGE or not isinstance(spec, ImageSpec):
            continue
        if spec.ref is not None:
            entries[address.name] = LockEntry(ref=spec.ref, digest=digests[address.name])
        else:
            entries[address.name] = LockEntry(context_digest=context_digests.get(address.name, ""))
    return Lock(entries)
