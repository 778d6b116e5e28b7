"""plan(spec, state, observed, options) -> Plan: a pure function, no runtime or file access."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from asbx.addresses import Address, ResourceKind
from asbx.graph import ResourceGraph, stable_topological_order
from asbx.images import local_only, pin_reference
from asbx.plan import hashing
from asbx.plan.model import LIMITS_VERB, Action, Change, FieldChange, Plan, PlanOptions, Reason
from asbx.plan.observed import Observed
from asbx.runtime.base import (
    LABEL_ADDRESS,
    LABEL_HASH,
    LABEL_PRIVILEGES,
    LABEL_PROJECT,
    Capabilities,
    ContainerState,
    ObservedImage,
)
from asbx.spec import capabilities, commands
from asbx.spec.model import ImageSpec, SandboxSpec, SnapshotSpec, Spec, VolumeSpec
from asbx.state.records import ResourceRecord, SnapshotOutputs, StateSnapshot

DATA_KINDS = frozenset({ResourceKind.VOLUME, ResourceKind.SNAPSHOT})


@dataclass(frozen=True)
class PlanInput:
    """Everything the planner reads. Context digests come from the data layer, not from here."""

    project: str
    spec: Spec
    graph: ResourceGraph
    state: StateSnapshot
    observed: Observed
    options: PlanOptions = field(default_factory=PlanOptions)
    capabilities: Capabilities = field(default_factory=Capabilities)
    context_digests: Mapping[str, str] = field(default_factory=dict)
    context_details: Mapping[str, str] = field(default_factory=dict)
    pinned: Mapping[str, str] = field(default_factory=dict)
    # sha256 of each declared snapshot archive file (by snapshot name), as the store names it
    archive_digests: Mapping[str, str] = field(default_factory=dict)
    spec_digest: str = ""
    runtime: str = ""
    now: float = 0.0
    allowlist_supported: bool = True
    allowlist_blocker: str = ""  # why the host cannot enforce allowlists (no root, no iptables)
    # per sandbox: the secret files seeding its workspace from `from:` would leave out
    seed_secrets: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    # per declared secret a sandbox uses: the salted hash of its value (never the value)
    secret_hashes: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Desired:
    """A resource as the spec wants it: stored form and config hash."""

    address: Address
    applied: dict[str, Any]
    config_hash: str
    image_hash: str = ""  # a sandbox's: its image's config hash, part of its own


def plan(inp: PlanInput) -> Plan:
    """Diff the spec against state and the runtime; changes in apply order (deletes reversed)."""
    desired = desired_resources(inp)
    changes: dict[Address, Change] = {}
    for address in inp.graph.order():
        changes[address] = _plan_one(inp, desired[address], changes)
    changes.update(_deletes(inp, desired))
    changes.update(_secret_notes(inp, changes))
    selected = _select(inp, changes)
    errors, warnings = _check_capabilities(inp)
    warnings += _orphan_warnings(inp, desired)
    warnings += _leftover_warnings(inp)
    ordered = _apply_order(inp, selected)
    return Plan(
        project=inp.project,
        changes=tuple(ordered),
        options=inp.options,
        errors=tuple(errors),
        warnings=tuple(warnings),
        state_serial=inp.state.meta.serial,
        state_lineage=inp.state.meta.lineage,
        spec_digest=inp.spec_digest,
        runtime=inp.runtime,
    )


def desired_resources(inp: PlanInput) -> dict[Address, Desired]:
    """Stored form and config hash of every spec resource, dependencies hashed first."""
    salt = inp.state.meta.salt
    out: dict[Address, Desired] = {}
    for address in inp.graph.order():
        spec = inp.graph.resources[address]
        applied = hashing.applied_form(spec, salt, inp.secret_hashes)
        image = (out[inp.graph.image_of(address.name)].config_hash
                 if address.kind is ResourceKind.SANDBOX else "")
        out[address] = Desired(address, applied, _hash(inp, address, spec, applied, out), image)
    return out


def _hash(
    inp: PlanInput,
    address: Address,
    spec: Any,
    applied: dict[str, Any],
    done: Mapping[Address, Desired],
) -> str:
    deps = inp.graph.dependencies(address)
    if isinstance(spec, ImageSpec):
        bases = {d.name: done[d].config_hash for d in deps if d.kind is ResourceKind.IMAGE}
        return hashing.image_hash(
            applied, inp.context_digests.get(address.name), bases, inp.pinned.get(address.name)
        )
    if isinstance(spec, VolumeSpec):
        return hashing.volume_hash(applied)
    if isinstance(spec, SandboxSpec):
        return hashing.sandbox_hash(applied, done[inp.graph.image_of(address.name)].config_hash)
    assert isinstance(spec, SnapshotSpec)
    source = next(iter(d for d in deps if d.kind is ResourceKind.SANDBOX), None)
    return hashing.snapshot_hash(applied, done[source].config_hash if source else "")


def _plan_one(inp: PlanInput, want: Desired, planned: Mapping[Address, Change]) -> Change:
    address = want.address
    record = inp.state.records.get(address)
    if inp.options.destroy:
        return Change(address, Action.NOOP, Reason.UNCHANGED)
    planner = {
        ResourceKind.IMAGE: _plan_image,
        ResourceKind.VOLUME: _plan_volume,
        ResourceKind.SANDBOX: _plan_sandbox,
        ResourceKind.SNAPSHOT: _plan_snapshot,
    }[address.kind]
    return planner(inp, want, record, planned)


def _field_changes(
    kind: ResourceKind, before: Mapping[str, Any], after: Mapping[str, Any]
) -> tuple[FieldChange, ...]:
    old, new = hashing.flatten(_as_written(before)), hashing.flatten(_as_written(after))
    out = []
    for path in sorted(old.keys() | new.keys()):
        if old.get(path) == new.get(path):
            continue
        top = path.split(".")[0].split("[")[0]
        forces = kind is not ResourceKind.SANDBOX or top not in hashing.SANDBOX_IN_PLACE_FIELDS
        sensitive = top in ("env", hashing.SECRET_VALUES) or path.startswith("build.args")
        out.append(FieldChange(path, _listed(old.get(path)), _listed(new.get(path)), forces,
                               sensitive))
    return tuple(out)


def _listed(value: Any) -> Any:
    """A command kept whole as a tuple (see `_as_written`) goes into the plan as a JSON list."""
    return list(value) if isinstance(value, tuple) else value


def _as_written(applied: Mapping[str, Any]) -> dict[str, Any]:
    """Applied fields with each command (`command`, every `setup` step) as one value the way the
    user wrote it: a string step as its line, a list step as its list, so a plan shows
    `setup[3]: "make" -> "make test"` rather than a change of an argv element."""
    data = dict(applied)
    if isinstance(data.get("command"), list | tuple):
        data["command"] = commands.as_written(data["command"])
    if isinstance(data.get("setup"), list | tuple):
        data["setup"] = [commands.as_written(step) for step in data["setup"]]
    return data


def _plan_image(
    inp: PlanInput, want: Desired, record: ResourceRecord | None, planned: Mapping[Address, Change]
) -> Change:
    spec = inp.graph.resources[want.address]
    assert isinstance(spec, ImageSpec)
    address = want.address
    verb = _image_verb(inp, address.name, spec)
    if record is None:
        if spec.build is not None and _built_image(inp, want) is not None:
            return _adopted(want, verb, "built image with this configuration found in the runtime")
        if spec.ref is not None and inp.observed.has_image(
            _pinned_ref(inp, address.name, spec.ref)
        ):
            return _adopted(want, verb, "image already present locally")
        return Change(address, Action.CREATE, Reason.NEW, verb, config_hash=want.config_hash)
    if address in inp.options.replace:
        return Change(address, Action.CREATE, Reason.REQUESTED, verb, config_hash=want.config_hash)
    same_context = record.outputs.get("context_digest") == inp.context_digests.get(address.name)
    if _upgraded_unchanged(address, record, want) and same_context:
        return _noop_or_version_bump(want, record)
    if record.config_hash != want.config_hash:
        detail = inp.context_details.get(address.name, "")
        fields = _field_changes(address.kind, record.applied, want.applied)
        if not detail and not fields and spec.build is not None:
            bases = [
                str(d)
                for d in inp.graph.dependencies(address)
                if d in planned and planned[d].action.mutates
            ]
            detail = f"base image changed: {', '.join(bases)}" if bases else "build inputs changed"
        if not detail and not fields and address.name in inp.pinned:
            detail = "pinned digest changed (sandboxes.lock)"
        return Change(
            address,
            Action.CREATE,
            Reason.SPEC_CHANGED,
            verb,
            detail,
            fields,
            config_hash=want.config_hash,
        )
    if inp.options.refresh and not _image_present(inp, record):
        return Change(address, Action.CREATE, Reason.MISSING, verb, config_hash=want.config_hash)
    if inp.options.pull and spec.ref is not None and address.name not in inp.pinned:
        return Change(
            address, Action.CREATE, Reason.REQUESTED, "pull", "--pull",
            config_hash=want.config_hash,
            notes=("if the tag moved, `apply --pull` also replaces the sandboxes on it (it pulls "
                   "before it plans)",),
        )
    return _noop_or_version_bump(want, record)


def _adopted(want: Desired, verb: str, note: str) -> Change:
    """Found in the runtime (or the snapshot store) as asbx made it, with no record: recorded
    as it is, nothing done to it."""
    return Change(want.address, Action.UPDATE, Reason.ADOPTED, verb,
                  config_hash=want.config_hash, record_only=True, notes=(note,))


def _image_verb(inp: PlanInput, name: str, spec: ImageSpec) -> str:
    """build, pull, or `local` for a locked `localhost/` image (used by its id, never pulled)."""
    if spec.build is not None:
        return "build"
    return "local" if spec.ref and name in inp.pinned and local_only(spec.ref) else "pull"


def _built_image(inp: PlanInput, want: Desired) -> ObservedImage | None:
    """A local image asbx built for this project and address with the same config hash."""
    wanted = {
        LABEL_PROJECT: inp.project,
        LABEL_ADDRESS: str(want.address),
        LABEL_HASH: want.config_hash,
    }
    return next(
        (i for i in inp.observed.images if all(i.labels.get(k) == v for k, v in wanted.items())),
        None,
    )


def _adopted_image_id(inp: PlanInput, image: Address, planned: Mapping[Address, Change]) -> str:
    """The local id of an image this plan adopts (its record is lost), "" if none or unknown."""
    change = planned.get(image)
    if change is None or change.reason is not Reason.ADOPTED:
        return ""
    spec = inp.graph.resources[image]
    assert isinstance(spec, ImageSpec)
    if spec.build is not None:
        found = _built_image(inp, Desired(image, {}, change.config_hash))
    else:
        assert spec.ref is not None
        found = inp.observed.find_image(_pinned_ref(inp, image.name, spec.ref))
    return found.id if found is not None else ""


def _pinned_ref(inp: PlanInput, name: str, ref: str) -> str:
    pinned = inp.pinned.get(name)
    return pin_reference(ref, pinned) if pinned else ref


def _image_present(inp: PlanInput, record: ResourceRecord) -> bool:
    ref = str(record.outputs.get("ref", ""))
    image_id = str(record.outputs.get("image_id", ""))
    return inp.observed.has_image(ref, image_id) if (ref or image_id) else False


def _upgraded_unchanged(address: Address, record: ResourceRecord, want: Desired) -> bool:
    """A record from an older hash scheme whose declared fields are all unchanged."""
    return record.hash_version != hashing.HASH_VERSION and not _field_changes(
        address.kind, record.applied, want.applied
    )


def _noop_or_version_bump(want: Desired, record: ResourceRecord) -> Change:
    if record.hash_version != hashing.HASH_VERSION:
        return Change(
            want.address,
            Action.UPDATE,
            Reason.UNCHANGED,
            config_hash=want.config_hash,
            record_only=True,
            notes=("hash scheme upgraded; record refreshed",),
        )
    return Change(want.address, Action.NOOP, Reason.UNCHANGED, config_hash=want.config_hash)


def _plan_volume(
    inp: PlanInput, want: Desired, record: ResourceRecord | None, planned: Mapping[Address, Change]
) -> Change:
    address = want.address
    live = inp.observed.volumes.get(address)
    if record is None:
        if live is not None:
            if live.labels.get("dev.asbx.hash") in (want.config_hash, None):
                return Change(
                    address,
                    Action.UPDATE,
                    Reason.ADOPTED,
                    config_hash=want.config_hash,
                    record_only=True,
                )
            return Change(
                address,
                Action.REPLACE,
                Reason.DRIFTED,
                config_hash=want.config_hash,
                holds_data=True,
            )
        return Change(address, Action.CREATE, Reason.NEW, config_hash=want.config_hash)
    if address in inp.options.replace:
        return Change(
            address, Action.REPLACE, Reason.REQUESTED, config_hash=want.config_hash, holds_data=True
        )
    if inp.options.refresh and live is None:
        return Change(
            address,
            Action.CREATE,
            Reason.MISSING,
            config_hash=want.config_hash,
            notes=("its data was removed outside asbx",),
        )
    if record.config_hash != want.config_hash and not _upgraded_unchanged(address, record, want):
        return Change(
            address,
            Action.REPLACE,
            Reason.SPEC_CHANGED,
            fields=_field_changes(address.kind, record.applied, want.applied),
            config_hash=want.config_hash,
            holds_data=True,
        )
    return _noop_or_version_bump(want, record)


def _plan_sandbox(
    inp: PlanInput, want: Desired, record: ResourceRecord | None, planned: Mapping[Address, Change]
) -> Change:
    address = want.address
    live = inp.observed.containers.get(address) if inp.options.refresh else None
    if record is None:
        return _adopt_sandbox(inp, want, live, planned)
    fields = _field_changes(address.kind, record.applied, want.applied)
    limits = _limits_only(want, record, fields)
    if limits and not inp.capabilities.limits_update_blocker:
        fields = tuple(dataclasses.replace(f, forces_replacement=False) for f in fields)
    in_place = limits and not inp.capabilities.limits_update_blocker
    replace = _sandbox_replace_reason(inp, want, record, planned, fields, in_place)
    outdated = _outdated_notes(inp, address, record, planned)
    notes = outdated
    if limits and replace is Reason.SPEC_CHANGED:
        notes = (*notes, "cpus/memory are not changed in place: "
                         f"{inp.capabilities.limits_update_blocker}")
    if replace is Reason.DEPENDENCY_REPLACED and _runs_an_older_image(inp, address, live, planned):
        notes = (*notes, f"runs an older image than {inp.graph.image_of(address.name)} now has"
                         " (pulled again)")
    if inp.options.refresh and live is None and replace is None:
        return Change(
            address, Action.CREATE, Reason.MISSING, config_hash=want.config_hash, notes=notes
        )
    if replace is not None:
        shown = fields if replace is Reason.SPEC_CHANGED else ()
        reseed = replace is Reason.REQUESTED and inp.options.allow_data_loss
        if replace is Reason.PRIVILEGES:
            notes = (*notes, "made with the runtime's default capabilities (NET_RAW, MKNOD, ...) "
                             "or an older asbx profile; its /workspace is kept")
        if reseed:  # asked for by name, with data loss allowed: the workspace goes too
            notes = (*(n for n in notes if n not in outdated), _reseed_note(inp, address))
        return Change(
            address,
            Action.REPLACE,
            replace,
            fields=shown,
            holds_data=reseed,
            config_hash=want.config_hash,
            notes=notes,
            limits_blocked=limits and replace is Reason.SPEC_CHANGED,
        )
    if in_place:  # the container's limits change; the rest (setup, snapshots) stays
        return Change(address, Action.UPDATE, Reason.SPEC_CHANGED, verb=LIMITS_VERB,
                      fields=fields, config_hash=want.config_hash, notes=notes)
    rotated = tuple(f for f in fields if f.path.split(".")[0] == hashing.SECRET_VALUES)
    if rotated and live is not None:  # only the proxy holds values: it restarts, not the box
        return Change(address, Action.START, Reason.SECRETS_CHANGED, fields=rotated,
                      config_hash=want.config_hash,
                      notes=(*notes, "its egress proxy restarts with the new secret values; "
                                     "the container keeps running"))
    if fields or record.hash_version != hashing.HASH_VERSION:
        return Change(
            address,
            Action.UPDATE,
            Reason.SPEC_CHANGED,
            fields=fields,
            config_hash=want.config_hash,
            record_only=True,
            notes=notes,
        )
    if live is not None and live.state is not ContainerState.RUNNING:
        return Change(
            address, Action.START, Reason.STOPPED, config_hash=want.config_hash, notes=notes
        )
    if live is not None and address in inp.observed.proxies_down:
        return Change(
            address, Action.START, Reason.PROXY_DOWN, config_hash=want.config_hash, notes=notes
        )
    if live is not None and address in inp.observed.guards_down:
        return Change(
            address, Action.START, Reason.GUARD_DOWN, config_hash=want.config_hash, notes=notes
        )
    return Change(address, Action.NOOP, Reason.UNCHANGED, config_hash=want.config_hash, notes=notes)


def _limits_only(want: Desired, record: ResourceRecord, fields: tuple[FieldChange, ...]) -> bool:
    """Only cpus/memory differ from the record (set or changed, not removed: a runtime cannot
    lift a limit in place), with the same image: the container can keep running."""
    limits = [f for f in fields if f.path in hashing.SANDBOX_LIMIT_FIELDS]
    if not limits or any(f.after is None for f in limits):
        return False
    if any(f.forces_replacement for f in fields if f.path not in hashing.SANDBOX_LIMIT_FIELDS):
        return False
    before = dict(want.applied)
    for change in limits:
        if change.path in record.applied:
            before[change.path] = record.applied[change.path]
        else:
            before.pop(change.path, None)
    return record.hash_version == hashing.HASH_VERSION and (
        hashing.sandbox_hash(before, want.image_hash) == record.config_hash)


def _adopt_sandbox(
    inp: PlanInput, want: Desired, live: Any, planned: Mapping[Address, Change]
) -> Change:
    if live is None and want.address in inp.state.reaped:
        return Change(want.address, Action.CREATE, Reason.REAPED, config_hash=want.config_hash,
                      notes=(f"deleted by asbx reap: {inp.state.reaped[want.address]}",))
    if live is None:
        return Change(want.address, Action.CREATE, Reason.NEW, config_hash=want.config_hash)
    if live.labels.get("dev.asbx.hash") != want.config_hash and not _limits_set_to(
            inp, want, live.id):
        return Change(
            want.address,
            Action.REPLACE,
            Reason.DRIFTED,
            config_hash=want.config_hash,
            notes=("found in runtime with a different configuration",),
        )
    image = inp.graph.image_of(want.address.name)
    image_id = _adopted_image_id(inp, image, planned)
    if inp.capabilities.container_image_ids and image_id and live.image_id not in ("", image_id):
        return Change(
            want.address,
            Action.REPLACE,
            Reason.DEPENDENCY_REPLACED,
            config_hash=want.config_hash,
            notes=(f"found in runtime, but it runs another image than {image} now is",),
        )
    box = inp.graph.resources[want.address]
    assert isinstance(box, SandboxSpec)
    if box.setup and not _setup_finished(inp, want.address, live.id):
        return Change(
            want.address,
            Action.REPLACE,
            Reason.TAINTED,
            config_hash=want.config_hash,
            notes=("found in runtime, but nothing says its setup finished in it",),
        )
    start = live.state is not ContainerState.RUNNING
    return Change(
        want.address,
        Action.START if start else Action.UPDATE,
        Reason.ADOPTED,
        config_hash=want.config_hash,
        record_only=not start,
        notes=("adopted from the runtime (state had no record)",),
    )


def _limits_set_to(inp: PlanInput, want: Desired, container_id: str) -> bool:
    """An in-place limits update gave this very container the hash the spec gives now."""
    note = inp.observed.limits_set.get(want.address)
    return note is not None and bool(container_id) and note == (container_id, want.config_hash)


def _setup_finished(inp: PlanInput, address: Address, container_id: str) -> bool:
    done = inp.observed.setup_done.get(address, "")
    return bool(done and container_id) and (
        done.startswith(container_id) or container_id.startswith(done)
    )


def _sandbox_replace_reason(
    inp: PlanInput,
    want: Desired,
    record: ResourceRecord,
    planned: Mapping[Address, Change],
    fields: tuple[FieldChange, ...],
    limits_in_place: bool = False,
) -> Reason | None:
    address = want.address
    live = inp.observed.containers.get(address) if inp.options.refresh else None
    if address in inp.options.replace:
        return Reason.REQUESTED
    if record.tainted:
        return Reason.TAINTED
    if live is not None and live.labels.get("dev.asbx.hash") != record.label_hash:
        return Reason.DRIFTED
    if live is not None and _outdated_privileges(inp, live):
        return Reason.PRIVILEGES
    if record.config_hash != want.config_hash and not limits_in_place:
        if record.hash_version != hashing.HASH_VERSION:
            return Reason.SPEC_CHANGED if any(f.forces_replacement for f in fields) else None
        if any(f.forces_replacement for f in fields):
            return Reason.SPEC_CHANGED
        return Reason.DEPENDENCY_REPLACED
    for dep in inp.graph.dependencies(address):
        if (
            dep.kind is ResourceKind.VOLUME
            and planned.get(dep)
            and planned[dep].action is Action.REPLACE
        ):
            return Reason.DEPENDENCY_REPLACED
    if _runs_an_older_image(inp, address, live, planned):
        return Reason.DEPENDENCY_REPLACED
    lifecycle = inp.graph.resources[address]
    assert isinstance(lifecycle, SandboxSpec)
    if (
        lifecycle.lifecycle
        and lifecycle.lifecycle.max_lifetime
        and inp.now
        and record.created_at + lifecycle.lifecycle.max_lifetime < inp.now
    ):
        return Reason.EXPIRED
    return None


def _outdated_privileges(inp: PlanInput, live: Any) -> bool:
    """The container was made with another capability profile than asbx's current one (or
    before asbx set one: the runtime's defaults, with NET_RAW and MKNOD)."""
    return (inp.capabilities.sets_capabilities
            and live.labels.get(LABEL_PRIVILEGES) != capabilities.PROFILE)


