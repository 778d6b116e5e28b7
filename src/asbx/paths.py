"""Where asbx keeps its data: ASBX_HOME (or --home), else the platform data directory."""

from __future__ import annotations

import os
from pathlib import Path


def asbx_home(override: Path | None) -> Path:
    """The asbx data directory: --home, then $ASBX_HOME, then platformdirs' user data dir."""
    if override is not None:
        return override.expanduser().absolute()
    env = os.environ.get("ASBX_HOME")
    if env:
        return Path(env).expanduser().absolute()
    import platformdirs

    return Path(platformdirs.user_data_dir("asbx", appauthor=False))
