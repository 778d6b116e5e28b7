"""HostPolicy: names, wildcards, CIDRs, ports, private ranges, rebinding and mapped IPv6."""

from __future__ import annotations

import pytest

from asbx.network.policy import HostPolicy, is_special, parse_rule


@pytest.mark.parametrize(
    ("allow", "host", "expected"),
    [
        (["api.github.com"], "api.github.com", True),
        (["api.github.com"], "API.GitHub.com.", True),
        (["api.github.com"], "github.com", False),
        (["api.github.com"], "evil-api.github.com", False),
        (["*.example.com"], "api.example.com", True),
        (["*.example.com"], "a.b.example.com", True),
        (["*.example.com"], "example.com", False),  # the apex is not a sub-domain
        (["*.example.com"], "badexample.com", False),
        (["*.example.com"], "example.com.evil.org", False),
        (["example.com", "*.example.com"], "example.com", True),
    ],
)
def test_names_and_wildcards(allow: list[str], host: str, expected: bool) -> None:
    assert HostPolicy(allow).permits_host(host, 443) is expected


@pytest.mark.parametrize(
    "host",
    ["evil\x00.example.com", "a b.example.com", "*.example.com", "10.0.0.0/8", "", "-x.a.com"],
)
def test_malformed_request_names_are_refused(host: str) -> None:
    policy = HostPolicy(["*.example.com", "10.0.0.0/8"])
    refusal = policy.host_refusal(host, 443)
    assert refusal is not None
    assert "not a host name" in refusal


def test_ip_literal_needs_an_ip_rule() -> None:
    policy = HostPolicy(["203.0.113.0/24", "api.github.com", "8.8.8.8:53"])
    assert policy.permits_host("8.8.8.8", 53)
    assert not policy.permits_host("8.8.4.4", 53)
    # documentation range is special, but a rule holding only it may open it
    assert policy.permits_host("203.0.113.7", 80)


@pytest.mark.parametrize(
    "address",
    [
        "10.1.2.3", "172.16.0.1", "192.168.1.1", "127.0.0.1", "169.254.169.254", "100.64.0.1",
        "0.0.0.0", "224.0.0.1", "255.255.255.255", "::1", "::", "fc00::1", "fd12::1", "fe80::1",
        "ff02::1", "::ffff:10.0.0.1", "::ffff:169.254.169.254", "::ffff:127.0.0.1",
        "2002:a00:1::", "64:ff9b::10.0.0.1", "::a00:1",
        # IPv4-translated (RFC 2765) forms of the metadata and private addresses
        "::ffff:0:a9fe:a9fe", "::ffff:0:169.254.169.254", "::ffff:0:10.0.0.1",
        # IPv4-compatible, 6to4, NAT64 and Teredo forms of private/metadata addresses
        "::169.254.169.254", "2002:a9fe:a9fe::1", "64:ff9b::a9fe:a9fe",
        "2001:0:4136:e378:8000:63bf:5601:5656",  # Teredo, client 169.254.169.169 (obfuscated)
    ],
)
def test_special_addresses_are_refused_even_for_listed_names(address: str) -> None:
    assert is_special(address)
    policy = HostPolicy(["internal.example.com", "0.0.0.0/0", "::/0"])
    assert not policy.permits_address(address, listed_by_name=True)
    assert not policy.permits_address(address, listed_by_name=False)


@pytest.mark.parametrize("address", ["8.8.8.8", "140.82.112.3", "2606:4700::1", "::ffff:8.8.8.8"])
def test_public_addresses_of_listed_names_pass(address: str) -> None:
    assert not is_special(address)
    policy = HostPolicy(["api.github.com"])
    assert policy.permits_address(address, listed_by_name=True)
    assert not policy.permits_address(address, listed_by_name=False)


def test_rebinding_listed_name_to_private_address_is_refused() -> None:
    policy = HostPolicy(["localhost", "db.internal"])
    assert policy.permits_host("localhost")
    assert not policy.permits_address("127.0.0.1", listed_by_name=True)
    refusal = policy.address_refusal("10.0.0.9", listed_by_name=True)
    assert refusal is not None
    assert "private" in refusal


def test_explicitly_listed_private_address_or_range_is_allowed() -> None:
    policy = HostPolicy(["db.internal", "10.0.0.9", "192.168.0.0/16", "169.254.169.254"])
    assert policy.permits_address("10.0.0.9", listed_by_name=True)
    assert policy.permits_address("192.168.44.1", listed_by_name=False)
    assert policy.permits_address("::ffff:192.168.44.1", listed_by_name=False)
    assert policy.permits_address("169.254.169.254", listed_by_name=False)
    assert not policy.permits_address("10.0.0.10", listed_by_name=True)
    assert not policy.permits_address("169.254.0.1", listed_by_name=False)


def test_broad_cidr_opens_public_but_not_private_addresses() -> None:
    policy = HostPolicy(["0.0.0.0/0"])
    assert policy.permits_address("8.8.8.8", listed_by_name=False)
    assert not policy.permits_address("169.254.169.254", listed_by_name=False)
    assert not policy.permits_address("10.0.0.1", listed_by_name=False)
    # a range that straddles public and private space does not open the private part
    assert not HostPolicy(["8.0.0.0/6"]).permits_address("10.0.0.1", listed_by_name=False)
    assert HostPolicy(["8.0.0.0/6"]).permits_address("9.9.9.9", listed_by_name=False)


