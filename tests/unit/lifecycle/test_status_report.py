"""`asbx status` rows: live state per kind, drift, lifecycle deadlines, JSON keys, the table."""

from __future__ import annotations

from datetime import UTC, datetime

from asbx.addresses import Address
from asbx.graph import build_graph
from asbx.lifecycle import StopMark
from asbx.plan.observed import Observed
from asbx.render.status import (
    StatusInput,
    build_status,
    render_status_table,
    status_to_json,
)
from asbx.runtime.base import (
    LABEL_HASH,
    ContainerState,
    ObservedContainer,
    ObservedImage,
    ObservedVolume,
)
from asbx.spec.model import Spec
from asbx.state.records import ProjectMeta, ResourceRecord, StateSnapshot

NOW = 1_700_000_000.0
SPEC = Spec.model_validate({
    "version": 1,
    "images": {"base": {"ref": "docker.io/library/busybox:1.36"}},
    "volumes": {"cache": {}, "gone": {}},
    "sandboxes": {
        "web": {"image": "base", "cpus": 2, "memory": "1G",
                "lifecycle": {"idle_timeout": "30m", "max_lifetime": "8h"}},
        "job": {"image": "base", "network": "open", "ports": [8080, "[::1]:5353:53/udp"],
                "lifecycle": {"auto_delete": "1h"}},
        "drift": {"image": "base"},
        "lost": {"image": "base"},
        "new": {"image": "base"},
    },
    "snapshots": {"deps": {"sandbox": "web"}},
})


def a(text: str) -> Address:
    return Address.parse(text)


def rec(address: str, created: float, **outputs: object) -> ResourceRecord:
    return ResourceRecord(a(address), "h-" + address, 1, outputs=outputs, created_at=created,
                          updated_at=created)


def box(address: str, state: ContainerState, label_hash: str | None = None) -> ObservedContainer:
    labels = {LABEL_HASH: label_hash or "h-" + address}
    started = datetime.fromtimestamp(NOW - 600, UTC)
    return ObservedContainer("id-" + address, "p-" + address, state, labels,
                             image="docker.io/library/busybox:1.36", started_at=started)


def report() -> dict[str, dict[str, object]]:
    records = {r.address: r for r in [
        rec("image.base", NOW - 7200, ref="docker.io/library/busybox:1.36", image_id="sha256:i"),
        rec("volume.cache", NOW - 7200), rec("volume.gone", NOW - 7200),
        rec("sandbox.web", NOW - 3600), rec("sandbox.job", NOW - 3600),
        rec("sandbox.drift", NOW - 3600), rec("sandbox.lost", NOW - 3600),
        rec("snapshot.deps", NOW - 1800, digest="sha256:dd"),
        rec("sandbox.removed", NOW - 9000),
    ]}
    state = StateSnapshot(ProjectMeta("p", "l", 3, "salt"), records,
                          {a("sandbox.web"): NOW - 120})
    observed = Observed(
        containers={
            a("sandbox.web"): box("sandbox.web", ContainerState.RUNNING),
            a("sandbox.job"): box("sandbox.job", ContainerState.STOPPED),
            a("sandbox.drift"): box("sandbox.drift", ContainerState.RUNNING, "other"),
            a("sandbox.stray"): box("sandbox.stray", ContainerState.RUNNING),
        },
        images=(ObservedImage("sha256:i", ("docker.io/library/busybox:1.36",)),),
        volumes={a("volume.cache"): ObservedVolume("p-cache", {LABEL_HASH: "h-volume.cache"})},
        archives=frozenset({"sha256:dd"}),
    )
    marks = {a("sandbox.job"): StopMark("id-sandbox.job", NOW - 600, NOW - 900)}
    built = build_status(StatusInput("p", "podman", SPEC, build_graph(SPEC), state, observed,
                                     marks, NOW))
    data = status_to_json(built)
    assert data["format_version"] == 1
    assert data["project"] == "p"
    return {r["address"]: r for r in data["resources"]}


def test_live_state_of_every_kind() -> None:
    rows = report()
    states = {address: row["state"] for address, row in rows.items()}
    assert states == {
        "image.base": "present",
        "volume.cache": "present",
        "volume.gone": "missing",
        "sandbox.web": "running",
        "sandbox.job": "stopped",
        "sandbox.drift": "drifted",
        "sandbox.lost": "missing",
        "sandbox.new": "not created",
        "snapshot.deps": "captured",
        "sandbox.removed": "not in spec",
        "sandbox.stray": "untracked",
    }
    assert list(rows)[:2] == ["image.base", "volume.cache"]  # graph order first


