"""Dockerfile FROM parsing: stages, flags, continuations, comments, global ARGs."""

from __future__ import annotations

import pytest

from asbx.spec.dockerfile import from_references, rewrite_from


@pytest.mark.parametrize(
    ("text", "refs"),
    [
        ("FROM python:3.12\nRUN true\n", ["python:3.12"]),
        ("from busybox\n", ["busybox"]),
        ("  FROM   busybox   \n", ["busybox"]),
        ("FROM base AS build\nFROM build\nFROM Build AS final\n", ["base"]),
        ("FROM node:20 AS deps\nFROM python:3.12 AS app\nCOPY --from=deps /a /b\n",
         ["node:20", "python:3.12"]),
        ("FROM --platform=$BUILDPLATFORM golang:1.22 AS build\nFROM scratch\n",
         ["golang:1.22", "scratch"]),
        ("FROM --platform=linux/arm64 base\n", ["base"]),
        ("FROM \\\n  busybox \\\n  AS tools\nFROM tools\n", ["busybox"]),
        ("RUN echo \\\n  FROM not-an-image\nFROM real\n", ["real"]),
        ("# FROM commented\nFROM real\n", ["real"]),
        ("FROM a\nFROM a\n", ["a"]),
        ("FROM a AS one\nFROM b AS two\nFROM one\nFROM two\n", ["a", "b"]),
        ("", []),
        ("RUN true\n", []),
    ],
)
def test_from_references(text: str, refs: list[str]) -> None:
    assert from_references(text) == refs


def test_global_args_are_substituted_and_build_args_override_them() -> None:
    text = "ARG BASE=python\nARG TAG=3.12\nFROM ${BASE}:$TAG\nARG BASE=ignored\nFROM $BASE\n"
    assert from_references(text) == ["python:3.12", "python"]
    assert from_references(text, {"BASE": "agent"}) == ["agent:3.12", "agent"]


def test_an_arg_without_a_value_stays_unresolved() -> None:
    assert from_references("ARG BASE\nFROM $BASE\n") == ["$BASE"]
    assert from_references("ARG BASE\nFROM $BASE\n", {"BASE": "base"}) == ["base"]


def test_the_escape_directive_changes_the_continuation_character() -> None:
    text = "# escape=`\nFROM a `\n  AS b\nFROM b\nRUN dir c:\\\n"
    assert from_references(text) == ["a"]


def test_windows_line_endings() -> None:
    assert from_references("FROM a AS b\r\nFROM b\r\n") == ["a"]


REAL = {"base": "localhost/p-base:0123abcd"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("FROM base\nRUN x\n", "FROM localhost/p-base:0123abcd\nRUN x\n"),
        ("from base AS build\n", "from localhost/p-base:0123abcd AS build\n"),
        ("FROM --platform=linux/amd64 base\n",
         "FROM --platform=linux/amd64 localhost/p-base:0123abcd\n"),
        ("ARG BASE=base\nFROM $BASE\n", "ARG BASE=base\nFROM localhost/p-base:0123abcd\n"),
        ("ARG BASE=base\nFROM ${BASE} AS b\n",
         "ARG BASE=base\nFROM localhost/p-base:0123abcd AS b\n"),
        # an earlier stage that happens to share the image's name is a stage, not the image
        ("FROM busybox AS base\nFROM base\n", "FROM busybox AS base\nFROM base\n"),
        ("# FROM base\nFROM other\n", "# FROM base\nFROM other\n"),
        ("FROM base\r\nRUN x\r\n", "FROM localhost/p-base:0123abcd\r\nRUN x\r\n"),
    ],
)
def test_rewrite_from_points_spec_images_at_their_real_reference(text: str, expected: str) -> None:
    assert rewrite_from(text, REAL) == expected


def test_rewrite_from_takes_build_args_over_arg_defaults() -> None:
    text = "ARG BASE=python\nFROM $BASE\n"
    assert rewrite_from(text, REAL) == text
    assert rewrite_from(text, REAL, {"BASE": "base"}) == (
        "ARG BASE=python\nFROM localhost/p-base:0123abcd\n"
    )
    assert from_references(text, {"BASE": "base"}) == ["base"]  # the graph agrees