def test_listed_mapped_ipv6_is_folded_to_ipv4() -> None:
    policy = HostPolicy(["::ffff:10.0.0.5"])
    assert policy.entries == ("10.0.0.5",)
    assert policy.permits_address("10.0.0.5", listed_by_name=False)
    assert policy.permits_address("::ffff:a00:5", listed_by_name=False)


def test_nat64_of_public_address_passes_only_for_listed_names() -> None:
    policy = HostPolicy(["ipv6only.example.com"])
    assert policy.permits_address("64:ff9b::8.8.8.8", listed_by_name=True)
    assert not policy.permits_address("64:ff9b::169.254.169.254", listed_by_name=True)


def test_an_entry_without_a_port_allows_80_and_443_only() -> None:
    policy = HostPolicy(["web.example.com", "*.cdn.example", "203.0.113.0/24", "8.8.8.8"])
    for port in (80, 443):
        assert policy.permits_host("web.example.com", port)
        assert policy.permits_host("a.cdn.example", port)
        assert policy.permits_host("203.0.113.9", port)
        assert policy.permits_host("8.8.8.8", port)
    for port in (22, 8080, 8443, 5432):
        assert not policy.permits_host("web.example.com", port)
        assert not policy.permits_host("a.cdn.example", port)
        assert not policy.permits_host("203.0.113.9", port)
        assert not policy.permits_host("8.8.8.8", port)
    refusal = policy.host_refusal("web.example.com", 22)
    assert refusal == ("port 22 of web.example.com is not allowed (listed as web.example.com; "
                       "an entry without :PORT allows 80 and 443)")


def test_an_entry_with_a_port_allows_that_port_only() -> None:
    policy = HostPolicy(["tls.example.com:443", "10.0.0.9:5432", "[2606:4700::1]:443",
                         "*.example.com:8443", "both.example:22", "both.example"])
    assert policy.permits_host("tls.example.com", 443)
    assert not policy.permits_host("tls.example.com", 80)
    assert policy.permits_address("10.0.0.9", listed_by_name=False, port=5432)
    assert not policy.permits_address("10.0.0.9", listed_by_name=False, port=22)
    assert not policy.permits_address("10.0.0.9", listed_by_name=False, port=443)
    assert policy.permits_host("[2606:4700::1]", 443)
    assert not policy.permits_host("2606:4700::1", 80)
    assert policy.permits_host("a.example.com", 8443)
    assert not policy.permits_host("a.example.com", 443)
    assert policy.permits_host("tls.example.com", 8443)  # the wildcard lists it on 8443
    for port in (22, 80, 443):  # two entries for one host add up
        assert policy.permits_host("both.example", port)
    assert not policy.permits_host("both.example", 23)
    refusal = policy.host_refusal("10.0.0.9", 22)
    assert refusal is not None
    assert refusal.startswith("port 22 of 10.0.0.9 is not allowed (listed as 10.0.0.9:5432")


def test_a_private_address_of_a_name_needs_its_own_entry_on_that_port() -> None:
    policy = HostPolicy(["db.internal:5432", "10.0.0.9:5432", "10.0.0.10"])
    assert policy.permits_address("10.0.0.9", listed_by_name=True, port=5432)
    assert policy.permits_address("10.0.0.9", listed_by_name=False, port=5432)
    refusal = policy.address_refusal("10.0.0.10", listed_by_name=True, port=5432)
    assert refusal == ("port 5432 of 10.0.0.10 is not allowed (listed as 10.0.0.10; "
                       "an entry without :PORT allows 80 and 443)")
    assert not policy.permits_address("10.0.0.11", listed_by_name=True, port=5432)


@pytest.mark.parametrize("host", ["api.example.com\x1f", "api.example.com ", " api.example.com",
                                  "api.example.com\t", "\x00api.example.com",
                                  "api.example.com\x85", "8.8.8.8\n", " 8.8.8.8"])
def test_whitespace_or_control_characters_around_a_host_are_refused(host: str) -> None:
    policy = HostPolicy(["api.example.com", "8.8.8.8"])
    refusal = policy.host_refusal(host, 443)
    assert refusal is not None
    assert "not a host name" in refusal


def test_entries_are_canonical_and_deduplicated() -> None:
    policy = HostPolicy(["API.example.com", "api.example.com.", "10.0.0.1/32", "10.0.0.1",
                         "10.1.2.3/16", "[::1]:80", "*.Example.com"])
    assert policy.entries == ("api.example.com", "10.0.0.1", "10.1.0.0/16", "[::1]:80",
                              "*.example.com")
    assert HostPolicy(list(policy.entries)).entries == policy.entries


@pytest.mark.parametrize("entry", ["*", "*.", "exa mple.com", "host:0", "host:70000", "a*.b.com"])
def test_invalid_entries_raise(entry: str) -> None:
    with pytest.raises(ValueError, match=r"."):
        parse_rule(entry)


def test_refusal_messages_are_one_line() -> None:
    policy = HostPolicy(["api.example.com"])
    for refusal in (policy.host_refusal("evil.example.org", 443),
                    policy.address_refusal("169.254.169.254", listed_by_name=True),
                    policy.address_refusal("8.8.8.8", listed_by_name=False)):
        assert refusal is not None
        assert "\n" not in refusal
