"""Secret files (`.env`, private keys, registry credentials): left out of a seeded workspace
unless its `include:` lists them, and named wherever an archive holds them."""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path

from asbx.data.ignore import IgnoreRules, gitignore_rules, workspace_rules

# gitignore patterns (matched at any depth): files that usually hold credentials
SECRET_PATTERNS = (
    ".env", ".env.*", "*.pem", "*.key", "id_rsa*", "id_ecdsa*", "id_ed25519*", "id_dsa*",
    ".npmrc", ".pypirc", ".netrc", "*.p12", "*.pfx",
)
_EXAMPLES = (".env.example", ".env.sample", ".env.template", "*.pub")  # templates, public keys


class SecretRules:
    """Which relative paths are secret files, and which of those `include:` lets through."""

    def __init__(self, include: Sequence[str] = ()) -> None:
        self._secret = gitignore_rules([*SECRET_PATTERNS, *(f"!{p}" for p in _EXAMPLES)])
        self._include: IgnoreRules = gitignore_rules(include)

    def is_secret(self, path: str) -> bool:
        """True for a file that looks like it holds credentials."""
        return self._secret.excludes(path)

    def skips(self, path: str) -> bool:
        """True for a secret file that `include:` does not list: seeding leaves it out."""
        return self.is_secret(path) and not self._include.excludes(path)


def secret_files(paths: Iterable[str]) -> list[str]:
    """The paths (files of an archive or a tree) that look like secret files, in order."""
    rules = SecretRules()
    return [path for path in paths if rules.is_secret(path)]


def secrets_in_source(source: Path, ignore: Sequence[str] = (),
                      include: Sequence[str] = ()) -> tuple[str, ...]:
    """The secret files seeding a workspace from `source` would leave out (what plan says)."""
    if not source.is_dir():
        return ()
    rules, secrets = workspace_rules(source, ignore), SecretRules(include)
    found: list[str] = []
    for top, dirs, files in os.walk(source):
        rel = os.path.relpath(top, source)
        prefix = "" if rel == "." else rel.replace(os.sep, "/") + "/"
        dirs[:] = sorted(d for d in dirs if not rules.prune(prefix + d))
        found.extend(prefix + name for name in sorted(files)
                     if not rules.excludes(prefix + name) and secrets.skips(prefix + name))
    return tuple(sorted(found))
