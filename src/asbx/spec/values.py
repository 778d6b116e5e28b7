"""Value parsers for the spec (names, sizes, durations, CPUs, hosts); errors carry an example."""

from __future__ import annotations

import ipaddress
import math
import re

NAME_RE = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")
_SIZE_RE = re.compile(r"(?P<num>\d+(?:\.\d+)?)\s*(?P<unit>[kmgtp]?)(?P<suffix>i?b?)", re.IGNORECASE)
_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}
_DURATION_RE = re.compile(r"(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?")
_HOST_LABEL = r"(?!-)[a-z0-9-]{1,63}(?<!-)"
_HOST_RE = re.compile(rf"{_HOST_LABEL}(?:\.{_HOST_LABEL})*\.?")
_PORT_SUFFIX_RE = re.compile(r"(?:\[(?P<v6>[^\]]+)\]|(?P<host>[^:\[\]]+)):(?P<port>\d+)")
ENV_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*")
MAX_CPUS = 512
MAX_SIZE = 1 << 60  # 1 EiB: far above any real limit, far below overflow
MAX_DURATION = 100 * 365 * 86400  # 100 years


class LocatedValueError(ValueError):
    """A ValueError that names the offending part of the value being validated.

    `at` is the path below the validated value (a key of a mapping, an index of a list);
    `key` says whether the problem is the key itself (point at it) rather than its value.
    The loader turns this into a diagnostic positioned on exactly that key or value.
    """

    def __init__(self, message: str, *, at: tuple[str | int, ...] = (), key: bool = False,
                 hint: str | None = None) -> None:
        super().__init__(message)
        self.at = at
        self.key = key
        self.hint = hint


def check_name(value: str) -> str:
    """A resource name: lowercase letters, digits, `_` and `-`, starting alphanumeric, ≤ 63."""
    if not NAME_RE.fullmatch(value):
        fixed = re.sub(r"[^a-z0-9_-]+", "-", value.lower()).lstrip("_-")[:63]
        suggestion = f'e.g. "{fixed}"' if fixed and NAME_RE.fullmatch(fixed) else None
        raise LocatedValueError(
            f'"{value}" is not a valid name',
            hint="use lowercase letters, digits, _ and -, starting with a letter or digit, "
            f"at most 63 characters{f' ({suggestion})' if suggestion else ''}",
        )
    return value


def parse_size(value: object) -> int:
    """`512M`, `2G`, `1.5GiB` (binary units, like docker/podman/container) or an int of bytes."""
    if isinstance(value, bool):
        raise ValueError(f'"{value}" is not a size (e.g. 512M, 2G)')
    if isinstance(value, int):
        return _checked_size(value, str(value))
    text = str(value).strip()
    match = _SIZE_RE.fullmatch(text)
    if not match or (match.group("suffix") and not match.group("unit")
                     and match.group("suffix").lower() != "b"):
        raise ValueError(f'"{text}" is not a size (e.g. 512M, 2G)')
    if not match.group("unit") and not match.group("suffix"):
        raise ValueError(f'"{text}" needs a unit (e.g. {text}M or {text}G)')
    whole, _, fraction = match.group("num").partition(".")
    if len(whole) > 20:
        raise ValueError(f'"{text}" is too large (at most {format_size(MAX_SIZE)})')
    unit = _UNITS[match.group("unit").lower()]
    number = int(whole) * unit + int(float(f"0.{fraction or 0}") * unit)
    return _checked_size(number, text)


def _checked_size(number: int, text: str) -> int:
    if number < 1:
        raise ValueError(f'"{text}" is not a size (must be positive, e.g. 512M, 2G)')
    if number > MAX_SIZE:
        raise ValueError(f'"{text}" is too large (at most {format_size(MAX_SIZE)})')
    return number


def format_size(size: int) -> str:
    """The shortest exact spelling of a byte count: 2147483648 -> `2G`, 1610612736 -> `1.5G`."""
    for unit in ("P", "T", "G", "M", "K"):
        factor = _UNITS[unit.lower()]
        if size < factor:
            continue
        tenths, rest = divmod(size * 10, factor)
        if rest == 0:
            whole, tenth = divmod(tenths, 10)
            return f"{whole}.{tenth}{unit}" if tenth else f"{whole}{unit}"
    return f"{size}B"


