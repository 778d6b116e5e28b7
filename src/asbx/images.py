"""Image references in the form runtimes store: `busybox` -> `docker.io/library/busybox:latest`."""

from __future__ import annotations


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
