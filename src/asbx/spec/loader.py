"""load_spec(path): read, interpolate, validate, cross-check a sandboxes.yaml; one SpecError."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from asbx.data.dockerignore import DockerignoreError
from asbx.data.ignore import dockerignore_file, dockerignore_rules, read_ignore_file
from asbx.diagnostics import Diagnostics, Severity, SourcePos
from asbx.errors import DataError, SpecError, SpecNotFoundError
from asbx.graph import CycleError, ResourceGraph, build_graph
from asbx.spec import errors_translation as translate
from asbx.spec.dockerfile import DockerfileError, from_references
from asbx.spec.dotenv import DotenvError, read_dotenv
from asbx.spec.interpolation import interpolate_tree
from asbx.spec.locate import find_spec as find_spec  # re-exported: its old home
from asbx.spec.model import SandboxSpec, Spec
from asbx.spec.semantic import check_spec
from asbx.spec.yaml_source import SourceMap, YamlReadError, decode_text, load_yaml

FREE_FORM_KEYS = frozenset({"env", "labels", "args"})
NAMED_SECTIONS = frozenset({"images", "volumes", "snapshots", "sandboxes"})
MAX_DOCKERFILE_BYTES = 1024 * 1024


@dataclass(frozen=True)
class LoadedSpec:
    """A validated spec with where it came from and its resource graph."""

    spec: Spec
    path: Path
    source_map: SourceMap
    graph: ResourceGraph
    dockerfiles: Mapping[str, str] = field(default_factory=dict)
    warnings: tuple[Any, ...] = ()

    @property
    def directory(self) -> Path:
        return self.path.parent

    def resolve(self, relative: str) -> Path:
        """A path from the spec, resolved against the spec's directory (`~` expanded)."""
        return (self.directory / Path(relative).expanduser()).resolve()