def parse_duration(value: object) -> int:
    """`90s`, `30m`, `8h`, `7d`, `1h30m`, or an int of seconds; returns seconds."""
    if isinstance(value, bool):
        raise ValueError(f'"{value}" is not a duration (e.g. 90s, 30m, 8h, 7d)')
    if isinstance(value, int):
        return _checked_duration(value, str(value))
    text = str(value).strip().lower()
    match = _DURATION_RE.fullmatch(text)
    if not text or not match or not any(match.groups()):
        raise ValueError(f'"{value}" is not a duration (e.g. 90s, 30m, 8h, 7d)')
    if any(len(g or "") > 12 for g in match.groups()):
        raise ValueError(f'"{value}" is too long (at most {format_duration(MAX_DURATION)})')
    days, hours, minutes, seconds = (int(g or 0) for g in match.groups())
    total = ((days * 24 + hours) * 60 + minutes) * 60 + seconds
    return _checked_duration(total, str(value))


def _checked_duration(seconds: int, text: str) -> int:
    if seconds <= 0:
        raise ValueError(f'"{text}" is not a duration (must be positive, e.g. 30m)')
    if seconds > MAX_DURATION:
        raise ValueError(f'"{text}" is too long (at most {format_duration(MAX_DURATION)})')
    return seconds


def parse_cpus(value: object) -> float:
    """A CPU limit: a positive number up to 512, e.g. `2`, `0.5` or `"1.5"`."""
    example = "e.g. 2 or 0.5"
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"cpus must be a number ({example})")
    try:
        number = float(value)
    except ValueError:
        raise ValueError(f'"{value}" is not a number of CPUs ({example})') from None
    if not math.isfinite(number) or number <= 0:
        raise ValueError(f"cpus must be greater than 0 ({example}), not {value}")
    if number > MAX_CPUS:
        raise ValueError(f"cpus must be at most {MAX_CPUS}, not {value}")
    return number


def format_duration(seconds: int) -> str:
    """Canonical spelling of a duration in seconds: 5400 -> `1h30m`."""
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        amount, seconds = divmod(seconds, size)
        if amount:
            parts.append(f"{amount}{unit}")
    return "".join(parts) or "0s"


def parse_allow_entry(value: str) -> tuple[str, int | None]:
    """An allowlist entry split into its normalised host pattern and its port (None: none given).

    `host:port`, `*.suffix:port`, `1.2.3.4:port`, `10.0.0.0/8:port`, `[v6]:port`; an IPv6
    address or network with a port needs the brackets (`::1` alone is an address, not a port).
    """
    text = value.strip().lower()
    match = _PORT_SUFFIX_RE.fullmatch(text)
    if match is None:
        return check_host_pattern(text), None
    port = match.group("port")
    if len(port) > 5 or not 0 < int(port) < 65536:
        raise LocatedValueError(f'"{value}": port {port} is out of range (1-65535)')
    host = match.group("v6") or match.group("host")
    if match.group("v6") is not None and ":" not in host:
        raise LocatedValueError(f'"{value}": only an IPv6 address goes in brackets')
    return check_host_pattern(host), int(port)


def join_allow_entry(pattern: str, port: int | None) -> str:
    """The canonical entry text for a normalised pattern and port: `[::1]:443`, `a.com:8443`."""
    if port is None:
        return pattern
    return f"[{pattern}]:{port}" if ":" in pattern else f"{pattern}:{port}"


def check_allow_entry(value: str) -> str:
    """An allowlist entry with an optional port, normalised: `API.x.com.:443` -> `api.x.com:443`."""
    return join_allow_entry(*parse_allow_entry(value))


def check_host_pattern(value: str) -> str:
    """A host pattern: `host.name`, `*.suffix`, an IP or a CIDR; returns it normalised."""
    text = value.strip().lower()
    try:
        if "/" in text:
            return str(ipaddress.ip_network(text, strict=False))
        return str(ipaddress.ip_address(text))
    except ValueError:
        pass
    host = text[2:] if text.startswith("*.") else text
    if "*" in host or not _HOST_RE.fullmatch(host) or len(host) > 253:
        bare = re.sub(r"^[a-z][a-z0-9+.-]*://", "", text).split("/")[0]
        hint = (f'did you mean "{bare}"? (a host and maybe a port: no scheme or path)'
                if bare != text and _HOST_RE.fullmatch(bare.split(":")[0].removeprefix("*."))
                else 'use a host name (api.github.com), a wildcard ("*.example.com"), '
                "an IP address or a CIDR (10.0.0.0/8), optionally with :PORT")
        raise LocatedValueError(f'"{value}" is not a host pattern', hint=hint)
    return text.rstrip(".")
