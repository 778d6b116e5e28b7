"""The setup log: written and read back, bounded per step, and never read through a symlink."""

from __future__ import annotations

from pathlib import Path

from asbx.cli.commands.logs import render_setup_run
from asbx.data.setup_log import (
    MAX_STEP_OUTPUT,
    SetupRun,
    SetupStepRun,
    bounded,
    read_setup_log,
    setup_log_path,
    write_setup_log,
)

STEP = SetupStepRun(1, ("sh", "-c", "make all"), "2026-01-01T00:00:00.000Z",
                    "2026-01-01T00:00:02.500Z", 2, "line one\nline two\n")
RUN = SetupRun("web", "abc123", "2026-01-01T00:00:00.000Z", 3, (STEP,))


def test_a_run_reads_back_as_written(tmp_path: Path) -> None:
    write_setup_log(tmp_path, "proj", RUN)
    assert read_setup_log(tmp_path, "proj", "web") == RUN
    assert setup_log_path(tmp_path, "proj", "web").parent.name == "web"
    assert not list(setup_log_path(tmp_path, "proj", "web").parent.glob(".*tmp"))


def test_output_keeps_only_its_end() -> None:
    text = "x" * MAX_STEP_OUTPUT + "the end\n"
    kept, cut = bounded(text)
    assert cut
    assert len(kept) == MAX_STEP_OUTPUT
    assert kept.endswith("the end\n")
    assert bounded("short") == ("short", False)


def test_a_missing_symlinked_or_broken_log_reads_as_none(tmp_path: Path) -> None:
    assert read_setup_log(tmp_path, "proj", "web") is None
    write_setup_log(tmp_path, "proj", RUN)
    path = setup_log_path(tmp_path, "proj", "web")
    path.rename(tmp_path / "elsewhere.json")
    path.symlink_to(tmp_path / "elsewhere.json")
    assert read_setup_log(tmp_path, "proj", "web") is None
    path.unlink()
    path.write_text("{not json", encoding="utf-8")
    assert read_setup_log(tmp_path, "proj", "web") is None


def test_rendered_run_gives_each_step_its_exit_code_duration_and_output() -> None:
    assert render_setup_run(RUN).splitlines() == [
        "setup of web started 2026-01-01T00:00:00.000Z (container abc123): 1 of 3 steps ran",
        "step 1/3: sh -c 'make all'  (FAILED, exit 2, 2.5s)",
        "  line one",
        "  line two",
    ]


def test_a_string_step_is_rendered_as_the_line_in_the_spec() -> None:
    step = SetupStepRun(1, ("/bin/sh", "-c", "make all | tee log"), "2026-01-01T00:00:00.000Z",
                        "2026-01-01T00:00:01.000Z", 0, "")
    run = SetupRun("web", "abc123", "2026-01-01T00:00:00.000Z", 1, (step,))
    assert render_setup_run(run).splitlines()[1] == "step 1/1: make all | tee log  (ok, 1.0s)"
