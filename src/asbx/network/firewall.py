"""Host firewall rules that leave an allowlist sandbox's network nothing but its own proxy.

One chain per sandbox network, `ASBX-<12 hex>` (a hash of project and sandbox), in the filter
table of both iptables and ip6tables, jumped to from INPUT and FORWARD for packets arriving
from the network's bridge: established/related traffic and TCP from the sandbox's address to the
proxy's address and port are accepted, everything else is dropped (other host ports and
addresses, IPv6 link-local, forwarding to other networks). Every rule carries the comment
`asbx <project>/<sandbox>`, so leftovers are found by listing. Changes go through
`iptables-restore --noflush` (one atomic commit per family), run by the one command runner.
Kernel rules do not survive a reboot, so nothing is left behind by one.
"""

from __future__ import annotations

import hashlib
import ipaddress
import os
import re
import shlex
import shutil
import sys
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from asbx.errors import AsbxError
from asbx.runtime.command import CommandRequest, CommandRunner

CHAIN_PREFIX = "ASBX-"
COMMENT_PREFIX = "asbx "
FAMILIES = ("iptables", "ip6tables")
_HOOKS = ("INPUT", "FORWARD")
_SAFE = re.compile(r"[^A-Za-z0-9._/-]")


class FirewallError(AsbxError):
    """The host firewall rules could not be listed, installed or removed."""


@dataclass(frozen=True)
class Guard:
    """What one allowlist sandbox's network may reach on the host: its proxy, nothing else."""

    project: str
    sandbox: str
    interface: str  # the network's bridge on the host
    clients: str  # the sandbox's address (a CIDR) on that network
    proxy_host: str
    proxy_port: int

    @property
    def chain(self) -> str:
        return chain_name(self.project, self.sandbox)


@dataclass(frozen=True)
class Installed:
    """An asbx chain found in the host's rules: which family, which sandbox, which bridges."""

    family: str
    chain: str
    project: str
    sandbox: str
    interfaces: tuple[str, ...] = ()
    jumps: tuple[str, ...] = ()  # the `-A INPUT|FORWARD ... -j chain` lines, as listed


def chain_name(project: str, sandbox: str) -> str:
    """The chain of a sandbox's network: short enough for iptables (28 characters)."""
    digest = hashlib.sha256(f"{project}/{sandbox}".encode()).hexdigest()[:12].upper()
    return CHAIN_PREFIX + digest


def comment_of(project: str, sandbox: str) -> str:
    return COMMENT_PREFIX + _SAFE.sub("_", f"{project}/{sandbox}")


def owned_by(found: Iterable[Installed], project: str) -> list[Installed]:
    """The chains whose comment names `project`."""
    return [f for f in found if f.project == _SAFE.sub("_", project)]


def blocker() -> str:
    """Why this host cannot enforce allowlists with firewall rules; "" when it can."""
    if not sys.platform.startswith("linux"):
        return "the host firewall rules that keep a sandbox to its proxy need Linux"
    if os.geteuid() != 0:
        return ("asbx is not root, so it cannot install the host firewall rules that keep the "
                "sandbox to its proxy (rootless podman is not supported for allowlists)")
    missing = [t for f in FAMILIES for t in (f, f"{f}-restore") if shutil.which(t) is None]
    if missing:
        return (f"{', '.join(missing)} not found, so the host firewall rules that keep the "
                "sandbox to its proxy cannot be installed")
    return ""


def install_script(guard: Guard, family: str, stale_jumps: Iterable[str] = ()) -> str:
    """The iptables-restore input that (re)creates the guard's chain and its jumps atomically."""
    chain, comment = guard.chain, comment_of(guard.project, guard.sandbox)
    tag = f'-m comment --comment "{comment}"'
    lines = ["*filter", f":{chain} - [0:0]",
             f"-A {chain} {tag} -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT"]
    if _family_of(guard.proxy_host) == family and _family_of(guard.clients) == family:
        lines.append(f"-A {chain} {tag} -s {_net(guard.clients)} -d {_net(guard.proxy_host)} "
                     f"-p tcp -m tcp --dport {int(guard.proxy_port)} -j ACCEPT")
    lines.append(f"-A {chain} {tag} -j DROP")
    lines += [_delete(jump) for jump in stale_jumps]
    lines += [f"-I {hook} 1 -i {_interface(guard.interface)} {tag} -j {chain}"
              for hook in reversed(_HOOKS)]
    lines.append("COMMIT")
    return "\n".join(lines) + "\n"


