"""Failed pulls as one sentence: the registry's answer, in any runtime's words, as one cause."""

from __future__ import annotations

import re
from collections.abc import Callable
from enum import StrEnum

from asbx.errors import RuntimeCommandError
from asbx.images import normalise_ref
from asbx.runtime.command import CommandResult, first_error


class PullCause(StrEnum):
    NOT_FOUND = "not found"
    UNAUTHORIZED = "unauthorized"
    UNREACHABLE = "unreachable"
    TLS = "unreachable over HTTPS"  # plain HTTP or an untrusted certificate: fixable by config
    OTHER = "failed"


class PullError(RuntimeCommandError):
    """A failed pull: `message` is one sentence naming the image and the cause, `hint` what to
    do; the runtime's argv, exit code and output stay on the error (`output`, shown with -v)."""

    def __init__(self, ref: str, cause: PullCause, message: str, result: CommandResult,
                 hint: str | None = None) -> None:
        self.ref = ref
        self.cause = cause
        self._sentence = message
        super().__init__(result.argv, result.returncode, result.stdout, result.stderr)
        self.hint = hint

    def _describe(self) -> str:
        return self._sentence

    @property
    def output(self) -> str:
        """The runtime command, its exit code and the tail of its output."""
        return RuntimeCommandError._describe(self)


# First match wins, matched case-insensitively against stderr + stdout. Sources: podman 4.3
# (captured), docker 20.10-28 (daemon messages), Apple container (the registry's HTTP status
# passed through); see tests/fixtures/runtime/*/pull/.
_PULL_RULES: tuple[tuple[PullCause, re.Pattern[str], str], ...] = tuple(
    (cause, re.compile(pattern, re.IGNORECASE), label) for cause, pattern, label in (
        (PullCause.TLS, r"server gave HTTP response to HTTPS client",
         "it serves plain HTTP, not HTTPS"),
        (PullCause.TLS, r"x509:|certificate signed by unknown authority|tls: failed to verify",
         "its TLS certificate is not trusted"),
        (PullCause.UNAUTHORIZED, r"pull access denied|may require 'docker login'",
         "access denied: the repository does not exist or needs a login"),
        (PullCause.UNAUTHORIZED, r"no basic auth credentials", "no credentials for it"),
        (PullCause.UNAUTHORIZED, r"incorrect username or password",
         "incorrect username or password"),
        (PullCause.UNAUTHORIZED, r"unauthorized|authentication required|\b401\b",
         "authentication required"),
        (PullCause.UNAUTHORIZED, r"\bdenied: |access to the resource is denied|\b403\b",
         "access denied"),
        (PullCause.NOT_FOUND, r"manifest unknown|manifest for \S+ not found|\b404 not found",
         "manifest unknown"),
        (PullCause.NOT_FOUND, r"name unknown|repository name not known", "repository unknown"),
        (PullCause.UNREACHABLE, r"connection refused", "connection refused"),
        (PullCause.UNREACHABLE, r"no such host|could not resolve|nodename nor servname"
         r"|name resolution|server misbehaving", "no such host"),
        (PullCause.UNREACHABLE, r"timeout|timed out|deadline exceeded", "timed out"),
        (PullCause.UNREACHABLE, r"no route to host|network is unreachable", "no route to it"),
        (PullCause.UNREACHABLE, r"connection reset", "connection reset"),
    )
)


def classify_pull_failure(text: str) -> tuple[PullCause, str]:
    """(cause, a few words of why) of a failed pull's output; OTHER with "" if unrecognised."""
    for cause, pattern, label in _PULL_RULES:
        if pattern.search(text):
            return cause, label
    return PullCause.OTHER, ""


def registry_host(ref: str, output: str = "") -> str:
    """The registry a reference names; for a short name (`python:3.12`) the one podman says it
    tried (`docker://HOST/...`, from its search registries), else `docker.io`."""
    host = normalise_ref(ref).split("/", 1)[0]
    if host == "docker.io" and not ref.startswith("docker.io/"):
        tried = re.search(r"docker://([^/\s\"]+)/", output)
        return tried.group(1) if tried else host
    return host


def last_error(result: CommandResult) -> str:
    """The last line of a failed command's stderr (or stdout) that is not a retry warning,
    without its `Error: ` prefix: podman and docker print the final error last."""
    for line in reversed((result.stdout + "\n" + result.stderr).splitlines()):
        line = line.strip()
        for prefix in ("Error response from daemon: ", "Error: "):
            line = line.removeprefix(prefix)
        if line.strip('" ') and "level=warning" not in line:
            return line
    return first_error(result)


def pull_error(ref: str, result: CommandResult, *, login: str,
               tls_fix: Callable[[str, bool], str]) -> PullError:
    """The PullError for a failed pull of `ref`: `login` is the runtime's login command and
    `tls_fix(host, plain_http)` its advice for a registry it cannot reach over verified HTTPS."""
    output = result.stderr + "\n" + result.stdout
    cause, why = classify_pull_failure(output)
    host = registry_host(ref, output)
    if cause is PullCause.NOT_FOUND:
        message = f"cannot pull {ref}: the registry {host} has no such image or tag ({why})"
        hint = "check the repository name and the tag or digest"
    elif cause is PullCause.UNAUTHORIZED:
        message = f"cannot pull {ref}: the registry {host} refused access ({why})"
        hint = (f"log in with `{login} {host}`; registries also answer this way for an image "
                "that does not exist, so check the name too")
    elif cause is PullCause.UNREACHABLE:
        message = f"cannot pull {ref}: the registry {host} is unreachable ({why})"
        hint = "check the registry's host name and port, the network or proxy, and that it is up"
    elif cause is PullCause.TLS:
        message = f"cannot pull {ref}: cannot reach the registry {host} over HTTPS ({why})"
        hint = tls_fix(host, why.startswith("it serves plain HTTP"))
    else:
        message = f"cannot pull {ref}: {last_error(result)}"
        hint = "asbx -v shows the runtime's full output"
    return PullError(ref, cause, message, result, hint)