def _runs_an_older_image(
    inp: PlanInput, address: Address, live: Any, planned: Mapping[Address, Change]
) -> bool:
    """The container runs another image than its image resource now has (`apply --pull`
    fetched a newer one for the tag): it must be replaced to run the new one."""
    if live is None:
        return False
    image = inp.graph.image_of(address.name)
    record = inp.state.records.get(image)
    pending = planned.get(image)
    if not inp.capabilities.container_image_ids or record is None or (
        pending is not None and pending.action.mutates  # its new id is known after the pull
    ):
        return False
    current = str(record.outputs.get("image_id") or "")
    return bool(current and live.image_id) and live.image_id != current


def _secret_notes(inp: PlanInput, changes: Mapping[Address, Change]) -> dict[Address, Change]:
    """Sandboxes whose workspace this plan seeds from `from:` say which secret files stay out."""
    out = {}
    for name, skipped in inp.seed_secrets.items():
        address = Address(ResourceKind.SANDBOX, name)
        change = changes.get(address)
        if change is None or not skipped:
            continue
        created = change.action is Action.CREATE and name not in inp.observed.workspaces
        if created or (change.action is Action.REPLACE and change.holds_data):
            out[address] = dataclasses.replace(
                change, notes=(*change.notes, secrets_left_out(skipped)))
    return out


