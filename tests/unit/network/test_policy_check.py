"""`asbx policy check` and the egress proxy agree: one table through both, and the CLI itself.

Every case goes through `check_network` (what `policy check` prints) and through a real
EgressProxy on 127.0.0.1 with the same fake resolver. Names resolve only to loopback addresses,
so an allowed request reaches the test's own upstream or a closed local port, nothing else.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from asbx.cli.main import cli, run
from asbx.network.check import check_network, parse_target
from asbx.spec.model import NetworkPolicy

StartProxy = Callable[..., Any]
TUNNEL_OPEN = b"HTTP/1.1 200 Connection established\r\n\r\n"
UP = "UP"  # replaced by the upstream's port in allow lists and targets

RESOLVE = {
    "loop.example": ["127.0.0.1"],
    "api.example.com": ["127.0.0.1"],
    "a.svc.example": ["127.0.0.1"],
    "mixed.example": ["127.0.0.2", "127.0.0.1"],
    "v6.example": ["::1"],
}


@dataclass(frozen=True)
class Case:
    allow: tuple[str, ...]
    target: str  # CONNECT authority, or an http:// URI for plain HTTP
    verdict: str  # allowed | refused | unresolved
    says: str = ""  # in the reason (refusals) or the deciding rule (allowed)


CASES = [
    # names and their ports
    Case(("loop.example:UP", "127.0.0.1:UP"), "loop.example:UP", "allowed", "loop.example:UP"),
    Case(("loop.example", "127.0.0.1"), "loop.example:UP", "refused", "an entry without :PORT"),
    Case(("loop.example", "127.0.0.1"), "loop.example:443", "allowed", "loop.example"),
    Case(("loop.example", "127.0.0.1"), "loop.example:80", "allowed", "loop.example"),
    Case(("loop.example", "127.0.0.1"), "loop.example:22", "refused", "port 22 of loop.example"),
    Case(("loop.example:22", "loop.example:UP", "127.0.0.1:UP"), "loop.example:UP", "allowed",
         "loop.example:UP"),
    Case(("*.svc.example:UP", "127.0.0.0/8:UP"), "a.svc.example:UP", "allowed",
         "*.svc.example:UP"),
    Case(("*.svc.example:UP", "127.0.0.0/8"), "svc.example:UP", "refused", "not in this"),
    Case(("*.svc.example:UP", "127.0.0.0/8"), "a.svc.example:443", "refused", "port 443"),
    Case(("API.Example.com.:UP", "127.0.0.1:UP"), "api.example.com.:UP", "allowed",
         "api.example.com:UP"),
    Case(("other.example",), "api.example.com:443", "refused", "not in this sandbox's allowlist"),
    # resolution: unlisted names are never resolved, listed ones that do not resolve are 502
    Case(("nowhere.example",), "nowhere.example:443", "unresolved", "cannot resolve"),
    # private addresses of listed names (rebinding) and how an address entry opens them
    Case(("loop.example:UP",), "loop.example:UP", "refused", "127.0.0.1 is a private"),
    Case(("loop.example:UP", "127.0.0.2:UP"), "loop.example:UP", "refused",
         "127.0.0.1 is a private"),
    # the address entry's port applies too
    Case(("loop.example:UP", "127.0.0.1"), "loop.example:UP", "refused",
         "port UP of 127.0.0.1 is not allowed (listed as 127.0.0.1;"),
    Case(("mixed.example:UP", "127.0.0.1:UP"), "mixed.example:UP", "allowed", "mixed.example:UP"),
    Case(("v6.example:UP", "[::1]:UP"), "v6.example:UP", "allowed", "v6.example:UP"),
    # IP literals need an IP entry, on the port
    Case(("127.0.0.1:UP",), "127.0.0.1:UP", "allowed", "127.0.0.1:UP"),
    Case(("127.0.0.1",), "127.0.0.1:UP", "refused", "port UP of 127.0.0.1"),
    Case(("127.0.0.0/8:UP",), "127.0.0.9:UP", "allowed", "127.0.0.0/8:UP"),
    Case(("[::1]:UP",), "[::1]:UP", "allowed", "[::1]:UP"),
    Case(("[::1]:UP",), "[::1]:443", "refused", "port 443 of ::1"),
    Case(("0.0.0.0/0:UP",), "127.0.0.1:UP", "refused", "127.0.0.1 is a private"),
    Case(("api.example.com",), "169.254.169.254:80", "refused", "169.254.169.254 is a private"),
    Case(("0.0.0.0/0", "::/0"), "[::ffff:0:a9fe:a9fe]:80", "refused", "is a private"),
    Case(("0.0.0.0/0", "::/0"), "[64:ff9b::a9fe:a9fe]:443", "refused", "is a private"),
    Case(("0.0.0.0/0", "::/0"), "[::ffff:169.254.169.254]:80", "refused", "is a private"),
    Case(("8.8.8.8",), "8.8.4.4:443", "refused", "not in this sandbox's allowlist"),
    # plain HTTP goes through the same decision
    Case(("loop.example:UP", "127.0.0.1:UP"), "http://loop.example:UP/x", "allowed",
         "loop.example:UP"),
    Case(("loop.example", "127.0.0.1"), "http://loop.example:UP/x", "refused", "port UP"),
    Case(("loop.example", "127.0.0.1"), "http://evil.example/x", "refused", "not in this"),
    # a host with control characters is refused, not cleaned up
    Case(("loop.example:UP", "127.0.0.1"), "loop.example\x1f:UP", "refused", "not a host name"),
    Case(("loop.example:UP", "127.0.0.1"), "\x01loop.example:UP", "refused", "not a host name"),
    Case(("loop.example", "127.0.0.1"), "http://loop.example\x1f/x", "refused", "not a host name"),
    Case(("loop.example", "127.0.0.1"), "http://loop.example\t/x", "refused", "not a host name"),
    Case(("loop.example", "127.0.0.1"), "http://loop.exa\rmple/x", "refused", "not a host name"),
]


def ask_proxy(port: int, target: str) -> str:
    """Send one request; return the proxy's status line and body (never a tunnel's content)."""
    method = "GET" if target.startswith("http://") else "CONNECT"
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(f"{method} {target} HTTP/1.1\r\n\r\n".encode("latin-1"))
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
            if method == "CONNECT" and received.startswith(TUNNEL_OPEN):
                break  # a tunnel is open: its content is the upstream's, not the proxy's
    return received.decode("latin-1")


def proxy_verdict(response: str) -> str:
    status = int(response.split(" ", 2)[1])
    if status in (400, 403):  # 400: too malformed to reach the decision (control characters)
        return "refused"
    if status == 502 and "cannot resolve" in response:
        return "unresolved"
    assert status in (200, 502), response  # 502 here: allowed, but nothing listens there
    return "allowed"


@pytest.mark.parametrize("case", CASES, ids=[repr(case.target) for case in CASES])
def test_policy_check_and_the_proxy_agree(case: Case, start_proxy: StartProxy,
                                          upstream: Any) -> None:
    up = str(upstream.port)
    allow = [entry.replace(UP, up) for entry in case.allow]
    target = case.target.replace(UP, up)
    says = case.says.replace(UP, up)
    proxy = start_proxy(allow, resolve=RESOLVE)
    decision = check_network(NetworkPolicy(mode="allow", allow=tuple(allow)), target,
                             proxy.resolver)
    response = ask_proxy(proxy.port, target)

    assert decision.verdict == case.verdict, decision
    assert proxy_verdict(response) == decision.verdict, response
    if decision.allowed:
        assert decision.rule == says
        if response.startswith("HTTP/1.1 502"):  # allowed; the closed local port refused it
            assert f"({decision.addresses[0]}: Connection refused)" in response
    else:
        assert says in decision.reason
        if not response.startswith("HTTP/1.1 400"):
            assert response.endswith(f"asbx egress proxy: {decision.reason}\n")
    if decision.verdict == "refused" and "not in this sandbox" in decision.reason:
        assert proxy.resolver.asked == [], "neither resolves a name no entry lists"


def test_an_allowed_request_reaches_the_upstream_on_the_decided_address(
        start_proxy: StartProxy, upstream: Any) -> None:
    allow = [f"loop.example:{upstream.port}", f"127.0.0.1:{upstream.port}"]
    proxy = start_proxy(allow, resolve=RESOLVE)
    target = f"http://loop.example:{upstream.port}/agree"
    decision = check_network(NetworkPolicy(mode="allow", allow=tuple(allow)), target,
                             proxy.resolver)
    response = ask_proxy(proxy.port, target)
    assert decision.allowed
    assert response.startswith("HTTP/1.0 200")
    assert response.endswith("hello from upstream /agree\n")
    assert [seen["path"] for seen in upstream.requests] == ["/agree"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("https://api.github.com/x", ("api.github.com", 443)),
        ("http://api.github.com", ("api.github.com", 80)),
        ("HTTPS://user:pw@api.github.com:8443/x?y#z", ("api.github.com", 8443)),
        ("api.github.com:22", ("api.github.com", 22)),
        ("[2001:db8::1]:443", ("2001:db8::1", 443)),
        ("https://[2001:db8::1]/", ("2001:db8::1", 443)),
        ("10.0.0.5:5432", ("10.0.0.5", 5432)),
        ("api.github.com\x1f:443", ("api.github.com\x1f", 443)),  # kept, for the check to refuse
        (" api.github.com:443", (" api.github.com", 443)),
    ],
)
def test_targets_are_parsed_without_cleaning_the_host(text: str,
                                                       expected: tuple[str, int]) -> None:
    assert parse_target(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("api.github.com", "has no port"),
        ("ftp://files.example.com/x", "give the port of a ftp:// URL"),
        ("https:///path", "names no host"),
        ("api.github.com:0", "out of range"),
        ("api.github.com:65536", "out of range"),
        ("2001:db8::1", "names no host"),
    ],
)
def test_bad_targets_are_usage_errors(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_target(text)


SPEC = """\
version: 1
sandboxes:
  agent:
    image: busybox
    network: {allow: [api.github.com, "10.0.0.5:5432"]}
  web: {image: busybox, network: open}
  quiet: {image: busybox}
