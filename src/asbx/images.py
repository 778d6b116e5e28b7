"""Image references in the form runtimes store: `busybox` -> `docker.io/library/busybox:latest`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from asbx.runtime.base import ObservedImage


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


def local_only(ref: str) -> bool:
    """Whether `ref` is in the `localhost/` namespace: how podman names images built or loaded
    on this machine, which no registry serves (so they are never pulled once locked)."""
    return normalise_ref(ref).split("/", 1)[0] == "localhost"


def repository(ref: str) -> str:
    """`host/repo` of a reference, without its tag or digest."""
    name = ref.partition("@")[0]
    head, slash, last = name.rpartition("/")
    return f"{head}{slash}{last.partition(':')[0]}"


def digests_of_repository(entries: Sequence[str], ref: str) -> list[str]:
    """The digests among `repo@digest` entries whose repository is `ref`'s."""
    wanted = repository(ref)
    found: list[str] = []
    for entry in entries:
        name, _, digest = entry.partition("@")
        matches = name == wanted or name.endswith("/" + wanted) or wanted.endswith("/" + name)
        if matches and digest and digest not in found:
            found.append(digest)
    return found


def listed_digest(image: ObservedImage, ref: str) -> str:
    """The digest an inspect of `ref` records (`oci_cli.pick_digest`), from a listed image whose
    `digest` is the listing's own `Digest` (podman: `Capabilities.listing_records_images`)."""
    return choose_digest(image.digest, digests_of_repository(image.repo_digests, ref), ref)


def choose_digest(own: str, found: Sequence[str], ref: str) -> str:
    """Of the digests `found` for `ref`'s repository: the ref's own if it names one, else the
    image's `own`, else the first (one rule for inspected and listed images)."""
    for preferred in (ref.partition("@")[2], own):
        if preferred and preferred in found:
            return preferred
    return next(iter(found), "")