def secrets_left_out(paths: tuple[str, ...], limit: int = 5) -> str:
    """What plan and apply say about the secret files a seeding leaves out."""
    shown = ", ".join(paths[:limit]) + (f" and {len(paths) - limit} more"
                                        if len(paths) > limit else "")
    return (f"left out {len(paths)} secret file{'s' if len(paths) != 1 else ''} of the workspace"
            f" source: {shown} (list them under workspace.include to copy them)")


def _reseed_note(inp: PlanInput, address: Address) -> str:
    """The one data note of `--replace sandbox.X --allow-data-loss`: where /workspace comes from."""
    box = inp.graph.resources[address]
    assert isinstance(box, SandboxSpec)
    workspace = box.workspace
    source = workspace and (f"snapshot.{workspace.snapshot}" if workspace.snapshot
                            else workspace.from_)
    seeded = f"seeded again from {source}" if source else "created again, empty"
    return f"its workspace is removed and {seeded} (--allow-data-loss)"


def _outdated_notes(
    inp: PlanInput, address: Address, record: ResourceRecord, planned: Mapping[Address, Change]
) -> tuple[str, ...]:
    box = inp.graph.resources[address]
    assert isinstance(box, SandboxSpec)
    if not (box.workspace and box.workspace.snapshot):
        return ()
    snap = Address(ResourceKind.SNAPSHOT, box.workspace.snapshot)
    restored = record.outputs.get("restored_digest")
    snap_record = inp.state.records.get(snap)
    retaken = snap in planned and planned[snap].action is Action.CREATE
    if retaken or (snap_record and restored and snap_record.outputs.get("digest") != restored):
        return (
            f"outdated: {snap} was retaken; the workspace keeps its data "
            f"(--replace {address} --allow-data-loss to re-seed)",
        )
    return ()


