"""The offline validator refuses a wrong field, a wrong enum and a missing required field, for
the Sandbox custom resource (its CRD schema) and for core objects (kubernetes-validate)."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from asbx.render.kubernetes.validate import ManifestInvalid, closed, validate

SANDBOX: dict[str, Any] = {
    "apiVersion": "agents.x-k8s.io/v1beta1", "kind": "Sandbox", "metadata": {"name": "box"},
    "spec": {"podTemplate": {"spec": {"containers": [{"name": "main", "image": "busybox"}]}},
             "shutdownTime": "2026-01-01T08:00:00Z", "shutdownPolicy": "Retain"},
}
POLICY: dict[str, Any] = {
    "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": "deny"},
    "spec": {"podSelector": {}, "policyTypes": ["Egress"], "egress": []},
}
SERVICE: dict[str, Any] = {
    "apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
    "spec": {"selector": {"a": "b"}, "ports": [{"port": 80, "protocol": "TCP"}]},
}

Edit = Callable[[dict[str, Any]], None]


def edited(manifest: dict[str, Any], edit: Edit) -> dict[str, Any]:
    copied = copy.deepcopy(manifest)
    edit(copied)
    return copied


def test_the_unedited_objects_pass() -> None:
    for manifest in (SANDBOX, POLICY, SERVICE):
        validate(manifest)


@pytest.mark.parametrize(("edit", "message"), [
    (lambda m: m["spec"].update(replicas=1), "'replicas' was unexpected"),  # v1alpha1's field
    (lambda m: m["spec"]["podTemplate"]["spec"]["containers"][0].update(imag="x"),
     "'imag' was unexpected"),
    (lambda m: m["spec"].update(shutdownPolicy="Forever"), "'Forever' is not one of"),
    (lambda m: m["spec"].update(operatingMode="Paused"), "'Paused' is not one of"),
    (lambda m: m["spec"].pop("podTemplate"), "'podTemplate' is a required property"),
    (lambda m: m["spec"]["podTemplate"]["spec"]["containers"][0].pop("name"),
     "'name' is a required property"),
    (lambda m: m["spec"].update(shutdownTime="in 8 hours"), "is not a 'date-time'"),
    (lambda m: m["metadata"].update(name="Not_A_Name"), "Sandbox Not_A_Name is invalid"),
    (lambda m: m["spec"]["podTemplate"]["spec"]["containers"][0].update(
        securityContext={"capabilities": {"drop": "ALL"}}), "is not of type"),
], ids=["unknown-field", "unknown-nested-field", "enum", "enum-mode", "required",
        "required-nested", "date-time", "metadata-name", "wrong-type"])
def test_the_sandbox_crd_schema_refuses(edit: Edit, message: str) -> None:
    with pytest.raises(ManifestInvalid, match=message):
        validate(edited(SANDBOX, edit))


@pytest.mark.parametrize(("manifest", "edit", "message"), [
    (POLICY, lambda m: m["spec"].update(egres=[]), "'egres' was unexpected"),
    (POLICY, lambda m: m["spec"].update(policyTypes=["Outbound"]), "'Outbound' is not one of"),
    (SERVICE, lambda m: m["spec"]["ports"][0].update(protocol="TCPX"), "'TCPX' is not one of"),
    (SERVICE, lambda m: m["spec"]["ports"][0].pop("port"), "'port' is a required property"),
    (POLICY, lambda m: m.pop("metadata") and m.update(kind="Nope"), "NetworkPolicy|Nope"),
], ids=["unknown-field", "enum", "enum-protocol", "required", "unknown-kind"])
def test_core_objects_are_checked_by_kubernetes_validate(manifest: dict[str, Any], edit: Edit,
                                                         message: str) -> None:
    with pytest.raises(ManifestInvalid, match=message):
        validate(edited(manifest, edit))


def test_closing_a_schema_keeps_preserved_unknown_fields_open() -> None:
    schema = closed({"type": "object", "properties": {
        "a": {"type": "object", "properties": {"b": {"type": "string"}}},
        "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": True,
                 "properties": {"c": {"type": "string"}}},
        "map": {"type": "object", "additionalProperties": {"type": "string"}},
    }})
    assert schema["additionalProperties"] is False
    assert schema["properties"]["a"]["additionalProperties"] is False
    assert "additionalProperties" not in schema["properties"]["free"]
    assert schema["properties"]["map"]["additionalProperties"] == {"type": "string"}
