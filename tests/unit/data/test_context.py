"""Build-context digests: what changes the digest, what does not, and the stat cache."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from asbx.data.context import context_digest, describe_build_change, describe_context_change
from asbx.errors import DataError
from tests.unit.data.trees import backdate, make_tree

DOCKERFILE = "FROM busybox\nCOPY . /app\n"


@pytest.fixture
def context(tmp_path: Path) -> Path:
    root = make_tree(
        tmp_path / "ctx",
        {
            "Dockerfile": DOCKERFILE,
            ".dockerignore": "# build output\n*.log\nnode_modules\n**/__pycache__\n",
            "src/app.py": "print('app')\n",
            "src/util.py": "X = 1\n",
            "README.md": "# ctx\n",
            "debug.log": "noise\n",
            "node_modules/dep/index.js": "module.exports = 1\n",
            "src/__pycache__/app.cpython-311.pyc": "junk",
        },
    )
    backdate(root)
    return root


def test_digest_lists_kept_files_only(context: Path) -> None:
    result = context_digest(context)
    assert sorted(result.files) == [
        ".dockerignore", "Dockerfile", "README.md", "src/app.py", "src/util.py",
    ]
    assert result.files["src/app.py"].startswith("0644 sha256:")
    assert result.digest.startswith("sha256:")


def test_digest_is_stable(context: Path) -> None:
    assert context_digest(context).digest == context_digest(context).digest


def test_touching_an_ignored_file_keeps_the_digest(context: Path) -> None:
    before = context_digest(context)
    (context / "debug.log").write_text("other noise\n")
    (context / "node_modules/dep/index.js").write_text("changed\n")
    (context / "node_modules/new.js").write_text("new\n")
    assert context_digest(context).digest == before.digest


def test_editing_an_included_file_changes_digest_and_is_named(context: Path) -> None:
    before = context_digest(context)
    (context / "src/app.py").write_text("print('app v2')\n")
    after = context_digest(context)

    assert after.digest != before.digest
    assert describe_context_change(before.files, after.files) == "1 file changed (src/app.py)"


def test_touch_without_content_change_keeps_digest(context: Path) -> None:
    before = context_digest(context)
    os.utime(context / "src/app.py")
    assert context_digest(context).digest == before.digest


@pytest.mark.parametrize(
    "change",
    [
        {"args": {"UV_VERSION": "0.5"}},
        {"target": "dev"},
        {"platform": "linux/arm64"},
        {"inline": "FROM busybox\n"},
    ],
    ids=["build-arg", "target", "platform", "inline-dockerfile"],
)
def test_build_inputs_change_the_digest(context: Path, change: dict[str, object]) -> None:
    base = context_digest(context, args={"UV_VERSION": "0.4"})
    inputs: dict[str, Any] = {"args": {"UV_VERSION": "0.4"}, **change}
    changed = context_digest(context, **inputs)
    assert changed.digest != base.digest


def test_build_arg_order_does_not_matter(context: Path) -> None:
    one = context_digest(context, args={"A": "1", "B": "2"})
    two = context_digest(context, args={"B": "2", "A": "1"})
    assert one.digest == two.digest


def test_dockerfile_edit_changes_digest_even_when_ignored(context: Path) -> None:
    (context / ".dockerignore").write_text("Dockerfile\n")
    before = context_digest(context)
    (context / "Dockerfile").write_text(DOCKERFILE + "RUN true\n")
    assert "Dockerfile" not in before.files
    assert context_digest(context).digest != before.digest


def test_dockerfile_path_is_relative_to_context(context: Path) -> None:
    make_tree(context, {"docker/dev.Dockerfile": "FROM scratch\n"})
    named = context_digest(context, dockerfile=Path("docker/dev.Dockerfile"))
    inline = context_digest(context, inline="FROM scratch\n")
    assert named.digest == inline.digest


def test_missing_dockerfile_and_missing_context_are_errors(context: Path, tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"Dockerfile .*nope does not exist"):
        context_digest(context, dockerfile=Path("nope"))
    with pytest.raises(DataError, match="is not a directory"):
        context_digest(tmp_path / "missing")


def test_mode_change_changes_digest(context: Path) -> None:
    before = context_digest(context)
    (context / "src/app.py").chmod(0o755)
    after = context_digest(context)
    assert after.files["src/app.py"].startswith("0755 ")
    assert describe_context_change(before.files, after.files) == "1 file changed (src/app.py)"


def test_symlinks_are_hashed_by_target_not_followed(context: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside.txt"
    outside.write_text("v1")
    (context / "link").symlink_to(outside)
    before = context_digest(context)
    outside.write_text("v2")

    assert before.files["link"].startswith("link sha256:")
    assert context_digest(context).digest == before.digest


def test_fifos_are_skipped(context: Path) -> None:
    os.mkfifo(context / "pipe")
    assert "pipe" not in context_digest(context).files  # and reading it would have hung


def test_dockerfile_specific_ignore_file_wins(context: Path) -> None:
    make_tree(context, {"dev.Dockerfile": "FROM scratch\n", "dev.Dockerfile.dockerignore": "src\n"})
    result = context_digest(context, dockerfile=Path("dev.Dockerfile"))
    assert "src/app.py" not in result.files
    assert "debug.log" in result.files  # the root .dockerignore is not used


def test_warm_cache_hashes_nothing(context: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache/context.json"
    cold = context_digest(context, cache=cache)
    warm = context_digest(context, cache=cache)

    assert (cold.hashed_files, cold.cached_files) == (5, 0)
    assert (warm.hashed_files, warm.cached_files) == (0, 5)
    assert warm == cold


def test_cache_notices_an_edit(context: Path, tmp_path: Path) -> None:
    cache = tmp_path / "context.json"
    before = context_digest(context, cache=cache)
    (context / "src/util.py").write_text("X = 2\n")  # same size, new mtime
    after = context_digest(context, cache=cache)

    assert after.hashed_files == 1
    assert after.digest != before.digest
    assert after.digest == context_digest(context).digest  # same answer as without a cache


def test_cache_notices_content_swapped_under_an_old_mtime(context: Path, tmp_path: Path) -> None:
    cache = tmp_path / "context.json"
    before = context_digest(context, cache=cache)
    (context / "src/util.py").write_text("X = 3\n")
    backdate(context)  # mtime restored as `cp -p` or `rsync -t` would; ctime still moves

    after = context_digest(context, cache=cache)
    assert after.digest != before.digest


def test_recently_modified_files_are_not_cached(context: Path, tmp_path: Path) -> None:
    cache = tmp_path / "context.json"
    (context / "src/app.py").write_text("fresh\n")  # mtime now: inside the racy window
    context_digest(context, cache=cache)
    again = context_digest(context, cache=cache)
    assert again.hashed_files == 1


def test_corrupt_cache_is_ignored(context: Path, tmp_path: Path) -> None:
    cache = tmp_path / "context.json"
    cache.write_text("{not json")
    result = context_digest(context, cache=cache)
    assert result.digest == context_digest(context).digest
    assert json.loads(cache.read_text())["version"] == 1


def test_one_cache_serves_two_contexts(context: Path, tmp_path: Path) -> None:
    other = make_tree(tmp_path / "other", {"Dockerfile": "FROM scratch\n", "a": "a"})
    backdate(other)
    cache = tmp_path / "context.json"
    context_digest(context, cache=cache)
    context_digest(other, cache=cache)

    assert context_digest(context, cache=cache).hashed_files == 0
    assert context_digest(other, cache=cache).hashed_files == 0


def test_deleted_files_leave_the_cache(context: Path, tmp_path: Path) -> None:
    cache = tmp_path / "context.json"
    context_digest(context, cache=cache)
    (context / "README.md").unlink()
    context_digest(context, cache=cache)
    entries = json.loads(cache.read_text())["entries"]
    assert not any(key.endswith("README.md") for key in entries)


@pytest.mark.parametrize(
    ("ignore", "kept"),
    [
        ("*.md", {"sub/b.md", "sub/keep.txt"}),  # Docker: root-relative, unlike git
        ("**/*.md", {"sub/keep.txt"}),
        ("sub", {"a.md"}),
        ("sub/", {"a.md"}),  # a trailing slash is cleaned away
        ("/sub\n!sub/keep.txt", {"a.md", "sub/keep.txt"}),  # re-include below an excluded dir
        ("./sub/*.md", {"a.md", "sub/keep.txt"}),
        ("*\n!a.md", {"a.md"}),
        ("# *.md\n  sub  ", {"a.md"}),  # comment, surrounding whitespace trimmed
        ("../sub\n.\n", {"a.md", "sub/b.md", "sub/keep.txt"}),  # match nothing
    ],
)
def test_dockerignore_follows_docker_rules(tmp_path: Path, ignore: str, kept: set[str]) -> None:
    root = make_tree(
        tmp_path / "ctx",
        {"a.md": "a", "sub/b.md": "b", "sub/keep.txt": "k", ".dockerignore": ignore},
    )
    files = set(context_digest(root, inline="FROM scratch\n").files) - {".dockerignore"}
    assert files == kept


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ({"a": "1"}, {"a": "1"}, "no files changed"),
        ({"a": "1", "b": "1", "c": "1"}, {"a": "2", "b": "2", "c": "2"},
         "3 files changed (a, b, c)"),
        ({"a": "1"}, {"a": "1", "x": "1", "y": "1"}, "2 files added (x, y)"),
        ({"a": "1", "gone": "1"}, {"a": "1", "x": "1", "y": "1"},
         "2 files added, 1 removed (x, y, gone)"),
        ({"a": "1", "b": "1"}, {"a": "2", "c": "1", "d": "1", "e": "1"},
         "1 file changed, 3 added, 1 removed (a, c, d, +2 more)"),
        ({"z": "1"}, {}, "1 file removed (z)"),
    ],
)
def test_describe_context_change(old: dict[str, str], new: dict[str, str], expected: str) -> None:
    assert describe_context_change(old, new) == expected


def test_describe_context_change_limit() -> None:
    new = {f"f{i}": "x" for i in range(5)}
    assert describe_context_change({}, new, limit=1) == "5 files added (f0, +4 more)"


def _why(before: object, after: object) -> str:
    assert hasattr(before, "inputs")
    return describe_build_change(before.inputs, before.files, after)  # type: ignore[attr-defined]


def test_a_build_arg_change_is_named_and_no_file_is_blamed(context: Path) -> None:
    before = context_digest(context, args={"UV_VERSION": "0.5.1", "KEEP": "x"})
    after = context_digest(context, args={"UV_VERSION": "0.5.2", "KEEP": "x"})
    assert after.digest != before.digest
    assert _why(before, after) == "build arg UV_VERSION changed"
    added = context_digest(context, args={"UV_VERSION": "0.5.2", "KEEP": "x", "NEW": "1"})
    assert _why(before, added) == "build args NEW, UV_VERSION changed"


def test_a_dockerfile_edit_says_dockerfile_changed(context: Path) -> None:
    before = context_digest(context)
    (context / "Dockerfile").write_text("FROM scratch\nENV V=2\n")
    assert _why(before, context_digest(context)) == "Dockerfile changed"


def test_dockerfile_and_files_together_and_target(context: Path) -> None:
    before = context_digest(context)
    (context / "Dockerfile").write_text("FROM scratch\nENV V=4\n")
    (context / "src/app.py").write_text("print('app v4')\n")
    after = context_digest(context, target="runtime")
    assert _why(before, after) == (
        "Dockerfile changed; build target changed; context changed: 1 file changed (src/app.py)"
    )


def test_an_inline_dockerfile_edit_and_a_manifest_without_inputs(context: Path) -> None:
    before = context_digest(context, inline="FROM scratch\n")
    after = context_digest(context, inline="FROM scratch\nENV A=1\n")
    assert _why(before, after) == "Dockerfile changed"
    # a manifest written by an older asbx has no inputs: only files can be compared
    assert describe_build_change({}, before.files, after) == "context changed: no files changed"


def test_skipped_files_never_count(context: Path) -> None:
    before = context_digest(context)
    (context / "sandboxes.lock").write_text("{}\n")
    (context / "src" / "sandboxes.lock").write_text("{}\n")
    skipped = context_digest(context, skip=[context / "sandboxes.lock", context.parent / "x"])
    assert "sandboxes.lock" not in skipped.files
    assert "src/sandboxes.lock" in skipped.files, "only the very path given is skipped"
    (context / "src" / "sandboxes.lock").unlink()
    assert context_digest(context, skip=[context / "sandboxes.lock"]).digest == before.digest
