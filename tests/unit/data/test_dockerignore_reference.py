""".dockerignore matching, ported from moby/patternmatcher's tests and fsutil's walk.

Sources:
- github.com/moby/patternmatcher `patternmatcher_test.go` at commit
  fb92fca600f84f38024451daf358720f44058949 (TestMatches, TestMatch — Go's filepath.Match
  table —, TestCompile's match kinds, the exclusion and clean-pattern tests);
- github.com/moby/patternmatcher `ignorefile/ignorefile_test.go` at commit
  08a7a10cdec96b1990f699a6d522b91b56adfe51 (TestReadAll);
- github.com/tonistiigi/fsutil `filter.go` (the walk: which excluded directories are skipped
  unread, and that an excluded directory that cannot be read is skipped).

pathspec (gitignore semantics) was the previous engine and is not used for Docker's rules:
it disagrees on `**file` (matches `dir/dir/file` here), `a**/*.txt`, `[\\]a]`, `[\\-x]`, and
accepts `[`, `[]a]`, `[a-b-c]` and a lone `!`, which Docker rejects.
"""

from __future__ import annotations

import pytest

from asbx.data.dockerignore import (
    DockerignoreError,
    DockerMatcher,
    compile_patterns,
    read_patterns,
)


def matcher(patterns: list[str]) -> DockerMatcher:
    return DockerMatcher(compile_patterns(enumerate(patterns, 1)))


def matches(path: str, patterns: list[str]) -> bool:
    return matcher(patterns).excludes(path.strip("/") if path != "/" else path)


# TestMatches (MatchesOrParentMatches / MatchesUsingParentResults agree on all of them).
# Texts with a trailing "/" are given without it: fsutil never hands a path ending in "/".
MATCHES = [
    ("**", "file", True), ("**", "file/", True), ("**/", "file", True), ("**/", "file/", True),
    ("**", "/", True), ("**/", "/", True), ("**", "dir/file", True), ("**/", "dir/file", True),
    ("**", "dir/file/", True), ("**/", "dir/file/", True), ("**/**", "dir/file", True),
    ("**/**", "dir/file/", True), ("dir/**", "dir/file", True), ("dir/**", "dir/file/", True),
    ("dir/**", "dir/dir2/file", True), ("dir/**", "dir/dir2/file/", True),
    ("**/dir", "dir", True), ("**/dir", "dir/file", True), ("**/dir2/*", "dir/dir2/file", True),
    ("**/dir2/*", "dir/dir2/file/", True), ("**/dir2/**", "dir/dir2/dir3/file", True),
    ("**/dir2/**", "dir/dir2/dir3/file/", True), ("**file", "file", True),
    ("**file", "dir/file", True), ("**/file", "dir/file", True), ("**file", "dir/dir/file", True),
    ("**/file", "dir/dir/file", True), ("**/file*", "dir/dir/file", True),
    ("**/file*", "dir/dir/file.txt", True), ("**/file*txt", "dir/dir/file.txt", True),
    ("**/file*.txt", "dir/dir/file.txt", True), ("**/file*.txt*", "dir/dir/file.txt", True),
    ("**/**/*.txt", "dir/dir/file.txt", True), ("**/**/*.txt2", "dir/dir/file.txt", False),
    ("**/*.txt", "file.txt", True), ("**/**/*.txt", "file.txt", True),
    ("a**/*.txt", "a/file.txt", True), ("a**/*.txt", "a/dir/file.txt", True),
    ("a**/*.txt", "a/dir/dir/file.txt", True), ("a/*.txt", "a/dir/file.txt", False),
    ("a/*.txt", "a/file.txt", True), ("a/*.txt**", "a/file.txt", True),
    ("a[b-d]e", "ae", False), ("a[b-d]e", "ace", True), ("a[b-d]e", "aae", False),
    ("a[^b-d]e", "aze", True), (".*", ".foo", True), (".*", "foo", False),
    ("abc.def", "abcdef", False), ("abc.def", "abc.def", True), ("abc.def", "abcZdef", False),
    ("abc?def", "abcZdef", True), ("abc?def", "abcdef", False), ("a\\\\", "a\\", True),
    ("**/foo/bar", "foo/bar", True), ("**/foo/bar", "dir/foo/bar", True),
    ("**/foo/bar", "dir/dir2/foo/bar", True), ("abc/**", "abc", False),
    ("abc/**", "abc/def", True), ("abc/**", "abc/def/ghi", True), ("**/.foo", ".foo", True),
    ("**/.foo", "bar.foo", False), ("a(b)c/def", "a(b)c/def", True),
    ("a(b)c/def", "a(b)c/xyz", False), ("a.|)$(}+{bc", "a.|)$(}+{bc", True),
    ("dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
     "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl", True),
    ("dist/*.whl", "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl", True),
    ("a\\*b", "a*b", True),
]


