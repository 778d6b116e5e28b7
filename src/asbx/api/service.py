"""What the API does, as a library: sandboxes declared in a server-owned spec, applied by the
one workflow (make_plan + run_apply), serialised by the project's state lock."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import yaml

from asbx.addresses import Address, ResourceKind
from asbx.api import files
from asbx.apply.hooks import NullApplyHooks
from asbx.errors import (
    ApplyError,
    AsbxError,
    NotFoundError,
    SpecError,
    StateLockedError,
)
from asbx.runtime.base import ContainerState, ExecResult, ObservedContainer, Runtime
from asbx.spec.loader import LoadedSpec, load_spec_text
from asbx.state.store import StateStore

SPEC_DIR = "api"


class ConflictError(AsbxError):
    """The request conflicts with what exists (a sandbox of that name)."""


@dataclass(frozen=True)
class SandboxInfo:
    """A declared sandbox and what the runtime says about it."""

    name: str
    image: str
    state: str  # running | stopped | paused | missing
    container: str


@dataclass(frozen=True)
class SnapshotInfo:
    """A captured snapshot: its name, the sandbox it captures, its archive's digest."""

    name: str
    sandbox: str
    digest: str


@dataclass(frozen=True)
class ExecOutcome:
    """What a command run in a sandbox returned."""

    exit_code: int
    stdout: str
    stderr: str


