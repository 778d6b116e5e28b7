"""The sandboxes.yaml model (pydantic v2, frozen, unknown keys forbidden); source of the schema."""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    StringConstraints,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from asbx.diagnostics import did_you_mean
from asbx.spec import capabilities, values
from asbx.spec.commands import from_line
from asbx.spec.values import LocatedValueError

SPEC_VERSION = 1
RESERVED_LABEL_PREFIX = "dev.asbx."
DEFAULT_COMMAND = ("tail", "-f", "/dev/null")


_KIND_NAMES = {bool: "true/false", dict: "a mapping", list: "a list", type(None): "nothing (null)"}


def _strict_str(value: Any) -> Any:
    """Accept strings and numbers (as their text); refuse booleans, mappings and lists."""
    if isinstance(value, bool):
        raise LocatedValueError("expected a string, got true/false",
                                hint='quote it if you mean the text, e.g. "yes"')
    if isinstance(value, dict | list):
        raise ValueError(f"expected a string, got {_KIND_NAMES[type(value)]}")
    if isinstance(value, int | float):
        return str(value)
    return value


Name = Annotated[
    str,
    AfterValidator(values.check_name),
    WithJsonSchema({"type": "string", "pattern": "^[a-z0-9][a-z0-9_-]{0,62}$"}),
]
Size = Annotated[
    int,
    BeforeValidator(values.parse_size),
    PlainSerializer(values.format_size, return_type=str),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "pattern": r"^\d+(\.\d+)?\s*([kKmMgGtTpP]([iI]?[bB])?|[bB])$"},
                {"type": "integer", "minimum": 1},
            ],
            "examples": ["512M", "2G", "1.5GiB"],
        }
    ),
]
Duration = Annotated[
    int,
    BeforeValidator(values.parse_duration),
    PlainSerializer(values.format_duration, return_type=str),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "pattern": r"^(\d+[dD])?(\d+[hH])?(\d+[mM])?(\d+[sS])?$"},
                {"type": "integer", "minimum": 1},
            ],
            "examples": ["90s", "30m", "8h", "7d"],
        }
    ),
]
Text = Annotated[
    str, BeforeValidator(_strict_str), WithJsonSchema({"type": ["string", "number"]})
]
Cpus = Annotated[
    float,
    BeforeValidator(values.parse_cpus),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "number", "exclusiveMinimum": 0, "maximum": values.MAX_CPUS},
                {"type": "string", "pattern": r"^\d+(\.\d+)?$"},
            ],
            "examples": [2, 0.5],
        }
    ),
]
HostPattern = Annotated[str, AfterValidator(values.check_allow_entry)]


def _secret_host(value: str) -> str:
    host = values.check_host_pattern(value)
    if "*" in host or "/" in host:
        raise ValueError(f'"{value}": a secret goes to named hosts, not to a wildcard or a '
                         "network (list each host)")
    return host


SecretHost = Annotated[str, AfterValidator(_secret_host)]
Capability = Annotated[
    str,
    BeforeValidator(capabilities.check),
    WithJsonSchema(
        {"type": "string", "pattern": "^([Cc][Aa][Pp]_)?[A-Za-z_]+$",
         "examples": ["NET_RAW", "SYS_PTRACE"]}
    ),
]
StrMap = dict[str, Text]


def _no_reserved_labels(labels: dict[str, str]) -> dict[str, str]:
    for key in labels:
        if key.startswith(RESERVED_LABEL_PREFIX):
            raise LocatedValueError(
                f'label "{key}" uses the prefix "{RESERVED_LABEL_PREFIX}", reserved for asbx',
                at=(key,), key=True, hint="choose another prefix, e.g. com.example.",
            )
    return labels


Labels = Annotated[
    StrMap,
    AfterValidator(_no_reserved_labels),
    WithJsonSchema(
        {
            "type": "object",
            "additionalProperties": {"type": ["string", "number"]},
            "propertyNames": {"not": {"pattern": "^dev\\.asbx\\."}},
        }
    ),
]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=False)


