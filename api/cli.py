"""The `quanyi` command line: serve, init, keys, replay, audit, export, import-events,
supplier-sim.

Every command names the store it works on (one line on standard error). Only `serve`,
`init` and commands run with `quanyi --init ...` create a store or a secret key: anything
else run against an empty data directory or schema (say, from another folder) stops with one
line instead of making a new store whose keys the server would reject. A bad setting is one
line and exit status 2, never a traceback.
"""

from __future__ import annotations

import base64
import binascii
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import typer

from engine.kernel.errors import QuanyiError, StoreMissing, ValidationFailed
from engine.settings import Settings

app = typer.Typer(help="Quanyi: event-sourced card-code transaction engine.",
                  no_args_is_help=True)
keys = typer.Typer(help="API keys.", no_args_is_help=True)
replay = typer.Typer(help="Rebuild and verify projections from the event log.",
                     no_args_is_help=True)
audit = typer.Typer(help="The tamper-evident log, dispute bundles and a code's whole story.",
                    no_args_is_help=True)
app.add_typer(keys, name="keys")
app.add_typer(replay, name="replay")
app.add_typer(audit, name="audit")


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
    from engine.eventstore.store import store_exists

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

    from engine.eventstore.data_dir import private_dir
    from engine.eventstore.store import store_exists

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
    from engine.eventstore.store import store_exists
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
                   None, help="the tenant the key belongs to (any role): it sees only its "
                              "tenant's things")) -> None:
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


@audit.command("code")
def audit_code(code_id: str | None = typer.Argument(None, help="the code's id"),
               code: str | None = typer.Option(
                   None, "--code", help="the code string instead of its id (never printed)"),
               ) -> None:
    """Print a code's whole story: import, reservations, sale, reveals, redemptions,
    rollbacks, refund, void and ledger postings, oldest first."""
    from projections.ledger_reads import LedgerReads
    from replay.story import code_story

    if (code_id is None) == (code is None):
        raise ValidationFailed("give a code id or --code, not both")
    with _keys_command() as runtime:
        wanted = runtime.engine.codes.look_up(code).id if code is not None \
            else _code_id(code_id)
        story = code_story(runtime.store, LedgerReads(runtime.read_db), wanted)
        behind = runtime.runner.lag()
    _print_story(story, behind)


def _code_id(text: str | None) -> UUID:
    try:
        return UUID(str(text))
    except ValueError:
        raise ValidationFailed("a code id is a UUID (use --code for a code string)") from None


def _print_story(story: Any, behind: int) -> None:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    # Piped into a file or grep, rows stay whole rather than wrapped at 80 columns.
    console = Console(width=None if sys.stdout.isatty() else 200)
    table = Table(title=Text(f"code {story.code_id} · sku {story.sku} · {story.status} now"))
    for column in ("when (UTC)", "what", "who", "details"):
        table.add_column(column, overflow="fold")
    for line in story.lines:
        # Text, not markup: a reason or terminal id in brackets is shown as it was given.
        table.add_row(*(Text(cell) for cell in (line.at, line.what, line.actor, line.details)))
    console.print(table)
    if behind:
        typer.echo(f"postings as far as the read model has applied the log ({behind} events "
                   "behind: is `quanyi serve` running?)", err=True)
@app.command("export")
def export(out: Path = typer.Option(..., "--out", help="the JSON Lines file to write")) -> None:
    """Export the whole event log as JSON Lines with a head signed now (secrets stay sealed)."""
    from replay.export import ExportFailed, export_log
    from replay.progress import progress_reporter

    runtime = _runtime()
    try:
        with progress_reporter("export") as progress:
            done = export_log(runtime.store, runtime.audit, out,
                              secret_key=runtime.settings.secret_key, progress=progress)
    except (ExportFailed, OSError) as exc:
        typer.echo(f"export failed, no file was written: {exc}", err=True)
        raise typer.Exit(1) from None
    finally:
        runtime.close()
    typer.echo(f"exported {done.events} events to {out} under a head signed at "
               f"{done.head.signed_at}, root {done.head.root_hash.hex()}")


