"""Per-kind apply steps: one Change phase -> runtime calls -> one state record."""

from __future__ import annotations

import contextlib
import dataclasses
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from asbx import project as naming
from asbx.addresses import Address, ResourceKind
from asbx.apply.batching import Removals
from asbx.data.setup_log import (
    SetupRun,
    SetupStepRun,
    bounded,
    setup_log_path,
    write_setup_log,
)
from asbx.data.workspaces import limits_note, write_limits_note
from asbx.errors import AsbxError, NameConflictError, NotFoundError
from asbx.images import listed_digest, local_only, normalise_ref, pin_reference
from asbx.plan.hashing import HASH_VERSION
from asbx.plan.model import LIMITS_VERB, Action, Change
from asbx.runtime.base import (
    LABEL_ADDRESS,
    LABEL_HASH,
    LABEL_HASH_VERSION,
    LABEL_PRIVILEGES,
    LABEL_PROJECT,
    LABEL_SALT,
    BuildRequest,
    ContainerRequest,
    ContainerState,
    ExecResult,
    MountRequest,
    ObservedImage,
    PortRequest,
    Runtime,
)
from asbx.spec import capabilities, commands
from asbx.spec.dockerfile import rewrite_from
from asbx.spec.loader import LoadedSpec
from asbx.spec.model import ImageSpec, SandboxSpec, SnapshotSpec, VolumeSpec
from asbx.state.records import ResourceRecord, SnapshotOutputs
from asbx.state.store import StateStore

OutputFn = Callable[[str, str], None]


class SetupFailedError(AsbxError):
    """A sandbox's setup step exited non-zero; the sandbox is recorded as tainted."""