def _env_map(value: Any, info: ValidationInfo) -> Any:
    """Accept a mapping or a list of `KEY=VALUE`; a null value passes the host's value through."""
    host_env: dict[str, str] = (info.context or {}).get("env", {})
    if isinstance(value, list):
        mapping: dict[str, Any] = {}
        for index, item in enumerate(value):
            if not isinstance(item, str):
                raise LocatedValueError("list entries must be strings like KEY=VALUE", at=(index,))
            key, sep, val = item.partition("=")
            mapping[key] = val if sep else None
        value = mapping
    if not isinstance(value, dict):
        return value
    result: dict[str, Any] = {}
    for key, val in value.items():
        if not isinstance(key, str) or not values.ENV_NAME_RE.fullmatch(key):
            raise LocatedValueError(
                f'"{key}" is not a valid environment variable name', at=(key,), key=True,
                hint="names are letters, digits, _ and ., not starting with a digit",
            )
        if val is None:
            if key in host_env:
                result[key] = host_env[key]
            continue
        if isinstance(val, bool):
            val = "true" if val else "false"
        result[key] = val
    return result


EnvMap = Annotated[
    dict[str, Text],
    BeforeValidator(_env_map),
    WithJsonSchema(
        {
            "anyOf": [
                {
                    "type": "object",
                    "additionalProperties": {"type": ["string", "number", "boolean", "null"]},
                    "propertyNames": {"pattern": "^[A-Za-z_][A-Za-z0-9_.]*$"},
                },
                {"type": "array", "items": {"type": "string"}},
            ]
        }
    ),
]


class BuildSpec(_Model):
    """How to build an image from a Dockerfile."""

    context: str = Field(".", description="Build context directory, relative to the spec file.")
    dockerfile: str | None = Field(
        None, description="Dockerfile path relative to the context (default: Dockerfile)."
    )
    inline: str | None = Field(None, description="Dockerfile text given inline instead of a file.")
    args: StrMap = Field(default_factory=dict, description="Build arguments (--build-arg).")
    target: str | None = Field(None, description="Build stage to stop at (--target).")

    @model_validator(mode="after")
    def _one_dockerfile_source(self) -> BuildSpec:
        if self.dockerfile is not None and self.inline is not None:
            raise LocatedValueError('give either "dockerfile" or "inline", not both',
                                    at=("inline",), key=True)
        return self


class ImageSpec(_Model):
    """An image: pulled from a registry (`ref`) or built from a Dockerfile (`build`)."""

    ref: str | None = Field(
        None, description="OCI reference to pull, e.g. docker.io/library/python:3.12."
    )
    build: BuildSpec | None = Field(None, description="Build this image from a Dockerfile.")
    platform: str | None = Field(None, description="Platform to pull or build, e.g. linux/arm64.")
    labels: Labels = Field(
        default_factory=dict,
        description="Labels set on the built image (`build` only: a pulled image keeps its own).",
    )

    @model_validator(mode="after")
    def _ref_xor_build(self) -> ImageSpec:
        if self.ref is not None and self.build is not None:
            raise LocatedValueError('give either "ref" or "build", not both',
                                    at=("build",), key=True)
        if self.ref is None and self.build is None:
            raise LocatedValueError('an image needs "ref" (to pull) or "build" (to build)',
                                    key=True, hint="e.g. ref: docker.io/library/python:3.12-slim")
        if self.ref is not None and self.labels:
            raise LocatedValueError(
                "labels can only be set on a built image: a pulled image keeps its own",
                at=("labels",), key=True,
                hint="remove them, or label the sandboxes that run it (sandboxes.NAME.labels)")
        return self


class VolumeSpec(_Model):
    """A named volume, kept across sandbox replacement and `destroy` unless asked."""

    labels: Labels = Field(default_factory=dict, description="Labels set on the volume.")
    size: Size | None = Field(None, description="Size limit, where the runtime supports one.")