def _plan_snapshot(
    inp: PlanInput, want: Desired, record: ResourceRecord | None, planned: Mapping[Address, Change]
) -> Change:
    address = want.address
    spec = inp.graph.resources[address]
    assert isinstance(spec, SnapshotSpec)
    verb = "import" if spec.archive is not None else "capture"
    source_note = f"from {spec.archive}" if spec.archive is not None else ""
    if record is None:
        adopted = _adopted_capture(inp, want, planned) if spec.archive is None else None
        return adopted or Change(address, Action.CREATE, Reason.NEW, verb, source_note,
                                 config_hash=want.config_hash)
    if address in inp.options.replace:
        return Change(address, Action.CREATE, Reason.REQUESTED, verb, source_note,
                      config_hash=want.config_hash)
    outputs = SnapshotOutputs.of(record)
    missing = inp.options.refresh and outputs.digest not in inp.observed.archives
    if spec.archive is not None:
        return _plan_declared_archive(inp, want, spec.archive, outputs, missing)
    if outputs.origin == "import":
        return _plan_imported(want, outputs, missing)
    return _plan_capture(inp, want, record, planned, outputs, missing)


def _plan_declared_archive(
    inp: PlanInput, want: Desired, archive: str, outputs: SnapshotOutputs, missing: bool
) -> Change:
    """A snapshot the spec imports from a file: imported again when the file changes."""
    address = want.address
    if outputs.digest != inp.archive_digests.get(address.name):
        return Change(address, Action.CREATE, Reason.SPEC_CHANGED, "import",
                      f"{archive} changed" if outputs.source == archive else f"from {archive}",
                      config_hash=want.config_hash)
    if missing:
        return Change(address, Action.CREATE, Reason.MISSING, "import",
                      "its archive is missing from the snapshot store",
                      config_hash=want.config_hash)
    return _imported_noop(want, outputs)


