"""Find the spec file (light: no YAML or pydantic), and guess its project name from its bytes."""

from __future__ import annotations

import re
from pathlib import Path

from asbx.errors import SpecNotFoundError

DEFAULT_FILENAMES = ("sandboxes.yaml", "sandboxes.yml")
_NAME = rb"[a-z0-9][a-z0-9_-]{0,62}"
_NAME_LINE = re.compile(
    rb"^name:[ \t]*(?:\"(" + _NAME + rb")\"|'(" + _NAME + rb")'|(" + _NAME + rb"))"
    rb"[ \t]*(?:#[^\n]*)?\r?$",
    re.MULTILINE,
)


def find_spec(start: Path, explicit: Path | None = None) -> Path:
    """`explicit` if given, else the nearest sandboxes.yaml from `start` upward (like Compose)."""
    if explicit is not None:
        if explicit.is_dir():
            for name in DEFAULT_FILENAMES:
                if (explicit / name).is_file():
                    return explicit / name
            raise SpecNotFoundError(
                f"{explicit} is a directory with no {' or '.join(DEFAULT_FILENAMES)} in it",
                hint="pass the spec file itself with -f, or run `asbx init` in that directory",
            )
        if not explicit.is_file():
            raise SpecNotFoundError(f"spec file {explicit} does not exist",
                                    hint="pass an existing file with -f, or run `asbx init`")
        return explicit
    for directory in (start, *start.parents):
        for name in DEFAULT_FILENAMES:
            if (directory / name).is_file():
                return directory / name
    raise SpecNotFoundError(
        f"no sandboxes.yaml in {start} or any parent directory",
        hint="create one with `asbx init`, or pass -f PATH",
    )


def guess_declared_name(raw: bytes) -> tuple[bool, str | None]:
    """(sure, name): a top-level `name:` line that is a plain valid name gives (True, it); no
    `name:` at the start of any line gives (True, None); anything else (interpolated, flow
    style) gives (False, None). A guess only: runtime listings may start early with it, and
    are used only if the loaded spec names the same project."""
    found = _NAME_LINE.search(raw)
    if found is not None:
        return True, next(g for g in found.groups() if g is not None).decode()
    if re.search(rb"^name\s*:", raw, re.MULTILINE) or raw.lstrip().startswith(b"{"):
        return False, None
    return True, None
