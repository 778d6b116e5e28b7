"""An excluded directory the user cannot read is skipped, as BuildKit's fsutil skips it.

fsutil (github.com/tonistiigi/fsutil `filter.go`, filterFS.Walk) skips an excluded directory
without opening it when no `!` exception could re-include anything below it; when one could
(an exception with a wildcard), it opens the directory and, if that fails with a permission
error, ignores the error because the directory itself is excluded. A kept directory that cannot
be read is an error. Root reads everything, so the digest runs as `nobody` in a forked child.
"""

from __future__ import annotations

import encodings.utf_8_sig  # noqa: F401 - loaded before the child drops root (see as_nobody)
import json
import os
import pwd
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from asbx.data.context import context_digest
from asbx.errors import DataError


def as_nobody(work: Callable[[], object]) -> object:
    """`work()` in a forked child that dropped root for `nobody` (a fork, not an exec: this
    interpreter lives under /root, which `nobody` cannot enter); its JSON result."""
    if os.geteuid() != 0:
        return work()
    nobody = pwd.getpwnam("nobody")
    read_end, write_end = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - the child's coverage is not collected
        status = 0
        try:
            os.close(read_end)
            os.setgroups([])
            os.setgid(nobody.pw_gid)
            os.setuid(nobody.pw_uid)
            payload = json.dumps(work()).encode()
        except BaseException as exc:
            payload, status = json.dumps(repr(exc)).encode(), 1
        with os.fdopen(write_end, "wb") as out:
            out.write(payload)
        os._exit(status)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as source:
        payload = source.read()
    _, status = os.waitpid(child, 0)
    result = json.loads(payload)
    assert os.waitstatus_to_exitcode(status) == 0, result
    return result


def digest(ctx: Path) -> object:
    try:
        return sorted(context_digest(ctx).files)
    except DataError as exc:
        return str(exc)


@pytest.fixture
def context() -> Iterator[Path]:
    """A context readable by everyone but `secret/`, which only its owner (root) may read."""
    top = Path(tempfile.mkdtemp(prefix="asbx-unreadable-"))
    try:
        top.chmod(0o755)
        ctx = top / "ctx"
        (ctx / "secret").mkdir(parents=True)
        (ctx / "Dockerfile").write_text("FROM busybox\n")
        (ctx / "app.py").write_text("print()\n")
        (ctx / "README.md").write_text("hi\n")
        (ctx / "secret" / "key.md").write_text("x\n")
        for path in (ctx, *ctx.iterdir(), ctx / "secret" / "key.md"):
            path.chmod(0o755 if path.is_dir() else 0o644)
        (ctx / "secret").chmod(0o000 if os.geteuid() == 0 else 0o300)
        yield ctx
    finally:
        for name in ("secret", "listable"):
            if (top / "ctx" / name).exists():
                (top / "ctx" / name).chmod(0o755)
        shutil.rmtree(top)


def digest_as_nobody(ctx: Path, dockerignore: str | None) -> object:
    if dockerignore is not None:
        (ctx / ".dockerignore").write_text(dockerignore)
        (ctx / ".dockerignore").chmod(0o644)
    return as_nobody(lambda: digest(ctx))


KEPT = [".dockerignore", "Dockerfile", "README.md", "app.py"]


@pytest.mark.parametrize(
    "dockerignore",
    [
        "secret\n",  # skipped unread
        "secret/\n!README.md\n",  # the exception is not below secret/: skipped unread
        "secret\n!**/*.md\n",  # a wildcard exception: opened, unreadable, excluded: skipped
        "*\n!Dockerfile\n!app.py\n!README.md\n!.dockerignore\n!secret/*.md\n",
    ],
)
def test_unreadable_excluded_directory_is_skipped(context: Path, dockerignore: str) -> None:
    assert digest_as_nobody(context, dockerignore) == KEPT


def test_unreadable_kept_directory_is_an_error(context: Path) -> None:
    result = digest_as_nobody(context, "*.tmp\n")
    assert result == f"cannot read build context directory {context / 'secret'}: " \
                     "permission denied"


def test_a_listable_but_unsearchable_excluded_directory_is_skipped(context: Path) -> None:
    listable = context / "listable"
    listable.mkdir()
    (listable / "x.md").write_text("x\n")
    listable.chmod(0o444)  # its names can be read, its entries cannot be looked at
    ignore = "secret\nlistable/x.md\n!**/*.txt\n"
    assert digest_as_nobody(context, ignore) == KEPT
    assert digest_as_nobody(context, "secret\n") == (
        "cannot read build context entry listable/x.md: Permission denied")


def test_the_child_really_cannot_read_it(context: Path) -> None:
    def listing() -> object:
        try:
            return os.listdir(context / "secret")
        except PermissionError:
            return "denied"

    assert as_nobody(listing) == "denied"
