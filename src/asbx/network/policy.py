"""The egress allowlist as pure decisions: which names, addresses and ports a sandbox may reach."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from asbx.spec.values import check_host_pattern, join_allow_entry, parse_allow_entry

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# Addresses that are not "the internet": private (RFC 1918, ULA), loopback, link-local (with the
# cloud metadata address 169.254.169.254), CGNAT, "this network" (0.0.0.0 reaches the proxy's own
# host), documentation, benchmarking, multicast and reserved ranges (RFC 6890). IPv4-mapped IPv6
# is folded to IPv4 before any check; other forms embedding IPv4 are judged by it as well.
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
_TRANSLATED = ipaddress.IPv6Network("::ffff:0:0:0/96")  # SIIT IPv4-translated (RFC 2765)
_COMPATIBLE = ipaddress.IPv6Network("::/96")  # deprecated IPv4-compatible (RFC 4291)

DEFAULT_PORTS: frozenset[int] = frozenset({80, 443})
"""The ports an entry without `:PORT` allows: HTTP and HTTPS."""

Resolver = Callable[[str, int], Sequence[IPAddress]]
"""Resolves (host name, port) to addresses; raises OSError when the name does not resolve."""

Verdict = Literal["allowed", "refused", "unresolved"]


@dataclass(frozen=True)
class HostRule:
    """One allowlist entry: an exact name, a `*.suffix` wildcard or a network, maybe with a port.

    `port` None means ports 80 and 443 (DEFAULT_PORTS). A wildcard matches sub-domains at any
    depth, never the apex: `*.example.com` matches `api.example.com` and `a.b.example.com`, not
    `example.com`.
    """

    name: str | None = None
    suffix: str | None = None
    network: IPNetwork | None = None
    port: int | None = None

    def names(self, name: str) -> bool:
        """Does this entry list the host name (whatever the port)?"""
        if self.name is not None:
            return name == self.name
        return self.suffix is not None and name.endswith("." + self.suffix)

    def matches_name(self, name: str, port: int | None) -> bool:
        return self.names(name) and self.allows_port(port)

    def contains(self, address: IPAddress, port: int | None) -> bool:
        return self.network is not None and address in self.network and self.allows_port(port)

    def allows_port(self, port: int | None) -> bool:
        """`port` None asks about the host alone, which any port of the entry answers."""
        if port is None:
            return True
        return port in DEFAULT_PORTS if self.port is None else port == self.port

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
        else:
            host = self.name or f"*.{self.suffix}"
        return join_allow_entry(host, self.port)


@dataclass(frozen=True)
class Decision:
    """The answer for one requested host and port: what the proxy does and `policy check` says.

    `allowed`: `addresses` are the checked addresses to connect to, in the resolver's order
    (empty when resolution was skipped). `refused`: by the allowlist or the address checks.
    `unresolved`: the name is listed but does not resolve. `rule` is the entry that listed the
    host (None when no entry did); `refused_addresses` are the resolved addresses left out.
    """

    host: str
    port: int
    verdict: Verdict
    reason: str
    rule: str | None = None
    addresses: tuple[IPAddress, ...] = ()
    refused_addresses: tuple[tuple[IPAddress, str], ...] = ()

    @property
    def allowed(self) -> bool:
        return self.verdict == "allowed"


def parse_rule(entry: str) -> HostRule:
    """Parse an allowlist entry (`host`, `*.suffix`, IP, CIDR, each maybe `:port`); ValueError."""
    normalised, port = parse_allow_entry(entry)
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

    IPv6 forms that embed an IPv4 address (mapped, translated, compatible, 6to4, NAT64, Teredo)
    are special when the embedded address is, since a gateway on the path would deliver them.
    """
    ip = canonical_address(address)
    embedded = _embedded_ipv4(ip)
    if embedded is not None and is_special(embedded):
        return True
    return not ip.is_global or ip.is_multicast or any(ip in net for net in SPECIAL_NETWORKS)


def normalise_name(name: str) -> str:
    """A requested host name as rules see it: lower case, without one trailing dot.

    Nothing is stripped: a name with whitespace or control characters stays malformed.
    """
    lowered = name.lower()
    return lowered[:-1] if lowered.endswith(".") else lowered


Check = tuple[HostRule | None, str | None]
"""(the entry that allows, or None; why it is refused, or None when it is not)."""


