"""Interpolation, ported from compose-spec/compose-go's template tests.

Source: github.com/compose-spec/compose-go `template/template_test.go` at commit
efea3ec07dadd6792105978301f4bff97a613825 (TestEscaped .. TestPrecedence). The mapping is the
Go tests' `defaults`: FOO=first, BAR="" (set but empty). asbx words its errors its own way
("required variable X is missing: reason", "invalid interpolation ..."): the cases check the
variable and reason, not Go's error text.
"""

from __future__ import annotations

import pytest

from asbx.spec.interpolation import InterpolationError, interpolate

DEFAULTS = {"FOO": "first", "BAR": ""}


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("$${foo}", "${foo}"),
        ("foo", "foo"),
        # TestUnescaped: a `$` that starts no variable is text
        ("a $ string", "a $ string"), ("^REGEX$", "^REGEX$"), ("$}", "$}"), ("$", "$"),
        ("$FOO-bar", "first-bar"),
        ("This ${missing} var", "This  var"), ("This ${BAR} var", "This  var"),
        ("This $FOO var", "This first var"), ("This ${FOO} var", "This first var"),
        ("ok ${missing:-def}", "ok def"), ("ok ${missing-def}", "ok def"),
        ("ok ${BAR:-def}", "ok def"), ("ok ${FOO:-def}", "ok first"), ("ok ${BAR-def}", "ok "),
        ("ok ${UNSET_VAR:+presence_value}", "ok "), ("ok ${UNSET_VAR+presence_value}", "ok "),
        ("ok ${FOO:+presence_value}", "ok presence_value"),
        ("ok ${FOO+presence_value}", "ok presence_value"),
        ("ok ${BAR+presence_value}", "ok presence_value"), ("ok ${BAR:+presence_value}", "ok "),
        ("ok ${BAR:-/non:-alphanumeric}", "ok /non:-alphanumeric"),
        # TestInterpolationExternalInterference
        ("-ok ${BAR:-defaultValue}", "-ok defaultValue"),
        ("+ok ${UNSET:-${BAR-defaultValue}}", "+ok "), ("-ok ${FOO:-defaultValue}", "-ok first"),
        (":-ok ${UNSET-defaultValue}", ":-ok defaultValue"), (":-ok ${BAR-defaultValue}", ":-ok "),
        (":?ok ${BAR-defaultValue}", ":?ok "), (":?ok ${BAR:-defaultValue}", ":?ok defaultValue"),
        (":+ok ${BAR:-defaultValue}", ":+ok defaultValue"), ("+ok ${BAR-defaultValue}", "+ok "),
        ("?ok ${BAR:-defaultValue}", "?ok defaultValue"),
        # TestDefaultsWithNestedExpansion
        ("ok ${UNSET_VAR-$FOO}", "ok first"), ("ok ${UNSET_VAR-${FOO}}", "ok first"),
        ("ok ${UNSET_VAR-${FOO} ${FOO}}", "ok first first"), ("ok ${BAR:-$FOO}", "ok first"),
        ("ok ${BAR:-${FOO}}", "ok first"), ("ok ${BAR:-${FOO} ${FOO}}", "ok first first"),
        ("ok ${BAR+$FOO}", "ok first"), ("ok ${BAR+$FOO ${FOO:+second}}", "ok first second"),
        # TestDefaultsForMandatoryVariables
        ("ok ${FOO:?err}", "ok first"), ("ok ${FOO?err}", "ok first"), ("ok ${BAR?err}", "ok "),
        # TestPrecedence
        ("${UNSET_VAR-myerror?msg}", "myerror?msg"), ("${FOO?bar-baz}", "first"),
        ("${BAR:-default_value_for_empty_var}", "default_value_for_empty_var"),
        ("${UNSET_VAR-default_value_for_unset_var}", "default_value_for_unset_var"),
    ],
)
def test_substitute(template: str, expected: str) -> None:
    assert interpolate(template, DEFAULTS) == expected


@pytest.mark.parametrize("template", ["${", "${}", "${ }", "${ foo}", "${foo }", "${foo!}"])
def test_invalid(template: str) -> None:
    with pytest.raises(InterpolationError, match="invalid interpolation"):
        interpolate(template, DEFAULTS)


@pytest.mark.parametrize(
    ("template", "variable", "reason"),
    [
        ("not ok ${UNSET_VAR:?Mandatory Variable Unset}", "UNSET_VAR", "Mandatory Variable Unset"),
        ("not ok ${BAR:?Mandatory Variable Empty}", "BAR", "Mandatory Variable Empty"),
        ("not ok ${UNSET_VAR:?}", "UNSET_VAR", ""),
        ("not ok ${UNSET_VAR?Mandatory Variable Unset}", "UNSET_VAR", "Mandatory Variable Unset"),
        ("not ok ${UNSET_VAR?}", "UNSET_VAR", ""),
        ("not ok ${UNSET_VAR:?Mandatory Variable ${FOO}}", "UNSET_VAR", "Mandatory Variable first"),
        ("not ok ${UNSET_VAR?Mandatory Variable ${FOO}}", "UNSET_VAR", "Mandatory Variable first"),
        ("${UNSET_VAR?bar-baz}", "UNSET_VAR", "bar-baz"),
    ],
)
def test_mandatory_variable_errors(template: str, variable: str, reason: str) -> None:
    with pytest.raises(InterpolationError) as caught:
        interpolate(template, DEFAULTS)
    message = str(caught.value)
    assert message.startswith(f"required variable {variable} is missing: ")
    assert message.endswith(f": {reason}" if reason else ": it must be set")
