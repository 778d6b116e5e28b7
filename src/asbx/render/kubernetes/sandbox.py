"""One asbx sandbox as an agent-sandbox `Sandbox`, with its published ports as a `Service`."""

from __future__ import annotations

from collections.abc import Callable

from asbx.render.kubernetes import names, network, quantities
from asbx.render.kubernetes.model import (
    SANDBOX_API,
    WORKSPACE_SIZE,
    Manifest,
    RenderOptions,
    RenderWarning,
)
from asbx.spec import capabilities
from asbx.spec.model import SandboxSpec

Warn = Callable[[str, str], None]
WORKSPACE = "workspace"


def secret_name(options: RenderOptions, sandbox: str) -> str:
    return names.object_name(options.project, sandbox, "env")


def sandbox_object(options: RenderOptions, sandbox: str, box: SandboxSpec, image: str,
                   secret: frozenset[str], warn: Warn) -> Manifest:
    """The `Sandbox` custom resource of one sandbox."""
    labels = {**{k: str(v) for k, v in box.labels.items()},
              **names.labels(options.project, "sandbox", sandbox)}
    mounts, volumes = _mounts(options, sandbox, box, warn)
    main: dict[str, object] = {"name": "sandbox", "image": image,
                               "command": list(box.effective_command), "workingDir": box.workdir}
    env = _env(options, sandbox, box, secret)
    if env:
        main["env"] = env
    main["volumeMounts"] = mounts
    main["securityContext"] = _security(box, warn)
    if box.cpus is not None or box.memory is not None:
        main["resources"] = _resources(box)
    pod: dict[str, object] = {"automountServiceAccountToken": False, "containers": [main]}
    if box.setup:
        pod["initContainers"] = [
            {**main, "name": f"setup-{index}", "command": list(step)}
            for index, step in enumerate(box.setup, 1)
        ]
    if volumes:
        pod["volumes"] = volumes
    meta = names.metadata(names.object_name(options.project, sandbox), options.namespace, labels)
    spec: dict[str, object] = {
        "podTemplate": {"metadata": {"labels": labels}, "spec": pod},
        "volumeClaimTemplates": [{"metadata": {"name": WORKSPACE}, "spec": {
            "accessModes": ["ReadWriteOnce"],
            "resources": {"requests": {"storage": WORKSPACE_SIZE}}}}],
    }
    spec.update(_lifecycle(options, box, warn))
    return {"apiVersion": SANDBOX_API, "kind": "Sandbox", "metadata": meta, "spec": spec}


def _env(options: RenderOptions, sandbox: str, box: SandboxSpec,
         secret: frozenset[str]) -> list[dict[str, object]]:
    env: list[dict[str, object]] = []
    for key in sorted(box.env):
        if key in secret:
            ref = {"name": secret_name(options, sandbox), "key": key}
            env.append({"name": key, "valueFrom": {"secretKeyRef": ref}})
        else:
            env.append({"name": key, "value": str(box.env[key])})
    if box.network.mode == "allow":
        env += [{"name": k, "value": v}
                for k, v in network.proxy_env(options, sandbox).items() if k not in box.env]
    return env


def _resources(box: SandboxSpec) -> dict[str, dict[str, str]]:
    amounts: dict[str, str] = {}
    if box.cpus is not None:
        amounts["cpu"] = quantities.cpu(box.cpus)
    if box.memory is not None:
        amounts["memory"] = quantities.memory(box.memory)
    return {"requests": dict(amounts), "limits": dict(amounts)}


def _security(box: SandboxSpec, warn: Warn) -> dict[str, object]:
    """Least privilege, as locally: drop ALL, add asbx's default set plus `cap_add`."""
    context: dict[str, object] = {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"], "add": list(capabilities.effective(box.cap_add or ()))},
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    if box.user is not None:
        uid, _, gid = box.user.partition(":")
        if uid.isdigit() and (not gid or gid.isdigit()):
            context["runAsUser"] = int(uid)
            if gid:
                context["runAsGroup"] = int(gid)
        else:
            warn("user-name", f'user "{box.user}" is a name; Kubernetes needs a numeric uid, '
                              "so the image's default user runs")
    return context


def _mounts(options: RenderOptions, sandbox: str, box: SandboxSpec,
            warn: Warn) -> tuple[list[dict[str, object]], list[dict[str, object]]]:
    mounts: list[dict[str, object]] = [{"name": WORKSPACE, "mountPath": "/workspace"}]
    volumes: list[dict[str, object]] = []
    for index, mount in enumerate(box.volumes):
        if mount.type == "bind":
            warn("bind-mount", f"host directory {mount.source} -> {mount.target} is not "
                               "mounted: a cluster node has no such directory")
            continue
        volume = f"vol-{index}"
        entry: dict[str, object] = {"name": volume, "mountPath": mount.target}
        if mount.readonly:
            entry["readOnly"] = True
        mounts.append(entry)
        claim = {"claimName": names.object_name(options.project, mount.source)}
        volumes.append({"name": volume, "persistentVolumeClaim": claim})
    if box.workspace is not None:
        source = (f"snapshot {box.workspace.snapshot}" if box.workspace.snapshot
                  else f"directory {box.workspace.from_}")
        warn("workspace-seed", f"/workspace starts empty: the {source} is not copied in "
                               "(kubectl cp it, or seed it in a setup step)")
    return mounts, volumes


def _lifecycle(options: RenderOptions, box: SandboxSpec, warn: Warn) -> dict[str, str]:
    life = box.lifecycle
    if life is None:
        return {}
    if life.idle_timeout is not None:
        warn("idle-timeout", "agent-sandbox has no idle timer; the sandbox runs until its "
                             "shutdownTime or until suspended (operatingMode: Suspended)")
    if life.auto_delete is not None:
        warn("auto-delete", "agent-sandbox has no delete-after-stopped timer; "
                            "delete the Sandbox with kubectl")
    if life.max_lifetime is None:
        return {}
    return {"shutdownTime": quantities.shutdown_time(options.created_at, life.max_lifetime),
            "shutdownPolicy": "Delete" if life.delete_workspace else "Retain"}


def port_service(options: RenderOptions, sandbox: str, box: SandboxSpec) -> Manifest | None:
    """A ClusterIP Service for the sandbox's published ports (None without ports)."""
    if not box.ports:
        return None
    meta = names.metadata(names.object_name(options.project, sandbox), options.namespace,
                          names.labels(options.project, "ports", sandbox))
    ports = [{"name": f"{p.protocol}-{p.host}", "port": p.host, "targetPort": p.container,
              "protocol": p.protocol.upper()} for p in box.ports]
    return {"apiVersion": "v1", "kind": "Service", "metadata": meta,
            "spec": {"type": "ClusterIP",
                     "selector": names.selector(options.project, "sandbox", sandbox),
                     "ports": ports}}


def warning(code: str, sandbox: str, message: str) -> RenderWarning:
    return RenderWarning(code, f"sandbox.{sandbox}", message)