"""


def run_cli(tmp_path: Path, *args: str) -> Any:
    (tmp_path / "sandboxes.yaml").write_text(SPEC)
    return CliRunner().invoke(cli, ["-f", str(tmp_path / "sandboxes.yaml"), "policy", "check",
                                    *args], catch_exceptions=False)


def test_cli_answers_with_the_rule_and_exit_code(tmp_path: Path) -> None:
    allowed = run_cli(tmp_path, "agent", "10.0.0.5:5432")
    assert allowed.exit_code == 0
    assert allowed.output.splitlines()[:2] == ["allowed: 10.0.0.5:5432 from sandbox agent",
                                               "  rule: 10.0.0.5:5432"]
    refused = run_cli(tmp_path, "agent", "https://api.github.com:8443/")
    assert refused.exit_code == 1
    assert "refused: api.github.com:8443 from sandbox agent" in refused.output
    assert "an entry without :PORT allows 80 and 443" in refused.output
    named = run_cli(tmp_path, "agent", "https://api.github.com/repos", "--no-resolve", "--json")
    assert named.exit_code == 0
    assert '"rule": "api.github.com"' in named.output
    assert '"verdict": "allowed"' in named.output
    assert run_cli(tmp_path, "web", "anything.example:22").exit_code == 0
    quiet = run_cli(tmp_path, "quiet", "https://api.github.com/")
    assert quiet.exit_code == 1
    assert "network: deny" in quiet.output


def test_cli_unknown_sandbox_and_bad_url_are_errors(tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    spec = tmp_path / "sandboxes.yaml"
    spec.write_text(SPEC)
    assert run(["-f", str(spec), "policy", "check", "agnt", "api.github.com:443"]) == 1
    err = capsys.readouterr().err
    assert 'unknown sandbox "agnt"' in err
    assert 'did you mean "agent"' in err
    assert run(["-f", str(spec), "policy", "check", "agent", "api.github.com"]) == 1
    assert "has no port" in capsys.readouterr().err


SECRETS_SPEC = """\
version: 1
secrets:
  github: {env: ASBX_NEVER_SET_IN_TESTS}
  npm: {file: ./npm-token}
