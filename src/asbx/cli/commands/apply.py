"""`asbx apply` and `asbx destroy`: plan, confirm, lock, execute, summarise."""

from __future__ import annotations

import json
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

import click

from asbx.cli.context import AppContext
from asbx.cli.options import parse_addresses, plan_options, planning_options
from asbx.errors import EXIT_INTERRUPTED, ApplyError, AsbxError, PlanStaleError


@click.command()
@click.argument("plan_file", required=False, type=click.Path(path_type=Path, exists=True))
@planning_options
@click.option("-y", "--auto-approve", is_flag=True, help="Don't ask for confirmation.")
@click.option(
    "--parallelism",
    default=8,
    show_default=True,
    type=click.IntRange(1, 64),
    help="How many changes run at once.",
)
@click.option(
    "--lock-timeout",
    default=0.0,
    type=float,
    metavar="SECONDS",
    help="Wait this long for another apply to finish.",
)
@click.option("--locked", is_flag=True, help="Fail unless sandboxes.lock exists and is current.")
@click.pass_obj
def apply(
    app: AppContext,
    plan_file: Path | None,
    targets: tuple[str, ...],
    replace: tuple[str, ...],
    refresh: bool,
    remove_orphans: bool,
    allow_data_loss: bool,
    pull: bool,
    auto_approve: bool,
    parallelism: int,
    lock_timeout: float,
    locked: bool,
) -> int:
    """Make the runtime match sandboxes.yaml (or carry out a saved plan)."""
    options = plan_options(
        targets,
        replace,
        remove_orphans=remove_orphans,
        allow_data_loss=allow_data_loss,
        refresh=refresh,
        pull=pull,
    )
    return _run(
        app, Run("apply", options, plan_file, auto_approve, parallelism, lock_timeout, locked)
    )


@click.command()
@click.option(
    "--target",
    "targets",
    multiple=True,
    metavar="ADDR",
    help="Only this resource (and what depends on it).",
)
@click.option("--volumes", is_flag=True, help="Also delete the project's volumes.")
@click.option("--snapshots", is_flag=True, help="Also delete the project's snapshots.")
@click.option("--workspaces", is_flag=True, help="Also delete the sandboxes' workspaces.")
@click.option("-y", "--auto-approve", is_flag=True, help="Don't ask for confirmation.")
@click.option("--parallelism", default=8, show_default=True, type=click.IntRange(1, 64))
@click.option("--lock-timeout", default=0.0, type=float, metavar="SECONDS")
@click.pass_obj
def destroy(
    app: AppContext,
    targets: tuple[str, ...],
    volumes: bool,
    snapshots: bool,
    workspaces: bool,
    auto_approve: bool,
    parallelism: int,
    lock_timeout: float,
) -> int:
    """Remove the project's sandboxes (volumes, snapshots and workspaces only if asked)."""
    from asbx.plan.model import PlanOptions

    options = PlanOptions(
        targets=parse_addresses(targets, "--target"),
        destroy=True,
        destroy_volumes=volumes,
        destroy_snapshots=snapshots,
        destroy_workspaces=workspaces,
    )
    return _run(app, Run("destroy", options, None, auto_approve, parallelism, lock_timeout))


@dataclass(frozen=True)
class Run:
    """One apply or destroy invocation's choices."""

    command: str
    options: Any
    plan_file: Path | None
    auto_approve: bool
    parallelism: int
    lock_timeout: float
    locked: bool = False


@contextmanager
def _locked_session(app: AppContext, run: Run, refresh: bool) -> Iterator[tuple[Any, Any]]:
    """(session, lock taken over) with the project locked and, with `refresh`, its listings
    started under that lock. The lock is taken with the project name guessed from the spec's
    bytes, so the listings run while the spec loads; a wrong guess (the loaded spec names
    another project) releases it, drops those listings and starts again with the real name."""
    guess = app.guess_project()
    if guess is not None:
        with app.store().locked(guess, run.command, run.lock_timeout) as taken_over:
            if refresh:
                app.observe_ahead(guess)
            session = app.session()
            if session.project == guess:
                yield session, taken_over
                return
        app.forget_early()
    session = app.session()
    with session.store.locked(session.project, run.command, run.lock_timeout) as taken_over:
        if refresh:
            app.observe_ahead(session.project)
        yield session, taken_over


