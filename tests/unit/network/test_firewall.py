"""The host firewall rules for allowlist networks (pure parts) and the proxy's client check."""

from __future__ import annotations

import socket
import threading
from pathlib import Path

import pytest

from asbx.network import firewall
from asbx.network.firewall import Guard, Installed
from asbx.network.policy import HostPolicy
from asbx.network.proxy import EgressProxy, RequestLog

GUARD = Guard("proj", "agent", "podman3", "10.89.3.2/32", "10.89.3.1", 40123)


def test_chain_name_is_stable_short_and_per_sandbox() -> None:
    name = firewall.chain_name("proj", "agent")
    assert name == firewall.chain_name("proj", "agent")
    assert name != firewall.chain_name("proj", "other")
    assert name.startswith("ASBX-")
    assert len(name) <= 28  # iptables' limit


def test_ipv4_script_accepts_only_the_sandbox_to_its_proxy_then_drops() -> None:
    chain = GUARD.chain
    tag = '-m comment --comment "asbx proj/agent"'
    assert firewall.install_script(GUARD, "iptables").splitlines() == [
        "*filter",
        f":{chain} - [0:0]",
        f"-A {chain} {tag} -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
        f"-A {chain} {tag} -s 10.89.3.2/32 -d 10.89.3.1/32 -p tcp -m tcp --dport 40123 -j ACCEPT",
        f"-A {chain} {tag} -j DROP",
        f"-I FORWARD 1 -i podman3 {tag} -j {chain}",
        f"-I INPUT 1 -i podman3 {tag} -j {chain}",
        "COMMIT",
    ]


def test_ipv6_script_of_an_ipv4_proxy_drops_everything_new() -> None:
    script = firewall.install_script(GUARD, "ip6tables")
    assert "--dport" not in script
    assert f"-A {GUARD.chain} -m comment --comment \"asbx proj/agent\" -j DROP" in script


def test_reinstall_replaces_stale_jumps_in_the_same_commit() -> None:
    stale = f'-A INPUT -i podman1 -m comment --comment "asbx proj/agent" -j {GUARD.chain}'
    lines = firewall.install_script(GUARD, "iptables", [stale]).splitlines()
    deleted = lines.index(stale.replace("-A", "-D", 1))
    assert deleted < lines.index(f'-I INPUT 1 -i podman3 -m comment --comment "asbx proj/agent" '
                                 f"-j {GUARD.chain}") < lines.index("COMMIT")


def test_a_hostile_interface_name_is_refused() -> None:
    bad = Guard("proj", "agent", "eth0 -j ACCEPT", "10.89.3.0/24", "10.89.3.1", 1)
    with pytest.raises(firewall.FirewallError):
        firewall.install_script(bad, "iptables")


def test_listing_finds_chains_their_owners_and_jumps() -> None:
    chain = GUARD.chain
    listing = "\n".join([
        "-P INPUT ACCEPT",
        f"-N {chain}",
        "-N DOCKER",
        f'-A INPUT -i podman3 -m comment --comment "asbx proj/agent" -j {chain}',
        f'-A FORWARD -i podman3 -m comment --comment "asbx proj/agent" -j {chain}',
        "-A FORWARD -j DOCKER",
        f'-A {chain} -m comment --comment "asbx proj/agent" -j DROP',
    ])
    [found] = firewall.parse_listing("iptables", listing)
    assert found == Installed("iptables", chain, "proj", "agent", ("podman3",), (
        f'-A INPUT -i podman3 -m comment --comment "asbx proj/agent" -j {chain}',
        f'-A FORWARD -i podman3 -m comment --comment "asbx proj/agent" -j {chain}',
    ))
    assert firewall.owned_by([found], "proj") == [found]
    assert firewall.owned_by([found], "other") == []
    removal = firewall.remove_script(found).splitlines()
    assert removal[-3:] == [f"-F {chain}", f"-X {chain}", "COMMIT"]


def test_not_root_refuses_with_a_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(firewall.sys, "platform", "linux")
    monkeypatch.setattr(firewall.os, "geteuid", lambda: 1000)
    assert "asbx is not root" in firewall.blocker()
    assert "rootless podman" in firewall.blocker()


def test_missing_iptables_refuses_with_a_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(firewall.sys, "platform", "linux")
    monkeypatch.setattr(firewall.os, "geteuid", lambda: 0)
    monkeypatch.setattr(firewall.shutil, "which", lambda name: None)
    assert firewall.blocker().startswith("iptables, iptables-restore, ip6tables")