class SnapshotSpec(_Model):
    """An archive of a sandbox's /workspace, taken after its setup ran, or a shared archive."""

    sandbox: Name | None = Field(None, description="The sandbox whose /workspace is captured.")
    archive: str | None = Field(
        None,
        description="A .tar.zst file (relative to the spec, inside its directory) imported as "
                    "this snapshot, e.g. one a team checks in; re-imported when it changes.",
    )
    labels: Labels = Field(default_factory=dict, description="Labels recorded with the snapshot.")

    @model_validator(mode="after")
    def _one_source(self) -> SnapshotSpec:
        if self.sandbox is not None and self.archive is not None:
            raise LocatedValueError('give either "sandbox" or "archive", not both',
                                    at=("archive",), key=True)
        if self.sandbox is None and self.archive is None:
            raise ValueError('a snapshot needs "sandbox" (whose /workspace is captured) or '
                             '"archive" (a .tar.zst file to import)')
        return self


class NetworkPolicy(_Model):
    """Network policy: `deny` (no interface), `open` (runtime default) or an egress allowlist."""

    mode: Literal["deny", "open", "allow"] = "deny"
    allow: tuple[HostPattern, ...] = ()

    @field_validator("allow")
    @classmethod
    def _dedupe(cls, hosts: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(dict.fromkeys(hosts))

    @model_validator(mode="after")
    def _allow_needs_hosts(self) -> NetworkPolicy:
        if self.mode == "allow" and not self.allow:
            raise LocatedValueError('"allow" needs at least one host', at=("allow",),
                                    hint="list hosts, or use network: deny")
        if self.mode != "allow" and self.allow:
            raise ValueError(f'"allow" hosts make no sense with network: {self.mode}')
        return self

    def describe(self) -> str:
        return f"allow {', '.join(self.allow)}" if self.mode == "allow" else self.mode


def _coerce_network(value: Any) -> Any:
    if isinstance(value, str):
        if value in ("deny", "open"):
            return {"mode": value}
        raise LocatedValueError(f'"{value}" is not a network policy',
                                hint=did_you_mean(value, ["deny", "open"])
                                or "use deny, open or {allow: [hosts]}")
    if isinstance(value, dict):
        _refuse_unknown_keys(value, ["allow"], "network")
        if "allow" not in value:
            raise LocatedValueError('network needs "allow: [hosts]" (or use deny or open)')
        hosts = value["allow"]
        if not isinstance(hosts, list):
            raise LocatedValueError('"allow" must be a list of hosts', at=("allow",),
                                    hint="e.g. allow: [api.github.com]")
        return {"mode": "allow", "allow": hosts}
    if isinstance(value, NetworkPolicy):
        return value
    raise LocatedValueError("network must be deny, open or {allow: [hosts]}")


def _refuse_unknown_keys(value: dict[Any, Any], allowed: list[str], what: str) -> None:
    for key in value:
        if key not in allowed:
            hint = did_you_mean(str(key), allowed) or f"allowed keys: {', '.join(allowed)}"
            raise LocatedValueError(f'unknown key "{key}" in {what}', at=(key,), key=True,
                                    hint=hint)


def _dump_network(policy: NetworkPolicy) -> Any:
    return {"allow": list(policy.allow)} if policy.mode == "allow" else policy.mode


Network = Annotated[
    NetworkPolicy,
    BeforeValidator(_coerce_network),
    PlainSerializer(_dump_network),
    WithJsonSchema(
        {
            "description": "deny (default: no network interface), open (the runtime's default "
            "network) or {allow: [hosts]} (egress only to these hosts, through asbx's proxy).",
            "anyOf": [
                {"type": "string", "enum": ["deny", "open"]},
                {
                    "type": "object",
                    "properties": {
                        "allow": {
                            "type": "array",
                            "items": {"type": "string"},
                            "minItems": 1,
                            "description": "Hostnames, *.suffix wildcards, IPs or CIDRs, each "
                            "with an optional :PORT (without one: ports 80 and 443).",
                        }
                    },
                    "required": ["allow"],
                    "additionalProperties": False,
                },
            ],
        }
    ),
]


class MountSpec(_Model):
    """A volume or host directory mounted into a sandbox."""

    type: Literal["volume", "bind"]
    source: str
    target: str
    readonly: bool = False

    @field_validator("target")
    @classmethod
    def _absolute_target(cls, target: str) -> str:
        if not target.startswith("/"):
            raise ValueError(f'mount target "{target}" must be an absolute path')
        normal = "/" + "/".join(p for p in target.split("/") if p and p != ".")
        if ".." in normal.split("/"):
            raise ValueError(f'mount target "{target}" must not contain ".."')
        if normal == "/workspace":
            raise ValueError('mount target "/workspace" is reserved for the sandbox workspace')
        if normal == "/":
            raise ValueError('mount target "/" is not allowed')
        return normal


def _coerce_mount(value: Any) -> Any:
    if isinstance(value, str):
        parts = value.split(":")
        if len(parts) not in (2, 3) or not parts[0] or not parts[1]:
            raise ValueError(f'"{value}" is not a mount (use NAME:/path, ./dir:/path or add :ro)')
        if len(parts) == 3 and parts[2] not in ("ro", "rw"):
            raise ValueError(f'"{value}": mount option "{parts[2]}" is not ro or rw')
        source, target = parts[0], parts[1]
        kind = "bind" if source.startswith((".", "/", "~")) else "volume"
        return {"type": kind, "source": source, "target": target,
                "readonly": len(parts) == 3 and parts[2] == "ro"}
    if isinstance(value, dict):
        return _long_mount(value)
    return value


def _long_mount(value: dict[Any, Any]) -> dict[str, Any]:
    has_volume, has_bind = "volume" in value, "bind" in value
    if has_volume and has_bind:
        raise LocatedValueError('give either "volume" or "bind", not both', at=("bind",), key=True)
    kind = "volume" if has_volume else "bind"
    _refuse_unknown_keys(value, [kind, "target", "readonly"] if has_volume or has_bind
                         else ["volume", "bind", "target", "readonly"], "mount")
    if not has_volume and not has_bind:
        raise LocatedValueError('a mount needs "volume: NAME" or "bind: ./dir"')
    if "target" not in value:
        raise LocatedValueError('a mount needs a "target" path', hint="e.g. target: /data")
    rest = {k: v for k, v in value.items() if k != kind}
    return {"type": kind, "source": value[kind], **rest}


def _dump_mount(mount: MountSpec) -> dict[str, Any]:
    out: dict[str, Any] = {mount.type: mount.source, "target": mount.target}
    if mount.readonly:
        out["readonly"] = True
    return out


Mount = Annotated[
    MountSpec,
    BeforeValidator(_coerce_mount),
    PlainSerializer(_dump_mount),
    WithJsonSchema(
        {
            "description": "NAME:/path[:ro] for a volume, ./dir:/path[:ro] for a host "
            "directory, or the long form.",
            "anyOf": [
                {"type": "string", "pattern": "^[^:]+:/[^:]*(:(ro|rw))?$"},
                {
                    "type": "object",
                    "properties": {
                        "volume": {"type": "string", "description": "A volumes: name."},
                        "bind": {"type": "string", "description": "A host directory."},
                        "target": {"type": "string", "description": "Absolute path inside."},
                        "readonly": {
                            "type": "boolean",
                            "default": False,
                            "description": "Mount read-only.",
                        },
                    },
                    "required": ["target"],
                    "additionalProperties": False,
                },
            ],
        }
    ),
]


class PortSpec(_Model):
    """A published port; binds to 127.0.0.1 unless a host address is given."""

    host_ip: str = "127.0.0.1"
    host: int = Field(ge=1, le=65535)
    container: int = Field(ge=1, le=65535)
    protocol: Literal["tcp", "udp"] = "tcp"

    @field_validator("host_ip")
    @classmethod
    def _an_address(cls, value: str) -> str:
        return _host_ip(value, value)


_PORT_RE = re.compile(
    r"(?:(?P<ip>\[[0-9a-fA-F:.]+\]|[0-9.]+):)?(?P<host>\d+):(?P<ctr>\d+)(?:/(?P<proto>tcp|udp))?"
)


def _coerce_port(value: Any) -> Any:
    if isinstance(value, int) and not isinstance(value, bool):
        if not 1 <= value <= 65535:
            raise ValueError(f"port {value} is out of range (1-65535)")
        return {"host": value, "container": value}
    if isinstance(value, str):
        match = _PORT_RE.fullmatch(value.strip())
        if not match:
            raise ValueError(f'"{value}" is not a port (use HOST:CONTAINER, e.g. 8080:80)')
        host, container = _port_number(match["host"], value), _port_number(match["ctr"], value)
        spec: dict[str, Any] = {"host": host, "container": container}
        if match["ip"]:
            spec["host_ip"] = _host_ip(match["ip"].strip("[]"), value)
        if match["proto"]:
            spec["protocol"] = match["proto"]
        return spec
    return value


def _host_ip(text: str, value: str) -> str:
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        raise ValueError(f'"{value}": {text} is not an IP address') from None


def _port_number(text: str, value: str) -> int:
    number = int(text[:6])
    if not 1 <= number <= 65535 or len(text) > 5:
        raise ValueError(f'"{value}": port {text} is out of range (1-65535)')
    return number


def _dump_port(port: PortSpec) -> str:
    ip = f"[{port.host_ip}]" if ":" in port.host_ip else port.host_ip
    return f"{ip}:{port.host}:{port.container}/{port.protocol}"


Port = Annotated[
    PortSpec,
    BeforeValidator(_coerce_port),
    PlainSerializer(_dump_port, return_type=str),
    WithJsonSchema(
        {
            "description": "[HOST_IP:]HOST:CONTAINER[/tcp|udp]; HOST_IP defaults to 127.0.0.1.",
            "anyOf": [{"type": "string"}, {"type": "integer", "minimum": 1, "maximum": 65535}],
        }
    ),
]


class WorkspaceSpec(_Model):
    """Where a sandbox's /workspace comes from: a host directory copied in, or a snapshot."""

    from_: str | None = Field(
        None,
        alias="from",
        description="Host directory (relative to the spec) copied in at creation.",
    )
    ignore: tuple[str, ...] = Field(
        (), description="gitignore-style patterns left out when copying `from`."
    )
    include: tuple[str, ...] | None = Field(
        None, description="gitignore-style patterns of secret files (such as .env, .env.*, "
        "*.pem, *.key, id_rsa*, id_ed25519*, .npmrc, .pypirc, .netrc, *.p12) that `from` "
        "copies anyway; without them such files are left out.",
    )
    snapshot: Name | None = Field(None, description="Restore this snapshot into the workspace.")

    @model_validator(mode="after")
    def _one_source(self) -> WorkspaceSpec:
        if self.from_ is not None and self.snapshot is not None:
            raise LocatedValueError('give either "from" or "snapshot", not both',
                                    at=("snapshot",), key=True)
        if self.ignore and self.from_ is None:
            raise LocatedValueError('"ignore" only applies with "from"', at=("ignore",), key=True,
                                    hint="add from: ./dir, or remove ignore")
        if self.include and self.from_ is None:
            raise LocatedValueError('"include" only applies with "from"', at=("include",),
                                    key=True, hint="add from: ./dir, or remove include")
        return self


class LifecycleSpec(_Model):
    """Lifecycle timers enforced by `asbx reap` (and reported by `plan`)."""

    idle_timeout: Duration | None = Field(
        None, description="Stop the sandbox after this long without exec/shell activity (30m)."
    )
    max_lifetime: Duration | None = Field(
        None, description="Delete the sandbox this long after it was created (e.g. 8h)."
    )
    auto_delete: Duration | None = Field(
        None, description="Delete the sandbox after it has been stopped this long (e.g. 7d)."
    )
    delete_workspace: bool = Field(
        False,
        description="Allow lifecycle deletes to remove an unsnapshotted workspace "
        "(otherwise reap only stops the sandbox).",
    )


def _coerce_command(value: Any) -> Any:
    """A string runs through `/bin/sh -c`; a list is the argv itself."""
    if isinstance(value, str):
        return from_line(value)
    if not isinstance(value, list | tuple):
        raise ValueError("a command is a string (run with /bin/sh -c) or a list of strings")
    if not value:
        raise ValueError("a command list needs at least the program to run")
    return value


Command = Annotated[
    tuple[str, ...],
    BeforeValidator(_coerce_command),
    WithJsonSchema(
        {"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]}
    ),
]


class SecretSpec(_Model):
    """Where a secret's value comes from, on the host: exactly one of env, file, command."""

    env: Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")] | None = Field(
        None, description="An environment variable of the process running asbx.")
    file: str | None = Field(
        None, description="A file on the host (relative to the spec); its content, without "
        "the final line break.")
    command: tuple[str, ...] | None = Field(
        None, min_length=1, description="A program and its arguments (no shell), run on the "
        "host when a plan needs the value, e.g. [gh, auth, token]; its stdout, stripped.")
    ttl: Duration | None = Field(
        None, description="With command: plans within this long of the last run trust the "
        "value it gave (only its salted hash is kept) instead of running it again, e.g. 1h.")

    @model_validator(mode="after")
    def _one_source(self) -> SecretSpec:
        given = [k for k in ("env", "file", "command") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("a secret needs exactly one source: env, file or command"
                             + (f" (got {', '.join(given)})" if given else ""))
        if self.ttl is not None and self.command is None:
            raise LocatedValueError("ttl goes with a command source (env and file are read "
                                    "each time: reading them costs nothing)", at=("ttl",))
        return self

    def describe(self) -> str:
        if self.env is not None:
            return f"env {self.env}"
        if self.file is not None:
            return f"file {self.file}"
        return f"command {' '.join(self.command or ())}"


class SandboxSecretSpec(_Model):
    """A secret a sandbox may use: the proxy puts it into requests to `hosts` only."""

    hosts: tuple[SecretHost, ...] = Field(
        min_length=1, description="Hosts (names or IP addresses, no ports) that get the value; "
        "each must be allowed by the sandbox's network allowlist.")
    header: str | None = Field(
        None, description='A header the proxy sets on those requests, {} standing for the '
        'value, e.g. "Authorization: Bearer {}".')
    env: Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")] | None = Field(
        None, description="An environment variable that holds a placeholder in the sandbox; "
        "the proxy replaces it by the value in header values of requests to hosts.")

    @model_validator(mode="after")
    def _one_way(self) -> SandboxSecretSpec:
        if (self.header is None) == (self.env is None):
            raise ValueError('give exactly one of "header" (set by the proxy) or "env" (a '
                             "placeholder in the sandbox, replaced by the proxy)")
        if self.header is not None:
            name, colon, template = self.header.partition(":")
            if not colon or not values.ENV_NAME_RE.fullmatch(name.strip().replace("-", "_")) \
                    or template.count("{}") != 1 or any(c in self.header for c in "\r\n"):
                raise LocatedValueError(f'header "{self.header}" must be one "Name: value" '
                                        "line with {} once where the value goes", at=("header",),
                                        hint='e.g. "Authorization: Bearer {}"')
            if name.strip().lower() in _NOT_SECRET_HEADERS:
                raise LocatedValueError(f"{name.strip()} cannot carry a secret: the proxy "
                                        "drops or sets that header itself", at=("header",),
                                        hint='use an end-to-end header, e.g. "Authorization"')
        return self


# Headers the proxy removes or writes on every forwarded request (hop-by-hop, framing, Host).
_NOT_SECRET_HEADERS = frozenset({
    "connection", "keep-alive", "proxy-connection", "proxy-authenticate", "proxy-authorization",
    "te", "trailer", "upgrade", "transfer-encoding", "content-length", "host"})


class SandboxSpec(_Model):
    """A long-lived container with a host-backed /workspace."""

    image: str = Field(description="An images: key, or a plain OCI reference.")
    command: Command | None = Field(
        None,
        description="Main process (default: a keep-alive). A string runs with /bin/sh -c.",
    )
    cpus: Cpus | None = Field(None, description="CPU limit, e.g. 2 or 0.5.")
    memory: Size | None = Field(
        None, description="Memory limit: 512M, 2G, 1.5GiB (binary units) or a number of bytes."
    )
    env: EnvMap = Field(
        default_factory=dict,
        description="Environment variables: a mapping or a list of KEY=VALUE; a key without "
        "a value takes the host's value (left out when the host has none).",
    )
    env_file: Annotated[
        tuple[str, ...],
        WithJsonSchema(
            {"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]}
        ),
    ] = Field((), description="Files of KEY=VALUE lines (relative to the spec) merged under env.")
    workdir: str = Field("/workspace", description="Working directory of commands.")
    user: str | None = Field(None, description="User (name or uid[:gid]) to run as.")
    network: Network = Field(default_factory=NetworkPolicy)
    volumes: tuple[Mount, ...] = Field(
        (),
        description="Mounts: NAME:/path[:ro] for a volumes: key, ./dir:/path[:ro] for a host "
        "directory (relative to the spec), or the long form {volume|bind, target, readonly}.",
    )
    workspace: WorkspaceSpec | None = Field(
        None, description="Seed /workspace from a host directory or a snapshot."
    )
    setup: tuple[Command, ...] = Field(
        (),
        description="Commands run in order, in the workdir, each time the sandbox's container "
        "is created (first apply, and again after a replacement). /workspace persists across "
        "replacement, so write steps that tolerate an earlier run (mkdir -p, ln -sf).",
    )
    lifecycle: LifecycleSpec | None = Field(None, description="Idle, lifetime and delete timers.")
    ports: tuple[Port, ...] = Field(
        (),
        description="Ports published on the host, bound to 127.0.0.1 unless an address is "
        "given; inbound only, and only with network: open.",
    )
    cap_add: tuple[Capability, ...] | None = Field(
        None,
        description="Linux capabilities added to asbx's least-privilege default set (e.g. "
        "NET_RAW for ping), with or without the CAP_ prefix.",
    )
    secrets: dict[Name, SandboxSecretSpec] | None = Field(
        None,
        description="Secrets (secrets: keys) the egress proxy puts into this sandbox's HTTPS "
        "requests to their hosts; the value never enters the sandbox. Needs an allowlist.",
    )
    depends_on: tuple[Name, ...] = Field(
        (), description="Sandboxes created (and set up) before this one."
    )
    labels: Labels = Field(default_factory=dict, description="Labels set on the container.")

    @field_validator("cap_add")
    @classmethod
    def _canonical_caps(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        # Unset and empty are the same (and leave the config hash of older sandboxes alone).
        if not value:
            return None
        return tuple(name for name in capabilities.KNOWN if name in value)

    @field_validator("env_file", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @field_validator("workdir")
    @classmethod
    def _absolute_workdir(cls, value: str) -> str:
        if not value.startswith("/"):
            raise ValueError(f'workdir "{value}" must be an absolute path')
        return value

    @property
    def effective_command(self) -> tuple[str, ...]:
        return self.command if self.command is not None else DEFAULT_COMMAND


class Spec(_Model):
    """A whole sandboxes.yaml."""

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        json_schema_extra={"title": "asbx sandboxes.yaml"},
    )

    version: Literal[1] = Field(description="Spec format version; always 1.")
    name: Name | None = Field(
        None, description="Project name (default: the directory name plus a short path hash)."
    )
    images: dict[Name, ImageSpec] = Field(
        default_factory=dict,
        description="Images by name: pulled (ref) or built (build); sandboxes name them in image.",
    )
    volumes: dict[Name, VolumeSpec] = Field(
        default_factory=dict,
        description="Named volumes, kept across sandbox replacement and destroy unless asked.",
    )
    snapshots: dict[Name, SnapshotSpec] = Field(
        default_factory=dict,
        description="Snapshots by name: archives of a sandbox's /workspace after its setup ran.",
    )
    sandboxes: dict[Name, SandboxSpec] = Field(
        default_factory=dict,
        description="Sandboxes by name: long-lived containers with a host-backed /workspace.",
    )
    secrets: dict[Name, SecretSpec] = Field(
        default_factory=dict,
        description="Secrets by name and where each value comes from on the host; sandboxes "
        "grant them to hosts under their own secrets:.",
    )
