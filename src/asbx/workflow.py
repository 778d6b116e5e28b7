"""The pipeline the CLI runs: load -> observe -> plan, then plan -> apply."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from asbx.addresses import Address, ResourceKind
from asbx.errors import AsbxError, NotFoundError, PlanError
from asbx.project import project_name

if TYPE_CHECKING:  # imported where used: `exec` never loads the planner, a no-op the applier
    from asbx.apply.applier import ApplyResult
    from asbx.apply.hooks import ApplyHooks
    from asbx.data.context import ContextDigest
    from asbx.leftovers import StraySandbox, SupersededImage
    from asbx.network.firewall import Installed
    from asbx.plan.model import Plan, PlanOptions
    from asbx.plan.observed import Leftover, Observed
    from asbx.render.kubernetes.model import Rendered, RenderOptions
    from asbx.runtime.base import ObservedImage, Runtime
    from asbx.secret_values import SecretValues
    from asbx.spec.loader import LoadedSpec
    from asbx.state.records import StateSnapshot
    from asbx.state.store import StateStore


@dataclass
class Session:
    """One invocation's collaborators: the loaded spec, the runtime, the store, the home dir."""

    loaded: LoadedSpec
    runtime: Runtime
    store: StateStore
    home: Path
    project: str

    @classmethod
    def create(
        cls,
        loaded: LoadedSpec,
        runtime: Runtime,
        store: StateStore,
        home: Path,
        override: str | None = None,
    ) -> Session:
        name = project_name(loaded.directory, loaded.spec.name, override)
        spec_path = str(loaded.path.resolve())
        if store.project(name, spec_path).spec_path != spec_path:
            store.set_spec_path(name, spec_path)  # `reap` finds the spec here
        return cls(loaded, runtime, store, home, name)

    @property
    def project_dir(self) -> Path:
        return self.home / "projects" / self.project

    @cached_property
    def secrets(self) -> SecretValues:
        """The spec's secret values, read from their sources on first use, kept in memory."""
        from asbx.secret_values import SecretValues

        return SecretValues(self.loaded.spec.secrets, self.loaded.directory)


@dataclass(frozen=True)
class Planned:
    """A plan with the inputs apply needs to carry it out."""

    plan: Plan
    state: StateSnapshot
    observed: Observed
    pinned: Mapping[str, str]
    contexts: Mapping[str, ContextDigest]
    secret_hashes: Mapping[str, str] = field(default_factory=dict)


def spec_digest(loaded: LoadedSpec) -> str:
    """A digest of the spec file and what it reads (Dockerfiles), for stale-plan detection."""
    h = hashlib.sha256(loaded.path.read_bytes())
    for name in sorted(loaded.dockerfiles):
        h.update(name.encode() + b"\0" + loaded.dockerfiles[name].encode())
    return "sha256:" + h.hexdigest()


def make_plan(session: Session, options: PlanOptions, *, locked: bool = False) -> Planned:
    """Observe (one call per kind) and plan; nothing is changed.

    With a sandboxes.lock, pulled images are pinned to their locked digests; `locked` makes a
    missing or out-of-date lock an error instead of a warning (nothing new is resolved).
    """
    from asbx.lockfile import lock_path
    from asbx.plan.model import BuildInputs
    from asbx.plan.observed import Observed
    from asbx.plan.planner import PlanInput, plan

    state = session.store.snapshot(session.project)
    archives = _archives(session.home) if options.refresh else []
    observed = _observe(session, archives) if options.refresh else Observed()
    state = _recovered_salt(state, observed, session.project)
    contexts, details = context_digests(session, state)
    lock_problems, pinned = _lock_state(session, {n: c.digest for n, c in contexts.items()}, locked)
    secret_hashes = _secret_hashes(session, state.meta.salt, options)
    inputs = PlanInput(
        project=session.project,
        spec=session.loaded.spec,
        graph=session.loaded.graph,
        state=state,
        observed=observed,
        options=options,
        capabilities=session.runtime.capabilities,
        context_digests={n: c.digest for n, c in contexts.items()},
        context_details=details,
        pinned=pinned,
        archive_digests=_archive_digests(session.loaded),
        spec_digest=spec_digest(session.loaded),
        runtime=session.runtime.name,
        now=time.time(),
        allowlist_blocker=_allowlist_blocker(session),
        seed_secrets=_seed_secrets(session, observed, options),
        secret_hashes=secret_hashes,
    )
    result = plan(inputs)
    if result.limits_blocked:  # the runtime's version may allow an in-place change: ask it
        probed = session.runtime.probe_capabilities()
        if probed != inputs.capabilities:
            result = plan(dataclasses.replace(inputs, capabilities=probed))
    if lock_problems:
        warning = "sandboxes.lock is out of date: " + "; ".join(lock_problems) + " (run asbx lock)"
        result = dataclasses.replace(result, warnings=(*result.warnings, warning))
    result = dataclasses.replace(
        result,
        lock_digest=_file_digest(lock_path(session.loaded.path)),
        contexts={n: BuildInputs(c.digest, c.files) for n, c in contexts.items()},
    )
    return Planned(result, state, observed, pinned, contexts, secret_hashes)


