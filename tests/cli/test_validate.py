"""`asbx validate` end to end: exit codes, rendered diagnostics, spec discovery, startup cost."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from asbx.cli.main import run

ROOT = Path(__file__).parents[2]
INVALID = ROOT / "tests" / "fixtures" / "specs" / "invalid"
GOOD = "version: 1\nvolumes:\n  cache: {}\nsandboxes:\n  web:\n    image: busybox\n"
BAD = "version: 1\nsandboxes:\n  web:\n    image: busybox\n    memroy: 1G\n    cpus: -2\n"


def _write(directory: Path, text: str, name: str = "sandboxes.yaml") -> Path:
    path = directory / name
    path.write_text(text, encoding="utf-8")
    return path


def test_a_valid_spec_found_upward_exits_0(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _write(tmp_path, GOOD)
    (tmp_path / "src" / "deep").mkdir(parents=True)
    monkeypatch.chdir(tmp_path / "src" / "deep")
    assert run(["validate"]) == 0
    captured = capsys.readouterr()
    assert captured.out == f"{tmp_path / 'sandboxes.yaml'}: valid (3 resources)\n"
    assert captured.err == ""


def test_an_invalid_spec_exits_1_with_every_problem_rendered(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("NO_COLOR", raising=False)
    _write(tmp_path, BAD)
    assert run(["validate"]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == (
        'error: sandboxes.yaml:5:5: sandboxes.web: unknown key "memroy"\n'
        "    5 |     memroy: 1G\n"
        "      |     ^\n"
        '  hint: did you mean "memory"?\n'
        "error: sandboxes.yaml:6:11: sandboxes.web.cpus: cpus must be greater than 0 "
        "(e.g. 2 or 0.5), not -2\n"
        "    6 |     cpus: -2\n"
        "      |           ^\n"
        "\n"
        "2 errors in the spec.\n"
    )


def test_the_global_file_option_selects_the_spec(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    _write(tmp_path, BAD)
    good = _write(tmp_path, GOOD, "other.yaml")
    assert run(["-f", str(good), "validate"]) == 0
    assert capsys.readouterr().out == "other.yaml: valid (3 resources)\n"


def test_several_files_are_all_checked_and_any_failure_exits_1(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    good, bad = _write(tmp_path, GOOD, "good.yaml"), _write(tmp_path, BAD, "bad.yaml")
    assert run(["validate", str(bad), str(good)]) == 1
    captured = capsys.readouterr()
    assert captured.out == "good.yaml: valid (3 resources)\n"
    assert "bad.yaml:5:5:" in captured.err


def test_a_missing_file_is_one_clear_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    assert run(["validate", "nope.yaml"]) == 1
    assert capsys.readouterr().err == (
        "error: spec file nope.yaml does not exist\n"
        "  hint: pass an existing file with -f, or run `asbx init`\n"
    )


def test_no_spec_anywhere_up_the_tree(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    assert run(["validate"]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"error: no sandboxes.yaml in {tmp_path} or any parent directory\n")


def test_warnings_are_shown_but_do_not_fail(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    _write(tmp_path, GOOD + "  x-old:\n    image: busybox\n")
    assert run(["validate"]) == 0
    captured = capsys.readouterr()
    assert captured.out == "sandboxes.yaml: valid (3 resources)\n"
    assert captured.err.startswith('warning: sandboxes.yaml:7:3: sandboxes: "x-old" is ignored')


def test_the_closing_line_counts_errors_and_warnings_apart(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    _write(tmp_path, "version: 1\nsandboxes:\n  x-old:\n    image: busybox\n"
                     "  web:\n    image: busybox\n    cpus: -2\n")
    assert run(["validate"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("warning: ")
    assert err.endswith("\n1 error, 1 warning in the spec.\n")


@pytest.mark.parametrize(
    "fixture", ["binary-file", "invalid-utf8", "billion-laughs", "non-mapping-root", "empty-file"]
)
def test_hostile_input_gets_a_message_never_a_traceback(
    fixture: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(INVALID)
    assert run(["validate", f"{fixture}.yaml"]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"error: {fixture}.yaml:")
    assert "Traceback" not in err
    assert err.endswith("\n1 error in the spec.\n")


def test_the_console_script_exits_1_on_an_invalid_spec(tmp_path: Path) -> None:
    _write(tmp_path, BAD)
    result = subprocess.run(
        [sys.executable, "-m", "asbx", "validate"], cwd=tmp_path, capture_output=True,
        text=True, timeout=60, check=False,
    )
    assert result.returncode == 1
    assert "2 errors in the spec." in result.stderr
    assert "Traceback" not in result.stderr


def test_version_does_not_import_the_heavy_modules() -> None:
    probe = (
        "import sys\n"
        "from asbx.cli.main import run\n"
        "code = run(['--version'])\n"
        "names = ('pydantic', 'yaml', 'rich', 'jsonschema')\n"
        "heavy = sorted(m for m in names if m in sys.modules)\n"
        "print(code, heavy)\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                            timeout=60, check=True)
    assert result.stdout.splitlines()[-1] == "0 []"
    assert result.stdout.startswith("asbx, version ")


EXAMPLES = sorted(ROOT.glob("examples/*/sandboxes.yaml"))


def test_validate_takes_file_options_like_the_acceptance_command(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`asbx validate -f examples/*/sandboxes.yaml`: the shell gives one -f, the rest as FILES."""
    monkeypatch.chdir(ROOT)
    names = [str(path.relative_to(ROOT)) for path in EXAMPLES]
    assert len(names) >= 5
    assert run(["validate", "-f", *names]) == 0
    captured = capsys.readouterr()
    assert [line.split(": valid (")[0] for line in captured.out.splitlines()] == names
    assert captured.err == ""


