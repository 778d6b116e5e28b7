"""Why a saved plan no longer applies: what changed between it and a fresh plan."""

from __future__ import annotations

from collections.abc import Mapping

from asbx.plan.model import Plan


def stale_reasons(saved: Plan, fresh: Plan, changes_differ: bool) -> list[str]:
    """What changed since `saved` was made, one phrase each (empty: it still applies).

    The inputs are named first (state, spec, lock, build contexts with their files); the runtime
    is blamed only when the changes differ and none of the inputs does.
    """
    reasons: list[str] = []
    if saved.state_lineage != fresh.state_lineage:
        reasons.append("the state was replaced (another lineage)")
    elif saved.state_serial != fresh.state_serial:
        reasons.append(f"the state changed (serial {saved.state_serial} -> {fresh.state_serial})")
    if saved.spec_digest != fresh.spec_digest:
        reasons.append("sandboxes.yaml (or a Dockerfile it reads) changed")
    if saved.lock_digest is not None and saved.lock_digest != fresh.lock_digest:
        reasons.append(f"sandboxes.lock {_lock_change(saved.lock_digest, fresh.lock_digest)}")
    for name in sorted(saved.contexts.keys() | fresh.contexts.keys()):
        old, new = saved.contexts.get(name), fresh.contexts.get(name)
        if old is None or new is None or old.digest == new.digest:
            continue  # an image added or removed is a spec change, said above
        what = (describe_context_change(old.files, new.files) if old.files != new.files
                else "its build inputs changed")
        reasons.append(f"the build context of image.{name} changed: {what}")
    if not reasons and changes_differ:
        reasons.append("the runtime changed (objects were created, changed or removed outside "
                       "this plan)")
    return reasons


def _lock_change(old: str, new: str | None) -> str:
    if not old:
        return "was created"
    return "was removed" if not new else "changed"


def describe_context_change(old: Mapping[str, str], new: Mapping[str, str], limit: int = 3) -> str:
    """Say which files differ, e.g. "3 files changed (a.py, b.py, c.py)" or
    "2 files added, 1 removed (x, y, z)"; more than `limit` names end in "+N more"."""
    changed = sorted(path for path in old.keys() & new.keys() if old[path] != new[path])
    added = sorted(new.keys() - old.keys())
    removed = sorted(old.keys() - new.keys())
    counts = [(len(changed), "changed"), (len(added), "added"), (len(removed), "removed")]
    parts = [f"{count} {verb}" for count, verb in counts if count]
    if not parts:
        return "no files changed"
    total = len(changed) + len(added) + len(removed)
    first_count = next(count for count, _ in counts if count)
    noun = "file" if first_count == 1 else "files"
    parts[0] = parts[0].replace(" ", f" {noun} ", 1)
    names = [*changed, *added, *removed]
    shown = ", ".join(names[:limit])
    if total > limit:
        shown += f", +{total - limit} more"
    return f"{', '.join(parts)} ({shown})"