def test_proxy_refuses_a_client_outside_its_sandbox(tmp_path: Path) -> None:
    log = RequestLog.to_file(tmp_path / "proxy.log")
    proxy = EgressProxy(HostPolicy(["example.test"]), host="127.0.0.1", port=0, log=log,
                        clients=("10.89.3.0/24",))
    _, port = proxy.bind()
    thread = threading.Thread(target=proxy.serve_forever, daemon=True)
    thread.start()
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            sock.sendall(b"CONNECT example.test:443 HTTP/1.1\r\n\r\n")
            answer = sock.recv(4096)
    finally:
        proxy.stop()
        thread.join(5)
        proxy.close()
        log.close()
    assert answer.startswith(b"HTTP/1.1 403")
    assert b"this proxy serves another sandbox" in answer
    assert "client=127.0.0.1" in (tmp_path / "proxy.log").read_text()


def test_proxy_serves_a_client_inside_its_sandbox_range(tmp_path: Path) -> None:
    proxy = EgressProxy(HostPolicy(["example.test"]), host="127.0.0.1", port=0,
                        log=RequestLog.to_file(tmp_path / "p.log"), clients=("127.0.0.0/8",))
    assert proxy._client_allowed("127.0.0.1")
    assert proxy._client_allowed("::ffff:127.0.0.1")
    assert not proxy._client_allowed("10.88.0.5")
    proxy.close()
    proxy.log.close()


def test_a_sandbox_is_unguarded_until_both_families_have_the_chain_and_both_jumps() -> None:
    from asbx.apply.egress import unguarded

    chain = firewall.chain_name("proj", "agent")
    jumps = ("-A INPUT ...", "-A FORWARD ...")
    full = [Installed(family, chain, "proj", "agent", ("podman3",), jumps)
            for family in firewall.FAMILIES]
    assert unguarded("proj", ["agent"], full) == set()
    assert unguarded("proj", ["agent"], full[:1]) == {"agent"}
    half = [full[0], Installed("ip6tables", chain, "proj", "agent", ("podman3",), jumps[:1])]
    assert unguarded("proj", ["agent"], half) == {"agent"}
    assert unguarded("proj", ["agent", "new"], full) == {"new"}


def test_the_sandbox_address_is_the_first_host_that_is_not_the_gateway() -> None:
    from asbx.apply.egress import sandbox_address
    from asbx.runtime.base import ObservedNetwork

    def net(subnet: str, gateway: str) -> ObservedNetwork:
        return ObservedNetwork("n", {}, True, gateway, subnet, "podman3")

    assert sandbox_address(net("10.89.3.0/24", "10.89.3.1")) == "10.89.3.2"
    assert sandbox_address(net("10.89.3.0/24", "10.89.3.254")) == "10.89.3.1"
    assert sandbox_address(net("fd00:1::/64", "fd00:1::1")) == "fd00:1::2"


def test_leftover_chains_are_removed_after_one_listing_per_family(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two leftover chains and a chain that is not a leftover: one `-S` per family, then a
    removal of each leftover chain in each family, and nothing for the chain that stays."""
    from asbx.apply.egress import CHAIN, remove_leftovers
    from asbx.plan.observed import Leftover
    from asbx.runtime.command import CommandRequest, CommandResult

    monkeypatch.setattr(firewall.shutil, "which", lambda name: f"/usr/sbin/{name}")
    sandboxes = ("old", "gone", "kept")
    chains = {s: firewall.chain_name("proj", s) for s in sandboxes}
    listing = "\n".join(
        line for s, chain in chains.items() for line in (
            f"-N {chain}",
            f'-A INPUT -i podman3 -m comment --comment "asbx proj/{s}" -j {chain}',
            f'-A {chain} -m comment --comment "asbx proj/{s}" -j DROP'))
    calls: list[tuple[str, ...]] = []
    removed: list[str] = []

    def runner(request: CommandRequest) -> CommandResult:
        calls.append(request.argv)
        if request.argv[-1] == "-S":
            return CommandResult(request.argv, 0, listing, "")
        removed.append(f"{request.argv[0]} {(request.stdin or b'').decode()}")
        return CommandResult(request.argv, 0, "", "")

    leftovers = [Leftover(CHAIN, s, chains[s], "its network is gone") for s in ("old", "gone")]
    remove_leftovers(tmp_path, "proj", leftovers, runner)
    assert sorted(argv[0] for argv in calls if argv[-1] == "-S") == ["ip6tables", "iptables"]
    for family in firewall.FAMILIES:
        mine = [r for r in removed if r.startswith(f"{family}-restore ")]
        assert len(mine) == 2
        assert any(f"-X {chains['old']}" in r for r in mine)
        assert any(f"-X {chains['gone']}" in r for r in mine)
    assert not any(chains["kept"] in r for r in removed)