def _secret_hashes(session: Session, salt: str, options: PlanOptions) -> dict[str, str]:
    """The salted hash of each secret a sandbox uses, read now from its source (a source that
    fails is an error naming the secret); none for a destroy."""
    from asbx.plan.salted import salted_hash
    from asbx.secret_values import FETCHED, FetchLog

    if options.destroy:
        return {}
    sources = session.loaded.spec.secrets
    used = sorted({name for box in session.loaded.spec.sandboxes.values()
                   for name in (box.secrets or {}) if name in sources})
    fetched, now = FetchLog(session.project_dir / FETCHED), time.time()
    hashes = {}
    for name in used:
        known = fetched.fresh_hash(name, sources[name], now)
        if known is None:  # read it (runs a command); a ttl source notes when, and the hash
            known = salted_hash(salt, session.secrets.value(name))
            fetched.ran(name, sources[name], known, now)
        hashes[name] = known
    return hashes


def _archive_digests(loaded: LoadedSpec) -> dict[str, str]:
    """The digest of each snapshot's declared `archive:` file, as the snapshot store names it."""
    from asbx.spec.loader import snapshot_archive

    digests: dict[str, str] = {}
    for name, snap in loaded.spec.snapshots.items():
        if snap.archive is None:
            continue
        file = snapshot_archive(loaded.directory, snap.archive)
        if file is None:
            raise AsbxError(f"snapshot.{name}: its archive {snap.archive!r} is not a file "
                            "inside the spec's directory")
        digests[name] = _file_digest(file)
    return digests


def import_snapshot(
    session: Session, name: str, file: Path, *, hooks: ApplyHooks
) -> ApplyResult:
    """`asbx snapshot import FILE NAME`: FILE becomes snapshot NAME's value, recorded by apply's
    own import step with the config hash a plan computes now (lock pins and contexts included),
    so the next plan keeps it (as imported) until `--replace snapshot.NAME` retakes it."""
    from asbx.plan.model import Action, Change, PlanOptions, Reason
    from asbx.spec.model import SnapshotSpec

    address = Address(ResourceKind.SNAPSHOT, name)
    spec = session.loaded.graph.resources.get(address)
    if spec is None:
        raise NotFoundError(
            f"snapshot.{name} is not declared in {session.loaded.path.name}",
            hint=f"declare it under snapshots: first ({name}: {{sandbox: ...}})",
        )
    if isinstance(spec, SnapshotSpec) and spec.archive is not None:
        raise AsbxError(
            f"snapshot.{name} is imported from {spec.archive}, as sandboxes.yaml declares",
            hint=f"replace that file instead (the next apply imports it), or drop archive: "
                 f"from snapshot.{name}",
        )
    planned = make_plan(session, PlanOptions(targets=frozenset({address}), refresh=False))
    now = next(c for c in planned.plan.changes if c.address == address)
    change = Change(address, Action.CREATE, Reason.REQUESTED, "import", f"from {file.name}",
                    config_hash=now.config_hash)
    one = dataclasses.replace(planned, plan=dataclasses.replace(planned.plan, changes=(change,)))
    return run_apply(session, one, parallelism=1, hooks=hooks, imports={name: file})


