"""asbx sizes, CPUs and durations as Kubernetes quantities and times."""

from __future__ import annotations

from datetime import datetime, timedelta

_UNITS = (("Ti", 1 << 40), ("Gi", 1 << 30), ("Mi", 1 << 20), ("Ki", 1 << 10))


def memory(size: int) -> str:
    """Bytes as the largest binary unit that divides them exactly (2147483648 -> 2Gi)."""
    for suffix, unit in _UNITS:
        if size % unit == 0:
            return f"{size // unit}{suffix}"
    return str(size)


def cpu(cpus: float) -> str:
    """CPUs as whole cores ("2") or millicores ("500m")."""
    milli = round(cpus * 1000)
    return str(milli // 1000) if milli % 1000 == 0 else f"{milli}m"


def shutdown_time(created_at: datetime, seconds: int) -> str:
    """RFC 3339 UTC time `seconds` after `created_at` (whole seconds)."""
    when = created_at + timedelta(seconds=seconds)
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")
