"""Manifests as YAML text: one document per object, or one file per object in a directory."""

from __future__ import annotations

from pathlib import Path

import yaml

from asbx.errors import AsbxError
from asbx.render.kubernetes.model import Manifest

HEADER = "# Rendered by `asbx render kubernetes`; edit sandboxes.yaml, not this file.\n"


class _NoAliases(yaml.SafeDumper):
    """Plain YAML: a mapping used twice is written twice, never as an &anchor."""

    def ignore_aliases(self, data: object) -> bool:
        return True


def _text(dumper: yaml.SafeDumper, text: str) -> yaml.Node:
    """Multi-line strings (a proxy's policy.json) as literal blocks, readable in a diff."""
    style = "|" if "\n" in text else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", text, style=style)


_NoAliases.add_representer(str, _text)


def dump(manifest: Manifest) -> str:
    return yaml.dump(manifest, Dumper=_NoAliases, sort_keys=False, default_flow_style=False,
                     width=100)


def stream(manifests: tuple[Manifest, ...]) -> str:
    """All objects as one multi-document YAML stream."""
    return HEADER + "".join(f"---\n{dump(m)}" for m in manifests)


def file_name(index: int, manifest: Manifest) -> str:
    return f"{index:02d}-{manifest['kind'].lower()}-{manifest['metadata']['name']}.yaml"


def write_dir(directory: Path, manifests: tuple[Manifest, ...]) -> list[Path]:
    """One file per object, numbered in apply order; refuses a directory with other files."""
    if directory.exists() and not directory.is_dir():
        raise AsbxError(f"{directory} exists and is not a directory")
    directory.mkdir(parents=True, exist_ok=True)
    wanted = {file_name(i, m): m for i, m in enumerate(manifests, 1)}
    for old in directory.iterdir():
        if old.name in wanted:
            continue
        if old.is_file() and old.suffix == ".yaml" and old.read_text(
                encoding="utf-8").startswith(HEADER):
            old.unlink()  # an object a previous render wrote that no longer exists
    written = []
    for name, manifest in wanted.items():
        path = directory / name
        if path.is_symlink() or (path.exists() and not path.is_file()):
            raise AsbxError(f"{path} is not a regular file; refusing to write through it",
                            hint="remove it, or render into another directory")
        path.write_text(HEADER + dump(manifest), encoding="utf-8")
        written.append(path)
    return written