def _file_digest(path: Path) -> str:
    """sha256 of a file's bytes, "" when there is none (what a saved plan compares)."""
    try:
        with path.open("rb") as handle:
            return "sha256:" + hashlib.file_digest(handle, "sha256").hexdigest()
    except FileNotFoundError:
        return ""


def _recovered_salt(state: StateSnapshot, observed: Observed, project: str) -> StateSnapshot:
    """With no records (a lost or new database), hash with the salt the runtime's objects are
    labelled with, so that what asbx made is adopted rather than seen as changed."""
    salt = observed.labelled_salt(project) if not state.records else ""
    if not salt or salt == state.meta.salt:
        return state
    return dataclasses.replace(state, meta=dataclasses.replace(state.meta, salt=salt))


def _observe(session: Session, archives: list[str]) -> Observed:
    """Observe; if the runtime fails, let its check() explain why (missing, stopped, ...)."""
    from asbx.observe import observe

    try:
        observed = observe(session.runtime, session.project, archives)
    except AsbxError:
        session.runtime.check()
        raise
    return dataclasses.replace(
        observe_egress(session, observed),
        setup_done=_setup_done(session),
        limits_set=_limits_set(session),
        workspaces=_workspaces(session),
        snapshot_marks=_snapshot_marks(session),
    )


def observe_egress(session: Session, observed: Observed) -> Observed:
    """Add what allowlist networking looks like: dead proxies, missing firewall rules and
    leftovers (file checks, one iptables listing per family, a network listing if needed)."""
    if not _allowlisted(session) and not (session.project_dir / "sandboxes").is_dir():
        return observed
    from asbx.apply.egress import installed_chains, unguarded

    chains = installed_chains(session.project)
    guards_down = (
        frozenset(Address(ResourceKind.SANDBOX, s)
                  for s in unguarded(session.project, _allowlisted(session), chains))
        if not _allowlist_blocker(session) else frozenset()
    )
    return dataclasses.replace(
        observed, proxies_down=_proxies_down(session), guards_down=guards_down,
        leftovers=_egress_leftovers(session, chains))


def _snapshot_marks(session: Session) -> dict[str, tuple[str, str]]:
    """(archive digest, config hash) of each declared snapshot's last capture, from its note."""
    if not session.loaded.spec.snapshots:
        return {}
    from asbx.data.recovery import read_snapshot_marks

    marks = read_snapshot_marks(session.home, session.project)
    return {n: (m.digest, m.config_hash) for n, m in marks.items()
            if n in session.loaded.spec.snapshots}


def _workspaces(session: Session) -> frozenset[str]:
    """Sandbox names with a workspace directory under the project's directory (one listdir)."""
    from asbx.data.workspaces import WORKSPACE_DIR

    root = session.project_dir / "sandboxes"
    if not root.is_dir() or root.is_symlink():
        return frozenset()
    return frozenset(p.name for p in root.iterdir() if (p / WORKSPACE_DIR).is_dir())


def _setup_done(session: Session) -> dict[Address, str]:
    """Sandboxes with setup whose marker names the container it finished in (file reads only)."""
    from asbx.data.workspaces import read_setup_marker

    done = {
        Address(ResourceKind.SANDBOX, name): read_setup_marker(session.home, session.project, name)
        for name, box in session.loaded.spec.sandboxes.items()
        if box.setup
    }
    return {address: marker for address, marker in done.items() if marker}


def _limits_set(session: Session) -> dict[Address, tuple[str, str]]:
    """Sandboxes whose limits were set in place, by container id and hash (file reads only)."""
    from asbx.data.workspaces import read_limits_note

    notes = {Address(ResourceKind.SANDBOX, name): read_limits_note(session.home, session.project,
                                                                   name)
             for name in session.loaded.spec.sandboxes}
    return {address: note for address, note in notes.items() if note}


def _allowlisted(session: Session) -> list[str]:
    return [n for n, b in session.loaded.spec.sandboxes.items() if b.network.mode == "allow"]


def _egress_leftovers(session: Session, chains: list[Installed] | None = None
                     ) -> tuple[Leftover, ...]:
    """Proxies and firewall chains of this project that outlived their network or sandbox."""
    from asbx.apply.egress import find_leftovers, installed_chains

    if chains is None:
        chains = installed_chains(session.project)
    return find_leftovers(session.runtime, session.home, session.project, _allowlisted(session),
                          chains)