def _run(app: AppContext, run: Run) -> int:
    options = _saved_options(run.plan_file) if run.plan_file else run.options
    with _locked_session(app, run, options.refresh) as (session, taken_over):
        from asbx.render.plan_json import plan_to_json
        from asbx.render.plan_text import render_plan_text
        from asbx.workflow import make_plan

        if taken_over is not None:
            click.echo(
                f"note: took over the lock of pid {taken_over.pid} ({taken_over.command}), "
                "which is no longer running",
                err=True,
            )
        if options.pull and run.plan_file is None:
            options = _pull_first(app, session, options, run)
        planned = make_plan(session, options, locked=run.locked)
        app.forget_early()  # nothing started ahead outlives the observation it was for
        if run.plan_file is not None:
            _check_saved(run.plan_file, planned.plan)
        data = plan_to_json(planned.plan)
        if not planned.plan.pending and not planned.plan.state_only and not planned.plan.errors:
            click.echo(render_plan_text(data, color=app.color))
            if planned.observed.leftovers and planned.plan.options.refresh:
                from asbx.workflow import remove_egress_leftovers

                removed = remove_egress_leftovers(session)
                click.echo(f"Removed {removed} leftover(s) of allowlist networking.", err=True)
            return 0
        from asbx.apply.applier import check_applicable

        check_applicable(planned.plan)
        if run.plan_file is None:  # shown with -y too, so a log says what was done (Terraform)
            click.echo(render_plan_text(data, color=app.color))
            if not run.auto_approve:
                _confirm(run.command, session.project)
        return _execute(app, session, planned, run.parallelism, run.command)


def _pull_first(app: AppContext, session: Any, options: Any, run: Run) -> Any:
    """`apply --pull`: pull the images first (nothing that runs changes), then plan without
    --pull, so sandboxes left on an image the pull replaced are in the plan to approve — as
    `docker compose up --pull always` pulls, then recreates what changed. Returns the options
    for that plan."""
    import dataclasses

    from asbx.spec.model import ImageSpec
    from asbx.workflow import make_plan

    graph = session.loaded.graph
    wanted = graph.closure(options.targets) if options.targets else set(graph.resources)
    pulled = frozenset(a for a in wanted
                       if isinstance(graph.resources[a], ImageSpec) and graph.resources[a].ref)
    if pulled:  # (no targets would mean everything)
        only_pulls = dataclasses.replace(options, targets=pulled, replace=frozenset())
        planned = make_plan(session, only_pulls, locked=run.locked)
        app.forget_early()
        if planned.plan.pending:
            click.echo(f"Pulling {len(planned.plan.pending)} image(s) first (--pull)...",
                       err=True)
            if _execute(app, session, planned, run.parallelism, "pull") != 0:
                raise ApplyError("apply stopped: pulling the images was interrupted")
    return dataclasses.replace(options, pull=False)


def confirm_question(command: str, project: str) -> str:
    """What apply and destroy ask before changing anything (destroy asks as Terraform does)."""
    if command == "destroy":
        return f"Do you really want to destroy the resources of project {project} shown above?"
    return f"Do you want to {command} these changes?"


def _confirm(command: str, project: str) -> None:
    if not sys.stdin.isatty():
        raise AsbxError(
            f"refusing to {command} without confirmation: no terminal to ask on",
            hint="pass -y (or apply a saved plan: asbx plan -o plan.json && asbx apply plan.json)",
        )
    if not click.confirm(f"\n{confirm_question(command, project)}", default=False):
        raise AsbxError(f"{command} cancelled")


def _saved_options(plan_file: Path) -> Any:
    from asbx.render.plan_json import plan_from_json

    try:
        return plan_from_json(json.loads(plan_file.read_text(encoding="utf-8"))).options
    except (ValueError, KeyError, TypeError) as exc:
        raise AsbxError(f"{plan_file} is not an asbx plan file: {exc}") from None