def _plan_imported(want: Desired, outputs: SnapshotOutputs, missing: bool) -> Change:
    """A snapshot `asbx snapshot import` filled: its value until `--replace` retakes it."""
    if missing:
        return Change(want.address, Action.CREATE, Reason.MISSING, "capture",
                      "its imported archive is missing from the snapshot store",
                      config_hash=want.config_hash)
    return _imported_noop(want, outputs)


def _imported_noop(want: Desired, outputs: SnapshotOutputs) -> Change:
    source = outputs.source.removeprefix("import ")
    return Change(
        want.address, Action.NOOP, Reason.IMPORTED, "", source,
        config_hash=want.config_hash,
        notes=(f"imported from {source}; kept until `--replace {want.address}` retakes it",),
    )


def _plan_capture(
    inp: PlanInput,
    want: Desired,
    record: ResourceRecord,
    planned: Mapping[Address, Change],
    outputs: SnapshotOutputs,
    missing: bool,
) -> Change:
    address = want.address
    source = _recreated_source(inp, address, planned)
    if source is not None:
        return Change(
            address,
            Action.CREATE,
            Reason.DEPENDENCY_REPLACED,
            "capture",
            f"{source} is recreated",
            config_hash=want.config_hash,
        )
    if _source_limits_only(inp, want, record, planned):  # the same workspace: not retaken
        return Change(address, Action.UPDATE, Reason.SPEC_CHANGED,
                      config_hash=want.config_hash, record_only=True,
                      notes=("its sandbox's limits change in place: not captured again",))
    if record.config_hash != want.config_hash and not _upgraded_unchanged(address, record, want):
        return Change(
            address,
            Action.CREATE,
            Reason.SPEC_CHANGED,
            "capture",
            fields=_field_changes(address.kind, record.applied, want.applied),
            config_hash=want.config_hash,
        )
    if missing and outputs.digest:
        return Change(
            address,
            Action.CREATE,
            Reason.MISSING,
            "capture",
            "its archive is missing from the snapshot store",
            config_hash=want.config_hash,
        )
    return _noop_or_version_bump(want, record)


