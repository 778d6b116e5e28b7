"""The JSON Schema of sandboxes.yaml, generated from the pydantic model."""

from __future__ import annotations

from typing import Any

from asbx.spec.model import Spec

SCHEMA_ID = "https://asbx.dev/schema/sandboxes.schema.json"
DRAFT = "https://json-schema.org/draft/2020-12/schema"
SECTIONS = ("images", "volumes", "snapshots", "sandboxes")


def spec_json_schema() -> dict[str, Any]:
    """The schema editors use; `x-*` keys are allowed wherever unknown keys are not."""
    generated = Spec.model_json_schema(mode="validation")
    schema: dict[str, Any] = {"$schema": DRAFT, "$id": SCHEMA_ID, **generated}
    for section in SECTIONS:
        _close_named_section(schema["properties"][section])
    _allow_extensions(schema)
    return schema


def _close_named_section(section: dict[str, Any]) -> None:
    """Only valid names (or ignored `x-*` keys) may appear in images:, volumes:, ..."""
    (pattern, entry), = section.pop("patternProperties").items()
    section["patternProperties"] = {f"^(?!x-){pattern.removeprefix('^')}": entry, "^x-": {}}
    section["additionalProperties"] = False


def _allow_extensions(node: Any) -> None:
    if isinstance(node, dict):
        if node.get("additionalProperties") is False:
            node.setdefault("patternProperties", {"^x-": {}})
        for value in node.values():
            _allow_extensions(value)
    elif isinstance(node, list):
        for value in node:
            _allow_extensions(value)