def _check_saved(plan_file: Path, fresh: Any) -> None:
    """A saved plan applies only if its inputs (state, spec, lock, build contexts) and its
    changes all still match; a refusal names what changed."""
    from asbx.plan.staleness import stale_reasons
    from asbx.render.plan_json import plan_from_json, plan_to_json

    saved = plan_from_json(json.loads(plan_file.read_text(encoding="utf-8")))
    differ = plan_to_json(saved)["changes"] != plan_to_json(fresh)["changes"]
    reasons = stale_reasons(saved, fresh, differ)
    if reasons:
        raise PlanStaleError(
            "plan is stale: since it was made, " + "; ".join(reasons),
            hint="run asbx plan again",
        )


def _execute(app: AppContext, session: Any, planned: Any, parallelism: int, command: str) -> int:
    from asbx.apply.executor import Status
    from asbx.plan.model import Action
    from asbx.render.progress import make_progress
    from asbx.workflow import prune_superseded_images, remember_contexts, run_apply

    cancel = threading.Event()
    previous = signal.getsignal(signal.SIGINT)

    def on_interrupt(signum: int, frame: FrameType | None) -> None:
        if cancel.is_set():
            raise KeyboardInterrupt
        cancel.set()
        click.echo("\nInterrupted: finishing running steps (Ctrl-C again to abort)...", err=True)

    signal.signal(signal.SIGINT, on_interrupt)
    progress = make_progress(tty=sys.stderr.isatty(), verbose=app.verbose)
    try:
        result = run_apply(session, planned, parallelism=parallelism, hooks=progress, cancel=cancel)
    finally:
        progress.close()
        signal.signal(signal.SIGINT, previous)
    built = {
        a.name
        for (a, phase), o in result.outcomes.items()
        if a.kind.value == "image" and phase == "create" and o.status is Status.OK
    }
    remember_contexts(session, planned, built)
    _summarise(result, command, Action)
    if not cancel.is_set():
        try:
            for tag in prune_superseded_images(session, result):
                click.echo(f"removed superseded image {tag}")
        except AsbxError as exc:  # the apply itself succeeded: say so, and what is left
            click.echo(f"note: superseded images were not removed: {exc.message}", err=True)
    if cancel.is_set():
        return EXIT_INTERRUPTED
    if result.failed or result.skipped:
        raise ApplyError(
            f"{command} failed: {len(result.failed)} failed, {len(result.skipped)} skipped"
        )
    return 0


def _summarise(result: Any, command: str, action: Any) -> None:
    for outcome in result.failed:
        address, phase = outcome.node
        click.echo(f"\nerror: {address} ({phase}): {outcome.error}", err=True)
        hint = getattr(outcome.error, "hint", None)
        if hint:
            click.echo(f"  hint: {hint}", err=True)
    for address, why in _kept(result, action):
        click.echo(f"kept: {address} was not replaced ({why}); its current object is "
                   "untouched", err=True)
    title = command.capitalize()  # Apply, Destroy, Pull
    changed = result.done(action.UPDATE) + result.done(action.START)
    counts = (
        f"{result.done(action.CREATE)} added, {changed} changed, "
        f"{result.done(action.REPLACE)} replaced, {result.done(action.DELETE)} destroyed"
    )
    status = "complete" if result.ok else "incomplete"
    click.echo(f"\n{title} {status}: {counts}.", err=not result.ok)


def _kept(result: Any, action: Any) -> list[tuple[Any, str]]:
    """Replaced resources whose old object was left in place because the removal never ran,
    each with why."""
    from asbx.apply.executor import Status

    reasons = {Status.SKIPPED: "something its replacement needs failed",
               Status.CANCELLED: "the apply was interrupted first"}
    return [
        (address, reasons[outcome.status])
        for (address, phase), outcome in result.outcomes.items()
        if phase == "destroy"
        and outcome.status in reasons
        and result.changes[address].action is action.REPLACE
    ]