def _source_limits_only(
    inp: PlanInput, want: Desired, record: ResourceRecord, planned: Mapping[Address, Change]
) -> bool:
    """The hash differs only because its source sandbox's limits are set in place."""
    source = next((d for d in inp.graph.dependencies(want.address)
                   if d.kind is ResourceKind.SANDBOX), None)
    change = planned.get(source) if source else None
    old = inp.state.records.get(source) if source else None
    return (change is not None and change.verb == LIMITS_VERB and old is not None
            and record.config_hash != want.config_hash
            and hashing.snapshot_hash(want.applied, old.config_hash) == record.config_hash)


def _recreated_source(
    inp: PlanInput, address: Address, planned: Mapping[Address, Change]
) -> Address | None:
    """The sandbox a snapshot is captured from, when this plan recreates it."""
    source = next((d for d in inp.graph.dependencies(address)), None)
    if source is None or source not in planned:
        return None
    change = planned[source]
    recreated = change.runtime_change and change.action in (Action.CREATE, Action.REPLACE)
    return source if recreated else None


def _adopted_capture(
    inp: PlanInput, want: Desired, planned: Mapping[Address, Change]
) -> Change | None:
    """A capture whose record is lost (state.db gone) but whose note and archive remain, with
    the same config hash and its source kept: adopted as it is."""
    address = want.address
    digest, config_hash = inp.observed.snapshot_marks.get(address.name, ("", ""))
    if (
        config_hash != want.config_hash
        or digest not in inp.observed.archives
        or address in inp.options.replace
        or _recreated_source(inp, address, planned) is not None
    ):
        return None
    return _adopted(want, "capture", f"its last capture {digest} is in the snapshot store")


