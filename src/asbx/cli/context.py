"""The composition root: global options, and the spec, runtime and state store built from them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from asbx.paths import asbx_home

if TYPE_CHECKING:
    from asbx.runtime.base import Runtime
    from asbx.runtime.command import CommandRunner
    from asbx.runtime.early import EarlyRunner
    from asbx.spec.loader import LoadedSpec
    from asbx.state.store import StateStore
    from asbx.workflow import Session


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
    _runtime: Runtime | None = field(default=None, repr=False)
    _store: StateStore | None = field(default=None, repr=False)
    _early: EarlyRunner | None = field(default=None, repr=False)

    @property
    def home(self) -> Path:
        return asbx_home(self.home_override)

    def spec_path(self) -> Path:
        from asbx.spec.locate import find_spec

        return find_spec(Path.cwd(), self.spec_file)

    def guess_project(self) -> str | None:
        """The project name, guessed without loading the spec (to start listings early), or
        None when unsure. Never trusted: a listing started with it is used only if it is the
        very listing the loaded project asks for."""
        from asbx.errors import AsbxError
        from asbx.project import project_name
        from asbx.spec.locate import guess_declared_name

        if self.project_name:
            return self.project_name
        try:
            path = self.spec_path().absolute()
            with path.open("rb") as spec:
                sure, declared = guess_declared_name(spec.read(1 << 20))
            return project_name(path.parent, declared) if sure else None
        except (AsbxError, OSError, ValueError):
            return None

    def effective_project_name(self) -> str:
        """The project name commands act on: -p, then `name:` in the spec, then derived."""
        from asbx.project import project_name

        loaded = self.load()
        return project_name(loaded.directory, loaded.spec.name, self.project_name)

    def load(self) -> LoadedSpec:
        """The validated spec (loaded once); raises SpecError with every problem."""
        if self._loaded is None:
            from asbx.spec.loader import load_spec

            self._loaded = load_spec(self.spec_path())
            if self._loaded.warnings:  # every command says them, as Compose does
                import click

                from asbx.render.diagnostics import render_diagnostics

                click.echo(render_diagnostics(self._loaded.warnings, color=self.color), err=True)
        return self._loaded

    def runner(self) -> CommandRunner:
        """The one command runner, tracing every command with -vv."""
        import click

        from asbx.runtime.command import SubprocessRunner

        def trace(line: str) -> None:
            click.echo(click.style(line, dim=True) if self.color else line, err=True)

        return SubprocessRunner(trace=trace if self.verbose >= 2 else None)

    def runtime(self) -> Runtime:
        """The selected runtime (--runtime, ASBX_RUNTIME, else detected)."""
        if self._runtime is None:
            from asbx.runtime.detect import create_runtime
            from asbx.runtime.early import EarlyRunner

            self._early = EarlyRunner(self.runner())
            self._runtime = create_runtime(self.runtime_name, self._early)
        return self._runtime

    def ahead(self, work: Callable[[Runtime], object]) -> None:
        """Start runtime calls now, in the background, that a later step will make (listings):
        that step then takes their results instead of waiting for new ones."""
        from asbx.errors import AsbxError
        from asbx.runtime.detect import create_runtime

        try:
            self.runtime()
        except AsbxError:  # no runtime: the command's own call says so, in its own order
            return
        early = self._early
        if early is None:  # a runtime handed in from outside: nothing to start ahead
            return
        primer = early.primer()
        early.ahead(lambda: work(create_runtime(self.runtime_name, primer)))

    def forget_early(self) -> None:
        """Drop the results of calls started ahead that nothing took (no longer current)."""
        if self._early is not None:
            self._early.forget()

    def observe_ahead(self, project: str) -> None:
        """Start the project's three listings (what make_plan observes) in the background."""
        from asbx.observe import observe

        self.ahead(lambda runtime: observe(runtime, project))

    def store(self) -> StateStore:
        if self._store is None:
            from asbx.state.store import open_store

            self._store = open_store(self.home)
        return self._store

    def session(self) -> Session:
        """Spec + runtime + store + project name, for commands that touch a project."""
        from asbx.workflow import Session

        return Session.create(
            self.load(), self.runtime(), self.store(), self.home, self.project_name
        )
