"""Planner test helpers: specs from text, a simulated apply, observed state from records."""

from __future__ import annotations

import textwrap
from dataclasses import replace
from pathlib import Path

from asbx.addresses import Address, ResourceKind
from asbx.plan.hashing import HASH_VERSION, applied_form
from asbx.plan.model import Action, Plan, PlanOptions
from asbx.plan.observed import Observed
from asbx.plan.planner import PlanInput, plan
from asbx.runtime.base import (
    LABEL_ADDRESS,
    LABEL_HASH,
    LABEL_PRIVILEGES,
    LABEL_PROJECT,
    Capabilities,
    ContainerState,
    ObservedContainer,
    ObservedImage,
    ObservedVolume,
)
from asbx.spec import capabilities
from asbx.spec.loader import LoadedSpec, load_spec_text
from asbx.state.records import ProjectMeta, ResourceRecord, StateSnapshot

PROJECT = "proj"
EMPTY_STATE = StateSnapshot(ProjectMeta(PROJECT, "lineage-1", 0, "salt"), {})


def spec(text: str, tmp: Path) -> LoadedSpec:
    return load_spec_text(textwrap.dedent(text).encode(), tmp / "sandboxes.yaml", environ={})


class World:
    """A simulated runtime + state that `apply_plan` updates the way the real applier would."""

    def __init__(self, loaded: LoadedSpec) -> None:
        self.loaded = loaded
        self.state = EMPTY_STATE
        self.containers: dict[Address, ObservedContainer] = {}
        self.volumes: dict[Address, ObservedVolume] = {}
        self.images: list[ObservedImage] = []
        self.archives: set[str] = set()
        self.now = 1_000_000.0
        self.secret_hashes: dict[str, str] = {}  # what the edge would hash from secret values

    def observed(self) -> Observed:
        return Observed(
            dict(self.containers), tuple(self.images), dict(self.volumes), frozenset(self.archives)
        )

    def plan(
        self, options: PlanOptions | None = None, caps: Capabilities | None = None, **kw: object
    ) -> Plan:
        return plan(
            PlanInput(
                project=PROJECT,
                spec=self.loaded.spec,
                graph=self.loaded.graph,
                state=self.state,
                observed=self.observed(),
                options=options or PlanOptions(),
                capabilities=caps or Capabilities(),
                now=self.now,
                **{"secret_hashes": self.secret_hashes, **kw},
            )
        )  # type: ignore[arg-type]

    def apply(self, result: Plan) -> None:
        records = dict(self.state.records)
        for change in result.changes:
            if not change.action.mutates:
                continue
            address = change.address
            if change.action is Action.DELETE:
                records.pop(address, None)
                self.containers.pop(address, None)
                self.volumes.pop(address, None)
                continue
            outputs = self._create(
                address, change.config_hash, change.record_only, change.action, records.get(address)
            )
            created = (
                self.now
                if change.action in (Action.CREATE, Action.REPLACE)
                else (records[address].created_at if address in records else self.now)
            )
            records[address] = ResourceRecord(
                address,
                change.config_hash,
                HASH_VERSION,
                applied_form(self.loaded.graph.resources[address], self.state.meta.salt,
                             self.secret_hashes),
                outputs,
                tuple(self.loaded.graph.dependencies(address)),
                "ok",
                created,
            )
        meta = replace(self.state.meta, serial=self.state.meta.serial + 1)
        self.state = StateSnapshot(meta, records)

    def _create(
        self,
        address: Address,
        config_hash: str,
        record_only: bool,
        action: Action,
        previous: ResourceRecord | None,
    ) -> dict[str, object]:
        labels = {LABEL_PROJECT: PROJECT, LABEL_ADDRESS: str(address), LABEL_HASH: config_hash}
        if address.kind is ResourceKind.SANDBOX:
            if action is Action.START:
                old = self.containers[address]
                self.containers[address] = replace(old, state=ContainerState.RUNNING)
            elif not record_only:
                self.containers[address] = ObservedContainer(
                    f"id-{address.name}",
                    f"{PROJECT}-{address.name}",
                    ContainerState.RUNNING,
                    {**labels, LABEL_PRIVILEGES: capabilities.PROFILE},
                )
            return {"container": f"{PROJECT}-{address.name}"}
        if address.kind is ResourceKind.VOLUME:
            if not record_only:
                self.volumes[address] = ObservedVolume(f"{PROJECT}-{address.name}", labels)
            return {"name": f"{PROJECT}-{address.name}"}
        if address.kind is ResourceKind.IMAGE:
            ref = f"localhost/{PROJECT}-{address.name}:{config_hash[7:19]}"
            self.images.append(ObservedImage(f"img-{config_hash[7:19]}", (ref,)))
            return {"ref": ref, "image_id": f"img-{config_hash[7:19]}", "built": True}
        digest = "sha256:" + config_hash[7:]
        self.archives.add(digest)
        return {"digest": digest}


def actions(result: Plan) -> dict[str, tuple[str, str]]:
    """{address: (action, reason)} for every change that does something."""
    return {
        str(c.address): (c.action.value, c.reason.name.lower())
        for c in result.changes
        if c.action.mutates
    }