def test_validate_file_options_repeat_and_merge_with_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    good, bad = _write(tmp_path, GOOD, "good.yaml"), _write(tmp_path, BAD, "bad.yaml")
    other = _write(tmp_path, GOOD, "other.yaml")
    assert run(["validate", "--file", str(good), "-f", str(bad), str(other)]) == 1
    captured = capsys.readouterr()
    assert captured.out == "good.yaml: valid (3 resources)\nother.yaml: valid (3 resources)\n"
    assert captured.err.startswith('error: bad.yaml:5:5: sandboxes.web: unknown key "memroy"\n')
    assert captured.err.endswith("\n2 errors in the spec.\n")


def test_a_missing_file_among_several_does_not_stop_the_others(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    _write(tmp_path, GOOD, "good.yaml")
    assert run(["validate", "-f", "nope.yaml", "good.yaml"]) == 1
    captured = capsys.readouterr()
    assert captured.out == "good.yaml: valid (3 resources)\n"
    assert captured.err.startswith("error: spec file nope.yaml does not exist\n")


def test_a_directory_as_the_spec_means_the_sandboxes_yaml_in_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "proj").mkdir()
    _write(tmp_path / "proj", GOOD)
    monkeypatch.chdir(tmp_path)
    assert run(["-f", "proj", "validate"]) == 0
    assert run(["validate", "-f", "proj"]) == 0
    assert capsys.readouterr().out == "proj/sandboxes.yaml: valid (3 resources)\n" * 2


def test_a_directory_without_a_spec_is_named_as_a_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "empty").mkdir()
    monkeypatch.chdir(tmp_path)
    expected = (
        "error: empty is a directory with no sandboxes.yaml or sandboxes.yml in it\n"
        "  hint: pass the spec file itself with -f, or run `asbx init` in that directory\n"
    )
    assert run(["-f", "empty", "validate"]) == 1
    assert capsys.readouterr().err == expected
    assert run(["validate", "empty"]) == 1
    assert capsys.readouterr().err == expected
    assert run(["-f", "empty", "config"]) == 1
    assert capsys.readouterr().err == expected


def test_every_command_that_loads_the_spec_warns_once_about_an_unset_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ASBX_TEST_UNSET_TOKEN", raising=False)
    _write(tmp_path, GOOD + '    env: { TOKEN: "${ASBX_TEST_UNSET_TOKEN}" }\n')
    for command in (["validate"], ["config", "--json"]):
        assert run(command) == 0
        err = capsys.readouterr().err
        assert err.count('the "ASBX_TEST_UNSET_TOKEN" variable is not set') == 1, command
        assert "sandboxes.yaml:7:19: sandboxes.web.env.TOKEN" in err