def _proxies_down(session: Session) -> frozenset[Address]:
    """Allowlisted sandboxes whose egress proxy is not running (a file check, no runtime call)."""
    allowlisted = _allowlisted(session)
    if not allowlisted:
        return frozenset()
    from asbx.apply.egress import run_dir
    from asbx.network.manager import proxy_status

    return frozenset(
        Address(ResourceKind.SANDBOX, name)
        for name in allowlisted
        if proxy_status(run_dir(session.home, session.project, name)).state != "running"
    )


def run_apply(
    session: Session,
    planned: Planned,
    *,
    parallelism: int,
    hooks: ApplyHooks,
    cancel: threading.Event | None = None,
    imports: Mapping[str, Path] | None = None,
) -> ApplyResult:
    """Carry out `planned.plan`; each finished step is recorded as it finishes. `imports`
    (snapshot name -> archive file) are what `import_snapshot` asks to import."""
    from asbx.apply.applier import apply_plan
    from asbx.apply.steps import StepContext
    from asbx.plan.hashing import applied_form

    salt = planned.state.meta.salt
    if not planned.state.records and session.store.project(session.project).salt != salt:
        session.store.adopt_salt(session.project, salt)  # recovered from the runtime's labels
    applied = {a: applied_form(spec, salt, planned.secret_hashes)
               for a, spec in session.loaded.graph.resources.items()}
    opts = planned.plan.options
    ctx = StepContext(
        project=session.project,
        loaded=session.loaded,
        runtime=session.runtime,
        store=session.store,
        home=session.home,
        applied=applied,
        records=planned.state.records,
        pinned=planned.pinned,
        context_digests={n: c.digest for n, c in planned.contexts.items()},
        drop_workspaces=opts.destroy_workspaces if opts.destroy else opts.allow_data_loss,
        drop_archives=opts.destroy_snapshots if opts.destroy else opts.allow_data_loss,
        egress=_egress(session),
        secrets=session.secrets,
        imports=dict(imports or {}),
        salt=salt,
        images=planned.observed.images,
    )
    deps = {a: tuple(session.loaded.graph.dependencies(a)) for a in session.loaded.graph.resources}
    result = apply_plan(
        planned.plan, ctx, deps, parallelism=parallelism, hooks=hooks, cancel=cancel
    )
    if opts.refresh and (_allowlisted(session) or planned.observed.leftovers):
        # With no allowlist sandbox declared, every proxy or chain of the project would have
        # been a leftover when the plan looked, and this apply made none: nothing to look for.
        remove_egress_leftovers(session)
    return result


def remove_egress_leftovers(session: Session) -> int:
    """After apply/destroy: stop proxies and remove firewall chains that guard nothing now
    (found afresh: the apply may have recreated a network, or removed one)."""
    from asbx.apply.egress import remove_leftovers

    leftovers = _egress_leftovers(session)
    if leftovers:
        remove_leftovers(session.home, session.project, leftovers)
    return len(leftovers)


def context_digests(
    session: Session, state: StateSnapshot
) -> tuple[dict[str, ContextDigest], dict[str, str]]:
    """Digest of every build context (stat-cached), and a description of what changed."""
    contexts: dict[str, ContextDigest] = {}
    details: dict[str, str] = {}
    builds = {n: i for n, i in session.loaded.spec.images.items() if i.build is not None}
    if not builds:
        return contexts, details
    from asbx.data.context import context_digest, describe_build_change
    from asbx.lockfile import lock_files

    cache_dir = session.project_dir / "contexts"
    for name, image in builds.items():
        build = image.build
        assert build is not None
        cache_dir.mkdir(parents=True, exist_ok=True)
        root = session.loaded.resolve(build.context)
        contexts[name] = context_digest(
            root,
            dockerfile=None
            if build.inline is not None
            else root / (build.dockerfile or "Dockerfile"),
            inline=build.inline,
            args=dict(build.args),
            target=build.target,
            platform=image.platform,
            cache=cache_dir / f"{name}.cache",
            skip=lock_files(session.loaded.path),
        )
        manifest = cache_dir / f"{name}.applied.json"
        if Address(ResourceKind.IMAGE, name) in state.records and manifest.is_file():
            old = json.loads(manifest.read_text(encoding="utf-8"))
            if old.get("digest") != contexts[name].digest:
                details[name] = describe_build_change(
                    old.get("inputs", {}), old.get("files", {}), contexts[name]
                )
    return contexts, details


