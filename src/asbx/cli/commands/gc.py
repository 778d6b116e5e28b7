"""`asbx gc`: remove what asbx left behind (archives, superseded images, stray sandbox files)."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click

from asbx.cli.commands.snapshot import _human, _referenced
from asbx.cli.context import AppContext
from asbx.errors import AsbxError, SpecNotFoundError

if TYPE_CHECKING:
    from asbx.leftovers import StraySandbox, SupersededImage
    from asbx.workflow import Session


@click.command()
@click.option("--dry-run", is_flag=True, help="Only list what would be removed.")
@click.option(
    "-y", "--yes", "--delete", "approve", is_flag=True,
    help="Remove without asking (--delete is the older spelling).",
)
@click.option(
    "--workspaces", is_flag=True,
    help="Also remove workspaces of sandboxes in neither spec, state nor runtime (data).",
)
@click.pass_obj
def gc(app: AppContext, dry_run: bool, approve: bool, workspaces: bool) -> int:
    """Remove what asbx left behind.

    Snapshot archives no project's state references (all projects in ASBX_HOME); in a project
    (a sandboxes.yaml here or above): its built images that no record names and no container
    uses, and the files of sandboxes that neither spec, state nor runtime knows (a stopped
    proxy's files, the setup marker; their workspaces only with --workspaces). Lists, then asks
    on a terminal; without one it only lists unless -y is given.
    """
    session = _session_or_none(app)
    if session is None:
        return _gc(app, None, dry_run, approve, workspaces)
    with session.store.locked(session.project, "gc", 0.0):  # never while an apply builds
        return _gc(app, session, dry_run, approve, workspaces)


def _gc(
    app: AppContext, session: Session | None, dry_run: bool, approve: bool, workspaces: bool
) -> int:
    from asbx.data.snapshots import home_store
    from asbx.workflow import project_leftovers

    archives = home_store(app.home).gc(_referenced(app.store()), dry_run=True)
    images: list[SupersededImage] = []
    strays: list[StraySandbox] = []
    if session is not None:
        images, strays = project_leftovers(session)
    for info in archives:
        click.echo(f"unreferenced: {info.digest} ({_human(info.size)})")
    for image in images:
        click.echo(f"superseded image: {image.tag}")
    for stray in strays:
        click.echo(_describe(stray, workspaces))
    total = _human(sum(i.size for i in archives))
    click.echo(
        f"{len(archives)} unreferenced archive(s), {total}; {len(images)} superseded image(s); "
        f"{len(strays)} sandbox director{'y' if len(strays) == 1 else 'ies'} of sandboxes "
        "gone from spec and state"
    )
    if not (archives or images or strays) or dry_run:
        return 0
    if not approve:
        if not sys.stdin.isatty():
            click.echo("nothing removed: pass -y (or --delete) to remove them")
            return 0
        if not click.confirm("\nRemove them?", default=False):
            raise AsbxError("gc cancelled")
    _remove(app, session, images, strays, workspaces)
    return 0


def _describe(stray: StraySandbox, workspaces: bool) -> str:
    where = f"sandbox {stray.name} ({stray.path})"
    if stray.proxy_running:
        return f"kept: {where}: its egress proxy is still running"
    if stray.has_workspace and not workspaces:
        return f"stray files: {where}; its workspace is kept (remove it with --workspaces)"
    return f"stray {'workspace' if stray.has_workspace else 'files'}: {where}"


def _remove(
    app: AppContext,
    session: Session | None,
    images: list[SupersededImage],
    strays: list[StraySandbox],
    workspaces: bool,
) -> None:
    from asbx.data.snapshots import home_store
    from asbx.leftovers import remove_images, remove_stray

    deleted = home_store(app.home).gc(_referenced(app.store()), dry_run=False)
    click.echo(f"deleted {len(deleted)} archive(s), {_human(sum(i.size for i in deleted))}")
    if session is None:
        return
    for tag in remove_images(session.runtime, images):
        click.echo(f"removed superseded image {tag}")
    for stray in strays:
        if remove_stray(session.home, session.project, stray, workspace=workspaces):
            what = "workspace and files" if workspaces and stray.has_workspace else "files"
            click.echo(f"removed the {what} of sandbox {stray.name}")


def _session_or_none(app: AppContext) -> Session | None:
    """The project here, if there is a spec; gc of archives alone needs none."""
    try:
        app.spec_path()
    except SpecNotFoundError:
        return None
    return app.session()
