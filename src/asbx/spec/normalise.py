"""The canonical plain-data form of a spec (what `asbx config` prints and hashing starts from)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel


def normalised_spec(model: BaseModel) -> dict[str, Any]:
    """JSON-ready data with aliases, canonical values, and no unset optional fields."""
    data: dict[str, Any] = model.model_dump(mode="json", by_alias=True, exclude_none=True)
    return data


def escape_dollars(data: Any) -> Any:
    """`data` with every `$` in a string value doubled, so it reads back as a spec unchanged.

    Values are interpolated when a spec is loaded, so a printed spec must escape the `$`
    they contain (as `docker compose config` does); keys are never interpolated.
    """
    if isinstance(data, dict):
        return {key: escape_dollars(value) for key, value in data.items()}
    if isinstance(data, list):
        return [escape_dollars(value) for value in data]
    if isinstance(data, str):
        return data.replace("$", "$$")
    return data
