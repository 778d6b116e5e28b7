"""`asbx completion bash|zsh|fish`: print the shell completion script (click's)."""

from __future__ import annotations

import click

INSTALL = {
    "bash": 'eval "$(asbx completion bash)"   # in ~/.bashrc',
    "zsh": 'eval "$(asbx completion zsh)"    # in ~/.zshrc, after compinit',
    "fish": "asbx completion fish > ~/.config/fish/completions/asbx.fish",
}


@click.command()
@click.argument("shell", type=click.Choice(sorted(INSTALL)))
@click.pass_context
def completion(ctx: click.Context, shell: str) -> int:
    """Print the completion script for SHELL; sandbox names complete from the spec.

    \b
    bash: eval "$(asbx completion bash)"   (in ~/.bashrc)
    zsh:  eval "$(asbx completion zsh)"    (in ~/.zshrc, after compinit)
    fish: asbx completion fish > ~/.config/fish/completions/asbx.fish
    """
    from click.shell_completion import get_completion_class

    cls = get_completion_class(shell)
    assert cls is not None  # the Choice above only offers shells click supports
    root = ctx.find_root().command
    script = cls(root, {}, "asbx", "_ASBX_COMPLETE").source()
    click.echo(script)
    return 0
