"""Secrets the egress proxy puts into requests: only toward the hosts each one is granted to.

A sandbox never holds a secret's value. It holds a placeholder (or nothing, for a header the
proxy sets), and the proxy, which terminates TLS for those hosts only, writes the value into the
request's headers on its way out. Values reach the proxy process through a pipe and live only
in its memory; files hold at most a keyed fingerprint of a value, to tell that it changed."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets as random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from asbx.network.policy import normalise_name

FINGERPRINT_KEY = "secret-key"  # per run directory, 0600: keys the fingerprints in policy.json


@dataclass(frozen=True)
class SecretGrant:
    """One secret as the proxy applies it: the real value, for requests to these hosts only."""

    name: str  # the spec's name for it (logs and `policy check`; never the value)
    hosts: tuple[str, ...]  # host names or IP literals, without ports
    value: str
    header: str | None = None  # "Authorization: Bearer {}": this header is set, value for {}
    placeholder: str | None = None  # replaced by the value wherever it appears in header values

    def __post_init__(self) -> None:
        if (self.header is None) == (self.placeholder is None):
            raise ValueError(f"secret {self.name}: give exactly one of header or placeholder")
        if self.header is not None:
            header_name, colon, template = self.header.partition(":")
            if not colon or not header_name.strip() or template.count("{}") != 1:
                raise ValueError(f"secret {self.name}: header must be 'Name: ...{{}}...'")
        if not self.hosts:
            raise ValueError(f"secret {self.name}: no hosts")
        if any(c in self.value for c in "\r\n\0"):
            raise ValueError(f"secret {self.name}: the value holds a line break or NUL")

    def applies_to(self, host: str) -> bool:
        wanted = normalise_host(host)
        return any(normalise_host(h) == wanted for h in self.hosts)

    def described(self) -> dict[str, Any]:
        """Everything about the grant except its value (what files and plans may hold)."""
        return {"name": self.name, "hosts": list(self.hosts), "header": self.header,
                "placeholder": self.placeholder}


def normalise_host(host: str) -> str:
    host = host.strip("[]")
    try:
        return normalise_name(host)
    except ValueError:
        return host.lower()


def grants_for(grants: Sequence[SecretGrant], host: str) -> tuple[SecretGrant, ...]:
    return tuple(g for g in grants if g.applies_to(host))


def apply_grants(headers: Sequence[tuple[str, str]], grants: Sequence[SecretGrant]
                 ) -> tuple[list[tuple[str, str]], list[str]]:
    """Headers with each grant applied, and the names of the grants that changed something:
    a header grant replaces every header of its name; a placeholder grant is replaced in every
    header value (not the request line, not the body)."""
    out = list(headers)
    used: list[str] = []
    for grant in grants:
        if grant.header is not None:
            name, _, template = grant.header.partition(":")
            name = name.strip()
            out = [(n, v) for n, v in out if n.lower() != name.lower()]
            out.append((name, template.strip().replace("{}", grant.value)))
            used.append(grant.name)
        elif grant.placeholder and any(grant.placeholder in v for _, v in out):
            out = [(n, v.replace(grant.placeholder, grant.value)) for n, v in out]
            used.append(grant.name)
    return out, used


def fingerprint_key(run_dir: Path) -> bytes:
    """The run directory's random key for fingerprints (made once, 0600)."""
    path = run_dir / FINGERPRINT_KEY
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    except FileExistsError:
        return path.read_bytes()
    with os.fdopen(fd, "wb") as stream:
        key = random.token_bytes(32)
        stream.write(key)
    return key


def fingerprint(key: bytes, value: str) -> str:
    """A keyed hash of a value: equal values, equal fingerprints; nothing about the value."""
    return "hmac-sha256:" + hmac.new(key, value.encode(), hashlib.sha256).hexdigest()[:32]


def recorded(grants: Sequence[SecretGrant], key: bytes) -> list[dict[str, Any]]:
    """What policy.json keeps of the grants: all but the values, plus their fingerprints."""
    return [{**g.described(), "fingerprint": fingerprint(key, g.value)} for g in grants]


def to_stdin(grants: Sequence[SecretGrant], ca_cert: Path, ca_key: Path) -> bytes:
    """The message the proxy reads on its stdin at start-up (the only way values reach it)."""
    return json.dumps({"ca_cert": str(ca_cert), "ca_key": str(ca_key),
                       "grants": [{**g.described(), "value": g.value} for g in grants]}).encode()


def from_stdin(data: Mapping[str, Any]) -> tuple[tuple[SecretGrant, ...], Path, Path]:
    """The grants and CA paths of a start-up message; ValueError if malformed."""
    try:
        grants = tuple(SecretGrant(name=str(g["name"]), hosts=tuple(str(h) for h in g["hosts"]),
                                   value=str(g["value"]), header=g.get("header"),
                                   placeholder=g.get("placeholder"))
                       for g in data["grants"])
        return grants, Path(str(data["ca_cert"])), Path(str(data["ca_key"]))
    except (KeyError, TypeError) as exc:
        raise ValueError(f"malformed secrets message: {exc}") from None


def placeholder_for(salt: str, sandbox: str, name: str) -> str:
    """The text a sandbox holds in place of secret `name`: fixed for the project and sandbox
    (a rotated value changes nothing in the sandbox), unguessable elsewhere, no secret itself."""
    tag = hashlib.sha256(f"{salt}\0placeholder\0{sandbox}\0{name}".encode()).hexdigest()[:32]
    return f"asbx-secret-{name}-{tag}"