@dataclass
class StepContext:
    """What every step needs; `image_refs` is filled as images are built or pulled."""

    project: str
    loaded: LoadedSpec
    runtime: Runtime
    store: StateStore
    home: Path
    applied: Mapping[Address, Mapping[str, Any]]
    records: Mapping[Address, ResourceRecord]
    pinned: Mapping[str, str] = field(default_factory=dict)
    context_digests: Mapping[str, str] = field(default_factory=dict)
    drop_workspaces: bool = False
    drop_archives: bool = False
    egress: Any = None  # network.manager hooks, when allowlists are enabled
    secrets: Any = None  # asbx.secret_values.SecretValues: the values, read on first use
    salt: str = ""  # the project's hashing salt, labelled on what asbx creates (adoption)
    image_refs: dict[str, str] = field(default_factory=dict)
    images: tuple[ObservedImage, ...] = ()  # the images listing the plan was made against
    imports: Mapping[str, Path] = field(default_factory=dict)  # snapshot name -> file given
    removals: Removals = field(init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.removals = Removals(self.runtime, self.project)

    def labels(self, address: Address, config_hash: str) -> dict[str, str]:
        return {
            LABEL_PROJECT: self.project,
            LABEL_ADDRESS: str(address),
            LABEL_HASH: config_hash,
            LABEL_HASH_VERSION: str(HASH_VERSION),
            **({LABEL_SALT: self.salt} if self.salt else {}),
        }

    def record(self, change: Change, outputs: Mapping[str, Any], status: str = "ok") -> None:
        """Commit this change's record now (one transaction), so an interruption loses nothing."""
        fresh = change.action in (Action.CREATE, Action.REPLACE) and not change.record_only
        self.store.put(
            self.project,
            ResourceRecord(
                change.address,
                change.config_hash,
                HASH_VERSION,
                dict(self.applied.get(change.address, {})),
                dict(outputs),
                tuple(sorted(self.loaded.graph.dependencies(change.address))),
                status,
                created_at=time.time() if fresh else 0.0,
            ),
        )

    def labels_of(self, address: Address) -> dict[str, str]:
        """The labels that find this project's object for `address` in the runtime."""
        return {LABEL_PROJECT: self.project, LABEL_ADDRESS: str(address)}

    def spec_of(self, address: Address) -> Any:
        return self.loaded.graph.resources[address]


def run_create(ctx: StepContext, change: Change, out: OutputFn) -> None:
    """The create phase of a change: create/start/update/adopt, then record."""
    kind = change.address.kind
    if change.record_only:
        adopted = _adopted_outputs(ctx, change)
        ctx.record(change, adopted)
        if kind is ResourceKind.IMAGE:
            with ctx._lock:
                ctx.image_refs[change.address.name] = str(adopted.get("ref"))
        return
    if kind is ResourceKind.IMAGE:
        _create_image(ctx, change, out)
    elif kind is ResourceKind.VOLUME:
        _create_volume(ctx, change)
    elif kind is ResourceKind.SANDBOX:
        if change.action is Action.START:
            box = ctx.spec_of(change.address)
            if box.network.mode == "allow":
                _network_for(ctx, change, box)  # (re)starts its egress proxy
            ctx.runtime.start_container(naming.container_name(ctx.project, change.address.name))
            ctx.store.touch(ctx.project, change.address)  # a fresh start is not idle
            previous = ctx.records.get(change.address)
            ctx.record(
                change,
                previous.outputs
                if previous
                else {"container": naming.container_name(ctx.project, change.address.name)},
            )
        elif change.verb == LIMITS_VERB:
            _update_limits(ctx, change, out)
        else:
            _create_sandbox(ctx, change, out)
    else:
        _capture_snapshot(ctx, change)


def _update_limits(ctx: StepContext, change: Change, out: OutputFn) -> None:
    """Set the running container's cpus/memory, read them back, then record the new hash (the
    container's label keeps the one it was made with: `outputs.label_hash`)."""
    box = ctx.spec_of(change.address)
    name = naming.container_name(ctx.project, change.address.name)
    ctx.runtime.update_limits(name, box.cpus, box.memory)
    cpus, memory = ctx.runtime.container_limits(name)
    if (box.memory is not None and memory != box.memory) or (
            box.cpus is not None and (cpus is None or abs(cpus - box.cpus) > 0.001)):
        raise AsbxError(
            f"{change.address}: {ctx.runtime.name} accepted the new limits but reports "
            f"cpus={cpus} memory={memory} (wanted cpus={box.cpus} memory={box.memory})",
            hint=f"replace it instead: asbx apply --replace {change.address.name}")
    out("stdout", f"limits set in place: cpus={cpus} memory={memory}\n")
    found = ctx.runtime.list_containers(ctx.labels_of(change.address))
    if found:  # for adoption after a lost database (its label keeps the hash it was made with)
        write_limits_note(ctx.home, ctx.project, change.address.name, found[0].id,
                          change.config_hash)
    previous = ctx.records.get(change.address)
    outputs = dict(previous.outputs) if previous else {"container": name}
    outputs["label_hash"] = previous.label_hash if previous else change.config_hash
    ctx.record(change, outputs, status=previous.status if previous else "ok")


def run_destroy(ctx: StepContext, change: Change, out: OutputFn) -> None:
    """The destroy phase of a change: remove the runtime object (and the record for deletes)."""
    address = change.address
    if not change.record_only:
        _destroy_object(ctx, change)
    if change.action is Action.DELETE:
        _forget_notes(ctx, address)
        ctx.store.delete(ctx.project, address)


def _forget_notes(ctx: StepContext, address: Address) -> None:
    """A deleted sandbox's setup marker and a deleted snapshot's capture note go with it."""
    from asbx.data.recovery import snapshot_mark_path
    from asbx.data.workspaces import setup_marker

    if address.kind is ResourceKind.SANDBOX:
        setup_marker(ctx.home, ctx.project, address.name).unlink(missing_ok=True)
        limits_note(ctx.home, ctx.project, address.name).unlink(missing_ok=True)
        setup_log_path(ctx.home, ctx.project, address.name).unlink(missing_ok=True)
    elif address.kind is ResourceKind.SNAPSHOT:
        snapshot_mark_path(ctx.home, ctx.project, address.name).unlink(missing_ok=True)


def _listed_image(ctx: StepContext, ref: str) -> ObservedImage | None:
    """The image carrying `ref` in the plan's images listing, where that listing says all an
    inspect would (podman): recording it then needs no runtime call. A ref by digest is
    inspected (the runtime resolves those)."""
    if not ctx.runtime.capabilities.listing_records_images or "@" in ref:
        return None
    wanted = normalise_ref(ref)
    return next((i for i in ctx.images if wanted in {normalise_ref(n) for n in i.names}), None)


def _adopted_outputs(ctx: StepContext, change: Change) -> Mapping[str, Any]:
    previous = ctx.records.get(change.address)
    if previous is not None:
        return previous.outputs
    address = change.address
    if address.kind is ResourceKind.IMAGE:
        spec = ctx.spec_of(address)
        if spec.build is not None:
            return _adopted_build(ctx, change)
        ref = (
            pin_reference(spec.ref, ctx.pinned[address.name])
            if address.name in ctx.pinned
            else spec.ref
        )
        listed = _listed_image(ctx, ref)
        if listed is not None:
            return {"ref": ref, "image_id": listed.id, "digest": listed_digest(listed, ref),
                    "built": False}
        local = ctx.runtime.inspect_image(ref)  # its id: what sandboxes on it are checked by
        if local is None:
            return {"ref": ref, "built": False}
        return {"ref": ref, "image_id": local.id, "digest": local.digest, "built": False}
    if address.kind is ResourceKind.SANDBOX:
        from asbx.data.workspaces import workspace_path

        adopted: dict[str, Any] = {
            "container": naming.container_name(ctx.project, address.name),
            "workspace": str(workspace_path(ctx.home, ctx.project, address.name)),
            "setup": "adopted",
        }
        found = ctx.runtime.list_containers(ctx.labels_of(address))
        label = found[0].labels.get(LABEL_HASH, "") if found else ""
        if label and label != change.config_hash:  # its limits were set in place
            adopted["label_hash"] = label
        return adopted
    if address.kind is ResourceKind.VOLUME:
        return {"name": naming.volume_name(ctx.project, address.name)}
    if address.kind is ResourceKind.SNAPSHOT:
        return _adopted_snapshot(ctx, change)
    return {}


def _adopted_snapshot(ctx: StepContext, change: Change) -> Mapping[str, Any]:
    """A snapshot adopted from its host-side note: the archive it names, as the store has it."""
    from asbx.data.recovery import read_snapshot_marks
    from asbx.data.snapshots import home_store

    mark = read_snapshot_marks(ctx.home, ctx.project).get(change.address.name)
    if mark is None or mark.config_hash != change.config_hash:
        raise AsbxError(f"{change.address}: its capture note changed since the plan was made")
    info = home_store(ctx.home).info(mark.digest)
    spec = ctx.spec_of(change.address)
    return {
        "digest": info.digest,
        "size": info.size,
        "content_bytes": info.content_bytes,
        "files": info.files,
        "source": str(Address(ResourceKind.SANDBOX, spec.sandbox)),
        "source_config_hash": mark.source_config_hash,
    }


def _adopted_build(ctx: StepContext, change: Change) -> Mapping[str, Any]:
    """The outputs of a built image adopted by its labels: its tag is named by the hash."""
    tag = naming.image_tag(ctx.project, change.address.name, change.config_hash)
    image = ctx.runtime.inspect_image(tag)
    if image is None:
        raise NotFoundError(f"{change.address}: the image {tag} is gone from the runtime")
    return {
        "ref": tag,
        "image_id": image.id,
        "digest": image.digest,
        "built": True,
        "context_digest": ctx.context_digests.get(change.address.name),
    }


def image_ref(ctx: StepContext, name: str) -> str:
    """The reference of image `name`: built or pulled in this run, else as recorded."""
    with ctx._lock:
        if name in ctx.image_refs:
            return ctx.image_refs[name]
    record = ctx.records.get(Address(ResourceKind.IMAGE, name))
    if record is not None and record.outputs.get("ref"):
        return str(record.outputs["ref"])
    spec = ctx.spec_of(Address(ResourceKind.IMAGE, name))
    if isinstance(spec, ImageSpec) and spec.ref:
        return spec.ref
    raise AsbxError(f"image.{name} has not been built yet")


def _create_image(ctx: StepContext, change: Change, out: OutputFn) -> None:
    name = change.address.name
    spec = ctx.spec_of(change.address)
    assert isinstance(spec, ImageSpec)
    if spec.ref is not None and name in ctx.pinned and local_only(spec.ref):
        image = _locked_local_image(ctx, name, spec.ref, ctx.pinned[name])
        outputs = {"ref": image.id, "image_id": image.id, "digest": ctx.pinned[name],
                   "built": False}
    elif spec.ref is not None:
        ref = pin_reference(spec.ref, ctx.pinned[name]) if name in ctx.pinned else spec.ref
        image = ctx.runtime.pull(ref, spec.platform, on_output=out)
        outputs = {"ref": ref, "image_id": image.id, "digest": image.digest, "built": False}
    else:
        tag = naming.image_tag(ctx.project, name, change.config_hash)
        image = _build(ctx, change, spec, tag, out)
        outputs = {
            "ref": tag,
            "image_id": image.id,
            "digest": image.digest,
            "built": True,
            "context_digest": ctx.context_digests.get(name),
        }
    with ctx._lock:
        ctx.image_refs[name] = str(outputs["ref"])
    ctx.record(change, outputs)


def _locked_local_image(ctx: StepContext, name: str, ref: str, digest: str) -> ObservedImage:
    """The local image a lock pinned a `localhost/` reference to, found by that digest among
    this machine's images: no registry serves it, so it is used by its local id, never pulled."""
    image = ctx.runtime.inspect_image(pin_reference(ref, digest))
    if image is None:
        raise AsbxError(
            f"image.{name}: {ref} is locked to the local digest {digest}, and no image on this "
            "machine has it (no registry serves localhost/ images, so it cannot be pulled)",
            hint=f"build or load that very image again, or run `asbx lock` to pin the {ref} "
                 "this machine has",
        )
    return image


def _build(ctx: StepContext, change: Change, spec: ImageSpec, tag: str, out: OutputFn) -> Any:
    assert spec.build is not None
    context = ctx.loaded.resolve(spec.build.context)
    text = ctx.loaded.dockerfiles.get(change.address.name, "")
    bases = {
        d.name: image_ref(ctx, d.name)
        for d in ctx.loaded.graph.dependencies(change.address)
        if d.kind is ResourceKind.IMAGE
    }
    labels = {**spec.labels, **ctx.labels(change.address, change.config_hash)}
    with tempfile.TemporaryDirectory(prefix="asbx-build-") as scratch:
        dockerfile = Path(scratch) / "Dockerfile"
        dockerfile.write_text(rewrite_from(text, bases, spec.build.args), encoding="utf-8")
        request = BuildRequest(
            context=context,
            dockerfile=dockerfile,
            tags=(tag,),
            args=dict(spec.build.args),
            target=spec.build.target,
            labels=labels,
            platform=spec.platform,
        )
        return ctx.runtime.build(request, on_output=out)


def _create_volume(ctx: StepContext, change: Change) -> None:
    spec = ctx.spec_of(change.address)
    assert isinstance(spec, VolumeSpec)
    name = naming.volume_name(ctx.project, change.address.name)
    labels = {**spec.labels, **ctx.labels(change.address, change.config_hash)}
    ctx.runtime.create_volume(name, labels, spec.size)
    ctx.record(change, {"name": name})


def _create_sandbox(ctx: StepContext, change: Change, out: OutputFn) -> None:
    from asbx.data.workspaces import workspace_path

    name = change.address.name
    box = ctx.spec_of(change.address)
    assert isinstance(box, SandboxSpec)
    workspace = workspace_path(ctx.home, ctx.project, name)
    previous = ctx.records.get(change.address)
    if workspace.exists() and previous is not None:
        # A kept workspace still holds what was restored into it: keep saying which snapshot.
        restored = str(previous.outputs.get("restored_digest") or "")
    else:
        restored = _prepare_workspace(ctx, box, workspace, out)
    container = naming.container_name(ctx.project, name)
    network, extra_env = _network_for(ctx, change, box)
    dns = NO_DNS if box.network.mode == "allow" else ()
    request = ContainerRequest(
        name=container,
        image=image_ref(ctx, ctx.loaded.graph.image_of(name).name),
        command=box.effective_command,
        labels={**box.labels, **ctx.labels(change.address, change.config_hash),
                LABEL_PRIVILEGES: capabilities.PROFILE},
        env={**box.env, **extra_env},
        workdir=box.workdir,
        user=box.user,
        cpus=box.cpus,
        memory=box.memory,
        mounts=_mounts(ctx, box, workspace),
        network=network,
        ports=tuple(PortRequest(p.host_ip, p.host, p.container, p.protocol) for p in box.ports),
        hostname=name,
        dns=dns,
        start=True,
        capabilities=capabilities.effective(box.cap_add or ()),
    )
    outputs: dict[str, Any] = {
        "container": container,
        "workspace": str(workspace),
        "restored_digest": restored,
    }
    if box.setup:  # until setup is done, a crash must leave a sandbox the next plan replaces,
        # never one it adopts by its labels with setup silently skipped
        ctx.record(change, {**outputs, "setup": "pending"}, status="tainted")
    outputs["container_id"] = _create_container(ctx, change, request)
    try:
        _run_setup(ctx, SetupTarget(name, container, outputs["container_id"]), box, out)
    except SetupFailedError:
        ctx.record(change, {**outputs, "setup": "failed"}, status="tainted")
        raise
    if box.setup:
        from asbx.data.workspaces import write_setup_marker

        write_setup_marker(ctx.home, ctx.project, name, outputs["container_id"])
    ctx.record(change, {**outputs, "setup": "done" if box.setup else "none"})


def _create_container(ctx: StepContext, change: Change, request: ContainerRequest) -> str:
    """Create and start the container; if its name is taken (a `podman run` of an apply that
    was killed can finish after the next apply observed the runtime), treat that as drift:
    adopt the container when it carries every label this one would (address, config hash,
    privileges...), else remove it and create."""
    try:
        return ctx.runtime.create_container(request)
    except NameConflictError:
        pass
    found = next((c for c in ctx.runtime.list_containers({LABEL_PROJECT: ctx.project})
                  if c.name == request.name), None)
    if found is not None and all(found.labels.get(k) == v for k, v in request.labels.items()):
        if found.state is not ContainerState.RUNNING:
            ctx.runtime.start_container(request.name)
        return found.id
    if found is not None:
        ctx.removals.containers.submit(request.name)  # verified gone
    else:  # not in the listing (e.g. only in podman's storage): remove it by name
        with contextlib.suppress(NotFoundError):
            ctx.runtime.remove_container(request.name, force=True)
    return ctx.runtime.create_container(request)


def _prepare_workspace(ctx: StepContext, box: SandboxSpec, workspace: Path,
                       out: OutputFn) -> str:
    """Create and seed the workspace unless it exists (a replacement keeps it).

    Returns the digest of the snapshot restored into it, or "".
    """
    if workspace.exists():
        return ""
    workspace.parent.mkdir(parents=True, exist_ok=True)
    spec_ws = box.workspace
    if spec_ws is not None and spec_ws.from_ is not None:
        from asbx.data.workspaces import seed_workspace
        from asbx.plan.planner import secrets_left_out

        seeded = seed_workspace(ctx.loaded.resolve(spec_ws.from_), workspace, spec_ws.ignore,
                                spec_ws.include or ())
        if seeded.skipped_secrets:
            out("stdout", secrets_left_out(seeded.skipped_secrets) + "\n")
        return ""
    if spec_ws is not None and spec_ws.snapshot is not None:
        from asbx.data.snapshots import home_store

        digest = snapshot_digest(ctx, spec_ws.snapshot)
        home_store(ctx.home).restore(digest, workspace)
        return digest
    workspace.mkdir(parents=True)
    return ""


def snapshot_digest(ctx: StepContext, name: str) -> str:
    address = Address(ResourceKind.SNAPSHOT, name)
    record = ctx.store.snapshot(ctx.project).records.get(address)
    if record is None or not record.outputs.get("digest"):
        raise AsbxError(f"snapshot.{name} has not been captured yet")
    return str(record.outputs["digest"])


def _mounts(ctx: StepContext, box: SandboxSpec, workspace: Path) -> tuple[MountRequest, ...]:
    mounts = [MountRequest("bind", str(workspace), "/workspace")]
    for mount in box.volumes:
        if mount.type == "volume":
            source = naming.volume_name(ctx.project, mount.source)
        else:
            source = str(ctx.loaded.resolve(mount.source))
        mounts.append(MountRequest(mount.type, source, mount.target, mount.readonly))
    if box.secrets and ctx.egress is not None:
        mounts.extend(ctx.egress.secret_mounts(ctx, box))
    return tuple(mounts)


# Allowlisted sandboxes get no resolver at all (`--dns none`: an empty resolv.conf), so DNS
# cannot be used as a tunnel; HTTP clients hand host names to the proxy, which checks them.
NO_DNS = ("none",)


def _network_for(ctx: StepContext, change: Change, box: SandboxSpec) -> tuple[str, dict[str, str]]:
    if box.network.mode == "deny":
        return "none", {}
    if box.network.mode == "open":
        return "default", {}
    if ctx.egress is None:
        raise AsbxError("network allowlists need the egress proxy, which is not available here")
    result: tuple[str, dict[str, str]] = ctx.egress.prepare(ctx, change, box)
    return result


@dataclass(frozen=True)
class SetupTarget:
    """The sandbox whose setup runs: its name in the spec, its container's name and id."""

    sandbox: str
    container: str
    container_id: str


def _run_setup(ctx: StepContext, target: SetupTarget, box: SandboxSpec, out: OutputFn) -> None:
    """Run each setup step in turn; the run is logged after each step (`asbx logs --setup`)."""
    if not box.setup:
        return
    name, container = target.sandbox, target.container
    run = SetupRun(name, target.container_id, _now(), len(box.setup))
    for index, step in enumerate(box.setup, start=1):
        out("stdout", f"setup {index}/{len(box.setup)}: {commands.display(step)}\n")
        result, ran = _run_setup_step(ctx, container, box, index, step, out)
        run = dataclasses.replace(run, steps=(*run.steps, ran))
        write_setup_log(ctx.home, ctx.project, run)
        if result.exit_code != 0:
            tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-15:])
            raise SetupFailedError(
                f"setup step {index} ({commands.display(step)}) exited {result.exit_code}"
                + (f":\n{tail}" if tail else ""),
                hint=f"its whole output: asbx logs {name} --setup; fix the step in "
                "sandboxes.yaml and run apply again (the sandbox is tainted and will be "
                "replaced)",
            )