class HostPolicy:
    """A sandbox's egress allowlist; every method is a pure decision.

    A host name is permitted when an exact or wildcard rule lists it on the requested port; its
    resolved addresses must still pass `check_address(ip, by_name=True)`. A private or otherwise
    special address is refused unless an IP/CIDR rule that holds only special addresses lists
    it, even when a listed name resolves to it (DNS rebinding) and even under a broad rule like
    0.0.0.0/0. An entry without a port allows 80 and 443 only.
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
        return self.check_host(name, port)[1]

    def address_refusal(self, ip: IPAddress | str, listed_by_name: bool,
                        port: int | None = None) -> str | None:
        """Why the proxy must not connect to this address, or None when it may."""
        return self.check_address(ip, listed_by_name, port)[1]

    def check_host(self, name: str, port: int | None = None) -> Check:
        """The entry that lets a request name this host on `port`, or why it is refused."""
        if any(char.isspace() or not char.isprintable() for char in name):
            return None, f"{name!r} is not a host name (whitespace or control characters)"
        literal = parse_address(name)
        if literal is not None:
            return self.check_address(literal, False, port)
        wanted = normalise_name(name)
        if not _is_host_name(wanted):
            return None, f"{wanted!r} is not a host name"
        named = [rule for rule in self.rules if rule.names(wanted)]
        allowing = [rule for rule in named if rule.allows_port(port)]
        if allowing:
            return allowing[0], None
        if named:
            return None, _port_refusal(port, wanted, named)
        return None, f"{wanted} is not in this sandbox's allowlist"

    def check_address(self, ip: IPAddress | str, by_name: bool, port: int | None = None) -> Check:
        """The entry that lets the proxy connect to this address, or why it must not.

        `by_name`: the address is a resolved name's, whose entry already allowed the port; a
        private address still needs an entry of its own that allows the port too.
        """
        address = canonical_address(ip)
        special = is_special(address)
        if by_name and not special:
            return None, None
        candidates = [rule for rule in self.rules if rule.contains(address, None)
                      and (rule.lists_only_special() or not special)]
        allowing = [rule for rule in candidates if rule.allows_port(port)]
        if allowing:
            return allowing[0], None
        if candidates:
            return None, _port_refusal(port, str(address), candidates)
        if special:
            return None, (f"{address} is a private, local or reserved address "
                          "(allowed only when that address or its private range is listed)")
        return None, f"{address} is not in this sandbox's allowlist"


def decide(policy: HostPolicy, host: str, port: int, resolver: Resolver | None) -> Decision:
    """The single egress decision: check the name, resolve it, check every address.

    The proxy connects to `addresses` of an allowed decision; `asbx policy check` prints it.
    A name no entry lists is never resolved. `resolver` None skips resolution (a name-only
    answer: its addresses may still be refused when the proxy resolves them).
    """
    rule, refusal = policy.check_host(host, port)
    listed = rule.text() if rule is not None else None
    if refusal is not None:
        return Decision(host, port, "refused", refusal, listed)
    literal = parse_address(host)
    if literal is not None:
        return Decision(host, port, "allowed", f"{literal} is listed by {listed}", listed,
                        (literal,))
    name = normalise_name(host)
    if resolver is None:
        return Decision(host, port, "allowed",
                        f"{name} is listed by {listed} (its addresses were not checked)", listed)
    try:
        addresses = list(dict.fromkeys(resolver(name, port)))
    except (OSError, UnicodeError, ValueError) as exc:
        why = getattr(exc, "strerror", None) or exc
        return Decision(host, port, "unresolved", f"cannot resolve {name}: {why}", listed)
    if not addresses:
        return Decision(host, port, "unresolved", f"cannot resolve {name}: no addresses", listed)
    checked = [(address, policy.check_address(address, True, port)[1]) for address in addresses]
    allowed = tuple(address for address, why in checked if why is None)
    refused = tuple((address, why) for address, why in checked if why is not None)
    if not allowed:
        return Decision(host, port, "refused",
                        f"{name} resolves only to refused addresses: {refused[0][1]}", listed,
                        refused_addresses=refused)
    return Decision(host, port, "allowed", f"{name} is listed by {listed}", listed, allowed,
                    refused)


def _port_refusal(port: int | None, host: str, rules: Sequence[HostRule]) -> str:
    listed = ", ".join(rule.text() for rule in rules)
    return (f"port {port} of {host} is not allowed (listed as {listed}; "
            "an entry without :PORT allows 80 and 443)")


def _is_host_name(text: str) -> bool:
    try:
        checked = check_host_pattern(text)
    except ValueError:
        return False
    return checked == text and not set(checked) & {"*", "/", ":"}


def parse_address(text: str) -> IPAddress | None:
    """The IP address `text` spells (brackets allowed around IPv6), or None for a name."""
    try:
        return ipaddress.ip_address(text.removeprefix("[").removesuffix("]"))
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
    if ip.teredo is not None:
        return ip.teredo[1]  # the client's address
    if any(ip in net for net in (_NAT64, _TRANSLATED, _COMPATIBLE)):
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def _within(inner: IPNetwork, outer: IPNetwork) -> bool:
    return (inner.version == outer.version
            and int(outer.network_address) <= int(inner.network_address)
            and int(inner.broadcast_address) <= int(outer.broadcast_address))