sandboxes:
  agent:
    image: busybox
    network: {allow: [api.github.com, registry.npmjs.org, pypi.org]}
    secrets:
      github: {hosts: [api.github.com], header: "Authorization: Bearer {}"}
      npm: {hosts: [registry.npmjs.org, API.GITHUB.COM.], env: NPM_TOKEN}
"""


def test_cli_says_which_secrets_a_request_would_get_and_never_reads_them(
        tmp_path: Path) -> None:
    spec = tmp_path / "sandboxes.yaml"
    spec.write_text(SECRETS_SPEC)  # no npm-token file, no env var: values are never read

    def ask(*args: str) -> Any:
        return CliRunner().invoke(cli, ["-f", str(spec), "policy", "check", "agent", *args,
                                        "--no-resolve"], catch_exceptions=False)

    both = ask("https://api.github.com/user")
    assert both.exit_code == 0, both.output
    assert "  secret github: sets the header Authorization" in both.output
    assert "  secret npm: replaces the placeholder in $NPM_TOKEN wherever a header holds it" \
        in both.output
    plain = ask("http://registry.npmjs.org/x")
    assert "secret npm: withheld: plain http never carries a secret" in plain.output
    none = ask("https://pypi.org/simple", "--json")
    assert '"secrets": []' in none.output
    refused = ask("https://evil.example/")
    assert refused.exit_code == 1
    assert "secret" not in refused.output.split("reason:")[0]
