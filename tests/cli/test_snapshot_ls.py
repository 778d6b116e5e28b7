"""`asbx snapshot ls`: a header over its columns, one line per snapshot."""

from __future__ import annotations

import time

from asbx.cli.commands.snapshot import snapshot_lines


def test_snapshot_ls_has_a_header_over_its_columns() -> None:
    rows: list[dict[str, object]] = [
        {"name": "deps", "digest": "sha256:" + "a" * 64, "present": True, "size": 2048,
         "files": 3, "source": "", "origin": "", "captured_at": time.time() - 120,
         "used_by": ["sandbox.web", "sandbox.job"]},
        {"name": "later", "digest": "", "present": False, "size": None, "files": None,
         "source": "", "origin": "", "captured_at": None, "used_by": []},
    ]
    header, deps, later = snapshot_lines(rows)
    assert header.split() == ["NAME", "DIGEST", "SIZE", "AGE", "USED", "BY"]
    assert deps.split() == ["deps", "sha256:aaaaaaaaaaaa", "2.0KiB", "2m", "sandbox.web,",
                            "sandbox.job"]
    assert later.split() == ["later", "(not", "captured)", "-", "-", "-"]
    assert header.index("DIGEST") == deps.index("sha256:")