def remember_contexts(session: Session, planned: Planned, built: set[str]) -> None:
    """After a build, keep its context's file manifest to explain the next change."""
    cache_dir = session.project_dir / "contexts"
    for name in built & planned.contexts.keys():
        context = planned.contexts[name]
        (cache_dir / f"{name}.applied.json").write_text(
            json.dumps({"digest": context.digest, "files": dict(context.files),
                        "inputs": dict(context.inputs)}),
            encoding="utf-8",
        )


def _archives(home: Path) -> list[str]:
    root = home / "snapshots" / "sha256"
    if not root.is_dir():
        return []
    return ["sha256:" + p.name.removesuffix(".tar.zst") for p in root.glob("*.tar.zst")]


def _seed_secrets(session: Session, observed: Observed, options: PlanOptions
                  ) -> dict[str, tuple[str, ...]]:
    """Per sandbox this plan may seed from `from:`: the secret files seeding leaves out."""
    from asbx.data.secrets import secrets_in_source

    out = {}
    for name, box in session.loaded.spec.sandboxes.items():
        ws = box.workspace
        reseeded = Address(ResourceKind.SANDBOX, name) in options.replace
        if ws is None or ws.from_ is None or (name in observed.workspaces and not reseeded):
            continue
        out[name] = secrets_in_source(session.loaded.resolve(ws.from_), ws.ignore,
                                      ws.include or ())
    return out


def _lock_state(
    session: Session, context_digests: Mapping[str, str], locked: bool
) -> tuple[list[str], dict[str, str]]:
    """(problems, pinned digests) from sandboxes.lock; with `locked`, problems are errors."""
    from asbx.lockfile import lock_path, read_lock, stale_entries

    path = lock_path(session.loaded.path)
    lock = read_lock(path)
    if lock is None:
        if locked:
            raise PlanError(
                [f"--locked needs {path.name} beside the spec, and there is none"],
                hint="create it with `asbx lock` and check it in",
            )
        return [], {}
    problems = stale_entries(lock, session.loaded.graph, context_digests)
    if locked and problems:
        raise PlanError(
            [f"{path.name} is out of date: {p}" for p in problems],
            hint="run `asbx lock` (or drop --locked)",
        )
    return problems, lock.pinned()


def resolve_digests(
    session: Session,
    names: list[str] | None = None,
    *,
    warn: Callable[[str], None] | None = None,
) -> dict[str, str]:
    """Each pulled image's current registry digest, from a pull (what `asbx lock` pins and
    `lock --check` compares).

    A failed pull is an error (the runtime's PullError: the image and the cause): a lock must
    never pin, nor `lock --check` approve, a digest the registry was not asked about. The one
    exception is an image in the `localhost/` namespace (how podman names images built or loaded
    on this machine, e.g. the offline base image localhost/asbx/busybox): no registry serves it,
    so when the pull finds no registry or no such image, the local image's digest is pinned and
    `warn` says so.
    """
    from concurrent.futures import ThreadPoolExecutor

    from asbx.spec.model import ImageSpec

    refs = {
        a.name: s
        for a, s in session.loaded.graph.resources.items()
        if a.kind is ResourceKind.IMAGE
        and isinstance(s, ImageSpec)
        and s.ref is not None
        and (names is None or a.name in names)
    }
    warnings: dict[str, str] = {}

    def resolve(name: str) -> str:
        spec = refs[name]
        assert spec.ref is not None
        try:
            image = session.runtime.pull(spec.ref, spec.platform)
        except AsbxError as exc:
            local = _local_only_image(session, spec.ref, exc)
            if local is None:
                raise
            warnings[name] = (
                f"image.{name}: {spec.ref} is a local image that no registry serves (the pull "
                f"said: {_cause(exc)}); locked to its local digest {local.digest}, which only "
                "a machine holding this very image can use"
            )
            image = local
        if not image.digest:
            raise AsbxError(f"image.{name}: the runtime reports no digest for {spec.ref}")
        return image.digest

    with ThreadPoolExecutor(max_workers=4) as pool:
        resolved = dict(zip(refs, pool.map(resolve, refs), strict=True))
    for name in refs:
        if name in warnings and warn is not None:
            warn(warnings[name])
    return resolved


