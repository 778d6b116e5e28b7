"""Kubernetes names and the dev.asbx.* labels of rendered objects."""

from __future__ import annotations

import re

from asbx.errors import AsbxError

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def object_name(*parts: str) -> str:
    """`project-sandbox[-suffix]` as a DNS-1123 label (`_` becomes `-`); refuses a bad one."""
    name = "-".join(parts).replace("_", "-")
    if len(name) > 63 or not _DNS_LABEL.match(name):
        raise AsbxError(f'"{name}" is not a valid Kubernetes name (DNS-1123 label, at most 63)',
                        hint="choose a shorter project name with -p or `name:` in the spec")
    return name


def labels(project: str, role: str, sandbox: str | None = None) -> dict[str, str]:
    """The labels every rendered object carries (and pods are selected by)."""
    out = {"app.kubernetes.io/managed-by": "asbx", "dev.asbx.project": project,
           "dev.asbx.role": role}
    if sandbox is not None:
        out["dev.asbx.sandbox"] = sandbox
    return out


def selector(project: str, role: str, sandbox: str) -> dict[str, str]:
    """The labels that pick one sandbox's pod (or its egress proxy's)."""
    return {"dev.asbx.project": project, "dev.asbx.role": role, "dev.asbx.sandbox": sandbox}


def metadata(name: str, namespace: str | None, labels: dict[str, str]) -> dict[str, object]:
    """An object's metadata: name, then namespace when one is given, then labels."""
    meta: dict[str, object] = {"name": name}
    if namespace:
        meta["namespace"] = namespace
    meta["labels"] = labels
    return meta