class SandboxService:
    """Create, list, exec in, move files into and delete the sandboxes of one API project."""

    def __init__(self, home: Path, runtime: Runtime, store: StateStore, *, project: str = "api",
                 lock_timeout: float = 60.0) -> None:
        from asbx.spec.values import check_name

        self.home = home
        self.runtime = runtime
        self.store = store
        self.project = check_name(project)
        self.lock_timeout = lock_timeout
        self.spec_path = home / SPEC_DIR / "sandboxes.yaml"
        self._mutex = threading.Lock()  # one mutation at a time here; the state lock across
        self._serial_seen: int | None = None  # the state's serial after this server's changes

    @property
    def direct_runtime(self) -> Runtime:
        """The runtime without kept listings (plans and applies of other projects)."""
        from asbx.runtime.cached import uncached

        return uncached(self.runtime)

    def _outside_changes(self) -> None:
        """Forget kept listings when the project's state changed outside this server (an
        `asbx apply` of the same project): its events may not have arrived yet."""
        from asbx.runtime.cached import forget_listings

        serial = self.store.project(self.project).serial
        if serial != self._serial_seen:
            forget_listings(self.runtime)
            self._serial_seen = serial

    # -- the declaration
    def _document(self) -> dict[str, Any]:
        try:
            data = yaml.safe_load(self.spec_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            data = None
        if not isinstance(data, dict):
            data = {}
        sandboxes, snapshots = data.get("sandboxes"), data.get("snapshots")
        return {"version": 1, "name": self.project,
                "sandboxes": dict(sandboxes) if isinstance(sandboxes, dict) else {},
                "snapshots": dict(snapshots) if isinstance(snapshots, dict) else {}}

    def _load(self, document: Mapping[str, Any]) -> LoadedSpec:
        """Validate a document as the spec loader does (SpecError with every problem)."""
        text = yaml.safe_dump(dict(document), sort_keys=False)
        return load_spec_text(text.encode(), self.spec_path, environ={},
                              display=str(self.spec_path))

    def _write(self, document: Mapping[str, Any]) -> None:
        self.spec_path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        tmp = self.spec_path.with_suffix(".yaml.tmp")
        tmp.write_text(yaml.safe_dump(dict(document), sort_keys=False), encoding="utf-8")
        os.replace(tmp, self.spec_path)

    # -- reads
    def sandboxes(self) -> list[SandboxInfo]:
        from asbx.reap import list_project_containers

        declared = self._document()["sandboxes"]
        self._outside_changes()
        containers = list_project_containers(self.runtime, self.project)
        return [self._info(name, box, containers.get(Address(ResourceKind.SANDBOX, name)))
                for name, box in declared.items()]

    def get(self, name: str) -> SandboxInfo:
        box = self._declared(name)
        return self._info(name, box, self._container(name))

    def _declared(self, name: str) -> Any:
        declared = self._document()["sandboxes"]
        if name not in declared:
            raise NotFoundError(f"no sandbox {name!r}")
        return declared[name]

    def _container(self, name: str) -> ObservedContainer | None:
        from asbx.runtime.base import LABEL_ADDRESS, LABEL_PROJECT
        from asbx.runtime.cached import containers_now

        labels = {LABEL_PROJECT: self.project, LABEL_ADDRESS: f"sandbox.{name}"}
        self._outside_changes()
        found = containers_now(self.runtime, labels)  # an answer says what is there now
        return found[0] if found else None

    @staticmethod
    def _info(name: str, box: Any, container: ObservedContainer | None) -> SandboxInfo:
        image = str(box.get("image", "")) if isinstance(box, dict) else ""
        if container is None:
            return SandboxInfo(name, image, "missing", "")
        return SandboxInfo(name, image, container.state.value, container.name)

    # -- mutations: change the declaration, then apply it through the workflow
    @contextmanager
    def _mutation(self, command: str) -> Iterator[None]:
        """One mutation at a time: queued up to lock_timeout here, then on the project's state
        lock (shared with the CLI), which names its holder when it times out (409)."""
        started = time.monotonic()
        if not self._mutex.acquire(timeout=self.lock_timeout):
            raise StateLockedError(f"project {self.project} is busy: another API request held "
                                   f"it for more than {self.lock_timeout:g}s",
                                   hint="retry later, or start the server with a longer "
                                        "--lock-timeout")
        try:
            left = max(0.0, self.lock_timeout - (time.monotonic() - started))
            with self.store.locked(self.project, command, left):
                self._outside_changes()
                try:
                    yield
                finally:  # what this server changed is in its kept listings already
                    self._serial_seen = self.store.project(self.project).serial
        finally:
            self._mutex.release()

    def create(self, name: str, fields: Mapping[str, Any]) -> SandboxInfo:
        """Declare sandbox `name` with the spec's fields and apply it; SpecError if invalid."""
        from asbx.spec.values import check_name

        try:
            check_name(name)
        except ValueError as exc:
            raise SpecError(_diagnostic(f"name: {exc}")) from None
        with self._mutation("api create"):
            document = self._document()
            if name in document["sandboxes"]:
                raise ConflictError(f"sandbox {name!r} already exists")
            _refuse_host_access(name, fields)
            document["sandboxes"][name] = _escape(dict(fields))
            loaded = self._load(document)
            previous = self._document()
            self._write(document)
            try:
                self._apply(loaded, name)
            except AsbxError:
                self._write(previous)
                # remove what was made of it; the first error is the answer either way
                with suppress(AsbxError):
                    self._apply(self._load(previous), name, allow_data_loss=True)
                raise
        # the runtime says what became of it (a main process may already have exited)
        return self.get(name)

    def delete(self, name: str) -> None:
        """Remove sandbox `name` from the declaration and apply that (its workspace goes)."""
        with self._mutation("api delete"):
            document = self._document()
            if name not in document["sandboxes"]:
                raise NotFoundError(f"no sandbox {name!r}")
            del document["sandboxes"][name]
            loaded = self._load(document)
            self._write(document)
            self._apply(loaded, name, allow_data_loss=True)

    def snapshot(self, name: str, snapshot: str) -> SnapshotInfo:
        """Capture sandbox `name`'s /workspace as snapshot `snapshot` (declared in the spec as
        `{sandbox: name}`; taken again when it exists). Create from it with
        `workspace: {snapshot: ...}`."""
        from asbx.spec.values import check_name

        try:
            check_name(snapshot)
        except ValueError as exc:
            raise SpecError(_diagnostic(f"snapshot name: {exc}")) from None
        address = Address(ResourceKind.SNAPSHOT, snapshot)
        with self._mutation("api snapshot"):
            document = self._document()
            if name not in document["sandboxes"]:
                raise NotFoundError(f"no sandbox {name!r}")
            old = document["snapshots"].get(snapshot)
            if old is not None and old != {"sandbox": name}:
                raise ConflictError(f"snapshot {snapshot!r} is declared as {old}, not as a "
                                    f"capture of sandbox {name!r}")
            document["snapshots"][snapshot] = {"sandbox": name}
            loaded = self._load(document)
            self._write(document)
            self._apply(loaded, address, replace=old is not None)
        record = self.store.snapshot(self.project).records.get(address)
        digest = str(record.outputs.get("digest", "")) if record is not None else ""
        return SnapshotInfo(snapshot, name, digest)

    def snapshots(self) -> list[SnapshotInfo]:
        """The API project's snapshots: name, the sandbox each captures, its archive's digest
        ("" until captured)."""
        records = self.store.snapshot(self.project).records
        out = []
        for name, declared in self._document()["snapshots"].items():
            record = records.get(Address(ResourceKind.SNAPSHOT, name))
            sandbox = declared.get("sandbox", "") if isinstance(declared, dict) else ""
            digest = str(record.outputs.get("digest", "")) if record is not None else ""
            out.append(SnapshotInfo(name, str(sandbox), digest))
        return out

    def delete_snapshot(self, snapshot: str) -> None:
        """Take snapshot `snapshot` out of the declaration and apply that (its archive goes
        unless another record uses it); a sandbox restored from it keeps it (SpecError)."""
        address = Address(ResourceKind.SNAPSHOT, snapshot)
        with self._mutation("api snapshot delete"):
            document = self._document()
            if snapshot not in document["snapshots"]:
                raise NotFoundError(f"no snapshot {snapshot!r}")
            del document["snapshots"][snapshot]
            loaded = self._load(document)
            self._write(document)
            self._apply(loaded, address, allow_data_loss=True)

    def _apply(self, loaded: LoadedSpec, name: str | Address, *, allow_data_loss: bool = False,
               replace: bool = False) -> None:
        from asbx.apply.applier import check_applicable
        from asbx.plan.model import PlanOptions
        from asbx.workflow import Session, make_plan, run_apply

        session = Session.create(loaded, self.runtime, self.store, self.home, self.project)
        address = name if isinstance(name, Address) else Address(ResourceKind.SANDBOX, name)
        target = frozenset({address})
        options = PlanOptions(targets=target, allow_data_loss=allow_data_loss,
                              replace=target if replace else frozenset())
        planned = make_plan(session, options)
        check_applicable(planned.plan)
        if not planned.plan.pending and not planned.plan.state_only:
            return
        result = run_apply(session, planned, parallelism=4, hooks=NullApplyHooks())
        if not result.ok:
            reasons = "; ".join(f"{o.node[0]} ({o.node[1]}): {o.error}" for o in result.failed)
            raise ApplyError(f"applying {address} failed: {reasons or 'steps skipped'}")

    # -- running state (as `asbx start` / `asbx stop`, with the same bookkeeping)
    def start(self, name: str) -> SandboxInfo:
        """Start a stopped sandbox (a running one is left as it is)."""
        from asbx.reap import clear_mark

        container = self._created(name)
        if container.state is not ContainerState.RUNNING:
            address = Address(ResourceKind.SANDBOX, name)
            self.runtime.start_container(container.name)
            self.store.touch(self.project, address)
            clear_mark(self.home, self.project, address)
        return self.get(name)

    def stop(self, name: str, grace: int = 10) -> SandboxInfo:
        """Stop a running sandbox; nothing is deleted."""
        from asbx.reap import mark_stopped

        container = self._created(name)
        if container.state is ContainerState.RUNNING:
            self.runtime.stop_container(container.name, timeout=grace)
            mark_stopped(self.home, self.project, Address(ResourceKind.SANDBOX, name), container)
        return self.get(name)

    def _created(self, name: str) -> ObservedContainer:
        self._declared(name)
        container = self._container(name)
        if container is None:
            raise NotFoundError(f"sandbox {name!r} has no container (apply it again)")
        return container

    # -- in a sandbox
    def exec(self, name: str, command: list[str], *, env: Mapping[str, str] | None = None,
             stdin: str | bytes | BinaryIO | None = None, timeout: float | None = None,
             on_output: Callable[[str, str], None] | None = None) -> ExecOutcome:
        """Run `command` in the sandbox (started first if stopped); its exit code and output."""
        from asbx.runtime.base import ACTIVE_SESSION_ENV
        from asbx.sandbox_exec import exec_by_recorded_id

        if not command:
            raise AsbxError("the command is empty")
        self._declared(name)
        address = Address(ResourceKind.SANDBOX, name)
        variables = {**(env or {}), ACTIVE_SESSION_ENV: f"api-{os.getpid()}"}

        def run(target: str) -> ExecResult:
            return self.runtime.exec(target, tuple(command), env=variables,
                                     stdin=stdin.encode() if isinstance(stdin, str) else stdin,
                                     timeout=timeout, on_output=on_output)

        self.store.touch(self.project, address)
        try:
            # One runtime call when the sandbox runs: by the id of the container asbx made (a
            # same-named container made by anything else is never entered). A missing or
            # stopped container is refused before the command starts (the runtime's own
            # error, typed); then look, start it, run.
            recorded = self._recorded_container_id(address)
            result = None if recorded is None else exec_by_recorded_id(
                self.runtime, self.project, address, recorded, run)
            if result is None:
                result = run(self._running(name, address))
        finally:
            self.store.touch(self.project, address)
        return ExecOutcome(result.exit_code, result.stdout, result.stderr)

    def _recorded_container_id(self, address: Address) -> str | None:
        record = self.store.snapshot(self.project).records.get(address)
        found = record.outputs.get("container_id") if record is not None else None
        return str(found) if found else None

    def _running(self, name: str, address: Address) -> str:
        """The sandbox's container, started if it was stopped (as `asbx exec` does)."""
        from asbx.reap import clear_mark

        container = self._created(name)
        if container.state is not ContainerState.RUNNING:
            self.runtime.start_container(container.name)
            clear_mark(self.home, self.project, address)
        return container.name

    def workspace(self, name: str) -> Path:
        from asbx.data.workspaces import workspace_path

        self._declared(name)
        return workspace_path(self.home, self.project, name)

    def read_file(self, name: str, path: str) -> bytes:
        return files.read_file(self.workspace(name), path)

    def write_file(self, name: str, path: str, data: bytes) -> None:
        files.write_file(self.workspace(name), path, data)

    def delete_file(self, name: str, path: str) -> None:
        files.delete_file(self.workspace(name), path)


def describe(exc: AsbxError) -> str:
    """An error's message as the API and the MCP tools give it (a spec error: every problem)."""
    if isinstance(exc, SpecError):
        return "\n".join(d.headline() + (f" (hint: {d.hint})" if d.hint else "")
                         for d in exc.diagnostics)
    return exc.message


def _refuse_host_access(name: str, fields: Mapping[str, Any]) -> None:
    """Fields that would reach the server's files or environment are the spec file's to give,
    not an API caller's: env_file, bind mounts, workspace.from, env taken from the server."""
    where = f"sandboxes.{name}"
    found: list[str] = []
    if "env_file" in fields:
        found.append(f"{where}.env_file: reads files on the server")
    workspace = fields.get("workspace")
    if isinstance(workspace, dict) and "from" in workspace:
        found.append(f"{where}.workspace.from: copies a directory of the server "
                     "(seed it with PUT .../files/ or a snapshot instead)")
    for index, mount in enumerate(fields.get("volumes") or ()):
        source = mount.split(":", 1)[0] if isinstance(mount, str) else ""
        if (isinstance(mount, dict) and "bind" in mount) or source.startswith((".", "/", "~")):
            found.append(f"{where}.volumes[{index}]: mounts a directory of the server")
    env = fields.get("env")
    if isinstance(env, dict):
        found += [f"{where}.env.{k}: no value takes the server's own" for k, v in env.items()
                  if v is None]
    elif isinstance(env, list):
        found += [f"{where}.env: {item!r} without a value takes the server's own"
                  for item in env if isinstance(item, str) and "=" not in item]
    if found:
        raise SpecError(_diagnostic(*(f"{p}; not accepted through the API" for p in found)))


def _escape(value: Any) -> Any:
    """`$` doubled in every string: API input is literal, never interpolated from the server's
    environment."""
    if isinstance(value, str):
        return value.replace("$", "$$")
    if isinstance(value, dict):
        return {k: _escape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_escape(v) for v in value]
    return value


def _diagnostic(*messages: str) -> list[Any]:
    from asbx.diagnostics import Diagnostic

    return [Diagnostic(message) for message in messages]
