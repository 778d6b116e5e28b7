"""Options shared by plan, apply and destroy (Terraform's names where they exist)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import click

from asbx.addresses import Address

if TYPE_CHECKING:
    from asbx.plan.model import PlanOptions

F = TypeVar("F", bound=Callable[..., Any])


def parse_addresses(values: tuple[str, ...], option: str) -> frozenset[Address]:
    out = set()
    for value in values:
        try:
            out.add(Address.parse(value))
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint=option) from None
    return frozenset(out)


def plan_options(targets: tuple[str, ...], replace: tuple[str, ...], **flags: bool) -> PlanOptions:
    """PlanOptions from the shared planning flags (addresses parsed, errors as usage errors)."""
    from asbx.plan.model import PlanOptions

    return PlanOptions(
        targets=parse_addresses(targets, "--target"),
        replace=parse_addresses(replace, "--replace"),
        **flags,
    )


def planning_options(func: F) -> F:
    decorators = [
        click.option(
            "--target",
            "targets",
            multiple=True,
            metavar="ADDR",
            help="Only this resource (and what it depends on). Repeatable.",
        ),
        click.option(
            "--replace",
            "replace",
            multiple=True,
            metavar="ADDR",
            help="Force this resource to be replaced. Repeatable.",
        ),
        click.option(
            "--refresh/--no-refresh",
            default=True,
            help="Compare with the live runtime (default) or trust state only.",
        ),
        click.option(
            "--remove-orphans",
            is_flag=True,
            help="Delete objects labelled with this project that spec and state don't know.",
        ),
        click.option(
            "--allow-data-loss",
            is_flag=True,
            help="Allow deleting/replacing volumes, snapshots and workspaces.",
        ),
        click.option("--pull", is_flag=True, help="Pull ref: images again to refresh tags."),
    ]
    for decorator in reversed(decorators):
        func = decorator(func)
    return func
