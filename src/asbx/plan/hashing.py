"""Canonical config hashes over declared fields only, plus dependency hashes (versioned scheme)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from asbx.plan.salted import salted_hash
from asbx.spec.model import ImageSpec, SandboxSpec, SnapshotSpec, VolumeSpec
from asbx.spec.normalise import normalised_spec

HASH_VERSION = 1

# Sandbox fields that change nothing in the container: recorded in state, updated in place.
SANDBOX_IN_PLACE_FIELDS = frozenset({"lifecycle", "depends_on", "workspace", "env_file",
                                     "secret_values"})
# The salted hashes of the values of a sandbox's secrets, kept beside its declared fields: a
# new value restarts its egress proxy (which alone holds values), never the container.
SECRET_VALUES = "secret_values"  # noqa: S105 (a field name, not a secret)
# Sandbox limits: in the hash, but changed in the running container where the runtime can.
SANDBOX_LIMIT_FIELDS = frozenset({"cpus", "memory"})


def canonical_json(data: Any) -> str:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def digest(data: Any) -> str:
    return "sha256:" + hashlib.sha256(canonical_json(data).encode()).hexdigest()


def applied_form(
    spec: ImageSpec | VolumeSpec | SnapshotSpec | SandboxSpec, salt: str,
    secret_hashes: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The normalised declared fields as stored in state; env values become salted hashes;
    a sandbox with secrets also keeps the salted hashes of their values (`secret_hashes`)."""
    data = normalised_spec(spec)
    if isinstance(spec, SandboxSpec) and spec.secrets:
        data[SECRET_VALUES] = {n: (secret_hashes or {}).get(n, "") for n in sorted(spec.secrets)}
    env = data.get("env")
    if isinstance(env, dict):
        data["env"] = {k: salted_hash(salt, str(v)) for k, v in env.items()}
    if isinstance(spec, ImageSpec) and spec.build is not None:
        args = data.get("build", {}).get("args")
        if isinstance(args, dict):
            data["build"]["args"] = {k: salted_hash(salt, str(v)) for k, v in args.items()}
    return data


def image_hash(
    applied: Mapping[str, Any],
    context_digest: str | None,
    base_hashes: Mapping[str, str],
    pinned: str | None = None,
) -> str:
    return digest(
        {
            "v": HASH_VERSION,
            "kind": "image",
            "spec": applied,
            "context": context_digest,
            "bases": dict(base_hashes),
            "pinned": pinned,
        }
    )


def volume_hash(applied: Mapping[str, Any]) -> str:
    return digest({"v": HASH_VERSION, "kind": "volume", "spec": applied})


def sandbox_hash(applied: Mapping[str, Any], image: str) -> str:
    """Covers what the container is made of; in-place fields are left out."""
    declared = {k: v for k, v in applied.items() if k not in SANDBOX_IN_PLACE_FIELDS}
    return digest({"v": HASH_VERSION, "kind": "sandbox", "spec": declared, "image": image})


def snapshot_hash(applied: Mapping[str, Any], source: str) -> str:
    return digest({"v": HASH_VERSION, "kind": "snapshot", "spec": applied, "source": source})


def flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    """Dotted paths to leaf values (`env.TOKEN`, `volumes[0].target`); empty containers kept."""
    out: dict[str, Any] = {}
    if isinstance(data, Mapping) and data:
        for key, value in data.items():
            out.update(flatten(value, f"{prefix}.{key}" if prefix else str(key)))
    elif isinstance(data, list) and data:
        for index, value in enumerate(data):
            out.update(flatten(value, f"{prefix}[{index}]"))
    else:
        out[prefix] = data
    return out
