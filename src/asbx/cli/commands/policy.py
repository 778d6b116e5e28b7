"""`asbx policy check SANDBOX URL`: would this sandbox's network policy let a request through?"""

from __future__ import annotations

import json

import click

from asbx.cli.context import AppContext
from asbx.errors import AsbxError


@click.group()
def policy() -> None:
    """Ask a sandbox's network policy questions."""


@policy.command("check")
@click.argument("sandbox")
@click.argument("target", metavar="URL")
@click.option("--no-resolve", is_flag=True,
              help="Answer from the name alone: do not resolve it or check its addresses.")
@click.option("--json", "as_json", is_flag=True, help="Print the decision as JSON.")
@click.pass_obj
def check(app: AppContext, sandbox: str, target: str, no_resolve: bool, as_json: bool) -> int:
    """Would SANDBOX's egress proxy allow URL (https://host/path, host:port or [v6]:port)?

    Answers from sandboxes.yaml with the proxy's own decision: the entry that allowed it, or
    the reason it is refused, and which secrets the proxy would put into it (never their
    values). Names are resolved as the proxy resolves them unless
    --no-resolve. Exit 0 when allowed, 1 when refused or the name does not resolve.
    """
    from asbx.diagnostics import did_you_mean
    from asbx.network.check import check_network, decision_json, decision_text, secrets_for
    from asbx.network.proxy import system_resolver

    boxes = app.load().spec.sandboxes
    if sandbox not in boxes:
        hint = did_you_mean(sandbox, list(boxes)) or (
            f"declared sandboxes: {', '.join(sorted(boxes))}" if boxes else None)
        raise AsbxError(f'unknown sandbox "{sandbox}"', hint=hint)
    try:
        decision = check_network(boxes[sandbox].network, target,
                                 None if no_resolve else system_resolver)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="URL") from None
    secrets = secrets_for(boxes[sandbox].secrets, target, decision)
    if as_json:
        click.echo(json.dumps(decision_json(sandbox, target, decision, secrets), indent=2))
    else:
        click.echo(decision_text(sandbox, decision, secrets))
    if not decision.allowed:
        raise click.exceptions.Exit(1)
    return 0
