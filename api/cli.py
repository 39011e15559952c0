"""The `quanyi` command line: serve, keys, replay."""

from __future__ import annotations

import sys

import typer

from engine.errors import QuanyiError
from engine.settings import Settings

app = typer.Typer(help="Quanyi: event-sourced card-code transaction engine.",
                  no_args_is_help=True)
keys = typer.Typer(help="API keys.", no_args_is_help=True)
replay = typer.Typer(help="Rebuild and verify projections from the event log.",
                     no_args_is_help=True)
app.add_typer(keys, name="keys")
app.add_typer(replay, name="replay")


def _runtime():
    from api.runtime import Runtime

    return Runtime.open(Settings.from_env())


def build_app():
    """The app over a runtime of its own: the factory each server process calls."""
    from api.app import create_app

    return create_app(_runtime(), manage_runtime=True)


@app.command()
def serve(host: str = "127.0.0.1", port: int = 8000,
          workers: int = typer.Option(1, min=1, max=64, help="server processes")) -> None:
    """Run the API with its projection runner and expiry sweeper."""
    import uvicorn

    uvicorn.run("api.cli:build_app", factory=True, host=host, port=port, workers=workers,
                log_level="warning", access_log=False)


@keys.command("create")
def create_key(role: str = typer.Option(..., help="admin, app, merchant, support, finance"),
               name: str = typer.Option(..., help="who holds the key")) -> None:
    """Create an API key; it is printed once and stored only as a keyed hash."""
    runtime = _runtime()
    try:
        issued = runtime.engine.keys.issue(role=role, name=name)
    except QuanyiError as exc:
        typer.echo(f"error: {exc.detail}", err=True)
        raise typer.Exit(2) from None
    finally:
        runtime.close()
    typer.echo(issued.secret)
    typer.echo(f"key id {issued.principal.key_id}, role {role}, name {name}: "
               "store it now, it is not shown again", err=True)


@replay.command("rebuild")
def rebuild() -> None:
    """Rebuild every projection aside from the event log and swap it in at once."""
    from replay.progress import progress_reporter
    from replay.rebuild import RebuildFailed
    from replay.rebuild import rebuild as run_rebuild

    try:
        with progress_reporter("rebuild") as progress:
            applied = run_rebuild(Settings.from_env(), progress=progress)
    except RebuildFailed as exc:
        typer.echo(f"rebuild failed, the live projections are untouched: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"rebuilt projections from {applied} events")


@replay.command("verify")
def verify() -> None:
    """Rebuild every projection aside and compare it with the live one: exit 0 when they
    agree, 1 when they differ, 2 when the rebuild could not be completed."""
    from replay.progress import progress_reporter
    from replay.verify import Outcome
    from replay.verify import verify as run_verify

    with progress_reporter("verify") as progress:
        verdict = run_verify(Settings.from_env(), progress=progress)
    if verdict.outcome is Outcome.COULD_NOT_REBUILD:
        typer.echo(f"verify could not rebuild the projections: {verdict.error}", err=True)
        raise typer.Exit(2)
    if verdict.outcome is Outcome.DIFFER:
        for line in verdict.differences:
            typer.echo(line)
        raise typer.Exit(1)
    typer.echo("projections agree")


def main() -> None:
    app(prog_name="quanyi")


if __name__ == "__main__":
    sys.exit(main())
