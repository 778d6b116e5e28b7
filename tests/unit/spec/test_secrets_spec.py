"""Valid secret grants: the allowlist's own rules (wildcards, an explicit address and port)
decide whether a secret may go to a host, the same as for the sandbox's requests."""

from __future__ import annotations

from pathlib import Path

import pytest

from asbx.errors import SpecError
from asbx.spec.loader import load_spec_text

SPEC = """version: 1
secrets:
  token: {{command: [gh, auth, token], ttl: 1h}}
sandboxes:
  web:
    image: busybox
    network:
      allow: [{allow}]
    secrets:
      token: {{hosts: [{host}], header: "Authorization: Bearer {{}}"}}
"""


def load(allow: str, host: str) -> None:
    load_spec_text(SPEC.format(allow=allow, host=host).encode(), Path("sandboxes.yaml"),
                   environ={})


@pytest.mark.parametrize(("allow", "host"), [
    ('"*.github.com"', "api.github.com"),
    ('"127.0.0.1:8443"', "127.0.0.1"),
    ("api.github.com", "API.GitHub.com"),
])
def test_a_host_the_allowlist_allows_may_get_the_secret(allow: str, host: str) -> None:
    load(allow, host)


@pytest.mark.parametrize(("allow", "host"), [
    ('"*.github.com"', "github.com"),
    ("example.com", "127.0.0.1"),
    ("api.github.com", '"::1"'),
])
def test_a_host_the_allowlist_refuses_may_not(allow: str, host: str) -> None:
    with pytest.raises(SpecError) as err:
        load(allow, host)
    [diagnostic] = err.value.diagnostics
    assert "the allowlist does not allow" in str(diagnostic)
    assert diagnostic.pos is not None
    assert diagnostic.pos.line == 10
