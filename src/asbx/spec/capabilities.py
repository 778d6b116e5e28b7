"""Linux capabilities: the names asbx knows, the least-privilege default set, `cap_add` checking."""

from __future__ import annotations

from collections.abc import Iterable

from asbx.diagnostics import did_you_mean
from asbx.spec.values import LocatedValueError

# Every capability of Linux 6.x, by bit number (include/uapi/linux/capability.h).
KNOWN: tuple[str, ...] = (
    "CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID",
    "SETPCAP", "LINUX_IMMUTABLE", "NET_BIND_SERVICE", "NET_BROADCAST", "NET_ADMIN", "NET_RAW",
    "IPC_LOCK", "IPC_OWNER", "SYS_MODULE", "SYS_RAWIO", "SYS_CHROOT", "SYS_PTRACE", "SYS_PACCT",
    "SYS_ADMIN", "SYS_BOOT", "SYS_NICE", "SYS_RESOURCE", "SYS_TIME", "SYS_TTY_CONFIG", "MKNOD",
    "LEASE", "AUDIT_WRITE", "AUDIT_CONTROL", "SETFCAP", "MAC_OVERRIDE", "MAC_ADMIN", "SYSLOG",
    "WAKE_ALARM", "BLOCK_SUSPEND", "AUDIT_READ", "PERFMON", "BPF", "CHECKPOINT_RESTORE",
)

# What every sandbox gets: enough for a root user to install packages and manage files and
# processes inside its own container (apt/pip/npm chown and chmod, apt drops to the _apt user,
# servers bind ports below 1024), and nothing that reaches past the container's own files and
# processes. Left out of podman's and docker's defaults: NET_RAW (raw sockets forge packets to
# any host address), MKNOD (device nodes), AUDIT_WRITE, SYS_CHROOT and SETFCAP.
DEFAULT: tuple[str, ...] = (
    "CHOWN",  # chown files it does not own (package managers, tar as root)
    "DAC_OVERRIDE",  # root reads and writes files regardless of their mode
    "FOWNER",  # chmod/utime on files of other users (installers, tar -p)
    "FSETID",  # keep setuid/setgid bits when a file is modified
    "KILL",  # signal processes of other users inside the sandbox
    "SETGID",  # switch group (su, apt's _apt user, gosu, runuser)
    "SETUID",  # switch user (same)
    "SETPCAP",  # drop capabilities from its own bounding set (capsh, setpriv)
    "NET_BIND_SERVICE",  # listen on ports below 1024 (dev servers on :80)
)

# Bumped whenever DEFAULT or the flags around it change: a container labelled with another
# profile (or none: made before asbx set capabilities) is replaced by the next apply.
PROFILE = "1"


def mask(names: Iterable[str]) -> int:
    """The bit mask of capability names, as /proc/PID/status prints it (CapEff, CapBnd)."""
    return sum(1 << KNOWN.index(name) for name in set(names))


def check(value: object) -> str:
    """One `cap_add` entry: a known name, with or without CAP_, any case; returns `NET_RAW`."""
    if not isinstance(value, str):
        raise ValueError("expected a capability name such as NET_RAW")
    text = value.strip().upper().replace("-", "_")
    name = text.removeprefix("CAP_")
    if name in KNOWN:
        return name
    if name == "ALL":
        raise LocatedValueError('"ALL" is not allowed in cap_add',
                                hint="name each capability the sandbox needs")
    hint = did_you_mean(name, KNOWN) or "see capabilities(7); e.g. NET_RAW, SYS_PTRACE"
    raise LocatedValueError(f'"{value}" is not a Linux capability', hint=hint)


def effective(cap_add: Iterable[str]) -> tuple[str, ...]:
    """The whole set a sandbox runs with: DEFAULT plus `cap_add`, in bit order."""
    wanted = set(DEFAULT) | set(cap_add)
    return tuple(name for name in KNOWN if name in wanted)
