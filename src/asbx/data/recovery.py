"""Small host-side notes that outlive a lost state database: which archive a snapshot is."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from asbx.data.workspaces import check_path_component


@dataclass(frozen=True)
class SnapshotMark:
    """What `apply` captured for one snapshot: its archive and the config hash it had."""

    digest: str
    config_hash: str
    source_config_hash: str = ""


def snapshot_mark_path(home: Path, project: str, snapshot: str) -> Path:
    """`$home/projects/<project>/snapshots/<snapshot>.json`."""
    check_path_component("project", project)
    check_path_component("snapshot", snapshot)
    return home / "projects" / project / "snapshots" / f"{snapshot}.json"


def write_snapshot_mark(home: Path, project: str, snapshot: str, mark: SnapshotMark) -> None:
    path = snapshot_mark_path(home, project, snapshot)
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_suffix(".tmp")
    temp.unlink(missing_ok=True)
    temp.write_text(json.dumps(mark.__dict__, sort_keys=True), encoding="utf-8")
    os.replace(temp, path)


def read_snapshot_marks(home: Path, project: str) -> dict[str, SnapshotMark]:
    """Every readable mark of `project` by snapshot name; unreadable ones are skipped."""
    check_path_component("project", project)
    root = home / "projects" / project / "snapshots"
    if not root.is_dir() or root.is_symlink():
        return {}
    marks = {}
    for path in root.glob("*.json"):
        if path.is_symlink() or not path.is_file():
            continue
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            marks[path.stem] = SnapshotMark(
                str(data["digest"]),
                str(data["config_hash"]),
                str(data.get("source_config_hash", "")),
            )
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return marks
