"""`asbx policy check`: one URL or host:port put to a sandbox's network policy, as the proxy would.

The answer for an allowlist is `policy.decide`, the very function the egress proxy acts on;
`deny` and `open` need no proxy and are answered from the mode alone.
"""

from __future__ import annotations

import json
import re
from typing import Any

from asbx.network.policy import Decision, HostPolicy, Resolver, decide
from asbx.network.secrets import normalise_host
from asbx.spec.model import NetworkPolicy, SandboxSecretSpec
from asbx.spec.values import join_allow_entry

_URL = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://(?P<authority>[^/?#]*)(?:[/?#].*)?",
                  re.DOTALL)
_AUTHORITY = re.compile(r"(?:\[(?P<v6>[^\]]*)\]|(?P<host>[^:\[\]]*))(?::(?P<port>[0-9]*))?",
                        re.DOTALL)
_SCHEME_PORTS = {"http": 80, "https": 443}


def parse_target(text: str) -> tuple[str, int]:
    """(host, port) of `https://host[:port]/path`, `http://…`, `host:port` or `[v6]:port`.

    The host is taken as written (not stripped), so that the decision sees what a client
    would send; raises ValueError for anything that names no host or no port.
    """
    url = _URL.fullmatch(text)
    authority = url.group("authority").rpartition("@")[2] if url else text
    match = _AUTHORITY.fullmatch(authority)
    if match is None or not (host := match.group("v6") or match.group("host") or ""):
        raise ValueError(f'"{text}" names no host (use https://HOST/…, HOST:PORT or [IPv6]:PORT)')
    port_text = match.group("port")
    if port_text:
        port = int(port_text[:6])
        if not 0 < port < 65536 or len(port_text) > 5:
            raise ValueError(f'"{text}": port {port_text} is out of range (1-65535)')
        return host, port
    scheme = url.group("scheme").lower() if url else None
    if scheme in _SCHEME_PORTS:
        return host, _SCHEME_PORTS[scheme]
    if scheme is not None:
        raise ValueError(f'"{text}": give the port of a {scheme}:// URL ({scheme}://HOST:PORT)')
    raise ValueError(f'"{text}" has no port (use HOST:PORT, or a http:// or https:// URL)')


def check_network(network: NetworkPolicy, target: str, resolver: Resolver | None) -> Decision:
    """The decision for `target` under a sandbox's network policy; ValueError for a bad target."""
    host, port = parse_target(target)
    if network.mode == "deny":
        return Decision(host, port, "refused",
                        "network: deny (the sandbox has no network interface)")
    if network.mode == "open":
        return Decision(host, port, "allowed",
                        "network: open (the runtime's network, no proxy: every host)")
    return decide(HostPolicy(network.allow), host, port, resolver)


def secrets_for(secrets: dict[str, SandboxSecretSpec] | None, target: str,
                decision: Decision) -> list[dict[str, Any]]:
    """Which of a sandbox's secrets the proxy would put into this request, and how (never a
    value): only for an allowed host they are granted to, and only over HTTPS."""
    if not secrets or not decision.allowed:
        return []
    plain = target.lower().startswith("http://")
    host = normalise_host(decision.host)
    found = []
    for name, grant in sorted(secrets.items()):
        if host not in {normalise_host(h) for h in grant.hosts}:
            continue
        how = (f"sets the header {grant.header.partition(':')[0].strip()}" if grant.header
               else f"replaces the placeholder in ${grant.env} wherever a header holds it")
        found.append({"name": name, "header": grant.header, "env": grant.env,
                      "injected": not plain,
                      "how": f"withheld: plain http never carries a secret ({how} over HTTPS)"
                      if plain else how})
    return found


def decision_json(sandbox: str, target: str, decision: Decision,
                  secrets: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The documented `asbx policy check --json` object."""
    return {
        "sandbox": sandbox,
        "target": target,
        "host": decision.host,
        "port": decision.port,
        "verdict": decision.verdict,
        "allowed": decision.allowed,
        "rule": decision.rule,
        "reason": decision.reason,
        "addresses": [str(address) for address in decision.addresses],
        "refused_addresses": [{"address": str(address), "reason": why}
                              for address, why in decision.refused_addresses],
        "secrets": secrets or [],
    }


def decision_text(sandbox: str, decision: Decision,
                  secrets: list[dict[str, Any]] | None = None) -> str:
    """The human answer: the verdict line, then the rule or reason and the addresses."""
    shown = join_allow_entry(decision.host, decision.port)
    if any(char.isspace() or not char.isprintable() for char in shown):
        shown = json.dumps(shown)
    lines = [f"{decision.verdict}: {shown} from sandbox {sandbox}"]
    if decision.rule is not None:
        lines.append(f"  rule: {decision.rule}")
    lines.append(f"  {'why' if decision.allowed else 'reason'}: {decision.reason}")
    if decision.addresses:
        lines.append(f"  addresses: {', '.join(map(str, decision.addresses))}")
    for address, why in decision.refused_addresses:
        lines.append(f"  skipped {address}: {why}")
    for secret in secrets or []:
        lines.append(f"  secret {secret['name']}: {secret['how']}")
    return "\n".join(lines)