def remove_script(found: Installed) -> str:
    """The iptables-restore input that removes a chain and every jump to it."""
    lines = ["*filter", *(_delete(jump) for jump in found.jumps),
             f"-F {found.chain}", f"-X {found.chain}", "COMMIT"]
    return "\n".join(lines) + "\n"


def parse_listing(family: str, text: str) -> list[Installed]:
    """The asbx chains in `iptables -S` output, with their owners and the jumps to them."""
    chains: dict[str, tuple[str, str]] = {}
    jumps: dict[str, list[tuple[str, str]]] = {}
    for line in text.splitlines():
        try:
            words = shlex.split(line)
        except ValueError:
            continue
        if len(words) == 2 and words[0] == "-N" and words[1].startswith(CHAIN_PREFIX):
            chains.setdefault(words[1], ("", ""))
            continue
        if len(words) < 3 or words[0] != "-A":
            continue
        owner = _owner(words)
        if words[1].startswith(CHAIN_PREFIX) and owner is not None:
            chains[words[1]] = owner
        target = _after(words, "-j")
        if words[1] in _HOOKS and target.startswith(CHAIN_PREFIX):
            jumps.setdefault(target, []).append((line, _after(words, "-i")))
    return [
        Installed(family, chain, project, sandbox,
                  interfaces=tuple(dict.fromkeys(i for _, i in jumps.get(chain, []))),
                  jumps=tuple(line for line, _ in jumps.get(chain, [])))
        for chain, (project, sandbox) in sorted(chains.items())
    ]


def list_installed(runner: CommandRunner) -> list[Installed]:
    """Every asbx chain on this host, in both families (a family whose tool is missing: none);
    the two listings run side by side."""
    families = [f for f in FAMILIES if shutil.which(f) is not None]
    with ThreadPoolExecutor(max_workers=max(1, len(families))) as pool:
        results = list(pool.map(lambda family: runner(CommandRequest(
            argv=(family, "-w", "-t", "filter", "-S"), timeout=30)), families))
    found: list[Installed] = []
    for family, result in zip(families, results, strict=True):
        if result.returncode != 0:
            raise FirewallError(f"{family} -S failed: {result.stderr.strip()}")
        found += parse_listing(family, result.stdout)
    return found


def install(guard: Guard, runner: CommandRunner) -> None:
    """Install (or replace) the guard's chain and jumps in both families."""
    present = {f.family: f for f in list_installed(runner) if f.chain == guard.chain}
    for family in FAMILIES:
        stale = present[family].jumps if family in present else ()
        _restore(family, install_script(guard, family, stale), runner)


def remove(project: str, sandbox: str, runner: CommandRunner) -> int:
    """Remove the sandbox's chain and its jumps from both families; how many were removed."""
    return remove_installed(
        [f for f in list_installed(runner) if f.chain == chain_name(project, sandbox)], runner)


def remove_installed(found: Sequence[Installed], runner: CommandRunner) -> int:
    for item in found:
        _restore(item.family, remove_script(item), runner)
    return len(found)


def _restore(family: str, script: str, runner: CommandRunner) -> None:
    result = runner(CommandRequest(argv=(f"{family}-restore", "-w", "--noflush"),
                                   stdin=script.encode(), timeout=30))
    if result.returncode != 0 or result.timed_out:
        raise FirewallError(f"{family}-restore failed: {result.stderr.strip() or 'timed out'}",
                            hint="asbx needs root and the iptables tools to guard an "
                                 "allowlist sandbox's network")


def _owner(words: list[str]) -> tuple[str, str] | None:
    comment = _after(words, "--comment")
    if not comment.startswith(COMMENT_PREFIX) or "/" not in comment:
        return None
    project, _, sandbox = comment.removeprefix(COMMENT_PREFIX).partition("/")
    return project, sandbox


def _after(words: list[str], flag: str) -> str:
    try:
        return words[words.index(flag) + 1]
    except (ValueError, IndexError):
        return ""


def _delete(jump: str) -> str:
    return "-D" + jump.removeprefix("-A")


def _family_of(text: str) -> str:
    return "ip6tables" if ipaddress.ip_network(text, strict=False).version == 6 else "iptables"


def _net(text: str) -> str:
    return str(ipaddress.ip_network(text, strict=False))


def _interface(name: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9_.-]{1,15}", name):
        raise FirewallError(f"{name!r} is not a network interface name")
    return name