@pytest.mark.parametrize(("pattern", "text", "expected"), MATCHES)
def test_matches(pattern: str, text: str, expected: bool) -> None:
    assert matches(text, [pattern]) is expected


@pytest.mark.parametrize(
    ("patterns", "text", "expected"),
    [
        (["**", "!util/docker/web"], "util/docker/web/foo", False),
        (["**", "!util/docker/web", "util/docker/web/foo"], "util/docker/web/foo", True),
        (["**", "!dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl"],
         "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl", False),
        (["**", "!dist/*.whl"], "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl", False),
        # TestWildcardMatches .. TestExclusionPatternMatchesPatternAfter
        (["*"], "fileutils.go", True),
        (["*.go"], "fileutils.go", True),
        (["!fileutils.go", "*.go"], "fileutils.go", True),
        (["docs", "!docs/README.md"], "docs/README.md", False),
        (["docs/", "!docs/README.md"], "docs/README.md", False),
        (["docs/*", "!docs/README.md"], "docs/README.md", False),
        (["*.go", "!fileutils.go"], "fileutils.go", False),
        ([], "any/path/there", False),
        (["docs", "  !docs/README.md"], "docs/README.md", False),
        (["docs", "!docs/README.md  "], "docs/README.md", False),
    ],
)
def test_multiple_patterns(patterns: list[str], text: str, expected: bool) -> None:
    assert matches(text, patterns) is expected


# TestMatch: Go's filepath.Match table, through patternmatcher (None: the pattern is rejected).
FILEPATH_MATCH = [
    ("abc", "abc", True), ("*", "abc", True), ("*c", "abc", True), ("a*", "a", True),
    ("a*", "abc", True), ("a*", "ab/c", True), ("a*/b", "abc/b", True), ("a*/b", "a/c/b", False),
    ("a*b*c*d*e*/f", "axbxcxdxe/f", True), ("a*b*c*d*e*/f", "axbxcxdxexxx/f", True),
    ("a*b*c*d*e*/f", "axbxcxdxe/xxx/f", False), ("a*b*c*d*e*/f", "axbxcxdxexxx/fff", False),
    ("a*b?c*x", "abxbbxdbxebxczzx", True), ("a*b?c*x", "abxbbxdbxebxczzy", False),
    ("ab[c]", "abc", True), ("ab[b-d]", "abc", True), ("ab[e-g]", "abc", False),
    ("ab[^c]", "abc", False), ("ab[^b-d]", "abc", False), ("ab[^e-g]", "abc", True),
    ("a\\*b", "a*b", True), ("a\\*b", "ab", False), ("a?b", "a☺b", True),
    ("a[^a]b", "a☺b", True), ("a???b", "a☺b", False), ("a[^a][^a][^a]b", "a☺b", False),
    ("[a-ζ]*", "α", True),  # noqa: RUF001 - Go's own case
    ("*[a-ζ]", "A", False), ("a?b", "a/b", False),
    ("a*b", "a/b", False), ("[\\]a]", "]", True), ("[\\-]", "-", True), ("[x\\-]", "x", True),
    ("[x\\-]", "-", True), ("[x\\-]", "z", False), ("[\\-x]", "x", True), ("[\\-x]", "-", True),
    ("[\\-x]", "a", False), ("[]a]", "]", None), ("[-]", "-", None), ("[x-]", "x", None),
    ("[x-]", "-", None), ("[x-]", "z", None), ("[-x]", "x", None), ("[-x]", "-", None),
    ("[-x]", "a", None), ("\\", "a", None), ("[a-b-c]", "a", None), ("[", "a", None),
    ("[^", "a", None), ("[^bc", "a", None), ("a[", "a", None), ("a[", "ab", None),
    ("*x", "xxx", True),
]