def _deletes(inp: PlanInput, desired: Mapping[Address, Desired]) -> dict[Address, Change]:
    """Deletes of state records not in the spec (or everything, for destroy) and orphans."""
    out: dict[Address, Change] = {}
    known = set(inp.state.records) | (
        set(inp.observed.containers) if inp.options.refresh else set()
    )
    known |= set(inp.observed.volumes) if inp.options.refresh else set()
    for address in sorted(known):
        in_spec = address in desired
        if in_spec and not inp.options.destroy:
            continue
        record = inp.state.records.get(address)
        if (
            record is None
            and not in_spec
            and not inp.options.remove_orphans
            and not inp.options.destroy
        ):
            continue  # orphan: reported as a warning only
        change = _delete_change(inp, address, record, in_spec)
        if change is not None:
            out[address] = change
    if inp.options.destroy and inp.options.destroy_workspaces:
        out.update(_leftover_workspaces(inp, out))
    return out


def _leftover_workspaces(
    inp: PlanInput, planned: Mapping[Address, Change]
) -> dict[Address, Change]:
    """`destroy --workspaces`: workspaces whose sandbox an earlier destroy already removed
    (no record, no container) go too."""
    out = {}
    for name in sorted(inp.observed.workspaces):
        address = Address(ResourceKind.SANDBOX, name)
        if address in planned or address in inp.state.records:
            continue
        out[address] = Change(
            address,
            Action.DELETE,
            Reason.DESTROY,
            holds_data=True,
            notes=("only its workspace is left; it will be deleted",),
        )
    return out


def _delete_change(
    inp: PlanInput, address: Address, record: ResourceRecord | None, in_spec: bool
) -> Change | None:
    opts = inp.options
    reason = Reason.DESTROY if opts.destroy else (Reason.NOT_IN_SPEC if record else Reason.ORPHAN)
    kind = address.kind
    if opts.destroy:
        if kind is ResourceKind.VOLUME and not opts.destroy_volumes:
            return _kept(address, record, "--volumes")
        if kind is ResourceKind.SNAPSHOT and not opts.destroy_snapshots:
            return _kept(address, record, "--snapshots")
    if kind is ResourceKind.SANDBOX:
        drop_workspace = opts.destroy_workspaces if opts.destroy else opts.allow_data_loss
        note = (
            "its workspace will be deleted"
            if drop_workspace
            else "its workspace is kept (delete it with --allow-data-loss)"
        )
        if opts.destroy and not drop_workspace:
            note = "its workspace is kept (delete it with --workspaces)"
        return Change(address, Action.DELETE, reason, holds_data=drop_workspace, notes=(note,))
    if kind is ResourceKind.IMAGE:
        pulled = record is not None and record.outputs.get("built") is not True
        kept = ("pulled image stays in the runtime; only the record is dropped",) if pulled else ()
        return Change(address, Action.DELETE, reason, record_only=pulled, notes=kept)
    return Change(address, Action.DELETE, reason, holds_data=kind in DATA_KINDS)