@app.command("import-events")
def import_events(
        file: Path = typer.Argument(..., exists=True, dir_okay=False, readable=True,
                                    help="a file `quanyi export` wrote"),
        public_key: str | None = typer.Option(
            None, "--public-key", help="the source's public audit key (base64) to check the "
            "file with; without it, the file must be signed by this store's audit key")) -> None:
    """Load an export into an empty store, refusing a file whose chain does not verify; then
    rebuild the projections and the audit tree from it."""
    from replay.event_file import FileRefused
    from replay.import_events import ImportUnfinished, import_and_build
    from replay.progress import progress_reporter
    from replay.rebuild import RebuildFailed
    from runtime import Runtime

    key = _public_key(public_key)
    runtime = Runtime.open(_settings())  # makes the event table of a new store
    try:
        done = import_and_build(runtime, file, public_key=key, reporter=progress_reporter)
    except FileRefused as exc:
        typer.echo(f"import refused, nothing was written: {exc}", err=True)
        raise typer.Exit(1) from None
    except RebuildFailed as exc:
        typer.echo(f"the events were imported but the projections were not rebuilt ({exc}): "
                   "run `quanyi replay rebuild`", err=True)
        raise typer.Exit(1) from None
    except ImportUnfinished as exc:
        typer.echo(f"the events were imported but {exc}", err=True)
        raise typer.Exit(1) from None
    finally:
        runtime.close()
    typer.echo(f"imported {done.events} events under the head signed at "
               f"{done.head.signed_at}, root {done.head.root_hash.hex()}; projections and "
               "the audit tree rebuilt")
    if not done.heads_kept:
        typer.echo("the file is signed by the audit key you named, not this store's: its "
                   "heads are not kept here (the file keeps them); this store signed a head "
                   "of its own over the imported events", err=True)


def _public_key(text: str | None) -> bytes | None:
    if text is None:
        return None
    try:
        key = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        key = b""
    if len(key) != 32:
        raise ValidationFailed("--public-key must be a base64 Ed25519 public key (32 bytes)")
    return key


@audit.command("verify")
def verify_audit() -> None:
    """Walk the whole log against the audit tree and every signed head: exit 0 when every
    event matches, 1 naming the first that does not."""
    from engine import open_store
    from replay.audit_log import AuditLog
    from replay.audit_verify import verify_audit as run_verify
    from replay.progress import progress_reporter

    settings = _settings()
    store = open_store(settings)
    try:
        audit_log = AuditLog.open(settings, store)
    except QuanyiError:
        store.close()
        raise
    try:
        with progress_reporter("audit verify") as progress:
            verdict = run_verify(audit_log, progress)
    finally:
        audit_log.close()
        store.close()
    for line in _audit_lines(verdict):
        typer.echo(line)
    if not verdict.ok:
        raise typer.Exit(1)


def _audit_lines(verdict: Any) -> list[str]:
    reach = (f"the tree covers {verdict.tree_size:,} of the log's {verdict.events:,} events "
             f"(last position {verdict.last_position:,}); {verdict.heads_checked} signed "
             "heads checked")
    if verdict.uncovered:
        reach += f"; {verdict.uncovered:,} events are not covered yet"
    if verdict.unsigned and not verdict.unanchored:
        reach += (f"; events under no signed head yet: {verdict.unsigned:,} (after the first "
                  f"{verdict.anchored:,})")
    lines = [f"TAMPERED: {p}" for p in verdict.head_problems]
    if verdict.mismatch:
        lines.insert(0, f"TAMPERED: {verdict.mismatch.describe()}")
    elif verdict.unanchored and not lines:
        lines.append(f"NOT VERIFIED: no signed head covers any of the log's "
                     f"{verdict.events:,} events, so nothing shows the tree was not rewritten "
                     "with them (a running server signs one within "
                     "QUANYI_AUDIT_HEAD_EVERY_SECONDS once the log grew)")
    return lines + [reach if not verdict.ok else f"audit log verified: {reach}"]


@audit.command("public-key")
def audit_public_key() -> None:
    """Print the audit key's public key (base64 of its 32 raw bytes), for third parties."""
    import base64

    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    key = Ed25519PrivateKey.from_private_bytes(_settings().audit_key)
    typer.echo(base64.b64encode(key.public_key().public_bytes(
        Encoding.Raw, PublicFormat.Raw)).decode())


@audit.command("verify-bundle")
def verify_bundle(file: str = typer.Argument(..., help="the bundle (JSON) to check"),
                  public_key: str | None = typer.Option(
                      None, help="the audit public key you trust (base64); without it the "
                                 "key in the bundle is taken, which proves less")) -> None:
    """Check a dispute bundle offline (no store needed): exit 0 verified, 1 refused with
    the reason."""
    from replay.bundle_check import Refused, check_bundle, load
    from replay.bundle_check import public_key as trusted_key

    try:
        verified = check_bundle(load(file), trusted_key(public_key))
    except Refused as exc:
        typer.echo(f"refused: {exc}")
        raise typer.Exit(1) from None
    if public_key is None:
        typer.echo("quanyi: no --public-key given: the head is checked against the key the "
                   "bundle itself names", err=True)
    typer.echo(f"verified: the {verified.kind} bundle of {verified.subject}")
    for line in verified.lines:
        typer.echo(f"  {line}")


def main() -> None:
    try:
        app(prog_name="quanyi")
    except QuanyiError as exc:
        typer.echo(f"quanyi: error: {exc.detail}", err=True)
        sys.exit(2)


if __name__ == "__main__":
    sys.exit(main())