@pytest.mark.parametrize(("pattern", "text", "expected"), FILEPATH_MATCH)
def test_filepath_match_table(pattern: str, text: str, expected: bool | None) -> None:
    if expected is None:
        with pytest.raises(DockerignoreError, match="syntax error in pattern"):
            matcher([pattern])
    else:
        assert matches(text, [pattern]) is expected


@pytest.mark.parametrize(
    ("pattern", "kind"),
    [
        ("*", "regex"), ("file*", "regex"), ("*file", "regex"), ("a*/b", "regex"),
        ("**", "suffix"), ("**/**", "regex"), ("dir/**", "prefix"), ("**/dir", "suffix"),
        ("**/dir2/*", "regex"), ("**/dir2/**", "regex"), ("**file", "suffix"),
        ("**/file*txt", "regex"), ("**/**/*.txt", "regex"), ("a[b-d]e", "regex"),
        (".*", "regex"), ("abc.def", "exact"), ("abc?def", "regex"), ("**/foo/bar", "suffix"),
        ("a(b)c/def", "exact"), ("a.|)$(}+{bc", "exact"),
        ("dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl", "exact"),
    ],
)
def test_compile_kinds(pattern: str, kind: str) -> None:
    (compiled,) = compile_patterns([(1, pattern)])
    assert compiled.kind.value == kind


@pytest.mark.parametrize(
    ("pattern", "regex"),
    [
        ("*", "[^/]*"), ("file*", "file[^/]*"), ("**/**", "(.*/)?.*"),
        ("**/dir2/*", "(.*/)?dir2/[^/]*"), ("**/**/*.txt", "(.*/)?(.*/)?[^/]*\\.txt"),
        ("abc?def", "abc[^/]def"),
    ],
)
def test_compiled_regexes(pattern: str, regex: str) -> None:
    (compiled,) = compile_patterns([(1, pattern)])
    assert compiled.regex is not None
    assert compiled.regex.pattern == regex


def test_read_all() -> None:
    content = ("test1\n/test2\n/a/file/here\n\nlastfile\n# this is a comment\n"
               "! /inverted/abs/path\n!\n! ")
    assert [p for _, p in read_patterns(content.split("\n"))] == [
        "test1", "test2", "a/file/here", "lastfile", "!inverted/abs/path", "!", "!"]


@pytest.mark.parametrize(
    ("lines", "line", "message"),
    [
        (["!"], 1, 'illegal exclusion pattern: "!"'),
        (["ok", "# c", "! "], 3, 'illegal exclusion pattern: "!"'),
        (["ok", "["], 2, 'syntax error in pattern "[": a malformed [...] character class'),
        (["\\"], 1, 'syntax error in pattern "\\": a trailing \\ escapes nothing'),
        # Go's filepath.Match accepts it, but its regex does not compile: Docker fails the build
        (["[Local-Only]/"], 1, 'syntax error in pattern "[Local-Only]": bad character range l-O'),
    ],
)
def test_rejected_patterns_name_their_line(lines: list[str], line: int, message: str) -> None:
    with pytest.raises(DockerignoreError) as caught:
        compile_patterns(read_patterns(lines))
    assert (caught.value.line, caught.value.message) == (line, message)


def test_a_comment_starts_in_the_first_column_only() -> None:
    assert read_patterns(["#c", " #kept", "\t# kept too"]) == [(2, "#kept"), (3, "# kept too")]


def test_clean_patterns() -> None:
    assert len(compile_patterns(read_patterns(["docs", "config", ""]))) == 2
    assert [p.exclusion for p in compile_patterns(read_patterns(["docs", "!docs/README.md"]))] \
        == [False, True]
    assert [p.text for p in compile_patterns(read_patterns(["\ufeff./a/", "//b//c/", "d/../e"]))
            ] == ["a", "b/c", "e"]


@pytest.mark.parametrize(
    ("patterns", "directory", "skipped"),
    [
        (["node_modules"], "node_modules", True),
        (["node_modules", "!node_modules/keep"], "node_modules", False),
        (["node_modules", "!other/keep"], "node_modules", True),  # no exception below it
        (["node_modules", "!other/*.md"], "node_modules", False),  # a wildcard exception
        (["node_modules", "!other/**"], "node_modules", True),  # trailing glob stripped
        (["src"], "other", False),  # not excluded at all
    ],
)
def test_fsutil_skips_excluded_directories_unread(patterns: list[str], directory: str,
                                                  skipped: bool) -> None:
    assert matcher(patterns).can_skip(directory) is skipped