def _run_setup_step(ctx: StepContext, container: str, box: SandboxSpec, index: int,
                    step: tuple[str, ...], out: OutputFn) -> tuple[ExecResult, SetupStepRun]:
    chunks: list[str] = []
    trimmed: list[bool] = []

    def tee(stream: str, text: str) -> None:
        chunks.append(text)
        if len(chunks) > 256:  # keep memory bounded on a chatty step: only the end is kept
            kept, cut = bounded("".join(chunks))
            chunks[:] = [kept]
            trimmed.append(cut)
        out(stream, text)

    started = _now()
    result = ctx.runtime.exec(container, step, workdir=box.workdir, user=box.user, on_output=tee)
    output, cut = bounded("".join(chunks) or result.stdout + result.stderr)
    return result, SetupStepRun(index, tuple(step), started, _now(), result.exit_code, output,
                                cut or any(trimmed))


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _capture_snapshot(ctx: StepContext, change: Change) -> None:
    from asbx.data.snapshots import home_store
    from asbx.data.workspaces import workspace_path

    spec = ctx.spec_of(change.address)
    assert isinstance(spec, SnapshotSpec)
    if change.verb == "import" or change.address.name in ctx.imports:
        _import_snapshot(ctx, change, spec)
        return
    if spec.sandbox is None:
        raise AsbxError(f"{change.address} has no sandbox to capture")
    info = home_store(ctx.home).capture(
        workspace_path(ctx.home, ctx.project, spec.sandbox)
    )
    source = Address(ResourceKind.SANDBOX, spec.sandbox)
    source_record = ctx.store.snapshot(ctx.project).records.get(source)  # as just applied
    outputs = SnapshotOutputs(
        info.digest, info.size, info.content_bytes, info.files, str(source),
        source_record.config_hash if source_record else "",
    )
    ctx.record(change, outputs.to_outputs())
    from asbx.data.recovery import SnapshotMark, write_snapshot_mark

    write_snapshot_mark(
        ctx.home,
        ctx.project,
        change.address.name,
        SnapshotMark(info.digest, change.config_hash, outputs.source_config_hash),
    )


