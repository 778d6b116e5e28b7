"""The egress allowlist as pure decisions: which names, addresses and ports a sandbox may reach."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from dataclasses import dataclass

from asbx.spec.values import check_host_pattern

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# Addresses that are not "the internet": private (RFC 1918, ULA), loopback, link-local (with the
# cloud metadata address 169.254.169.254), CGNAT, "this network" (0.0.0.0 reaches the proxy's own
# host), documentation, benchmarking, multicast and reserved ranges (RFC 6890). IPv4-mapped IPv6
# is folded to IPv4 before any check; ::/96 also covers the deprecated IPv4-compatible form.
SPECIAL_NETWORKS: tuple[IPNetwork, ...] = tuple(
    ipaddress.ip_network(text)
    for text in (
        "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16",
        "172.16.0.0/12", "192.0.0.0/24", "192.0.2.0/24", "192.88.99.0/24", "192.168.0.0/16",
        "198.18.0.0/15", "198.51.100.0/24", "203.0.113.0/24", "224.0.0.0/4", "240.0.0.0/4",
        "::/96", "64:ff9b:1::/48", "100::/64", "2001::/23", "2001:db8::/32", "fc00::/7",
        "fe80::/10", "fec0::/10", "ff00::/8",
    )
)
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_PORT_SUFFIX = re.compile(r"^(?:\[(?P<v6>[^\]]+)\]|(?P<host>[^:\[\]]+)):(?P<port>\d{1,5})$")


@dataclass(frozen=True)
class HostRule:
    """One allowlist entry: an exact name, a `*.suffix` wildcard or a network, maybe with a port.

    `port` None means every port. A wildcard matches sub-domains at any depth, never the apex:
    `*.example.com` matches `api.example.com` and `a.b.example.com`, not `example.com`.
    """

    name: str | None = None
    suffix: str | None = None
    network: IPNetwork | None = None
    port: int | None = None

    def matches_name(self, name: str, port: int | None) -> bool:
        if not self._port_ok(port):
            return False
        if self.name is not None:
            return name == self.name
        return self.suffix is not None and name.endswith("." + self.suffix)

    def contains(self, address: IPAddress, port: int | None) -> bool:
        return self.network is not None and address in self.network and self._port_ok(port)

    def lists_only_special(self) -> bool:
        """True for one address, or a network without public addresses: it may open private ones."""
        net = self.network
        if net is None:
            return False
        return net.num_addresses == 1 or any(_within(net, special) for special in SPECIAL_NETWORKS)

    def text(self) -> str:
        """The canonical entry text: `name`, `*.suffix`, `1.2.3.4`, `10.0.0.0/8`, `[::1]:443`."""
        if self.network is not None:
            host = str(self.network)
            if self.network.num_addresses == 1:
                host = str(self.network.network_address)
            if self.port is not None and self.network.version == 6:
                host = f"[{host}]"
        else:
            host = self.name or f"*.{self.suffix}"
        return host if self.port is None else f"{host}:{self.port}"

    def _port_ok(self, port: int | None) -> bool:
        return self.port is None or port is None or port == self.port


def parse_rule(entry: str) -> HostRule:
    """Parse an allowlist entry (as normalised by the spec, or `host:port`); raise ValueError."""
    text = entry.strip().lower()
    port: int | None = None
    match = _PORT_SUFFIX.match(text)
    if match:
        text = match.group("v6") or match.group("host")
        port = int(match.group("port"))
        if not 0 < port < 65536:
            raise ValueError(f'"{entry}": port {port} is out of range (1-65535)')
    normalised = check_host_pattern(text)
    if normalised.startswith("*."):
        return HostRule(suffix=normalised[2:], port=port)
    try:
        network = ipaddress.ip_network(normalised, strict=False)
    except ValueError:
        return HostRule(name=normalised, port=port)
    return HostRule(network=_fold_mapped_network(network), port=port)


def canonical_address(address: IPAddress | str) -> IPAddress:
    """The address to check: IPv4-mapped IPv6 (::ffff:a.b.c.d) folded to plain IPv4."""
    ip = ipaddress.ip_address(address) if isinstance(address, str) else address
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def is_special(address: IPAddress | str) -> bool:
    """True for private, loopback, link-local, metadata, CGNAT, reserved or multicast addresses.

    IPv6 forms that embed an IPv4 address (mapped, 6to4, NAT64) are special when the embedded
    address is, since a gateway on the path would deliver them to it.
    """
    ip = canonical_address(address)
    if not ip.is_global or ip.is_multicast or any(ip in net for net in SPECIAL_NETWORKS):
        return True
    embedded = _embedded_ipv4(ip)
    return embedded is not None and is_special(embedded)


def normalise_name(name: str) -> str:
    """A requested host name as rules see it: lower case, without one trailing dot."""
    lowered = name.strip().lower()
    return lowered[:-1] if lowered.endswith(".") else lowered


class HostPolicy:
    """A sandbox's egress allowlist; every method is a pure decision.

    A host name is permitted when an exact or wildcard rule lists it; its resolved addresses must
    still pass `permits_address(ip, listed_by_name=True)`. A private or otherwise special address
    is refused unless an IP/CIDR rule that holds only special addresses lists it, even when a
    listed name resolves to it (DNS rebinding) and even under a broad rule like 0.0.0.0/0.
    """

    def __init__(self, allow: Sequence[str]) -> None:
        rules = {rule.text(): rule for rule in map(parse_rule, allow)}
        self.entries: tuple[str, ...] = tuple(rules)
        """The canonical allowlist, duplicates removed: two policies are equal when these are."""
        self.rules: tuple[HostRule, ...] = tuple(rules.values())

    def __repr__(self) -> str:
        return f"HostPolicy({list(self.entries)!r})"

    def permits_host(self, name: str, port: int | None = None) -> bool:
        """May a request name this host (before any resolution)? IP literals count as addresses."""
        return self.host_refusal(name, port) is None

    def permits_address(self, ip: IPAddress | str, listed_by_name: bool,
                        port: int | None = None) -> bool:
        """May the proxy connect to this address (a resolved name's, or a literal's)?"""
        return self.address_refusal(ip, listed_by_name, port) is None

    def host_refusal(self, name: str, port: int | None = None) -> str | None:
        """Why a requested host is refused, or None when it may be resolved and tried."""
        literal = parse_address(name)
        if literal is not None:
            return self.address_refusal(literal, listed_by_name=False, port=port)
        wanted = normalise_name(name)
        if not _is_host_name(wanted):
            return f"{wanted!r} is not a host name"
        if any(rule.matches_name(wanted, port) for rule in self.rules):
            return None
        if port is not None and any(rule.matches_name(wanted, None) for rule in self.rules):
            return f"port {port} of {wanted} is not in this sandbox's allowlist"
        return f"{wanted} is not in this sandbox's allowlist"

    def address_refusal(self, ip: IPAddress | str, listed_by_name: bool,
                        port: int | None = None) -> str | None:
        """Why the proxy must not connect to this address, or None when it may."""
        address = canonical_address(ip)
        listing = [rule for rule in self.rules if rule.contains(address, port)]
        if is_special(address):
            if any(rule.lists_only_special() for rule in listing):
                return None
            return (f"{address} is a private, local or reserved address "
                    "(allowed only when that address or its private range is listed)")
        if listed_by_name or listing:
            return None
        return f"{address} is not in this sandbox's allowlist"


def _is_host_name(text: str) -> bool:
    try:
        checked = check_host_pattern(text)
    except ValueError:
        return False
    return checked == text and not set(checked) & {"*", "/", ":"}


def parse_address(text: str) -> IPAddress | None:
    """The IP address `text` spells (brackets allowed around IPv6), or None for a name."""
    try:
        return ipaddress.ip_address(text.strip().removeprefix("[").removesuffix("]"))
    except ValueError:
        return None


def _fold_mapped_network(network: IPNetwork) -> IPNetwork:
    if isinstance(network, ipaddress.IPv6Network) and network.prefixlen >= 96:
        mapped = network.network_address.ipv4_mapped
        if mapped is not None:
            return ipaddress.IPv4Network((mapped, network.prefixlen - 96))
    return network


def _embedded_ipv4(ip: IPAddress) -> ipaddress.IPv4Address | None:
    if not isinstance(ip, ipaddress.IPv6Address):
        return None
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def _within(inner: IPNetwork, outer: IPNetwork) -> bool:
    return (inner.version == outer.version
            and int(outer.network_address) <= int(inner.network_address)
            and int(inner.broadcast_address) <= int(outer.broadcast_address))
