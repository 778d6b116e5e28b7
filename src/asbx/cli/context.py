"""The composition root: global options, and the spec, runtime and state store built from them."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from asbx.paths import asbx_home

if TYPE_CHECKING:
    from asbx.spec.loader import LoadedSpec


@dataclass
class AppContext:
    """Global options of one invocation; heavy objects are built on first use."""

    spec_file: Path | None = None
    project_name: str | None = None
    runtime_name: str | None = None
    home_override: Path | None = None
    color: bool = False
    verbose: int = 0
    _loaded: LoadedSpec | None = field(default=None, repr=False)

    @property
    def home(self) -> Path:
        return asbx_home(self.home_override)

    def spec_path(self) -> Path:
        from asbx.spec.loader import find_spec

        return find_spec(Path.cwd(), self.spec_file)

    def load(self) -> LoadedSpec:
        """The validated spec (loaded once); raises SpecError with every problem."""
        if self._loaded is None:
            from asbx.spec.loader import load_spec

            self._loaded = load_spec(self.spec_path())
        return self._loaded
