"""Cross-reference checks over a validated Spec: references exist, no clashes, sane combinations."""

from __future__ import annotations

import re

from asbx.diagnostics import Diagnostics, did_you_mean
from asbx.spec.model import LifecycleSpec, Spec
from asbx.spec.values import format_size
from asbx.spec.yaml_source import SourceMap, dotted

MIN_MEMORY = 6 * 1024 * 1024
_REF_RE = re.compile(
    r"(?:[a-zA-Z0-9.-]+(?::\d+)?/)?[a-z0-9]+(?:[._-][a-z0-9]+)*(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*"
    r"(?::[\w][\w.-]{0,127})?(?:@sha256:[0-9a-f]{64})?"
)


def is_image_reference(text: str) -> bool:
    """Whether `text` is a syntactically valid OCI image reference."""
    return bool(_REF_RE.fullmatch(text)) and len(text) <= 255


def check_spec(spec: Spec, smap: SourceMap) -> Diagnostics:
    """Every cross-reference and combination problem of `spec`, positioned via `smap`."""
    diags = Diagnostics()
    _check_images(spec, smap, diags)
    _check_snapshots(spec, smap, diags)
    for name in spec.sandboxes:
        _check_sandbox(spec, name, smap, diags)
    _check_host_ports(spec, smap, diags)
    return diags


def _missing(
    diags: Diagnostics, smap: SourceMap, path: tuple[str | int, ...], what: str, name: str,
    choices: list[str], *, other: bool = False,
) -> None:
    hint = did_you_mean(name, choices)
    section = "sandboxes" if what == "sandbox" else f"{what}s"
    if hint is None and choices:
        hint = f"declared {section}: {', '.join(sorted(choices))}"
    elif hint is None:
        hint = (f"no other {section} are declared" if other
                else f"no {section} are declared; add one under {section}:")
    diags.add(f'unknown {what} "{name}"', pos=smap.value_pos(path), path=dotted(path), hint=hint)


def _check_images(spec: Spec, smap: SourceMap, diags: Diagnostics) -> None:
    for name, image in spec.images.items():
        if image.ref is not None and not is_image_reference(image.ref):
            path = ("images", name, "ref")
            diags.add(f'"{image.ref}" is not a valid image reference',
                      pos=smap.value_pos(path), path=dotted(path),
                      hint="e.g. docker.io/library/python:3.12-slim")


def _check_snapshots(spec: Spec, smap: SourceMap, diags: Diagnostics) -> None:
    for name, snap in spec.snapshots.items():
        if snap.sandbox not in spec.sandboxes:
            _missing(diags, smap, ("snapshots", name, "sandbox"), "sandbox", snap.sandbox,
                     list(spec.sandboxes))


def _check_sandbox(spec: Spec, name: str, smap: SourceMap, diags: Diagnostics) -> None:
    box = spec.sandboxes[name]
    base: tuple[str | int, ...] = ("sandboxes", name)
    if box.image not in spec.images:
        hint = did_you_mean(box.image, spec.images)
        looks_like_key = "/" not in box.image and ":" not in box.image and "@" not in box.image
        if not is_image_reference(box.image) or (hint and looks_like_key):
            path = (*base, "image")
            message = (f'unknown image "{box.image}"' if hint
                       else f'"{box.image}" is neither an images: key nor a valid image reference')
            diags.add(message, pos=smap.value_pos(path), path=dotted(path), hint=hint)
    targets: dict[str, int] = {}
    for index, mount in enumerate(box.volumes):
        path = (*base, "volumes", index)
        if mount.type == "volume" and mount.source not in spec.volumes:
            _missing(diags, smap, path, "volume", mount.source, list(spec.volumes))
        if mount.target in targets:
            diags.add(f'mount target "{mount.target}" is used twice '
                      f"(also volumes[{targets[mount.target]}])",
                      pos=smap.value_pos(path), path=dotted(path))
        targets.setdefault(mount.target, index)
    if box.workspace and box.workspace.snapshot and box.workspace.snapshot not in spec.snapshots:
        _missing(diags, smap, (*base, "workspace", "snapshot"), "snapshot",
                 box.workspace.snapshot, list(spec.snapshots))
    for index, dep in enumerate(box.depends_on):
        path = (*base, "depends_on", index)
        if dep == name:
            diags.add(f'sandbox "{name}" cannot depend on itself', pos=smap.value_pos(path),
                      path=dotted(path))
        elif dep not in spec.sandboxes:
            _missing(diags, smap, path, "sandbox", dep, [s for s in spec.sandboxes if s != name],
                     other=True)
    if box.ports and box.network.mode == "deny":
        path = (*base, "ports")
        diags.add("ports cannot be published with network: deny (the sandbox has no network "
                  "interface)", pos=smap.value_pos(path), path=dotted(path),
                  hint="set network: open, or remove ports")
    if box.memory is not None and box.memory < MIN_MEMORY:
        path = (*base, "memory")
        diags.add(f"memory must be at least {format_size(MIN_MEMORY)}, not "
                  f"{format_size(box.memory)}", pos=smap.value_pos(path), path=dotted(path),
                  hint="e.g. 512M or 2G (a plain number means bytes)")
    _check_lifecycle(box.lifecycle, base, smap, diags)


def _check_lifecycle(lifecycle: LifecycleSpec | None, base: tuple[str | int, ...],
                     smap: SourceMap, diags: Diagnostics) -> None:
    if lifecycle is None:
        return
    if (lifecycle.idle_timeout and lifecycle.max_lifetime
            and lifecycle.idle_timeout >= lifecycle.max_lifetime):
        path = (*base, "lifecycle", "idle_timeout")
        diags.add("idle_timeout must be shorter than max_lifetime", pos=smap.value_pos(path),
                  path=dotted(path))


def _check_host_ports(spec: Spec, smap: SourceMap, diags: Diagnostics) -> None:
    seen: dict[tuple[str, int, str], str] = {}
    for name, box in spec.sandboxes.items():
        for index, port in enumerate(box.ports):
            key = (port.host_ip, port.host, port.protocol)
            if key in seen:
                path = ("sandboxes", name, "ports", index)
                diags.add(f"host port {port.host}/{port.protocol} is already published by "
                          f"sandbox {seen[key]}", pos=smap.value_pos(path), path=dotted(path))
            seen.setdefault(key, name)