def _cause(error: AsbxError) -> str:
    from asbx.runtime.pull_errors import PullError

    return str(error.cause) if isinstance(error, PullError) else error.message


def _local_only_image(session: Session, ref: str, error: AsbxError) -> ObservedImage | None:
    """The local image behind a `localhost/...` reference whose pull found no registry or no
    such image; None for anything else (a registry error is then the answer)."""
    from asbx.images import local_only
    from asbx.runtime.pull_errors import PullCause, PullError

    if not local_only(ref) or not (
        isinstance(error, PullError)
        and error.cause in (PullCause.UNREACHABLE, PullCause.NOT_FOUND)
    ):
        return None
    local = session.runtime.inspect_image(ref)
    return local if local is not None and local.digest else None


def _allowlist_blocker(session: Session) -> str:
    """Why this host cannot keep an allowlist sandbox to its proxy ("" if it can). Only asked
    when the spec has an allowlist sandbox; the runtime's own blocker is the planner's."""
    if not _allowlisted(session):
        return ""
    from asbx.network.firewall import blocker

    return blocker()


def _egress(session: Session) -> object | None:
    from asbx.apply.egress import Egress

    return Egress()


def project_leftovers(session: Session) -> tuple[list[SupersededImage], list[StraySandbox]]:
    """The project's superseded built images and the directories of sandboxes that neither the
    spec, the state nor the runtime knows (what `gc` removes)."""
    from asbx.leftovers import stray_sandboxes, superseded_images
    from asbx.runtime.base import LABEL_ADDRESS, LABEL_PROJECT

    records = session.store.snapshot(session.project).records
    keep = set(session.loaded.spec.sandboxes)
    keep |= {a.name for a in records if a.kind is ResourceKind.SANDBOX}
    for container in session.runtime.list_containers({LABEL_PROJECT: session.project}):
        label = container.labels.get(LABEL_ADDRESS, "")
        keep.add(
            label.partition(".")[2]
            if label.startswith("sandbox.")
            else container.name.removeprefix(f"{session.project}-")  # as container_name() names it
        )
    images = superseded_images(session.runtime, session.project, records)
    return images, stray_sandboxes(session.home, session.project, keep)


def prune_superseded_images(session: Session, result: ApplyResult) -> list[str]:
    """After an apply that built or removed a built image and fully succeeded, remove the
    project's built images that no record names and no container uses; returns their tags."""
    from asbx.leftovers import remove_images, superseded_images
    from asbx.plan.model import Action

    touched = any(
        a.kind is ResourceKind.IMAGE
        and not c.record_only
        and (c.action is Action.DELETE or (c.action is Action.CREATE and c.verb == "build"))
        for a, c in result.changes.items()
    )
    if not touched or not result.ok:
        return []
    records = session.store.snapshot(session.project).records
    return remove_images(
        session.runtime, superseded_images(session.runtime, session.project, records)
    )


def render_kubernetes(loaded: LoadedSpec, options: RenderOptions) -> Rendered:
    """The project as agent-sandbox manifests, every object validated before it is returned."""
    from asbx.lockfile import lock_path, read_lock
    from asbx.render.kubernetes.model import RenderWarning
    from asbx.render.kubernetes.render import render
    from asbx.render.kubernetes.secrets import inlined_references, secret_env
    from asbx.render.kubernetes.validate import validate
    from asbx.spec.yaml_source import decode_text, load_yaml

    raw, _ = load_yaml(decode_text(loaded.path.read_bytes(), loaded.path.name), loaded.path.name)
    lock = read_lock(lock_path(loaded.path))
    rendered = render(loaded.spec, loaded.graph, lock, options, secret_env(raw, loaded.spec))
    for manifest in rendered.manifests:
        validate(manifest)
    inlined = tuple(
        RenderWarning("interpolated", address, f"{path} takes a variable; its value is "
                      "written into the manifest (only env values become Secret references)")
        for address, path in inlined_references(raw))
    return dataclasses.replace(rendered, warnings=inlined + rendered.warnings)
