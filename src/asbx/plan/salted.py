"""How secret values (env, build args) are compared: salted hashes, never the values."""

from __future__ import annotations

import hashlib


def salted_hash(salt: str, value: str) -> str:
    """A value as kept in state and plans: never in plaintext, comparable within a project."""
    return "sha256:" + hashlib.sha256(f"{salt}\0{value}".encode()).hexdigest()[:32]
