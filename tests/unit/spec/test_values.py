"""Value parsers: sizes, durations, CPUs, names and allowlist host patterns."""

from __future__ import annotations

import pytest

from asbx.spec import values
from asbx.spec.values import LocatedValueError


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("512M", 512 << 20),
        ("2G", 2 << 30),
        ("2g", 2 << 30),
        ("2GB", 2 << 30),
        ("1.5GiB", 3 << 29),
        ("0.5K", 512),
        ("100k", 100 << 10),
        ("1T", 1 << 40),
        ("1B", 1),
        (" 64 M ", 64 << 20),
        (4096, 4096),
    ],
)
def test_parse_size_accepts_binary_units(text: object, size: int) -> None:
    assert values.parse_size(text) == size


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("2GBB", '"2GBB" is not a size (e.g. 512M, 2G)'),
        ("lots", '"lots" is not a size (e.g. 512M, 2G)'),
        ("512", '"512" needs a unit (e.g. 512M or 512G)'),
        ("2iB", '"2iB" is not a size (e.g. 512M, 2G)'),
        ("0M", '"0M" is not a size (must be positive, e.g. 512M, 2G)'),
        (0, '"0" is not a size (must be positive, e.g. 512M, 2G)'),
        (-5, '"-5" is not a size (must be positive, e.g. 512M, 2G)'),
        (True, '"True" is not a size (e.g. 512M, 2G)'),
        ("9" * 30 + "P", f'"{"9" * 30}P" is too large (at most 1024P)'),
        (1 << 61, f'"{1 << 61}" is too large (at most 1024P)'),
    ],
)
def test_parse_size_rejects_with_an_example(text: object, message: str) -> None:
    with pytest.raises(ValueError, match=r".*") as caught:
        values.parse_size(text)
    assert str(caught.value) == message


@pytest.mark.parametrize(
    ("size", "text"),
    [(2 << 30, "2G"), (3 << 29, "1.5G"), (512 << 20, "512M"), (1024, "1K"), (1025, "1025B"),
     (1000, "1000B"), (3 << 50, "3P"), (123456 * 1024 + 512, "123456.5K")],
)
def test_format_size_is_exact_and_short(size: int, text: str) -> None:
    assert values.format_size(size) == text
    assert values.parse_size(text) == size


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90s", 90), ("30m", 1800), ("8h", 28800), ("7d", 604800), ("1h30m", 5400),
     ("1d2h3m4s", 93784), ("8H", 28800), (45, 45)],
)
def test_parse_duration(text: object, seconds: int) -> None:
    assert values.parse_duration(text) == seconds


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("5x", '"5x" is not a duration (e.g. 90s, 30m, 8h, 7d)'),
        ("", '"" is not a duration (e.g. 90s, 30m, 8h, 7d)'),
        ("30m1h", '"30m1h" is not a duration (e.g. 90s, 30m, 8h, 7d)'),
        ("0s", '"0s" is not a duration (must be positive, e.g. 30m)'),
        (0, '"0" is not a duration (must be positive, e.g. 30m)'),
        (False, '"False" is not a duration (e.g. 90s, 30m, 8h, 7d)'),
        ("36501d", '"36501d" is too long (at most 36500d)'),
        ("9" * 40 + "s", f'"{"9" * 40}s" is too long (at most 36500d)'),
    ],
)
def test_parse_duration_rejects(text: object, message: str) -> None:
    with pytest.raises(ValueError, match=r".*") as caught:
        values.parse_duration(text)
    assert str(caught.value) == message


@pytest.mark.parametrize(("seconds", "text"), [(5400, "1h30m"), (90, "1m30s"), (86400, "1d")])
def test_format_duration_round_trips(seconds: int, text: str) -> None:
    assert values.format_duration(seconds) == text
    assert values.parse_duration(text) == seconds


@pytest.mark.parametrize(("value", "cpus"), [(2, 2.0), (0.5, 0.5), ("1.5", 1.5), (512, 512.0)])
def test_parse_cpus(value: object, cpus: float) -> None:
    assert values.parse_cpus(value) == cpus


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (0, "cpus must be greater than 0 (e.g. 2 or 0.5), not 0"),
        (-1, "cpus must be greater than 0 (e.g. 2 or 0.5), not -1"),
        (513, "cpus must be at most 512, not 513"),
        ("two", '"two" is not a number of CPUs (e.g. 2 or 0.5)'),
        (float("nan"), "cpus must be greater than 0 (e.g. 2 or 0.5), not nan"),
        (float("inf"), "cpus must be greater than 0 (e.g. 2 or 0.5), not inf"),
        (True, "cpus must be a number (e.g. 2 or 0.5)"),
        ([2], "cpus must be a number (e.g. 2 or 0.5)"),
    ],
)
def test_parse_cpus_rejects(value: object, message: str) -> None:
    with pytest.raises(ValueError, match=r".*") as caught:
        values.parse_cpus(value)
    assert str(caught.value) == message


