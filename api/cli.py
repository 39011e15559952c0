"""The `quanyi` command line: serve, init, keys, replay, supplier-sim.

Every command names the store it works on (one line on standard error). Only `serve`,
`init` and commands run with `quanyi --init ...` create a store or a secret key: anything
else run against an empty data directory or schema (say, from another folder) stops with one
line instead of making a new store whose keys the server would reject. A bad setting is one
line and exit status 2, never a traceback.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import typer

from engine.errors import QuanyiError, StoreMissing, ValidationFailed
from engine.settings import Settings

app = typer.Typer(help="Quanyi: event-sourced card-code transaction engine.",
                  no_args_is_help=True)
keys = typer.Typer(help="API keys.", no_args_is_help=True)
replay = typer.Typer(help="Rebuild and verify projections from the event log.",
                     no_args_is_help=True)
app.add_typer(keys, name="keys")
app.add_typer(replay, name="replay")


class _Asked:
    """What the top-level options asked for; the callback runs before any command."""

    init = False


@app.callback()
def options(init: bool = typer.Option(
        False, "--init", help="create the store and secret key if they are missing")) -> None:
    """Quanyi: event-sourced card-code transaction engine."""
    _Asked.init = init


def _settings() -> Settings:
    """The settings of a CLI command, once its store is known to exist (or --init was given);
    names the store on standard error."""
    from engine.store import store_exists

    create = _Asked.init
    settings = Settings.from_env(create_key=create)
    if not store_exists(settings) and not create:
        raise StoreMissing(f"no store in the {settings.where()}: run `quanyi init` to create "
                           "one there, or point QUANYI_DATA_DIR / QUANYI_DATABASE_URL at the "
                           "existing store")
    typer.echo(f"quanyi: using the {settings.where()}", err=True)
    return settings


def _runtime():
    from runtime import Runtime

    return Runtime.open(_settings())


def build_app():
    """The app over a runtime of its own: the factory each server process calls."""
    from api.app import create_app
    from runtime import Runtime

    return create_app(Runtime.open(Settings.from_env()), manage_runtime=True)


@app.command()
def serve(host: str = "127.0.0.1", port: int = 8000,
          workers: int = typer.Option(1, min=1, max=64, help="server processes")) -> None:
    """Run the API with its projection runner and expiry sweeper."""
    import uvicorn

    from engine.data_dir import private_dir
    from engine.store import store_exists

    # The workers build the app; settings and database are checked here first, so that a
    # bad one is one line from this process rather than a traceback from every worker.
    settings = Settings.from_env()
    store_exists(settings)
    if settings.store == "sqlite":
        private_dir(settings.data_dir)
    shown = f"[{host}]" if ":" in host else host
    typer.echo(f"quanyi: serving http://{shown}:{port} ({workers} worker"
               f"{'s' if workers > 1 else ''}) with the {settings.where()}", err=True)
    uvicorn.run("api.cli:build_app", factory=True, host=host, port=port, workers=workers,
                log_level="warning", access_log=False)


@app.command("supplier-sim")
def supplier_sim(
        host: str = "127.0.0.1", port: int = 8700,
        seed: int = typer.Option(0, help="the same seed and references: the same outcomes"),
        latency_ms: int = typer.Option(0, min=0, help="every answer waits this long"),
        failure_rate: float = typer.Option(0.0, min=0, max=1, help="refused for good"),
        error_rate: float = typer.Option(0.0, min=0, max=1, help="503, not taken"),
        timeout_rate: float = typer.Option(0.0, min=0, max=1,
                                           help="taken, answer held back --hang-seconds"),
        timeout_credits: bool = typer.Option(True, help="whether a timed-out top-up is "
                                             "credited (else it is lost)"),
        hang_seconds: float = typer.Option(30.0, min=0),
        pending_rate: float = typer.Option(0.0, min=0, max=1,
                                           help="answered pending, decided by callback"),
        pending_failure_rate: float = typer.Option(0.0, min=0, max=1,
                                                   help="of pending ones, how many fail"),
        callback_url: str = typer.Option(None, help="where signed callbacks are POSTed"),
        callback_delay_ms: int = typer.Option(200, min=0),
        callback_always: bool = typer.Option(False, help="call back every outcome"),
        duplicate_callbacks: int = typer.Option(0, min=0, help="extra copies of each"),
        out_of_order: bool = typer.Option(False, help="a stale 'pending' after the outcome"),
        api_key: str = typer.Option("sim-api-key", envvar="QUANYI_SIM_API_KEY"),
        callback_secret: str = typer.Option("sim-callback-secret",
                                            envvar="QUANYI_SIM_CALLBACK_SECRET")) -> None:
    """Run a simulated top-up supplier speaking the http-json protocol (docs/suppliers.md)."""
    from supplier_sim.config import SimConfig
    from supplier_sim.server import serve as serve_sim

    config = SimConfig(
        api_key=api_key, callback_secret=callback_secret, callback_url=callback_url,
        seed=seed, latency_ms=latency_ms, error_rate=error_rate, timeout_rate=timeout_rate,
        timeout_credits=timeout_credits, hang_seconds=hang_seconds,
        failure_rate=failure_rate, pending_rate=pending_rate,
        pending_failure_rate=pending_failure_rate, callback_delay_ms=callback_delay_ms,
        callback_always=callback_always, duplicate_callbacks=duplicate_callbacks,
        out_of_order=out_of_order)
    try:
        config.check()
    except ValueError as exc:
        raise ValidationFailed(f"supplier-sim: {exc}") from None
    typer.echo(f"quanyi: supplier simulator on http://{host}:{port} (seed {seed})", err=True)
    serve_sim(config, host, port)


@app.command()
def init() -> None:
    """Create the store and its secret key where the settings point (kept if present)."""
    from engine.store import store_exists
    from runtime import Runtime

    settings = Settings.from_env()
    existed = store_exists(settings)
    Runtime.open(settings).close()
    done = "already holds a store" if existed else "holds a new store"
    typer.echo(f"quanyi: the {settings.where()} {done}", err=True)


@keys.command("create")
def create_key(role: str = typer.Option(..., help="admin, app, merchant, support, finance"),
               name: str = typer.Option(..., help="who holds the key"),
               expires_in_days: int | None = typer.Option(None, help="expire after D days"),
               expires_at: str | None = typer.Option(None, help="expire at (RFC 3339)"),
               merchant_id: str | None = typer.Option(
                   None, help="merchant keys: the merchant it redeems for (default: name)"),
               tenant: str | None = typer.Option(
                   None, help="app keys: the tenant whose orders it shares")) -> None:
    """Create an API key; it is printed once and stored only as a keyed hash."""
    from engine.keys import expiry

    with _keys_command() as runtime:
        issued = runtime.engine.keys.issue(
            role=role, name=name, merchant_id=merchant_id, tenant=tenant,
            expires_at=expiry(in_days=expires_in_days, at=_instant(expires_at)))
    typer.echo(issued.secret)
    typer.echo(f"key id {issued.principal.key_id}, role {role}, name {name}: "
               "store it now, it is not shown again", err=True)


@keys.command("list")
def list_keys() -> None:
    """List every key (never a secret): id, name, role, binding, created, expires, revoked."""
    with _keys_command() as runtime:
        after: int | None = 0
        typer.echo("key_id\tname\trole\tmerchant/tenant\tcreated\texpires\trevoked")
        while after is not None:
            page, after = runtime.engine.keys.listing(after, 500)
            for key in page:
                typer.echo("\t".join(_key_row(key.view())))


@keys.command("revoke")
def revoke_key(key_id: str = typer.Argument(..., help="the key id `keys list` shows")) -> None:
    """Revoke a key: every server refuses it from the next request."""
    with _keys_command() as runtime:
        runtime.engine.keys.revoke(key_id, actor="cli")
    typer.echo(f"key {key_id} revoked")


@contextmanager
def _keys_command() -> Iterator[Any]:
    """A runtime for one keys command; an engine error exits 2 with its detail."""
    runtime = _runtime()
    try:
        yield runtime
    except QuanyiError as exc:
        typer.echo(f"error: {exc.detail}", err=True)
        raise typer.Exit(2) from None
    finally:
        runtime.close()


def _instant(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValidationFailed(f"expires_at {text!r} is not an RFC 3339 time") from None


def _key_row(view: dict[str, Any]) -> list[str]:
    binding = (f"merchant:{view['merchant_id']}" if view["merchant_id"]
               else f"tenant:{view['tenant']}" if view["tenant"] else "-")
    expires = view["expires_at"].isoformat() if view["expires_at"] else "-"
    return [view["key_id"], view["name"], view["role"], binding,
            view["created_at"].isoformat(), expires, "yes" if view["revoked"] else "no"]


@replay.command("rebuild")
def rebuild() -> None:
    """Rebuild every projection aside from the event log and swap it in at once."""
    from replay.progress import progress_reporter
    from replay.rebuild import RebuildFailed
    from replay.rebuild import rebuild as run_rebuild

    try:
        with progress_reporter("rebuild") as progress:
            applied = run_rebuild(_settings(), progress=progress)
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
        verdict = run_verify(_settings(), progress=progress)
    if verdict.outcome is Outcome.COULD_NOT_REBUILD:
        typer.echo(f"verify could not rebuild the projections: {verdict.error}", err=True)
        raise typer.Exit(2)
    if verdict.outcome is Outcome.DIFFER:
        for line in verdict.differences:
            typer.echo(line)
        raise typer.Exit(1)
    typer.echo("projections agree")


def main() -> None:
    try:
        app(prog_name="quanyi")
    except QuanyiError as exc:
        typer.echo(f"quanyi: error: {exc.detail}", err=True)
        sys.exit(2)


if __name__ == "__main__":
    sys.exit(main())