def _import_snapshot(ctx: StepContext, change: Change, spec: SnapshotSpec) -> None:
    """The one way an archive becomes a snapshot's value: the file `snapshot import` was given
    (`ctx.imports`), else the spec's `archive:`; checked like any archive on the way in."""
    from asbx.data.snapshots import home_store
    from asbx.spec.loader import snapshot_archive

    name = change.address.name
    given = ctx.imports.get(name)
    if given is not None:
        file, outputs = given, SnapshotOutputs("", source=f"import {given.name}", origin="import")
    else:
        declared = snapshot_archive(ctx.loaded.directory, spec.archive or "")
        if declared is None or spec.archive is None:
            raise AsbxError(f"{change.address}: its archive {spec.archive!r} is not a file "
                            "inside the spec's directory")
        file, outputs = declared, SnapshotOutputs("", source=spec.archive, origin="archive")
    info = home_store(ctx.home).import_archive(file)
    outputs = dataclasses.replace(outputs, digest=info.digest, size=info.size,
                                  content_bytes=info.content_bytes, files=info.files)
    ctx.record(change, outputs.to_outputs())


def _destroy_object(ctx: StepContext, change: Change) -> None:
    address = change.address
    record = ctx.records.get(address)
    try:
        if address.kind is ResourceKind.SANDBOX:
            _destroy_sandbox(ctx, change)
        elif address.kind is ResourceKind.VOLUME:
            ctx.removals.volumes.submit(naming.volume_name(ctx.project, address.name))
        elif address.kind is ResourceKind.IMAGE:
            if (
                record is not None
                and record.outputs.get("built")
                and change.action is Action.DELETE
            ):
                _remove_image(ctx, str(record.outputs.get("ref")))
        elif address.kind is ResourceKind.SNAPSHOT and ctx.drop_archives and record is not None:
            _drop_archive(ctx, address, str(record.outputs.get("digest", "")))
    except NotFoundError:
        pass


