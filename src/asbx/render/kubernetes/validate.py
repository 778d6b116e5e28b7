"""Offline validation: custom resources against their CRD (unknown fields refused), core
objects with kubernetes-validate at a pinned Kubernetes version."""

from __future__ import annotations

import copy
import re
from datetime import datetime
from functools import cache
from importlib import resources
from typing import Any

import jsonschema
import yaml

from asbx.errors import AsbxError
from asbx.render.kubernetes.model import K8S_VERSION, SANDBOX_API, Manifest

_RFC3339 = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})")
CRD_FILES = {(SANDBOX_API, "Sandbox"): "agents.x-k8s.io_sandboxes.yaml"}


_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_PROTOCOLS = ("TCP", "UDP", "SCTP")
_CONTAINERS = (("containers",), ("initContainers",))
# Kubernetes' published OpenAPI schemas (what kubernetes-validate bundles) carry no enums: the
# allowed values live in descriptions. These are the API's values for the fields asbx renders.
_POD_ENUMS: tuple[tuple[tuple[str, ...], tuple[str, ...]], ...] = tuple(
    entry for c in _CONTAINERS for entry in (
        ((*c, "*", "ports", "*", "protocol"), _PROTOCOLS),
        ((*c, "*", "securityContext", "seccompProfile", "type"),
         ("RuntimeDefault", "Unconfined", "Localhost")),
    ))
ENUMS: dict[str, tuple[tuple[tuple[str, ...], tuple[str, ...]], ...]] = {
    "Service": ((("spec", "type"), ("ClusterIP", "NodePort", "LoadBalancer", "ExternalName")),
                (("spec", "ports", "*", "protocol"), _PROTOCOLS)),
    "NetworkPolicy": ((("spec", "policyTypes", "*"), ("Ingress", "Egress")),
                      (("spec", "ingress", "*", "ports", "*", "protocol"), _PROTOCOLS),
                      (("spec", "egress", "*", "ports", "*", "protocol"), _PROTOCOLS)),
    "PersistentVolumeClaim": ((("spec", "accessModes", "*"),
                               ("ReadWriteOnce", "ReadOnlyMany", "ReadWriteMany",
                                "ReadWriteOncePod")),),
    "Deployment": tuple((("spec", "template", "spec", *path), allowed)
                        for path, allowed in _POD_ENUMS),
    "Pod": tuple((("spec", *path), allowed) for path, allowed in _POD_ENUMS),
}


class ManifestInvalid(AsbxError):
    """A rendered object its schema refuses (a bug in the renderer, or in the spec's values)."""


def validate(manifest: Manifest) -> None:
    """Raise ManifestInvalid unless `manifest` passes its schema."""
    key = (manifest.get("apiVersion", ""), manifest.get("kind", ""))
    where = f"{key[1]} {manifest.get('metadata', {}).get('name', '?')}"
    if key in CRD_FILES:
        error = jsonschema.exceptions.best_match(_crd_validator(*key).iter_errors(manifest))
        if error is not None:
            path = ".".join(str(p) for p in error.absolute_path) or "(top)"
            raise ManifestInvalid(f"{where} is invalid at {path}: {error.message}")
        _validate_metadata(manifest["metadata"], where)
        _validate_pod(manifest, where)
        return
    _validate_core(manifest, where)


def _validate_core(manifest: Manifest, where: str) -> None:
    import kubernetes_validate

    _check_name(manifest, where)
    try:
        kubernetes_validate.validate(manifest, K8S_VERSION, strict=True)
    except kubernetes_validate.ValidationError as exc:
        shown = ".".join(str(p) for p in exc.path) or "(top)"
        raise ManifestInvalid(f"{where} is invalid at {shown}: {exc.message}") from None
    except kubernetes_validate.SchemaNotFoundError:
        raise ManifestInvalid(f"{where}: no Kubernetes {K8S_VERSION} schema for it") from None
    for fields, allowed in ENUMS.get(manifest.get("kind", ""), ()):
        for at, value in _values(manifest, fields, ()):
            if value not in allowed:
                raise ManifestInvalid(f"{where} is invalid at {'.'.join(at)}: {value!r} is not "
                                      f"one of {list(allowed)}")


def _check_name(manifest: Manifest, where: str) -> None:
    """Every name asbx renders, and the namespace, is a DNS-1123 label (the strictest rule)."""
    metadata = manifest.get("metadata", {})
    for field in ("name", "namespace"):
        value = metadata.get(field, "default" if field == "namespace" else None)
        if not isinstance(value, str) or len(value) > 63 or not _DNS_LABEL.match(value):
            raise ManifestInvalid(f"{where} is invalid at metadata.{field}: {value!r} is not "
                                  "a DNS-1123 label")


def _values(node: Any, path: tuple[str, ...],
            at: tuple[str, ...]) -> list[tuple[tuple[str, ...], Any]]:
    """The values at `path` ("*": every list item), with where each was found."""
    if not path:
        return [(at, node)]
    head, rest = path[0], path[1:]
    if head == "*":
        items = node if isinstance(node, list) else []
        return [v for i, item in enumerate(items) for v in _values(item, rest, (*at, str(i)))]
    if isinstance(node, dict) and head in node:
        return _values(node[head], rest, (*at, head))
    return []


def _validate_metadata(metadata: dict[str, Any], where: str) -> None:
    """A CRD's schema leaves metadata to the API server: check it as ObjectMeta."""
    _validate_core({"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata}, where)


def _validate_pod(manifest: Manifest, where: str) -> None:
    """The pod template checked as a core Pod too (the CRD copies PodSpec, loosely)."""
    template = manifest["spec"]["podTemplate"]
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "check", **template.get(
        "metadata", {})}, "spec": template["spec"]}
    _validate_core(pod, f"{where} podTemplate")


@cache
def _crd_validator(api_version: str, kind: str) -> jsonschema.protocols.Validator:
    version = api_version.rsplit("/", 1)[1]
    text = resources.files("asbx.render.kubernetes").joinpath(
        "crds", CRD_FILES[(api_version, kind)]).read_text(encoding="utf-8")
    crd = yaml.safe_load(text)
    schema = next(v["schema"]["openAPIV3Schema"] for v in crd["spec"]["versions"]
                  if v["name"] == version)
    strict = closed(copy.deepcopy(schema))
    return jsonschema.Draft4Validator(strict, format_checker=_FORMATS)


def _date_time(value: object) -> bool:
    """RFC 3339, as the API server parses it (jsonschema checks it only with an extra)."""
    if not isinstance(value, str) or not _RFC3339.fullmatch(value):
        return False
    datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    return True


_FORMATS = jsonschema.FormatChecker(formats=())
_FORMATS.checks("date-time", raises=ValueError)(_date_time)


def closed(schema: Any) -> Any:
    """`schema` with unknown fields refused: additionalProperties false on every object that
    lists its properties, except where Kubernetes keeps unknown fields on purpose."""
    if isinstance(schema, dict):
        for value in schema.values():
            closed(value)
        if ("properties" in schema and "additionalProperties" not in schema
                and not schema.get("x-kubernetes-preserve-unknown-fields")):
            schema["additionalProperties"] = False
    elif isinstance(schema, list):
        for item in schema:
            closed(item)
    return schema
