"""`asbx render kubernetes`: the project as validated agent-sandbox manifests (offline)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import click

from asbx.cli.context import AppContext


@click.group()
def render() -> None:
    """Render the project for another platform (nothing is applied)."""


@render.command()
@click.option("-o", "--output", type=click.Path(path_type=Path),
              help="Write one file per object here (default: one YAML stream on stdout).")
@click.option("--namespace", help="Namespace set on every object (default: none: kubectl's).")
@click.option("--registry", help="Registry that holds the images built from Dockerfiles.")
@click.option("--proxy-image", help="Image of the asbx egress proxy (default: in --registry).")
@click.option("--created-at", type=click.DateTime(["%Y-%m-%dT%H:%M:%SZ"]),
              help="UTC time max_lifetime counts from (default: now), e.g. 2026-01-01T00:00:00Z.")
@click.pass_obj
def kubernetes(app: AppContext, output: Path | None, namespace: str | None,
               registry: str | None, proxy_image: str | None,
               created_at: datetime | None) -> int:
    """Render sandboxes.yaml as Kubernetes manifests for kubernetes-sigs/agent-sandbox."""
    from asbx.render.kubernetes import output as out
    from asbx.render.kubernetes.model import RenderOptions
    from asbx.workflow import render_kubernetes

    when = (created_at.replace(tzinfo=UTC) if created_at is not None
            else datetime.now(UTC).replace(microsecond=0))
    options = RenderOptions(app.effective_project_name(), when, namespace, registry, proxy_image)
    rendered = render_kubernetes(app.load(), options)
    for warning in rendered.warnings:
        click.echo(warning.line(), err=True)
    for need in rendered.secrets:
        literals = " ".join(f"--from-literal={key}=..." for key in need.keys)
        click.echo(f"needs Secret {need.name}: kubectl create secret generic {need.name} "
                   f"{literals}", err=True)
    if output is None:
        click.echo(out.stream(rendered.manifests), nl=False)
    else:
        written = out.write_dir(output, rendered.manifests)
        click.echo(f"wrote {len(written)} manifests to {output}", err=True)
    return 0
