"""cap_add: names normalised (CAP_ prefix, case, order, duplicates), unset equals empty, masks."""

from __future__ import annotations

from pathlib import Path

import pytest

from asbx.plan.hashing import applied_form, sandbox_hash
from asbx.spec import capabilities
from asbx.spec.loader import load_spec_text
from asbx.spec.values import LocatedValueError

SPEC = "version: 1\nsandboxes:\n  web:\n    image: busybox\n{extra}"


def _box(tmp_path: Path, extra: str = ""):  # type: ignore[no-untyped-def]
    loaded = load_spec_text(SPEC.format(extra=extra).encode(), tmp_path / "sandboxes.yaml", {})
    return loaded.spec.sandboxes["web"]


def test_names_are_normalised_deduplicated_and_kept_in_bit_order(tmp_path: Path) -> None:
    box = _box(tmp_path, "    cap_add: [sys_ptrace, CAP_NET_RAW, net-raw, Cap_Sys_Ptrace]\n")
    assert box.cap_add == ("NET_RAW", "SYS_PTRACE")


def test_unset_and_empty_hash_alike_and_leave_existing_hashes_alone(tmp_path: Path) -> None:
    unset, empty = _box(tmp_path), _box(tmp_path, "    cap_add: []\n")
    assert unset.cap_add is None
    assert empty.cap_add is None
    assert "cap_add" not in applied_form(unset, "salt")
    assert sandbox_hash(applied_form(unset, "s"), "img") == \
        sandbox_hash(applied_form(empty, "s"), "img")
    added = _box(tmp_path, "    cap_add: [NET_RAW]\n")
    assert applied_form(added, "s")["cap_add"] == ["NET_RAW"]
    assert sandbox_hash(applied_form(added, "s"), "img") != \
        sandbox_hash(applied_form(unset, "s"), "img")


@pytest.mark.parametrize(("text", "hint"), [
    ("NET_RAWW", 'did you mean "NET_RAW"?'),
    ("CAP_SYS_ADMN", 'did you mean "SYS_ADMIN"?'),
    ("ALL", "name each capability the sandbox needs"),
])
def test_unknown_names_are_refused_with_a_hint(text: str, hint: str) -> None:
    with pytest.raises(LocatedValueError) as caught:
        capabilities.check(text)
    assert caught.value.hint == hint


def test_the_default_set_leaves_out_what_no_dev_sandbox_needs() -> None:
    for name in ("NET_RAW", "MKNOD", "AUDIT_WRITE", "SYS_CHROOT", "SETFCAP", "SYS_ADMIN"):
        assert name not in capabilities.DEFAULT
    assert capabilities.effective(["NET_RAW"]) == (*capabilities.DEFAULT[:8], "NET_BIND_SERVICE",
                                                   "NET_RAW")
    # as /proc/self/status prints them: the default set, then that plus bit 13 (NET_RAW)
    assert capabilities.mask(capabilities.DEFAULT) == 0x5FB
    assert capabilities.mask(capabilities.effective(["NET_RAW"])) == 0x25FB
