"""Cross-reference checks over a validated Spec: references exist, no clashes, sane combinations."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass

from asbx.diagnostics import Diagnostics, did_you_mean
from asbx.spec.model import LifecycleSpec, PortSpec, SandboxSpec, Spec
from asbx.spec.values import format_size
from asbx.spec.yaml_source import SourceMap, dotted

MIN_MEMORY = 6 * 1024 * 1024
SECTIONS = ("images", "volumes", "snapshots", "sandboxes")
_REF_RE = re.compile(
    r"(?:[a-zA-Z0-9.-]+(?::\d+)?/)?[a-z0-9]+(?:[._-][a-z0-9]+)*(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*"
    r"(?::[\w][\w.-]{0,127})?(?:@sha256:[0-9a-f]{64})?"
)
Loc = tuple[str | int, ...]


def is_image_reference(text: str) -> bool:
    """Whether `text` is a syntactically valid OCI image reference."""
    return bool(_REF_RE.fullmatch(text)) and len(text) <= 255


@dataclass(frozen=True)
class _Context:
    spec: Spec
    smap: SourceMap
    declared: Mapping[str, Collection[str]]
    diags: Diagnostics

    def known(self, section: str, name: str) -> bool:
        return name in self.declared[section]

    def names(self, section: str, *, without: str | None = None) -> list[str]:
        return [n for n in self.declared[section] if n != without]


def check_spec(
    spec: Spec, smap: SourceMap, declared: Mapping[str, Collection[str]] | None = None
) -> Diagnostics:
    """Every cross-reference and combination problem of `spec`, positioned via `smap`.

    `declared` names the resources of each section the file declares; the loader passes it
    when `spec` is a partial spec (entries with errors left out), so references to those
    entries are not reported as unknown a second time.
    """
    names = {section: list(getattr(spec, section)) for section in SECTIONS}
    ctx = _Context(spec, smap, {**names, **(declared or {})}, Diagnostics())
    _check_images(ctx)
    _check_snapshots(ctx)
    for name, box in spec.sandboxes.items():
        _check_sandbox(ctx, name, box)
    _check_host_ports(ctx)
    return ctx.diags


def _missing(ctx: _Context, path: Loc, what: str, name: str, choices: list[str],
             *, other: bool = False) -> None:
    hint = did_you_mean(name, choices)
    section = "sandboxes" if what == "sandbox" else f"{what}s"
    if hint is None and choices:
        hint = f"declared {section}: {', '.join(sorted(choices))}"
    elif hint is None:
        hint = (f"no other {section} are declared" if other
                else f"no {section} are declared; add one under {section}:")
    ctx.diags.add(f'unknown {what} "{name}"', pos=ctx.smap.value_pos(path), path=dotted(path),
                  hint=hint)


def _error(ctx: _Context, path: Loc, message: str, hint: str | None = None) -> None:
    ctx.diags.add(message, pos=ctx.smap.value_pos(path), path=dotted(path), hint=hint)


def _check_images(ctx: _Context) -> None:
    for name, image in ctx.spec.images.items():
        if image.ref is not None and not is_image_reference(image.ref):
            _error(ctx, ("images", name, "ref"), f'"{image.ref}" is not a valid image reference',
                   hint="e.g. docker.io/library/python:3.12-slim")


def _check_snapshots(ctx: _Context) -> None:
    for name, snap in ctx.spec.snapshots.items():
        if snap.sandbox is not None and not ctx.known("sandboxes", snap.sandbox):
            _missing(ctx, ("snapshots", name, "sandbox"), "sandbox", snap.sandbox,
                     ctx.names("sandboxes"))


def _check_sandbox(ctx: _Context, name: str, box: SandboxSpec) -> None:
    base: Loc = ("sandboxes", name)
    _check_image_use(ctx, base, box.image)
    _check_mounts(ctx, base, box)
    snapshot = box.workspace.snapshot if box.workspace else None
    if snapshot and not ctx.known("snapshots", snapshot):
        _missing(ctx, (*base, "workspace", "snapshot"), "snapshot", snapshot,
                 ctx.names("snapshots"))
    _check_depends_on(ctx, base, name, box)
    _check_ports_network(ctx, base, box)
    if box.memory is not None and box.memory < MIN_MEMORY:
        _error(ctx, (*base, "memory"), f"memory must be at least {format_size(MIN_MEMORY)}, "
               f"not {format_size(box.memory)}",
               hint="e.g. 512M or 2G (a plain number means bytes)")
    _check_lifecycle(ctx, base, box.lifecycle)
    _check_secrets(ctx, base, box)


def _check_secrets(ctx: _Context, base: Loc, box: SandboxSpec) -> None:
    """Each secret a sandbox uses is declared, goes only to hosts its allowlist allows (the
    proxy is the only way out, and the one that puts the value in), and its placeholder
    variable does not clash with env."""
    if not box.secrets:
        return
    from asbx.network.policy import HostPolicy

    if box.network.mode != "allow":
        _error(ctx, (*base, "secrets"), f"secrets need a network allowlist (this sandbox has "
               f"network: {box.network.mode}): the egress proxy puts them into requests",
               hint="set network: {allow: [the secrets' hosts]}")
        return
    policy = HostPolicy(box.network.allow)
    for name, grant in box.secrets.items():
        path = (*base, "secrets", name)
        if name not in ctx.spec.secrets:
            _missing(ctx, path, "secret", name, list(ctx.spec.secrets))
        for index, host in enumerate(grant.hosts):
            _rule, refusal = policy.check_host(host, None)
            if refusal is not None:
                _error(ctx, (*path, "hosts", index), f"secret {name} goes to {host}, which "
                       f"the allowlist does not allow: {refusal}",
                       hint=f"add {host} to network.allow, or remove it from the secret's hosts")
        if grant.env is not None and grant.env in box.env:
            _error(ctx, (*path, "env"), f"{grant.env} is set by env too; the secret's "
                   "placeholder goes into that variable", hint="remove it from env")


def _check_image_use(ctx: _Context, base: Loc, image: str) -> None:
    if ctx.known("images", image):
        return
    hint = did_you_mean(image, ctx.names("images"))
    looks_like_key = not any(mark in image for mark in "/:@")
    if hint and looks_like_key:
        _error(ctx, (*base, "image"), f'unknown image "{image}"', hint=hint)
    elif not is_image_reference(image):
        _error(ctx, (*base, "image"),
               f'"{image}" is neither an images: key nor a valid image reference',
               hint=hint or "e.g. docker.io/library/busybox:1.36, or a key declared under images:")


def _check_mounts(ctx: _Context, base: Loc, box: SandboxSpec) -> None:
    targets: dict[str, int] = {}
    for index, mount in enumerate(box.volumes):
        path = (*base, "volumes", index)
        if mount.type == "volume" and not ctx.known("volumes", mount.source):
            _missing(ctx, path, "volume", mount.source, ctx.names("volumes"))
        if mount.target in targets:
            _error(ctx, path, f'mount target "{mount.target}" is used twice '
                   f"(also volumes[{targets[mount.target]}])")
        targets.setdefault(mount.target, index)


def _check_depends_on(ctx: _Context, base: Loc, name: str, box: SandboxSpec) -> None:
    for index, dep in enumerate(box.depends_on):
        path = (*base, "depends_on", index)
        if dep == name:
            _error(ctx, path, f'sandbox "{name}" cannot depend on itself',
                   hint="remove it from depends_on")
        elif not ctx.known("sandboxes", dep):
            _missing(ctx, path, "sandbox", dep, ctx.names("sandboxes", without=name), other=True)


def _check_lifecycle(ctx: _Context, base: Loc, lifecycle: LifecycleSpec | None) -> None:
    if lifecycle is None:
        return
    if (lifecycle.idle_timeout and lifecycle.max_lifetime
            and lifecycle.idle_timeout >= lifecycle.max_lifetime):
        _error(ctx, (*base, "lifecycle", "idle_timeout"),
               "idle_timeout must be shorter than max_lifetime")


def _check_ports_network(ctx: _Context, base: Loc, box: SandboxSpec) -> None:
    """Ports are inbound only: they need an interface, and never open a way out."""
    if not box.ports:
        return
    if box.network.mode == "deny":
        _error(ctx, (*base, "ports"), "ports cannot be published with network: deny "
               "(the sandbox has no network interface)", hint="set network: open, or remove ports")
    elif box.network.mode == "allow":
        _error(ctx, (*base, "ports"), "ports cannot be published with network: allow (an "
               "allowlist sandbox's network is internal, and neither podman nor docker forwards "
               "published ports to an internal network)",
               hint="reach it with asbx exec, or serve from a separate network: open sandbox")


def _check_host_ports(ctx: _Context) -> None:
    """One host address/port/protocol per project; 0.0.0.0 and :: overlap the addresses they
    cover (:: takes IPv4 too on a dual-stack host)."""
    seen: list[tuple[PortSpec, str, int]] = []
    for name, box in ctx.spec.sandboxes.items():
        for index, port in enumerate(box.ports):
            clash = next((other for other in seen if _overlap(port, other[0])), None)
            if clash is not None:
                other, owner, at = clash
                where = f"ports[{at}]" if owner == name else f"sandbox {owner}"
                shown = "" if other.host_ip == port.host_ip else f" (on {other.host_ip})"
                _error(ctx, ("sandboxes", name, "ports", index),
                       f"host port {port.host}/{port.protocol} is already published by "
                       f"{where}{shown}", hint="publish a different host port")
            seen.append((port, name, index))


def _overlap(a: PortSpec, b: PortSpec) -> bool:
    if (a.host, a.protocol) != (b.host, b.protocol):
        return False
    if a.host_ip == b.host_ip or "::" in (a.host_ip, b.host_ip):
        return True
    ips = (ipaddress.ip_address(a.host_ip), ipaddress.ip_address(b.host_ip))
    return ips[0].version == ips[1].version and any(ip.is_unspecified for ip in ips)