@pytest.mark.parametrize("name", ["web", "a", "0", "pip-cache", "my_box-2", "x" * 63])
def test_valid_names(name: str) -> None:
    assert values.check_name(name) == name


@pytest.mark.parametrize(
    ("name", "suggestion"),
    [("Web", '(e.g. "web")'), ("my box", '(e.g. "my-box")'), ("-x", '(e.g. "x")'),
     ("x" * 64, f'(e.g. "{"x" * 63}")'), ("", None), ("é", None)],
)
def test_invalid_names_suggest_a_valid_spelling(name: str, suggestion: str | None) -> None:
    with pytest.raises(LocatedValueError) as caught:
        values.check_name(name)
    assert str(caught.value) == f'"{name}" is not a valid name'
    assert caught.value.hint is not None
    if suggestion:
        assert caught.value.hint.endswith(suggestion)
    else:
        assert "e.g." not in caught.value.hint


@pytest.mark.parametrize(
    ("pattern", "normalised"),
    [
        ("api.github.com", "api.github.com"),
        ("API.GitHub.com.", "api.github.com"),
        ("*.githubusercontent.com", "*.githubusercontent.com"),
        ("localhost", "localhost"),
        ("10.1.2.3", "10.1.2.3"),
        ("10.1.2.3/8", "10.0.0.0/8"),
        ("::1", "::1"),
        ("2001:db8::/32", "2001:db8::/32"),
        ("xn--bcher-kva.example", "xn--bcher-kva.example"),
    ],
)
def test_host_patterns_are_normalised(pattern: str, normalised: str) -> None:
    assert values.check_host_pattern(pattern) == normalised


BARE_PYPI = 'did you mean "pypi.org"? (a host and maybe a port: no scheme or path)'


@pytest.mark.parametrize(
    ("pattern", "hint"),
    [
        ("https://pypi.org/simple", BARE_PYPI),
        ("https://pypi.org:443/x", 'did you mean "pypi.org:443"? (a host and maybe a port: '
         "no scheme or path)"),
        ("pypi.org:443", None),
        ("bad host!", None),
        ("*", None),
        ("a.*.com", None),
        ("-lead.example", None),
        ("x" * 64 + ".com", None),
        ("", None),
    ],
)
def test_bad_host_patterns_are_refused(pattern: str, hint: str | None) -> None:
    with pytest.raises(LocatedValueError) as caught:
        values.check_host_pattern(pattern)
    assert str(caught.value) == f'"{pattern}" is not a host pattern'
    if hint is not None:
        assert caught.value.hint == hint
    else:
        assert caught.value.hint is not None
        assert caught.value.hint.startswith("use a host name")


@pytest.mark.parametrize(
    ("entry", "normalised"),
    [
        ("api.github.com", "api.github.com"),
        ("API.GitHub.com.:443", "api.github.com:443"),
        ("10.0.0.5:5432", "10.0.0.5:5432"),
        ("[2001:DB8::1]:443", "[2001:db8::1]:443"),
        ("*.Example.com:8443", "*.example.com:8443"),
        ("10.1.2.3/8:5432", "10.0.0.0/8:5432"),
        ("[2001:db8::/32]:443", "[2001:db8::/32]:443"),
        ("2001:db8::1", "2001:db8::1"),  # no brackets: an IPv6 address, not a port
    ],
)
def test_allow_entries_take_an_optional_port(entry: str, normalised: str) -> None:
    assert values.check_allow_entry(entry) == normalised


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("api.github.com:0", "port 0 is out of range"),
        ("api.github.com:65536", "port 65536 is out of range"),
        ("api.github.com:0000443", "out of range"),
        ("[api.github.com]:443", "only an IPv6 address goes in brackets"),
        ("api.github.com:https", "is not a host pattern"),
        ("bad host!:443", "is not a host pattern"),
    ],
)
def test_bad_allow_entries_are_refused(entry: str, message: str) -> None:
    with pytest.raises(LocatedValueError, match=message):
        values.check_allow_entry(entry)
