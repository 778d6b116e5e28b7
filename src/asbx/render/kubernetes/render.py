"""The whole project as manifests: volumes, sandboxes, their network and ports, in stable order."""

from __future__ import annotations

import re
from collections.abc import Mapping

from asbx.addresses import ResourceKind
from asbx.errors import AsbxError
from asbx.graph import ResourceGraph
from asbx.lockfile import Lock
from asbx.render.kubernetes import names, network, quantities, sandbox
from asbx.render.kubernetes.model import (
    VOLUME_SIZE,
    Manifest,
    Rendered,
    RenderOptions,
    RenderWarning,
    SecretNeed,
)
from asbx.spec.model import ImageSpec, Spec

REGISTRY = re.compile(r"[a-z0-9]([a-z0-9.-]*[a-z0-9])?(:\d{1,5})?(/[a-z0-9]+([._-][a-z0-9]+)*)*/?")
# Apply order: what others refer to first.
KIND_ORDER = ("ConfigMap", "PersistentVolumeClaim", "Service", "Deployment", "NetworkPolicy",
              "Sandbox")


def render(spec: Spec, graph: ResourceGraph, lock: Lock | None, options: RenderOptions,
           secret_env: Mapping[str, frozenset[str]]) -> Rendered:
    """Every manifest of the project; raises AsbxError for what cannot be rendered at all."""
    manifests: list[Manifest] = []
    warnings: list[RenderWarning] = []
    secrets: list[SecretNeed] = []
    for name, volume in spec.volumes.items():
        manifests.append(_claim(options, name, volume.size))
    for address in graph.order():
        if address.kind is not ResourceKind.SANDBOX:
            continue
        name, box = address.name, spec.sandboxes[address.name]

        def warn(code: str, message: str, name: str = name) -> None:
            warnings.append(sandbox.warning(code, name, message))

        image = _image(graph, name, lock, options)
        secret = secret_env.get(name, frozenset()) & frozenset(box.env)
        manifests.append(sandbox.sandbox_object(options, name, box, image, secret, warn))
        if secret:
            secrets.append(SecretNeed(sandbox.secret_name(options, name), tuple(sorted(secret))))
        policy = network.sandbox_policy(options, name, box)
        if policy is not None:
            manifests.append(policy)
        if box.network.mode == "allow":
            manifests += network.proxy_objects(options, name, box)
        service = sandbox.port_service(options, name, box)
        if service is not None:
            manifests.append(service)
        if any(p.host_ip not in ("127.0.0.1", "::1") for p in box.ports):
            warn("port-address", "a host address other than loopback is not mapped: the "
                                 "Service is cluster-internal (ClusterIP)")
    for name in spec.snapshots:
        warnings.append(RenderWarning("snapshot", f"snapshot.{name}", "agent-sandbox has no "
                                      "portable snapshots; not rendered"))
    manifests.sort(key=lambda m: (KIND_ORDER.index(m["kind"]), m["metadata"]["name"]))
    _refuse_clashes(manifests)
    return Rendered(tuple(manifests), tuple(warnings), tuple(secrets))


def _refuse_clashes(manifests: list[Manifest]) -> None:
    """Two objects of one kind with one name (e.g. sandbox `a-egress` and `a`'s proxy)."""
    seen: set[tuple[str, str]] = set()
    for manifest in manifests:
        key = (manifest["kind"], manifest["metadata"]["name"])
        if key in seen:
            raise AsbxError(f"two rendered {key[0]} objects would both be named {key[1]}",
                            hint="rename one of the sandboxes or volumes (names map to "
                                 "PROJECT-NAME, with _ as -)")
        seen.add(key)


def _claim(options: RenderOptions, name: str, size: int | None) -> Manifest:
    meta = names.metadata(names.object_name(options.project, name), options.namespace,
                          {**names.labels(options.project, "volume"), "dev.asbx.volume": name})
    storage = quantities.memory(size) if size is not None else VOLUME_SIZE
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": meta,
            "spec": {"accessModes": ["ReadWriteOnce"],
                     "resources": {"requests": {"storage": storage}}}}


def _image(graph: ResourceGraph, sandbox_name: str, lock: Lock | None,
           options: RenderOptions) -> str:
    """The image reference a cluster pulls: pinned by the lock's digest where it has one."""
    address = graph.image_of(sandbox_name)
    image = graph.resources[address]
    assert isinstance(image, ImageSpec)
    entry = lock.images.get(address.name) if lock is not None else None
    if image.ref is not None:
        return f"{image.ref}@{entry.digest}" if entry is not None and entry.digest else image.ref
    if entry is None or not entry.context_digest:
        raise AsbxError(f"image.{address.name} is built from a Dockerfile and is not in "
                        "sandboxes.lock, so it has no digest to reference",
                        hint="run `asbx lock`, then build and push it (see docs/kubernetes.md)")
    if not options.registry:
        raise AsbxError(f"image.{address.name} is built locally; a cluster pulls it from a "
                        "registry", hint="pass --registry REGISTRY (e.g. ghcr.io/you)")
    if not REGISTRY.fullmatch(options.registry):
        raise AsbxError(f'"{options.registry}" is not a registry (HOST[:PORT][/PATH])',
                        hint="e.g. --registry ghcr.io/acme or --registry localhost:5000")
    tag = entry.context_digest.replace(":", "-")
    return f"{options.registry.rstrip('/')}/{options.project}-{address.name}:{tag}"