def _kept(address: Address, record: ResourceRecord | None, flag: str) -> Change | None:
    """A volume or snapshot that destroy keeps: a note saying so, and the flag that deletes it."""
    if record is None:
        return None
    return Change(address, Action.NOOP, Reason.UNCHANGED,
                  notes=(f"kept with its data (destroy {flag} deletes it)",))


def _select(inp: PlanInput, changes: dict[Address, Change]) -> dict[Address, Change]:
    """Keep only --target addresses (with their dependencies, or dependents when destroying)."""
    if not inp.options.targets:
        return changes
    if inp.options.destroy:
        keep = set(inp.options.targets)
        frontier = list(keep)
        while frontier:
            current = frontier.pop()
            for user in inp.graph.dependents(current):
                if user not in keep:
                    keep.add(user)
                    frontier.append(user)
    else:
        keep = inp.graph.closure(inp.options.targets) | set(inp.options.targets)
    return {a: c for a, c in changes.items() if a in keep}


def _apply_order(inp: PlanInput, changes: Mapping[Address, Change]) -> list[Change]:
    deps = {a: set(inp.graph.dependencies(a)) for a in changes}
    for address in changes:
        record = inp.state.records.get(address)
        if address not in inp.graph.resources and record is not None:
            deps[address] = set(record.dependencies)
    order = stable_topological_order(list(changes), deps)
    creates = [changes[a] for a in order if changes[a].action is not Action.DELETE]
    deletes = [changes[a] for a in reversed(order) if changes[a].action is Action.DELETE]
    return deletes + creates


def _check_capabilities(inp: PlanInput) -> tuple[list[str], list[str]]:
    caps, errors, warnings = inp.capabilities, [], []
    runtime = inp.runtime or "this runtime"
    volume_users: dict[str, dict[str, str]] = {}  # volume -> {sandbox: its mount target}
    for name, box in inp.spec.sandboxes.items():
        if box.cpus is not None and not caps.fractional_cpus and box.cpus != int(box.cpus):
            warnings.append(
                f"sandbox.{name}: cpus {box.cpus:g} is rounded up to "
                f"{int(box.cpus) + 1} on {runtime} (whole CPUs only)"
            )
        if box.memory is not None and box.memory < caps.min_memory:
            errors.append(
                f"sandbox.{name}: memory must be at least "
                f"{caps.min_memory // (1 << 20)}M on {runtime}"
            )
        if box.network.mode == "allow" and not (
            inp.allowlist_supported and not caps.allowlist_blocker and not inp.allowlist_blocker
        ):
            why = caps.allowlist_blocker or inp.allowlist_blocker or (
                "the egress proxy is not available")
            errors.append(
                f"sandbox.{name}: network allowlists cannot be enforced on {runtime} "
                f"({why}); use network: deny or open"
            )
        if box.cap_add and not caps.sets_capabilities:
            warnings.append(
                f"sandbox.{name}: cap_add is ignored on {runtime}: each sandbox is its own VM, "
                "whose root has the capabilities the runtime gives it"
            )
        if not caps.label_values_with_equals:
            for key, value in box.labels.items():
                if "=" in value:
                    errors.append(
                        f'sandbox.{name}: label {key} has "=" in its value, which {runtime} rejects'
                    )
        for mount in box.volumes:
            if mount.type == "volume":
                volume_users.setdefault(mount.source, {}).setdefault(name, mount.target)
    if not caps.shared_volumes:
        for volume, users in volume_users.items():
            if len(users) > 1:
                target = next(iter(users.values()))
                errors.append(
                    f"volume.{volume} is mounted by {', '.join(f'sandbox.{u}' for u in users)}, "
                    f"but {runtime} attaches a named volume to one container at a time; "
                    f'mount a host directory instead (volumes: ["./{volume}:{target}"]) or '
                    "give the volume to one sandbox"
                )
    if not caps.volume_size:
        for name, vol in inp.spec.volumes.items():
            if vol.size is not None:
                errors.append(f"volume.{name}: size limits are not supported on {runtime}")
    return errors, warnings


def _leftover_warnings(inp: PlanInput) -> list[str]:
    if not inp.observed.leftovers:
        return []
    found = "; ".join(item.describe() for item in inp.observed.leftovers)
    return [
        f"orphaned allowlist networking (asbx's leftovers): {found}; apply or destroy removes them"
    ]


def _orphan_warnings(inp: PlanInput, desired: Mapping[Address, Desired]) -> list[str]:
    if inp.options.remove_orphans or not inp.options.refresh:
        return []
    found = [
        a
        for a in sorted(set(inp.observed.containers) | set(inp.observed.volumes))
        if a not in desired and a not in inp.state.records
    ]
    names = [str(a) for a in found] + [f"{o.kind} {o.name}" for o in inp.observed.unlabelled]
    if not names:
        return []
    return [
        f"orphans (labelled with this project, unknown to spec and state): "
        f"{', '.join(names)}; remove them with --remove-orphans"
    ]
