"""What asbx leaves behind for one project: superseded built images, and the directories of
sandboxes that are in neither spec nor state (workspace, stopped proxy's files, setup marker)."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import Path

from asbx import project as naming
from asbx.addresses import Address, ResourceKind
from asbx.errors import AsbxError, NotFoundError
from asbx.runtime.base import LABEL_ADDRESS, LABEL_HASH, LABEL_PROJECT, Runtime
from asbx.state.records import ResourceRecord


@dataclass(frozen=True)
class SupersededImage:
    """A built image of the project that no record names and no container runs."""

    tag: str
    image_id: str


@dataclass(frozen=True)
class StraySandbox:
    """`projects/<project>/sandboxes/<name>` of a sandbox in neither spec, state nor runtime."""

    name: str
    path: Path
    has_workspace: bool
    proxy_running: bool


def superseded_images(
    runtime: Runtime, project: str, records: Mapping[Address, ResourceRecord]
) -> list[SupersededImage]:
    """Images asbx built for `project` (by label *and* by its tag naming scheme, so an image a
    user built FROM one, which inherits the labels, is never taken) that are not the recorded
    image of any address and that no container on the machine uses (two listings)."""
    current_refs = {str(r.outputs.get("ref")) for a, r in records.items()
                    if a.kind is ResourceKind.IMAGE}
    current_ids = {str(r.outputs.get("image_id")) for a, r in records.items()
                   if a.kind is ResourceKind.IMAGE and r.outputs.get("image_id")}
    used = {c.image_id for c in runtime.list_containers({}) if c.image_id}
    out: list[SupersededImage] = []
    for image in runtime.list_images():
        labels = image.labels
        if labels.get(LABEL_PROJECT) != project:
            continue
        try:
            address = Address.parse(labels.get(LABEL_ADDRESS, ""))
        except ValueError:
            continue
        if address.kind is not ResourceKind.IMAGE or not labels.get(LABEL_HASH):
            continue
        tag = naming.image_tag(project, address.name, labels[LABEL_HASH])
        if tag not in image.names or tag in current_refs:
            continue
        if image.id in current_ids or image.id in used:
            continue
        out.append(SupersededImage(tag, image.id))
    return out


def remove_images(runtime: Runtime, images: Collection[SupersededImage]) -> list[str]:
    """Untag/remove each image through the runtime; the tags it refused or lost are left out."""
    removed = []
    for image in images:
        try:
            runtime.remove_image(image.tag)
        except NotFoundError:
            continue
        except AsbxError:
            continue  # in use after all (a container created meanwhile), or a child's parent
        removed.append(image.tag)
    return removed


def stray_sandboxes(home: Path, project: str, keep: Collection[str]) -> list[StraySandbox]:
    """Sandbox directories of `project` whose name is not in `keep` (spec, state, runtime)."""
    from asbx.apply.egress import run_dir
    from asbx.data.workspaces import WORKSPACE_DIR, check_path_component

    check_path_component("project", project)
    root = home / "projects" / project / "sandboxes"
    if not root.is_dir() or root.is_symlink():
        return []
    out = []
    for path in sorted(root.iterdir()):
        if path.name in keep or path.is_symlink() or not path.is_dir():
            continue
        running = _proxy_alive(run_dir(home, project, path.name))
        out.append(StraySandbox(path.name, path, (path / WORKSPACE_DIR).exists(), running))
    return out


def _proxy_alive(run_dir: Path) -> bool:
    """Whether the proxy recorded in run_dir (state file or bare pid file) still runs."""
    from asbx.network.manager import PID_FILE, is_proxy_process, read_handle

    handle = read_handle(run_dir)
    if handle is not None:
        return is_proxy_process(handle.pid)
    try:
        pid = int((run_dir / PID_FILE).read_text(encoding="utf-8").strip())
    except (OSError, ValueError):
        return False
    return is_proxy_process(pid)


def remove_stray(home: Path, project: str, stray: StraySandbox, *, workspace: bool) -> bool:
    """Remove a stray sandbox's proxy files and setup marker, and with `workspace` its workspace
    and directory. A running proxy is left alone (False): it is not a leftover."""
    from asbx.apply.egress import run_dir
    from asbx.data.workspaces import remove_tree, remove_workspace, setup_marker, workspace_path

    proxy = run_dir(home, project, stray.name)
    if stray.proxy_running or _proxy_alive(proxy):
        return False  # a running proxy is not a leftover; asbx never stops one here
    if proxy.is_dir() and not proxy.is_symlink():
        remove_tree(proxy)
    setup_marker(home, project, stray.name).unlink(missing_ok=True)
    if workspace:
        remove_workspace(workspace_path(home, project, stray.name), home=home)
        if not any(stray.path.iterdir()):
            stray.path.rmdir()
    return True
