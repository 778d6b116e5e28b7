"""The SQLite state store: projects, resource records, serial/lineage, locks, activity, journal."""

from __future__ import annotations

import json
import os
import secrets
import socket
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from asbx.addresses import Address
from asbx.errors import StateError, StateLockedError
from asbx.plan.salted import salted_hash  # noqa: F401  (kept importable from here)
from asbx.state.migrations import migrate
from asbx.state.records import LockInfo, ProjectMeta, ResourceRecord, StateSnapshot

# Journal entries kept per project (older ones go when a lock is released): enough for
# `asbx state` forensics and for telling what reap deleted, without growing forever.
JOURNAL_KEEP = 20_000


class StateStore:
    """One SQLite database (WAL) under ASBX_HOME; every write is its own transaction."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._mutex = threading.RLock()
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = sqlite3.connect(
                path, timeout=30, isolation_level=None, check_same_thread=False
            )
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("PRAGMA foreign_keys=ON")
            migrate(self._db)
        except sqlite3.DatabaseError as exc:
            raise StateError(f"cannot open the state database {path}: {exc}") from None

    def close(self) -> None:
        self._db.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._mutex:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    # projects
    def project(self, name: str, spec_path: str = "") -> ProjectMeta:
        """The project's meta, created (with a fresh lineage and salt) on first use."""
        row = self._db.execute(
            "SELECT name, lineage, serial, salt, spec_path FROM projects WHERE name = ?", (name,)
        ).fetchone()
        if row is not None:
            return ProjectMeta(*row)
        now = time.time()
        with self._write() as db:
            db.execute(
                "INSERT OR IGNORE INTO projects VALUES (?, ?, 0, ?, ?, ?, ?)",
                (name, str(uuid.uuid4()), secrets.token_hex(16), spec_path, now, now),
            )
        return self.project(name, spec_path)

    def projects(self) -> list[ProjectMeta]:
        rows = self._db.execute(
            "SELECT name, lineage, serial, salt, spec_path FROM projects ORDER BY name"
        ).fetchall()
        return [ProjectMeta(*row) for row in rows]

    def set_spec_path(self, name: str, spec_path: str) -> None:
        with self._write() as db:
            db.execute("UPDATE projects SET spec_path = ? WHERE name = ?", (spec_path, name))

    def adopt_salt(self, name: str, salt: str) -> None:
        """Take over the salt of a lost database (read from runtime labels), while the project
        has no records: its config hashes then match the objects' labels again."""
        with self._write() as db:
            db.execute(
                "UPDATE projects SET salt = ? WHERE name = ? AND NOT EXISTS "
                "(SELECT 1 FROM resources WHERE project = ?)",
                (salt, name, name),
            )

    # records
    def snapshot(self, project: str) -> StateSnapshot:
        """The project's meta, records and activity, read in one consistent transaction."""
        self.project(project)
        with self._mutex:
            return self._read_snapshot(project)

    def _read_snapshot(self, project: str) -> StateSnapshot:
        self._db.execute("BEGIN")
        try:
            rows = self._db.execute(
                "SELECT address, config_hash, hash_version, applied, outputs, dependencies, status,"
                " created_at, updated_at FROM resources WHERE project = ?",
                (project,),
            ).fetchall()
            activity_rows = self._db.execute(
                "SELECT address, last_activity FROM activity WHERE project = ?", (project,)
            ).fetchall()
            # each address's latest journal entry, where that is a deletion by `asbx reap`
            reaped_rows = self._db.execute(
                "SELECT address, detail FROM journal AS j WHERE project = ? AND command = 'reap'"
                " AND action = 'delete' AND outcome = 'ok' AND id = (SELECT MAX(id) FROM journal"
                " WHERE project = j.project AND address = j.address)",
                (project,),
            ).fetchall()
            meta = self.project(project)
        finally:
            self._db.execute("COMMIT")
        records = {rec.address: rec for rec in map(_record_from_row, rows)}
        activity = {Address.parse(a): t for a, t in activity_rows}
        reaped = {Address.parse(a): d for a, d in reaped_rows if Address.parse(a) not in records}
        return StateSnapshot(meta, records, activity, reaped)

    def put(self, project: str, record: ResourceRecord) -> None:
        """Write one record and bump the serial, in one transaction."""
        self.project(project)
        now = time.time()
        with self._write() as db:
            existing = db.execute(
                "SELECT created_at FROM resources WHERE project = ? AND address = ?",
                (project, str(record.address)),
            ).fetchone()
            created = record.created_at or (existing[0] if existing else now)
            db.execute(
                "INSERT OR REPLACE INTO resources VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    project,
                    str(record.address),
                    record.config_hash,
                    record.hash_version,
                    _dumps(record.applied),
                    _dumps(record.outputs),
                    _dumps([str(d) for d in record.dependencies]),
                    record.status,
                    created,
                    now,
                ),
            )
            _bump(db, project, now)

    def delete(self, project: str, address: Address) -> None:
        now = time.time()
        with self._write() as db:
            db.execute(
                "DELETE FROM resources WHERE project = ? AND address = ?", (project, str(address))
            )
            db.execute(
                "DELETE FROM activity WHERE project = ? AND address = ?", (project, str(address))
            )
            _bump(db, project, now)

    # activity (does not bump the serial: it is not a change a saved plan depends on)
    def touch(self, project: str, address: Address, at: float | None = None) -> None:
        self.project(project)
        with self._write() as db:
            db.execute(
                "INSERT OR REPLACE INTO activity VALUES (?, ?, ?)",
                (project, str(address), time.time() if at is None else at),
            )

    # journal
    def journal(
        self,
        project: str,
        command: str,
        address: Address | str,
        action: str,
        outcome: str,
        detail: str = "",
    ) -> None:
        with self._write() as db:
            db.execute(
                "INSERT INTO journal (project, at, command, address, action, outcome, detail)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (project, time.time(), command, str(address), action, outcome, detail[:4000]),
            )

    def journal_entries(self, project: str, limit: int = 100) -> list[tuple[Any, ...]]:
        rows = self._db.execute(
            "SELECT at, command, address, action, outcome, detail FROM journal WHERE project = ?"
            " ORDER BY id DESC LIMIT ?",
            (project, limit),
        ).fetchall()
        return list(reversed(rows))

    # locking
    def acquire_lock(self, project: str, command: str, timeout: float = 0.0) -> LockInfo | None:
        """Take the project's lock; wait up to `timeout`; take over a dead local holder's lock.

        Returns the dead holder's LockInfo when one was taken over (for a warning), else None.
        Raises StateLockedError naming the live holder.
        """
        deadline = time.monotonic() + timeout
        me = LockInfo(os.getpid(), socket.gethostname(), time.time(), command)
        while True:
            with self._write() as db:
                holder = _lock_row(db, project)
                stale = holder is not None and _holder_is_dead(holder)
                if holder is None or stale:
                    db.execute(
                        "INSERT OR REPLACE INTO locks VALUES (?, ?, ?, ?, ?)",
                        (project, me.pid, me.host, me.started_at, me.command),
                    )
                    return holder if stale else None
            if time.monotonic() >= deadline:
                raise StateLockedError(
                    f"project {project} is locked by pid {holder.pid} on {holder.host} since "
                    f"{time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(holder.started_at))} "
                    f"({holder.command})",
                    hint="wait for it to finish, pass --lock-timeout, or if that process is gone: "
                    "asbx state unlock --force",
                )
            time.sleep(0.2)

    def release_lock(self, project: str) -> None:
        """Release the project's lock, trimming its journal to the newest JOURNAL_KEEP entries."""
        with self._write() as db:
            db.execute(
                "DELETE FROM locks WHERE project = ? AND pid = ? AND host = ?",
                (project, os.getpid(), socket.gethostname()),
            )
            db.execute(
                "DELETE FROM journal WHERE project = ? AND id <= (SELECT id FROM journal WHERE"
                " project = ? ORDER BY id DESC LIMIT 1 OFFSET ?)",
                (project, project, JOURNAL_KEEP),
            )

    def lock_holder(self, project: str) -> LockInfo | None:
        return _lock_row(self._db, project)

    def force_unlock(self, project: str) -> LockInfo | None:
        with self._write() as db:
            holder = _lock_row(db, project)
            db.execute("DELETE FROM locks WHERE project = ?", (project,))
        return holder

    @contextmanager
    def locked(self, project: str, command: str, timeout: float = 0.0) -> Iterator[LockInfo | None]:
        taken_over = self.acquire_lock(project, command, timeout)
        try:
            yield taken_over
        finally:
            self.release_lock(project)


def _bump(db: sqlite3.Connection, project: str, now: float) -> None:
    db.execute(
        "UPDATE projects SET serial = serial + 1, updated_at = ? WHERE name = ?", (now, project)
    )


def _dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def _record_from_row(row: tuple[Any, ...]) -> ResourceRecord:
    address, config_hash, version, applied, outputs, deps, status, created, updated = row
    return ResourceRecord(
        address=Address.parse(address),
        config_hash=config_hash,
        hash_version=version,
        applied=json.loads(applied),
        outputs=json.loads(outputs),
        dependencies=tuple(Address.parse(d) for d in json.loads(deps)),
        status=status,
        created_at=created,
        updated_at=updated,
    )


def _lock_row(db: sqlite3.Connection, project: str) -> LockInfo | None:
    row = db.execute(
        "SELECT pid, host, started_at, command FROM locks WHERE project = ?", (project,)
    ).fetchone()
    return LockInfo(*row) if row else None


def _holder_is_dead(holder: LockInfo) -> bool:
    if holder.host != socket.gethostname():
        return False
    if holder.pid == os.getpid():
        return False
    try:
        os.kill(holder.pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def open_store(home: Path) -> StateStore:
    return StateStore(home / "state.db")
