"""Apple `container` JSON parsers fed 0.x and 1.x output shaped as the reference documents."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from asbx.runtime.apple import (
    normalize_image_reference,
    parse_containers,
    parse_date,
    parse_images,
    parse_networks,
    parse_version,
    parse_volumes,
)
from asbx.runtime.base import ContainerState

FIXTURES = Path(__file__).parents[2] / "fixtures" / "runtime" / "apple"
NGINX_DIGEST = "sha256:" + "1" * 64
AGENT_DIGEST = "sha256:" + "7" * 64


def load(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


@pytest.mark.parametrize("era", ["1.2.2", "0.12.3"])
def test_containers_parse_state_labels_and_image_in_both_eras(era: str) -> None:
    found = {c.name: c for c in parse_containers(load(f"{era}/list.json"))}

    api, worker = found["demo-api"], found["demo-worker"]
    assert api.id == "demo-api"
    assert api.state is ContainerState.RUNNING
    assert worker.state is ContainerState.STOPPED
    assert api.labels["dev.asbx.address"] == "sandbox.api"
    assert api.labels["dev.asbx.project"] == "demo"
    assert api.image == "docker.io/library/nginx:latest"
    assert api.image_id == NGINX_DIGEST
    assert worker.started_at is None


def test_container_dates_are_iso_in_1x() -> None:
    found = {c.name: c for c in parse_containers(load("1.2.2/list.json"))}

    assert found["demo-api"].created_at == datetime(2026, 8, 1, 10, 0, 0, tzinfo=UTC)
    assert found["demo-api"].started_at == datetime(2026, 8, 1, 10, 0, 2, tzinfo=UTC)
    assert found["demo-worker"].created_at == datetime(2026, 8, 1, 11, 30, 0, 250000, tzinfo=UTC)


def test_container_dates_are_2001_epoch_floats_in_0x() -> None:
    found = {c.name: c for c in parse_containers(load("0.12.3/list.json"))}

    expected = datetime.fromtimestamp(776000000.5 + 978307200, tz=UTC)
    assert found["demo-api"].started_at == expected
    assert found["demo-api"].created_at is None  # 0.x records no creationDate


def test_stopping_counts_as_running_and_builder_is_listed() -> None:
    found = {c.name: c for c in parse_containers(load("1.2.2/list.json"))}

    assert found["buildkit"].state is ContainerState.RUNNING
    assert found["buildkit"].labels == {"com.apple.container.resource.role": "builder"}


def test_oldest_container_shape_without_started_date_parses() -> None:
    [api] = parse_containers(load("0.7.0/list.json"))

    assert api.name == "demo-api"
    assert api.state is ContainerState.RUNNING
    assert api.started_at is None


def test_unknown_state_and_junk_items_are_tolerated() -> None:
    data = [{"configuration": {"id": "odd"}, "status": {"state": "paused-ish"}}, 7, {"x": 1}]

    [odd] = parse_containers(data)

    assert odd.state is ContainerState.UNKNOWN
    assert odd.labels == {}


@pytest.mark.parametrize("era", ["1.2.2", "0.12.3", "0.7.0"])
def test_image_lists_of_all_three_eras_give_names_and_digests(era: str) -> None:
    images = {name: image for image in parse_images(load(f"{era}/image-list.json"))
              for name in image.names}

    alpine = images["docker.io/library/alpine:latest"]
    assert alpine.digest == "sha256:" + "4" * 64
    assert alpine.id == alpine.digest
    assert images["docker.io/library/demo-agent:latest"].digest == AGENT_DIGEST


@pytest.mark.parametrize("era", ["1.2.2", "0.12.3"])
def test_references_to_one_digest_merge_into_one_image(era: str) -> None:
    images = parse_images(load(f"{era}/image-list.json"))

    [agent] = [image for image in images if image.digest == AGENT_DIGEST]
    assert agent.names == ("docker.io/library/demo-agent:latest", "localhost:5000/demo/agent:v1")
    assert len(images) == 2


def test_1x_image_labels_and_creation_date_come_from_the_resource() -> None:
    [agent] = parse_images(load("1.2.2/image-inspect.json"))

    assert agent.labels == {"dev.asbx.address": "image.agent", "dev.asbx.project": "demo"}
    assert agent.created_at == datetime(2026, 8, 2, 12, 0, tzinfo=UTC)


def test_0x_image_inspect_uses_name_index_and_variant_config() -> None:
    [agent] = parse_images(load("0.12.3/image-inspect.json"))

    assert agent.names == ("docker.io/library/demo-agent:latest",)
    assert agent.digest == AGENT_DIGEST
    assert agent.labels == {"dev.asbx.address": "image.agent", "dev.asbx.project": "demo"}
    assert agent.created_at == datetime(2026, 8, 2, 11, 59, 58, tzinfo=UTC)


def test_1x_image_without_descriptor_falls_back_to_its_hex_id() -> None:
    [image] = parse_images([{"id": "ab" * 32, "configuration": {"name": "x:1"}}])

    assert image.id == "sha256:" + "ab" * 32
    assert image.digest == ""


def test_empty_inspect_answer_means_no_image() -> None:
    assert parse_images([]) == []


@pytest.mark.parametrize("era", ["1.2.2", "0.12.3"])
def test_volumes_flat_and_wrapped(era: str) -> None:
    volumes = {v.name: v for v in parse_volumes(load(f"{era}/volume-list.json"))}

    assert set(volumes) == {"demo-cache", "scratch"}
    assert volumes["demo-cache"].labels == {"dev.asbx.address": "volume.cache",
                                            "dev.asbx.project": "demo"}
    assert volumes["demo-cache"].mountpoint.endswith("/volumes/demo-cache/volume.img")
    assert volumes["scratch"].labels == {}


@pytest.mark.parametrize("era", ["1.2.2", "0.12.3"])
def test_networks_give_mode_labels_and_addresses(era: str) -> None:
    networks = {n.name: n for n in parse_networks(load(f"{era}/network-list.json"))}

    egress = networks["demo-egress"]
    assert egress.internal is True
    assert egress.labels == {"dev.asbx.project": "demo"}
    assert egress.gateway == "192.168.70.1"
    assert egress.subnet == "192.168.70.0/24"
    assert networks["default"].internal is False


def test_0x_network_without_status_parses() -> None:
    networks = {n.name: n for n in parse_networks(load("0.12.3/network-list.json"))}

    assert networks["pending"].gateway == ""
    assert networks["pending"].subnet == ""


@pytest.mark.parametrize(("name", "expected"), [
    ("1.2.2/version.txt", (1, 2, 2)),
    ("0.12.3/version.txt", (0, 12, 3)),
    ("version-0.5.0.txt", (0, 5, 0)),
])
def test_version_line_parses(name: str, expected: tuple[int, int, int]) -> None:
    assert parse_version((FIXTURES / name).read_text()) == expected


def test_version_garbage_gives_none() -> None:
    assert parse_version("container: unknown") is None


@pytest.mark.parametrize(("value", "expected"), [
    ("2026-08-01T10:00:00Z", datetime(2026, 8, 1, 10, tzinfo=UTC)),
    ("2026-08-01T10:00:00", datetime(2026, 8, 1, 10, tzinfo=UTC)),
    (0, datetime(2001, 1, 1, tzinfo=UTC)),
    (86400.5, datetime(2001, 1, 2, 0, 0, 0, 500000, tzinfo=UTC)),
    ("not a date", None),
    (None, None),
    (True, None),
])
def test_dates_of_both_encodings(value: object, expected: datetime | None) -> None:
    assert parse_date(value) == expected


@pytest.mark.parametrize(("ref", "expected"), [
    ("alpine", "docker.io/library/alpine:latest"),
    ("alpine:3.20", "docker.io/library/alpine:3.20"),
    ("me/tool", "docker.io/me/tool:latest"),
    ("ghcr.io/me/tool", "ghcr.io/me/tool:latest"),
    ("localhost/base", "localhost/base:latest"),
    ("127.0.0.1:5000/base:1", "127.0.0.1:5000/base:1"),
    ("alpine@sha256:" + "a" * 64, "docker.io/library/alpine@sha256:" + "a" * 64),
])
def test_references_normalise_like_apple(ref: str, expected: str) -> None:
    assert normalize_image_reference(ref) == expected