def load_spec(path: Path, environ: Mapping[str, str] | None = None) -> LoadedSpec:
    """Load and check the spec at `path`; every problem is reported in one SpecError."""
    path = path.absolute()
    display = display_name(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise SpecNotFoundError(f"cannot read {display}: {exc.strerror}") from None
    return load_spec_text(raw, path, environ, display=display)


def load_spec_text(
    raw: bytes, path: Path, environ: Mapping[str, str] | None = None, *, display: str | None = None
) -> LoadedSpec:
    """Load a spec from bytes as if read from `path` (relative paths resolve against its dir)."""
    display = display or path.name
    try:
        data, smap = load_yaml(decode_text(raw, display), display)
    except YamlReadError as exc:
        raise SpecError(exc.diagnostics.sorted()) from None
    diags = Diagnostics()
    if not isinstance(data, dict):
        kind = translate.type_name(data)
        diags.add(f"the top level must be a mapping (found {kind})", pos=SourcePos(display, 1, 1),
                  hint="start with `version: 1`")
        raise SpecError(diags.sorted())
    _warn_extension_names(data, smap, diags)
    data = _strip_extensions(data, ())
    env = _variables(path.parent, environ, diags)
    data = interpolate_tree(
        data, env,
        lambda p, msg: diags.add(msg, pos=smap.value_pos(p), path=translate.dotted(p)),
        lambda p, name: diags.add(
            f'the "{name}" variable is not set: it becomes an empty string',
            pos=smap.value_pos(p), path=translate.dotted(p), severity=Severity.WARNING,
            hint=f"set it in the environment or in .env beside the spec, or give a default: "
                 f"${{{name}:-default}} (an empty one: ${{{name}:-}})"),
    )
    crossed, whole = _validate(data, smap, env, diags)
    if crossed is None:
        raise SpecError(diags.sorted())
    diags.extend(check_spec(crossed, smap, _declared_names(data)))
    spec = crossed
    dockerfiles: dict[str, str] = {}
    if whole is not None:  # files are checked only for resources that validated whole
        spec = _merge_env_files(whole, path.parent, smap, env, diags)
        dockerfiles = _read_dockerfiles(spec, path.parent, smap, diags)
        _check_dockerignores(spec, path.parent, smap, diags)
        _check_paths(spec, path.parent, smap, diags)
    graph = _graph(spec if whole is crossed else crossed, dockerfiles, path.parent, smap, diags)
    if diags.has_errors():
        raise SpecError(diags.sorted())
    assert graph is not None
    return LoadedSpec(spec, path, smap, graph, dockerfiles, tuple(diags.warnings))


def display_name(path: Path) -> str:
    """How diagnostics name a spec file: relative to the cwd when below it, else absolute."""
    path = path.absolute()
    try:
        relative = os.path.relpath(path)
    except ValueError:
        return str(path)
    return str(path) if relative.startswith("..") else relative


def _variables(directory: Path, environ: Mapping[str, str] | None,
               diags: Diagnostics) -> dict[str, str]:
    """Interpolation variables: `.env` beside the spec, overridden by the environment."""
    environ = dict(os.environ if environ is None else environ)
    env: dict[str, str] = {}
    dotenv = directory / ".env"
    if dotenv.is_file():
        env.update(_read_env_file(dotenv, directory, environ, diags))
    env.update(environ)
    return env


def _read_env_file(file: Path, directory: Path, lookup: Mapping[str, str], diags: Diagnostics,
                   pos: SourcePos | None = None, path: str = "") -> dict[str, str]:
    """The variables of one `.env`-format file; its errors are reported at their line."""
    shown = _rel(file, directory)

    def warn(line: int, name: str) -> None:
        diags.add(f'the "{name}" variable is not set: it becomes an empty string',
                  pos=SourcePos(shown, line, 1), path=path, severity=Severity.WARNING,
                  hint=f"set it in the environment, or give a default: ${{{name}:-default}}")

    try:
        return read_dotenv(file, lookup, warn)
    except DotenvError as exc:
        diags.add(exc.message, pos=SourcePos(_rel(file, directory), exc.line, 1), path=path,
                  hint="the .env format: KEY=value lines, '#' comments, 'single' or "
                       "\"double\" quotes (with \\n escapes and $VAR expansion)")
        return {}
    except (OSError, UnicodeDecodeError) as exc:
        reason = "it is not UTF-8 text" if isinstance(exc, UnicodeDecodeError) else exc.strerror
        diags.add(f'cannot read "{_rel(file, directory)}": {reason}',
                  pos=pos or SourcePos(_rel(file, directory), 1, 1), path=path)
        return {}


def _warn_extension_names(data: dict[str, Any], smap: SourceMap, diags: Diagnostics) -> None:
    """`x-*` keys are ignored everywhere, even where they would be valid resource names."""
    for section in NAMED_SECTIONS:
        entries = data.get(section)
        if not isinstance(entries, dict):
            continue
        for key in entries:
            if isinstance(key, str) and key.startswith("x-"):
                diags.add(f'"{key}" is ignored: keys starting with "x-" are extensions',
                          pos=smap.key_pos((section, key)), path=section,
                          hint="rename it if it is meant to be a resource",
                          severity=Severity.WARNING)


def _strip_extensions(node: Any, path: tuple[str | int, ...]) -> Any:
    """Drop `x-*` keys (allowed anywhere, ignored), except inside free-form maps like env."""
    if isinstance(node, dict):
        free_form = bool(path) and path[-1] in FREE_FORM_KEYS
        return {
            k: _strip_extensions(v, (*path, k)) for k, v in node.items()
            if free_form or not (isinstance(k, str) and k.startswith("x-"))
        }
    if isinstance(node, list):
        return [_strip_extensions(v, (*path, i)) for i, v in enumerate(node)]
    return node


def _validate(data: dict[str, Any], smap: SourceMap, env: Mapping[str, str],
              diags: Diagnostics) -> tuple[Spec | None, Spec | None]:
    """(model for cross-reference checks, model for file checks) of `data`: the same model
    when it is valid. On errors (recorded in `diags`, so the load still fails), partial models
    let the later checks run too, so one pass reports every problem: references are checked
    on the entries without errors plus those whose only fault is an unknown key (dropped); files
    (Dockerfiles, contexts, env files) only on entries without errors, since a misspelt key
    leaves a default in its place (`contxt:` would make `context` ".", a false "no Dockerfile").
    """
    context = {"env": dict(env)}
    try:
        spec = Spec.model_validate(data, context=context)
        return spec, spec
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
    for error in errors:
        if not _follows_from_an_item(error, errors):
            diags.items.append(translate.diagnostic_for(error, data, smap))
    locs = [tuple(e["loc"]) for e in errors]
    unknown = [tuple(e["loc"]) for e in errors if e["type"] == "extra_forbidden"]
    others = [loc for loc in locs if loc not in unknown or len(loc) < 3]
    return (_partial(_without_failed_entries(_without_keys(data, unknown), others), context),
            _partial(_without_failed_entries(data, locs), context))


def _follows_from_an_item(error: ErrorDetails, errors: list[ErrorDetails]) -> bool:
    """A list "too short" only because an item of it failed (pydantic counts the failed items
    out): the item's own error says what is wrong, the count would only confuse."""
    if error["type"] != "too_short":
        return False
    loc = tuple(error["loc"])
    return any(len(other["loc"]) > len(loc) and tuple(other["loc"][:len(loc)]) == loc
               for other in errors)


def _partial(data: dict[str, Any] | None, context: dict[str, Any]) -> Spec | None:
    if data is None:
        return None
    try:
        return Spec.model_validate(data, context=context)
    except ValidationError:
        return None


def _without_keys(data: dict[str, Any], locs: list[tuple[str | int, ...]]) -> dict[str, Any]:
    """`data` without the unknown keys at `locs` inside resources (already reported), so the
    rest of such a resource can still be cross-checked (a misspelt key must not hide a bad
    reference beside it)."""
    out = dict(data)
    for loc in locs:
        if len(loc) < 3:
            continue
        node: Any = out
        for part in loc[:-1]:  # copy each level on the way down; the input stays as it was
            child = node.get(part) if isinstance(node, dict) else None
            if not isinstance(child, dict):
                break
            node[part] = dict(child)
            node = node[part]
        else:
            node.pop(loc[-1], None)
    return out


def _without_failed_entries(data: dict[str, Any],
                            locs: list[tuple[str | int, ...]]) -> dict[str, Any] | None:
    """`data` minus the resources (and optional top-level keys) that failed validation."""
    pruned = {k: dict(v) if k in NAMED_SECTIONS and isinstance(v, dict) else v
              for k, v in data.items()}
    for loc in locs:
        section = str(loc[0])
        if len(loc) >= 2 and isinstance(pruned.get(section), dict):
            pruned[section].pop(loc[1], None)
        elif len(loc) == 1 and section not in ("version", *NAMED_SECTIONS):
            pruned.pop(section, None)  # `name:` or an unknown top-level key
        else:
            return None  # version or a whole section is wrong: nothing sensible to cross-check
    return pruned


def _declared_names(data: dict[str, Any]) -> dict[str, list[str]]:
    """The resource names each section of the raw data declares, valid or not."""
    return {section: [str(k) for k in entries] if isinstance(entries, dict) else []
            for section in NAMED_SECTIONS for entries in [data.get(section)]}


def _merge_env_files(spec: Spec, directory: Path, smap: SourceMap, env: Mapping[str, str],
                     diags: Diagnostics) -> Spec:
    """Each sandbox's `env_file`s merged under its `env`; variables in them expand from `env`."""
    updated: dict[str, SandboxSpec] = {}
    for name, box in spec.sandboxes.items():
        if not box.env_file:
            continue
        merged: dict[str, str] = {}
        for index, relative in enumerate(box.env_file):
            file = _under(directory, relative)
            keypath = ("sandboxes", name, "env_file", index)
            pos = smap.value_pos(keypath if keypath in smap.values else keypath[:-1])
            if file is None or not file.is_file():
                diags.add(f'env_file "{relative}" does not exist', pos=pos,
                          path=translate.dotted(keypath),
                          hint="paths are relative to the spec's directory")
                continue
            merged.update(_read_env_file(file, directory, env, diags, pos,
                                         translate.dotted(keypath)))
        merged.update(box.env)
        updated[name] = box.model_copy(update={"env": merged})
    if not updated:
        return spec
    return spec.model_copy(update={"sandboxes": {**spec.sandboxes, **updated}})


def _read_dockerfiles(spec: Spec, directory: Path, smap: SourceMap,
                      diags: Diagnostics) -> dict[str, str]:
    texts: dict[str, str] = {}
    for name, image in spec.images.items():
        build = image.build
        if build is None:
            continue
        if build.inline is not None:
            texts[name] = build.inline
            continue
        context = _under(directory, build.context)
        if context is None or not context.is_dir():
            continue  # reported by _check_paths
        dockerfile = context / (build.dockerfile or "Dockerfile")
        keypath = ("images", name, "build", "dockerfile" if build.dockerfile else "context")
        if not dockerfile.is_file():
            diags.add(f'no Dockerfile at "{_rel(dockerfile, directory)}"',
                      pos=smap.value_pos(keypath), path=translate.dotted(keypath),
                      hint="set build.dockerfile (relative to the context) or build.inline")
            continue
        text = _read_dockerfile(dockerfile)
        if text is None:
            diags.add(f'cannot read "{_rel(dockerfile, directory)}" (unreadable or over 1 MiB)',
                      pos=smap.value_pos(keypath), path=translate.dotted(keypath))
            continue
        texts[name] = text
    return texts


def _check_dockerignores(spec: Spec, directory: Path, smap: SourceMap,
                         diags: Diagnostics) -> None:
    """Each build context's `.dockerignore` (or `<Dockerfile>.dockerignore`) as Docker reads
    it: a pattern Docker would reject is reported at its line."""
    for name, image in spec.images.items():
        build = image.build
        context = _under(directory, build.context) if build is not None else None
        if build is None or context is None or not _exists(context, directory=True):
            continue
        dockerfile = None if build.inline is not None else context / (
            build.dockerfile or "Dockerfile")
        ignore_file = dockerignore_file(context, dockerfile)
        keypath = ("images", name, "build", "context")
        try:
            dockerignore_rules(read_ignore_file(ignore_file))
        except DockerignoreError as exc:
            diags.add(exc.message, pos=SourcePos(_rel(ignore_file, directory), exc.line, 1),
                      path=translate.dotted(keypath),
                      hint="Docker would refuse this build context: fix or escape the pattern")
        except DataError as exc:
            diags.add(str(exc), pos=smap.value_pos(keypath), path=translate.dotted(keypath))


def _read_dockerfile(file: Path) -> str | None:
    try:
        with file.open("rb") as handle:
            raw = handle.read(MAX_DOCKERFILE_BYTES + 1)
    except OSError:
        return None
    if len(raw) > MAX_DOCKERFILE_BYTES:
        return None
    return raw.decode("utf-8", errors="replace")


def _under(directory: Path, relative: str) -> Path | None:
    """`relative` (from the spec) resolved against the spec's directory; None if unusable."""
    try:
        return directory / Path(relative).expanduser()
    except (RuntimeError, ValueError):  # ~unknownuser, embedded NUL
        return None


def snapshot_archive(directory: Path, relative: str) -> Path | None:
    """A snapshot's declared archive: a regular file that, links resolved, lies inside the
    spec's directory (a spec must not make apply read files from elsewhere); else None."""
    path = _under(directory, relative)
    if path is None:
        return None
    try:
        real = path.resolve(strict=True)
        if not real.is_file() or not real.is_relative_to(directory.resolve(strict=True)):
            return None
    except (OSError, RuntimeError, ValueError):
        return None
    return real


def _exists(path: Path | None, *, directory: bool = False) -> bool:
    if path is None:
        return False
    try:
        return path.is_dir() if directory else path.exists()
    except (OSError, ValueError):
        return False


def _rel(path: Path, directory: Path) -> str:
    try:
        return str(path.relative_to(directory))
    except ValueError:
        return str(path)


def _check_paths(spec: Spec, directory: Path, smap: SourceMap, diags: Diagnostics) -> None:
    relative_hint = "paths are relative to the spec's directory"
    for name, image in spec.images.items():
        if image.build is not None and not _exists(_under(directory, image.build.context),
                                                   directory=True):
            keypath = ("images", name, "build", "context")
            diags.add(f'build context "{image.build.context}" is not a directory',
                      pos=smap.value_pos(keypath), path=translate.dotted(keypath),
                      hint=relative_hint)
    for name, snap in spec.snapshots.items():
        if snap.archive is not None and snapshot_archive(directory, snap.archive) is None:
            archive_path = ("snapshots", name, "archive")
            diags.add(f'snapshot archive "{snap.archive}" is not a file inside the spec\'s '
                      "directory", pos=smap.value_pos(archive_path),
                      path=translate.dotted(archive_path),
                      hint="check the file in beside sandboxes.yaml (the path is relative to it)")
    for name, box in spec.sandboxes.items():
        source = box.workspace.from_ if box.workspace else None
        if source is not None and not _exists(_under(directory, source), directory=True):
            from_path = ("sandboxes", name, "workspace", "from")
            diags.add(f'workspace source "{source}" is not a directory',
                      pos=smap.value_pos(from_path), path=translate.dotted(from_path),
                      hint=relative_hint)
        for index, mount in enumerate(box.volumes):
            if mount.type == "bind" and not _exists(_under(directory, mount.source)):
                mount_path = ("sandboxes", name, "volumes", index)
                diags.add(f'bind source "{mount.source}" does not exist',
                          pos=smap.value_pos(mount_path), path=translate.dotted(mount_path),
                          hint="create the directory, or fix the path (relative to the spec)")


def _build_args(spec: Spec, image: str) -> Mapping[str, str]:
    build = spec.images[image].build
    return build.args if build is not None else {}


def _dockerfile_error(spec: Spec, name: str, error: DockerfileError, directory: Path,
                      smap: SourceMap, diags: Diagnostics) -> None:
    """A FROM or global ARG BuildKit would refuse, at its line of the Dockerfile (or at the
    `inline` text of the spec)."""
    build = spec.images[name].build
    assert build is not None
    keypath: tuple[str | int, ...] = ("images", name, "build", "inline")
    pos = smap.value_pos(keypath)
    if build.inline is None:
        context = _under(directory, build.context)
        keypath = ("images", name, "build", "dockerfile" if build.dockerfile else "context")
        if context is not None:
            file = context / (build.dockerfile or "Dockerfile")
            pos = SourcePos(_rel(file, directory), error.line, 1)
    diags.add(f"Dockerfile: {error.message}", pos=pos, path=translate.dotted(keypath),
              hint="docker build would fail the same way")


def _graph(spec: Spec, dockerfiles: Mapping[str, str], directory: Path, smap: SourceMap,
           diags: Diagnostics) -> ResourceGraph | None:
    bases: dict[str, list[str]] = {}
    for name, text in dockerfiles.items():
        try:
            bases[name] = from_references(text, _build_args(spec, name))
        except DockerfileError as exc:
            _dockerfile_error(spec, name, exc, directory, smap, diags)
            bases[name] = []
    graph = build_graph(spec, bases)
    try:
        graph.order()
    except CycleError as exc:
        first = exc.cycle[0]
        keypath = (first.kind.section, first.name)
        diags.add(f"dependency cycle: {' -> '.join(str(a) for a in exc.cycle)}",
                  pos=smap.key_pos(keypath), path=translate.dotted(keypath),
                  hint="remove one of these references")
        return None
    return graph
