"""The plan's JSON form (documented in docs/plan-format.md): printed by --json, saved by -o."""

from __future__ import annotations

from typing import Any

from asbx.addresses import Address
from asbx.plan.model import (
    Action,
    BuildInputs,
    Change,
    FieldChange,
    Plan,
    PlanOptions,
    Reason,
)

FORMAT_VERSION = "1.1"


def plan_to_json(plan: Plan) -> dict[str, Any]:
    """The plan as JSON-ready data; sensitive values are never included."""
    return {
        "format_version": FORMAT_VERSION,
        "project": plan.project,
        "runtime": plan.runtime,
        "state": {"serial": plan.state_serial, "lineage": plan.state_lineage},
        "spec_digest": plan.spec_digest,
        "inputs": {
            "lock_digest": plan.lock_digest,
            "contexts": {
                name: {"digest": c.digest, "files": dict(c.files)}
                for name, c in sorted(plan.contexts.items())
            },
        },
        "options": _options_to_json(plan.options),
        "changes": [_change_to_json(c) for c in plan.changes],
        "summary": {
            "add": plan.count(Action.CREATE),
            "change": plan.count(Action.UPDATE) + plan.count(Action.START),
            "replace": plan.count(Action.REPLACE),
            "destroy": plan.count(Action.DELETE),
            "state_only": plan.state_only,
        },
        "errors": list(plan.errors),
        "warnings": list(plan.warnings),
    }


def _change_to_json(change: Change) -> dict[str, Any]:
    return {
        "address": str(change.address),
        "kind": change.address.kind.value,
        "name": change.address.name,
        "action": change.action.value,
        "symbol": change.action.symbol,
        "reason": change.reason.name.lower(),
        "reason_text": change.reason.value,
        "verb": change.verb,
        "detail": change.detail,
        "fields": [_field_to_json(f) for f in change.fields],
        "holds_data": change.holds_data,
        "record_only": change.record_only,
        "config_hash": change.config_hash,
        "notes": list(change.notes),
    }


def _field_to_json(field: FieldChange) -> dict[str, Any]:
    return {
        "path": field.path,
        "before": None if field.sensitive else field.before,
        "after": None if field.sensitive else field.after,
        "forces_replacement": field.forces_replacement,
        "sensitive": field.sensitive,
    }


def _options_to_json(options: PlanOptions) -> dict[str, Any]:
    return {
        "targets": sorted(str(a) for a in options.targets),
        "replace": sorted(str(a) for a in options.replace),
        "destroy": options.destroy,
        "destroy_volumes": options.destroy_volumes,
        "destroy_snapshots": options.destroy_snapshots,
        "destroy_workspaces": options.destroy_workspaces,
        "remove_orphans": options.remove_orphans,
        "allow_data_loss": options.allow_data_loss,
        "refresh": options.refresh,
        "pull": options.pull,
    }


def plan_from_json(data: dict[str, Any]) -> Plan:
    """Read a saved plan back; raises ValueError for an unknown format version."""
    version = str(data.get("format_version", ""))
    if version.split(".")[0] != FORMAT_VERSION.split(".")[0]:
        raise ValueError(f"unsupported plan format version {version!r}")
    opts = data["options"]
    options = PlanOptions(
        targets=frozenset(Address.parse(a) for a in opts["targets"]),
        replace=frozenset(Address.parse(a) for a in opts["replace"]),
        **{
            k: bool(opts[k])
            for k in (
                "destroy",
                "destroy_volumes",
                "destroy_snapshots",
                "destroy_workspaces",
                "remove_orphans",
                "allow_data_loss",
                "refresh",
                "pull",
            )
        },
    )
    return Plan(
        project=data["project"],
        changes=tuple(_change_from_json(c) for c in data["changes"]),
        options=options,
        errors=tuple(data["errors"]),
        warnings=tuple(data["warnings"]),
        state_serial=int(data["state"]["serial"]),
        state_lineage=data["state"]["lineage"],
        spec_digest=data["spec_digest"],
        runtime=data["runtime"],
        **_inputs_from_json(data.get("inputs")),
    )


def _inputs_from_json(inputs: Any) -> dict[str, Any]:
    """The plan's recorded inputs; a plan saved before format 1.1 has none (left unknown)."""
    if not isinstance(inputs, dict):
        return {}
    contexts = {
        str(name): BuildInputs(str(c["digest"]), {str(k): str(v) for k, v in c["files"].items()})
        for name, c in inputs.get("contexts", {}).items()
    }
    lock = inputs.get("lock_digest")
    return {"lock_digest": None if lock is None else str(lock), "contexts": contexts}


def _change_from_json(data: dict[str, Any]) -> Change:
    return Change(
        address=Address.parse(data["address"]),
        action=Action(data["action"]),
        reason=Reason[data["reason"].upper()],
        verb=data["verb"],
        detail=data["detail"],
        fields=tuple(
            FieldChange(f["path"], f["before"], f["after"], f["forces_replacement"], f["sensitive"])
            for f in data["fields"]
        ),
        holds_data=data["holds_data"],
        config_hash=data["config_hash"],
        record_only=data["record_only"],
        notes=tuple(data["notes"]),
    )
