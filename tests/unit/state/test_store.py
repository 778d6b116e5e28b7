"""The SQLite state store: records, serial/lineage, locks, activity, migrations."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from asbx.addresses import Address
from asbx.errors import StateError, StateLockedError
from asbx.state.records import ResourceRecord
from asbx.state.store import StateStore, salted_hash

WEB = Address.parse("sandbox.web")


def record(config_hash: str = "sha256:1") -> ResourceRecord:
    return ResourceRecord(WEB, config_hash, 1, {"memory": "1G", "env": {"A": "sha256:x"}},
                          {"container": "p-web"}, (Address.parse("image.base"),))


def test_records_round_trip_and_bump_serial(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "state.db")
    meta = store.project("p")
    assert meta.serial == 0
    store.put("p", record())
    snap = store.snapshot("p")
    assert snap.meta.serial == 1
    assert snap.meta.lineage == meta.lineage
    assert snap.records[WEB].applied == {"memory": "1G", "env": {"A": "sha256:x"}}
    assert snap.records[WEB].dependencies == (Address.parse("image.base"),)
    store.delete("p", WEB)
    assert store.snapshot("p").records == {}
    assert store.snapshot("p").meta.serial == 2


def test_created_at_survives_updates_unless_given(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "state.db")
    store.put("p", record())
    first = store.snapshot("p").records[WEB].created_at
    store.put("p", record("sha256:2"))
    assert store.snapshot("p").records[WEB].created_at == first
    store.put("p", ResourceRecord(WEB, "sha256:3", 1, created_at=first + 100))
    assert store.snapshot("p").records[WEB].created_at == first + 100


def test_projects_are_isolated_and_reopening_keeps_data(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "state.db")
    store.put("a", record())
    store.close()
    again = StateStore(tmp_path / "state.db")
    assert WEB in again.snapshot("a").records
    assert again.snapshot("b").records == {}


def test_lock_names_the_holder_and_is_released(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "state.db")
    other = StateStore(tmp_path / "state.db")
    with store.locked("p", "apply"):
        holder = other.lock_holder("p")
        assert holder is not None
        assert holder.pid == os.getpid()
        # same pid counts as alive: a second acquire in this process must fail, naming it
        with pytest.raises(StateLockedError, match=rf"locked by pid {os.getpid()} on .* \(apply\)"):
            other.acquire_lock("p", "apply")
    assert store.lock_holder("p") is None


def test_lock_timeout_waits_for_the_holder_and_gives_up_after_it(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "state.db")
    waiter = StateStore(tmp_path / "state.db")
    store.acquire_lock("p", "apply")
    started = time.monotonic()
    with pytest.raises(StateLockedError, match="locked by pid"):
        waiter.acquire_lock("p", "apply", timeout=0.6)
    assert 0.6 <= time.monotonic() - started < 3
    releaser = threading.Timer(0.5, store.release_lock, args=("p",))
    releaser.start()
    started = time.monotonic()
    assert waiter.acquire_lock("p", "destroy", timeout=10) is None  # got it once released
    assert 0.4 <= time.monotonic() - started < 5
    releaser.join()
    holder = store.lock_holder("p")
    assert holder is not None
    assert holder.command == "destroy"


def test_dead_holder_lock_is_taken_over(tmp_path: Path) -> None:
    db = tmp_path / "state.db"
    StateStore(db).project("p")
    code = ("import sys; from pathlib import Path; from asbx.state.store import StateStore;"
            f"StateStore(Path({str(db)!r})).acquire_lock('p', 'apply')")
    subprocess.run([sys.executable, "-c", code], check=True)
    store = StateStore(db)
    dead = store.lock_holder("p")
    assert dead is not None
    taken = store.acquire_lock("p", "apply")
    assert taken is not None
    assert taken.pid == dead.pid


def test_force_unlock(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "state.db")
    store.acquire_lock("p", "apply")
    assert store.force_unlock("p") is not None
    assert store.lock_holder("p") is None


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "state.db"
    StateStore(db).close()
    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA user_version = 99")
    with pytest.raises(StateError, match="newer than this asbx"):
        StateStore(db)


def test_activity_does_not_bump_serial(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "state.db")
    store.put("p", record())
    store.touch("p", WEB, at=123.0)
    snap = store.snapshot("p")
    assert snap.activity[WEB] == 123.0
    assert snap.meta.serial == 1


def test_salted_hash_hides_value_and_differs_by_salt() -> None:
    assert "hunter2" not in salted_hash("s1", "hunter2")
    assert salted_hash("s1", "hunter2") == salted_hash("s1", "hunter2")
    assert salted_hash("s1", "hunter2") != salted_hash("s2", "hunter2")


def test_journal_keeps_entries_in_order(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "state.db")
    store.project("p")
    store.journal("p", "apply", WEB, "create:create", "ok")
    store.journal("p", "apply", WEB, "delete:destroy", "failed", "boom")
    entries = store.journal_entries("p")
    assert [e[4] for e in entries] == ["ok", "failed"]


def test_a_version_1_database_is_migrated_and_keeps_its_data(tmp_path: Path) -> None:
    from asbx.state.migrations import MIGRATIONS, SCHEMA_VERSION

    db = tmp_path / "state.db"
    conn = sqlite3.connect(db)
    MIGRATIONS[1](conn)
    conn.execute("PRAGMA user_version = 1")
    conn.execute("INSERT INTO journal (project, at, command, address, action, outcome, detail)"
                 " VALUES ('p', 1.0, 'reap', 'sandbox.web', 'delete', 'ok', 'past max_lifetime')")
    conn.commit()
    conn.close()
    store = StateStore(db)
    store.project("p")
    assert store.snapshot("p").reaped == {Address.parse("sandbox.web"): "past max_lifetime"}
    assert store._db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 2
    plan = store._db.execute(
        "EXPLAIN QUERY PLAN SELECT address FROM journal AS j WHERE project = 'p' AND command ="
        " 'reap' AND action = 'delete' AND outcome = 'ok'").fetchall()
    assert "journal_reaps" in str(plan)  # the reap lookup does not scan the whole journal


def test_releasing_the_lock_keeps_only_the_newest_journal_entries(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import asbx.state.store as store_module

    monkeypatch.setattr(store_module, "JOURNAL_KEEP", 5)
    store = StateStore(tmp_path / "state.db")
    for index in range(12):
        store.journal("p", "apply", f"sandbox.s{index}", "create:create", "ok")
        store.journal("q", "apply", f"sandbox.s{index}", "create:create", "ok")
    with store.locked("p", "apply"):
        pass
    assert [e[2] for e in store.journal_entries("p")] == [f"sandbox.s{i}" for i in range(7, 12)]
    assert len(store.journal_entries("q")) == 12  # another project's journal is its own
