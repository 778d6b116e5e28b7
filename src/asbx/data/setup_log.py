"""The last setup run of a sandbox: each step's command, exit code, times and (bounded) output."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from asbx.data.workspaces import workspace_path

SETUP_LOG = "setup-log.json"
MAX_STEP_OUTPUT = 64 * 1024  # characters kept per step: the end of its output


@dataclass(frozen=True)
class SetupStepRun:
    """One setup step as it ran; `output` is stdout and stderr interleaved, its end only."""

    index: int
    command: tuple[str, ...]
    started_at: str
    finished_at: str
    exit_code: int
    output: str
    truncated: bool = False


@dataclass(frozen=True)
class SetupRun:
    """A sandbox's last setup run, written after each step so a failed run is kept too."""

    sandbox: str
    container_id: str
    started_at: str
    steps_total: int
    steps: tuple[SetupStepRun, ...] = field(default_factory=tuple)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["steps"] = [{**asdict(s), "command": list(s.command)} for s in self.steps]
        return data


def setup_log_path(home: Path, project: str, sandbox: str) -> Path:
    """`.../sandboxes/<sandbox>/setup-log.json`, beside the workspace, never in it."""
    return workspace_path(home, project, sandbox).parent / SETUP_LOG


def bounded(output: str) -> tuple[str, bool]:
    """The last MAX_STEP_OUTPUT characters of `output`, and whether anything was cut."""
    if len(output) <= MAX_STEP_OUTPUT:
        return output, False
    return output[-MAX_STEP_OUTPUT:], True


def write_setup_log(home: Path, project: str, run: SetupRun) -> None:
    """Replace the sandbox's setup log with `run` (written beside it, then renamed)."""
    path = setup_log_path(home, project, run.sandbox)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{SETUP_LOG}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(run.to_json(), ensure_ascii=False), encoding="utf-8")
    os.replace(tmp, path)


def read_setup_log(home: Path, project: str, sandbox: str) -> SetupRun | None:
    """The sandbox's last setup run, or None (never run, or the file is not a plain file)."""
    path = setup_log_path(home, project, sandbox)
    if path.is_symlink() or not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        steps = tuple(
            SetupStepRun(
                index=int(s["index"]),
                command=tuple(str(w) for w in s["command"]),
                started_at=str(s["started_at"]),
                finished_at=str(s["finished_at"]),
                exit_code=int(s["exit_code"]),
                output=str(s["output"]),
                truncated=bool(s.get("truncated", False)),
            )
            for s in data["steps"]
        )
        return SetupRun(str(data["sandbox"]), str(data["container_id"]),
                        str(data["started_at"]), int(data["steps_total"]), steps)
    except (ValueError, KeyError, TypeError):
        return None
