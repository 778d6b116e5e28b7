"""The canonical plain-data form of a spec (what `asbx config` prints and hashing starts from)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel


def normalised_spec(model: BaseModel) -> dict[str, Any]:
    """JSON-ready data with aliases, canonical values, and no unset optional fields."""
    data: dict[str, Any] = model.model_dump(mode="json", by_alias=True, exclude_none=True)
    return data