def test_sandbox_row_has_limits_activity_and_deadlines() -> None:
    web = report()["sandbox.web"]
    assert web["cpus"] == 2
    assert web["memory"] == 1 << 30
    assert web["network"] == "deny"
    assert web["age_seconds"] == 3600
    assert web["last_activity"] == "2023-11-14T22:11:20Z"
    assert web["idle_stop_at"] == "2023-11-14T22:41:20Z"  # last activity + 30m
    assert web["delete_at"] == "2023-11-15T05:13:20Z"  # created + 8h
    assert web["delete_timer"] == "max_lifetime"
    job = report()["sandbox.job"]
    assert job["idle_stop_at"] is None
    assert job["delete_at"] == "2023-11-14T22:58:20Z"  # stopped since (mark) + 1h
    assert job["delete_timer"] == "auto_delete"


def test_sandbox_rows_show_published_ports() -> None:
    rows = report()
    assert rows["sandbox.job"]["ports"] == ["127.0.0.1:8080->8080/tcp", "[::1]:5353->53/udp"]
    assert rows["sandbox.web"]["ports"] == []
    assert rows["volume.cache"]["ports"] is None


def test_json_rows_carry_the_documented_keys() -> None:
    keys = {"address", "kind", "name", "state", "in_spec", "image", "cpus", "memory", "network",
            "ports", "created_at", "age_seconds", "last_activity", "idle_stop_at", "delete_at",
            "delete_timer", "detail", "tainted"}
    for row in report().values():
        assert set(row) == keys


def test_table_shows_one_line_per_resource_without_colour_codes() -> None:
    records = {a("sandbox.web"): rec("sandbox.web", NOW - 3600)}
    state = StateSnapshot(ProjectMeta("p", "l", 1, "salt"), records, {})
    observed = Observed(containers={a("sandbox.web"): box("sandbox.web", ContainerState.RUNNING)})
    built = build_status(StatusInput("p", "podman", SPEC, build_graph(SPEC), state, observed,
                                     {}, NOW))
    text = render_status_table(built, color=False, width=200)
    assert "\x1b[" not in text
    lines = text.splitlines()
    assert lines[0] == "project p (podman)"
    assert lines[1].split() == ["KIND", "NAME", "STATE", "IMAGE", "CPUS/MEM", "NETWORK", "PORTS",
                                "AGE", "ACTIVITY", "IDLE", "STOP", "DELETE"]
    web = next(line for line in lines if " web " in line)
    assert "running" in web
    assert "2/1G" in web
    assert "in 7h (max_lifetime)" in web
    assert "in 20m " in web  # idle stop: started 10m ago, never used since, idle_timeout 30m


def test_a_sandbox_row_says_what_is_wrong_with_its_egress() -> None:
    web = a("sandbox.web")
    state = StateSnapshot(ProjectMeta("p", "l", 3, "salt"), {web: rec("sandbox.web", NOW - 60)})
    observed = Observed(containers={web: box("sandbox.web", ContainerState.RUNNING)},
                        proxies_down=frozenset({web}), guards_down=frozenset({web}))
    built = build_status(StatusInput("p", "podman", SPEC, build_graph(SPEC), state, observed,
                                     {}, NOW))
    row = next(r for r in built.rows if r.address == web)
    assert row.network.endswith(" (egress proxy not running) (host firewall rules missing)")


def test_a_tainted_sandbox_says_so_after_its_state() -> None:
    web = a("sandbox.web")
    tainted = ResourceRecord(web, "h-sandbox.web", 1, outputs={"setup": "failed"},
                             status="tainted", created_at=NOW - 60)
    state = StateSnapshot(ProjectMeta("p", "l", 3, "salt"), {web: tainted})
    observed = Observed(containers={web: box("sandbox.web", ContainerState.RUNNING)})
    built = build_status(StatusInput("p", "podman", SPEC, build_graph(SPEC), state, observed,
                                     {}, NOW))
    row = next(r for r in status_to_json(built)["resources"] if r["address"] == "sandbox.web")
    assert (row["state"], row["tainted"]) == ("running", "setup failed")
    line = next(x for x in render_status_table(built, color=False).splitlines() if " web " in x)
    assert "running (tainted: setup failed)" in line
    assert report()["sandbox.web"]["tainted"] is None
