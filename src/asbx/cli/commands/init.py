"""`asbx init`: write a commented starter sandboxes.yaml (never over an existing one)."""

from __future__ import annotations

import os
from pathlib import Path

import click

from asbx.cli.context import AppContext
from asbx.errors import AsbxError

SCHEMA_URL = "https://asbx.dev/schema/sandboxes.schema.json"
LOCAL_SCHEMA = Path("schema") / "sandboxes.schema.json"

STARTER = """\
# yaml-language-server: $schema={schema}
#
# sandboxes.yaml: the sandboxes this project needs, made real by asbx.
#   asbx plan     show what would change        asbx apply    make it so
#   asbx status   what is running               asbx exec dev CMD / asbx shell dev
# Durations: 90s, 30m, 8h, 7d. Sizes: 512M, 2G. Unknown keys are errors (x-* keys are ignored).
version: 1
# name: {name}              # default: the directory name plus a short hash of its path

images:
  base:
    ref: {image}
    # or build it: build: {{ context: ./docker, dockerfile: Dockerfile, args: {{ KEY: value }} }}

# volumes:
#   cache: {{}}                     # a named volume, kept across re-creation and destroy

sandboxes:
  dev:
    image: base                      # an images: key, or a plain OCI reference
    cpus: 2
    memory: 2G
    network: deny                    # deny | open | {{ allow: [pypi.org, "*.github.com"] }}
    # env: {{ TOKEN: "${{GITHUB_TOKEN}}" }}   # from the environment or a .env beside this file
    # volumes: ["cache:/cache", "./data:/data:ro"]
    # workspace: {{ from: ./, ignore: [".git", "node_modules"] }}   # copied into /workspace
    # setup:                         # run in order each time its container is created
    #   - pip install -r requirements.txt
    lifecycle:
      idle_timeout: 30m              # `asbx reap` stops it after 30m without exec/shell
      # max_lifetime: 8h             # ... and deletes it 8h after creation
      # auto_delete: 24h             # ... or once it has been stopped for 24h
      # delete_workspace: false      # true: reap may delete the workspace with it

# snapshots:
#   deps: {{ sandbox: dev }}          # an archive of dev's /workspace after its setup ran
"""


@click.command()
@click.option("--image", default="docker.io/library/python:3.12-slim", show_default=True,
              help="The image of the starter sandbox.")
@click.pass_obj
def init(app: AppContext, image: str) -> int:
    """Write a commented starter sandboxes.yaml here (or at -f PATH); never overwrites."""
    target = _target(app.spec_file)
    for name in ("sandboxes.yaml", "sandboxes.yml"):
        existing = target.parent / name
        if existing.exists():
            raise AsbxError(f"{existing} already exists; not overwriting it",
                            hint="edit it, or remove it first to start over")
    if target.exists():
        raise AsbxError(f"{target} already exists; not overwriting it")
    if not target.parent.is_dir():
        raise AsbxError(f"directory {target.parent} does not exist")
    text = STARTER.format(schema=schema_reference(target.parent), image=image,
                          name=_suggested_name(target.parent))
    with target.open("x", encoding="utf-8") as handle:  # "x": fail rather than overwrite
        handle.write(text)
    click.echo(f"wrote {target}; next: asbx plan")
    return 0


def _target(spec_file: Path | None) -> Path:
    if spec_file is None:
        return Path.cwd() / "sandboxes.yaml"
    return spec_file / "sandboxes.yaml" if spec_file.is_dir() else spec_file


def schema_reference(directory: Path) -> str:
    """A relative path to `schema/sandboxes.schema.json` in this or a parent directory, else
    the published URL."""
    here = directory.resolve()
    for candidate in (here, *here.parents):
        schema = candidate / LOCAL_SCHEMA
        if schema.is_file():
            relative = Path(os.path.relpath(schema, here)).as_posix()
            return relative if relative.startswith("../") else f"./{relative}"
    return SCHEMA_URL


def _suggested_name(directory: Path) -> str:
    import re

    name = re.sub(r"[^a-z0-9_-]+", "-", directory.resolve().name.lower()).strip("-_")
    return name[:40] or "my-project"
