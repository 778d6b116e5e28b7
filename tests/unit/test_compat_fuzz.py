"""Fuzzing the Compose/Docker readers: `.dockerignore` patterns, `.env` files, Dockerfiles.

Property: nothing but the reader's own positioned error (DockerignoreError, DotenvError,
DockerfileError, each with a line inside the input) ever comes out, and whatever is accepted
can be used (a matcher answers for paths; parsed values are strings). ASBX_FUZZ_EXAMPLES=5000
explores further.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from asbx.data.dockerignore import DockerignoreError, DockerMatcher, compile_patterns, read_patterns
from asbx.spec.dockerfile import DockerfileError, from_references, rewrite_from
from asbx.spec.dotenv import DotenvError, parse_dotenv

EXTRA = int(os.environ.get("ASBX_FUZZ_EXAMPLES", "0"))
FUZZ = settings(max_examples=EXTRA or 300, deadline=None, derandomize=not EXTRA,
                suppress_health_check=[HealthCheck.too_slow])



def joined(atoms: list[str], size: int) -> st.SearchStrategy[str]:
    return st.lists(st.sampled_from(atoms), max_size=size).map("".join)


PATTERN_ATOMS = ["*", "**", "?", "[", "]", "[!", "[^", "-", "\\", "/", "!", "#", ".", "..",
                 "a", "b", "é", " ", "\t", "{", "}", "(", ")", "$", "+", "|", "^", "[a-z]",
                 "[\\]a]", "a-b-c", "\ufeff", "\x00", "\r"]
patterns = st.lists(joined(PATTERN_ATOMS, 8) | st.text(max_size=8), max_size=6)
paths = st.lists(st.text("abé.*[\\ ", min_size=1, max_size=3), min_size=1, max_size=4).map(
    "/".join)

ENV_ATOMS = ["A", "b_1", "export", " ", "\t", "=", ":", "#", "'", '"', "\\", "$", "{", "}",
             "${A}", "${A:-x}", "${A:?e}", "$$", "\\n", "\\0123", "\n", "\r\n", "é", ".", "-",
             "\ufeff", "[", "]"]
env_texts = joined(ENV_ATOMS, 30) | st.text(max_size=40)

DF_ATOMS = ["FROM", "from", "ARG", " ", "\t", "\n", "\\\n", "#", "# escape=`\n", "`", "AS",
            "a", "b", "=", '"', "'", "$", "${", "}", ":-", "#", "%", "/", "--platform=x",
            "\ufeff", "RUN", "A", "${A}", "${A:?e}"]
dockerfiles = joined(DF_ATOMS, 30)


@FUZZ
@given(patterns, st.lists(paths, max_size=5))
def test_dockerignore_patterns_never_crash(lines: list[str], probes: list[str]) -> None:
    numbered = read_patterns(lines)
    try:
        matcher = DockerMatcher(compile_patterns(numbered))
    except DockerignoreError as exc:
        line = exc.line
    else:
        line = 0
    if line:
        assert 1 <= line <= len(lines)
        return
    for path in probes:
        assert isinstance(matcher.excludes(path), bool)
        assert isinstance(matcher.can_skip(path), bool)


@FUZZ
@given(env_texts, st.dictionaries(st.sampled_from(["A", "B", "export"]), st.text(max_size=4)))
def test_env_files_never_crash(text: str, environ: dict[str, str]) -> None:
    values: dict[str, str] = {}
    try:
        values = parse_dotenv(text, environ)
    except DotenvError as exc:
        line = exc.line
    else:
        line = 0
    assert 0 <= line <= text.count("\n") + 1
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in values.items())


@FUZZ
@given(dockerfiles, st.dictionaries(st.sampled_from(["A", "B"]), st.text(max_size=4)))
def test_dockerfiles_never_crash(text: str, args: dict[str, str]) -> None:
    refs: list[str] = []
    try:
        refs = from_references(text, args)
    except DockerfileError as exc:
        line = exc.line
    else:
        line = 0
    assert 0 <= line <= max(1, len(text.splitlines()))
    assert rewrite_from(text, dict.fromkeys(refs, "x"), args).count("\n") == text.count("\n")
