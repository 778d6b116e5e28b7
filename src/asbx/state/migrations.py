"""Versioned SQLite schema migrations for the state store (one function per step)."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

SCHEMA_VERSION = 2


def _v1(db: sqlite3.Connection) -> None:
    db.executescript(
        """
        CREATE TABLE projects (
            name TEXT PRIMARY KEY,
            lineage TEXT NOT NULL,
            serial INTEGER NOT NULL,
            salt TEXT NOT NULL,
            spec_path TEXT NOT NULL DEFAULT '',
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL
        );
        CREATE TABLE resources (
            project TEXT NOT NULL REFERENCES projects(name) ON DELETE CASCADE,
            address TEXT NOT NULL,
            config_hash TEXT NOT NULL,
            hash_version INTEGER NOT NULL,
            applied TEXT NOT NULL,
            outputs TEXT NOT NULL,
            dependencies TEXT NOT NULL,
            status TEXT NOT NULL,
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL,
            PRIMARY KEY (project, address)
        );
        CREATE TABLE locks (
            project TEXT PRIMARY KEY,
            pid INTEGER NOT NULL,
            host TEXT NOT NULL,
            started_at REAL NOT NULL,
            command TEXT NOT NULL
        );
        CREATE TABLE activity (
            project TEXT NOT NULL,
            address TEXT NOT NULL,
            last_activity REAL NOT NULL,
            PRIMARY KEY (project, address)
        );
        CREATE TABLE journal (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            project TEXT NOT NULL,
            at REAL NOT NULL,
            command TEXT NOT NULL,
            address TEXT NOT NULL,
            action TEXT NOT NULL,
            outcome TEXT NOT NULL,
            detail TEXT NOT NULL DEFAULT ''
        );
        CREATE INDEX journal_project ON journal(project, id);
        """
    )


def _v2(db: sqlite3.Connection) -> None:
    """Indexes for "what did reap delete" (read with every state snapshot), so it stays cheap
    however long the journal grows."""
    db.executescript(
        """
        CREATE INDEX journal_address ON journal(project, address, id);
        CREATE INDEX journal_reaps ON journal(project)
            WHERE command = 'reap' AND action = 'delete' AND outcome = 'ok';
        """
    )


MIGRATIONS: dict[int, Callable[[sqlite3.Connection], None]] = {1: _v1, 2: _v2}


def migrate(db: sqlite3.Connection) -> None:
    """Bring the database to SCHEMA_VERSION; refuse a database from a newer asbx."""
    from asbx.errors import StateError

    current = db.execute("PRAGMA user_version").fetchone()[0]
    if current > SCHEMA_VERSION:
        raise StateError(
            f"the state database has schema version {current}, newer than this asbx understands "
            f"({SCHEMA_VERSION})",
            hint="upgrade asbx",
        )
    for version in range(current + 1, SCHEMA_VERSION + 1):
        with db:
            MIGRATIONS[version](db)
            db.execute(f"PRAGMA user_version = {int(version)}")