def _remove_image(ctx: StepContext, ref: str) -> None:
    """Remove a built image and check the runtime no longer has it."""
    try:
        ctx.runtime.remove_image(ref)
    except NotFoundError:
        return
    if ctx.runtime.inspect_image(ref) is not None:
        raise AsbxError(f"image {ref!r} is still there after it was removed")


def _destroy_sandbox(ctx: StepContext, change: Change) -> None:
    from asbx.data.workspaces import remove_workspace, workspace_path

    name = change.address.name
    ctx.removals.containers.submit(naming.container_name(ctx.project, name))
    record = ctx.records.get(change.address)
    if (
        ctx.egress is not None
        and record is not None
        and isinstance(record.applied.get("network"), dict)
    ):
        ctx.egress.release(ctx, change)
    # A delete drops the workspace when allowed; a replace only when the plan says its data
    # goes (`--replace ADDR --allow-data-loss`: re-seeded by the create that follows).
    dropped = ctx.drop_workspaces if change.action is Action.DELETE else change.holds_data
    if dropped:
        workspace = workspace_path(ctx.home, ctx.project, name)
        if workspace.exists():
            remove_workspace(workspace)


def _drop_archive(ctx: StepContext, address: Address, digest: str) -> None:
    from asbx.data.snapshots import home_store

    if not digest:
        return
    users = [
        p
        for p in ctx.store.projects()
        for a, r in ctx.store.snapshot(p.name).records.items()
        if a.kind is ResourceKind.SNAPSHOT
        and r.outputs.get("digest") == digest
        and not (p.name == ctx.project and a == address)
    ]
    if not users:
        home_store(ctx.home).remove(digest)
