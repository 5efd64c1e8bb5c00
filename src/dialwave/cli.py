"""The `dialwave` command: serve, worker, migrate, simulate, quickstart, demo; keys and orgs
(cli_accounts) work on the database too, the API commands (cli_http) through a running server."""

from __future__ import annotations

import asyncio
import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from dialwave import cli_http
from dialwave.cli_accounts import keys, orgs_app
from dialwave.cli_db import create_key, on_database, schema_is_current
from dialwave.cli_http.client import ApiError
from dialwave.errors import DatabaseNotReady, DialwaveError

if TYPE_CHECKING:
    from dialwave.config import Settings

# The database side (config, services, store) is imported by the commands that use it: the API commands
# (cli_http) start without it, in half the time.

app = typer.Typer(help="dialwave: outbound voice campaigns for AI voice agents", no_args_is_help=True)
app.add_typer(keys, name="keys")
app.add_typer(orgs_app, name="orgs")
cli_http.register(app)  # agents, numbers, campaigns, leads, calls, dnc, forecast: through the HTTP API


@app.command()
def migrate() -> None:
    """Bring the database (DIALWAVE_DATABASE_URL) to the latest schema."""
    from dialwave.config import get_settings
    from dialwave.store.migrate import upgrade

    url = get_settings().database_url
    upgrade(url)
    typer.echo(f"database migrated: {url.split('@')[-1]}")


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="interface to listen on")] = "",
    port: Annotated[int, typer.Option(help="TCP port")] = 0,
    time_scale: Annotated[
        float | None, typer.Option(help="simulated carrier only: one real second = N engine seconds (demo)")
    ] = None,
    engine: Annotated[bool, typer.Option(help="run the dispatcher beside the API")] = True,
    workers: Annotated[int, typer.Option(help="API processes on the one port (with --no-engine)")] = 1,
) -> None:
    """Run the API and the dispatcher beside it (or the API alone: --no-engine, in N processes: --workers N)."""
    import uvicorn

    from dialwave.api.http_protocol import NoDelayH11Protocol
    from dialwave.config import get_settings
    from dialwave.logging import configure_logging
    from dialwave.wiring import serve_app

    settings = get_settings()
    if time_scale is not None:
        if time_scale <= 0:
            raise typer.BadParameter("must be positive", param_hint="--time-scale")
        settings = settings.model_copy(update={"time_scale": time_scale})
    run_engine = engine and settings.engine
    if workers < 1:
        raise typer.BadParameter("must be at least 1", param_hint="--workers")
    if workers > 1 and run_engine:
        raise typer.BadParameter(
            "several API processes run without the engine: add --no-engine and run the dialer as `dialwave worker`",
            param_hint="--workers",
        )
    configure_logging(settings.log_level, settings.log_json)
    asyncio.run(on_database(schema_is_current))
    common = {
        "host": host or settings.host,
        "port": port or settings.port,
        "log_level": settings.log_level,
        "access_log": False,  # ours (api/middleware.py) masks phone numbers
        "http": NoDelayH11Protocol,  # TCP_NODELAY with --workers too (api/http_protocol.py)
    }
    if workers > 1:  # each process builds its app from the environment: pass on what the options changed
        os.environ["DIALWAVE_TIME_SCALE"] = str(settings.time_scale)
        uvicorn.run("dialwave.wiring:api_app", factory=True, workers=workers, **common)  # type: ignore[arg-type]
        return
    uvicorn.run(serve_app(settings, run_engine=run_engine), **common)  # type: ignore[arg-type]


@app.command()
def worker(
    time_scale: Annotated[
        float | None, typer.Option(help="simulated carrier only: one real second = N engine seconds (demo)")
    ] = None,
    webhooks: Annotated[bool, typer.Option(help="deliver webhooks from this process too")] = True,
    metrics_port: Annotated[
        int | None, typer.Option(help="serve this worker's Prometheus metrics at http://HOST:PORT/metrics")
    ] = None,
) -> None:
    """Run the dialer alone (no API): one of several workers on a PostgreSQL database. SIGTERM or
    Ctrl-C stops it; its campaigns are then taken over by the other workers."""
    from dialwave.config import get_settings
    from dialwave.logging import configure_logging

    settings = get_settings()
    if time_scale is not None:
        if time_scale <= 0:
            raise typer.BadParameter("must be positive", param_hint="--time-scale")
        settings = settings.model_copy(update={"time_scale": time_scale})
    configure_logging(settings.log_level, settings.log_json)
    asyncio.run(on_database(schema_is_current))
    try:
        asyncio.run(_run_worker(settings, webhooks, metrics_port))
    except DialwaveError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(2) from exc


async def _run_worker(settings: Settings, webhooks: bool, metrics_port: int | None) -> None:
    import signal

    from dialwave.store.db import Database
    from dialwave.wiring import worker_services

    db = Database(settings.database_url)
    services = worker_services(settings, db, webhooks=webhooks, metrics_port=metrics_port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    started = []
    try:
        for service in services:
            await service.start()
            started.append(service)
        typer.echo("worker started", err=True)
        await stop.wait()
    finally:
        for service in reversed(started):
            await service.stop()
        await db.dispose()


@app.command()
def simulate(
    scenario: Annotated[Path, typer.Option(help="scenario JSON (docs/simulate.md)", exists=True, dir_okay=False)],
    out: Annotated[Path, typer.Option(help="directory for calls.jsonl and summary.json")],
) -> None:
    """Run a campaign on the real engine, a virtual clock and the simulated carrier (a forecast)."""
    import gc

    gc.disable()  # a one-shot process: no cyclic collection from its imports to its end (dialwave.simulate)
    from dialwave.logging import configure_logging
    from dialwave.simulate import simulate as run

    configure_logging("warning")
    try:
        summary = run(scenario, out)
    except DialwaveError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(2) from exc
    typer.echo(json.dumps(summary, indent=2))
    # Nor at its exit: the interpreter's teardown runs one last collection over every object still
    # held (every module, and the run's engine, store and app, kept by their cycles), about 2 % of a
    # 5,000-lead simulation. Frozen objects are left out of it; the process ends right after.
    gc.freeze()


@app.command()
def quickstart(org: Annotated[str, typer.Option(help="organization name")] = "demo") -> None:
    """Create a key for ORG and print it with a curl example (used by `make run`)."""
    from dialwave.config import get_settings

    settings = get_settings()
    out = asyncio.run(create_key(org, ["read", "write"], "quickstart"))
    base = f"http://{settings.host}:{settings.port}"
    typer.echo(
        f"""
dialwave is starting on {base}  (database: {settings.database_url})
API key for organization '{org}' (shown once):

    export DIALWAVE_KEY={out["key"]}

Try it:
    curl -s {base}/v1/agents -H "Authorization: Bearer $DIALWAVE_KEY" \\
         -H 'Content-Type: application/json' \\
         -d '{{"name": "Demo agent", "opening_message": "Hi {{{{name}}}}!", "required_variables": ["name"]}}'
    curl -s {base}/v1/campaigns -H "Authorization: Bearer $DIALWAVE_KEY"

Add leads, POST /v1/campaigns/{{id}}/start, and the dispatcher in this server dials them through the
simulated carrier (outcomes drawn from each phone number's "simulated" model); watch
GET /v1/campaigns/{{id}} and GET /v1/calls?campaign_id={{id}}.

API docs: {base}/docs   OpenAPI: {base}/openapi.json
"""
    )


@app.command()
def demo(
    org: Annotated[str, typer.Option(help="organization name")] = "demo",
    leads: Annotated[int, typer.Option(help="leads in a new demo campaign", min=1, max=5000)] = 300,
    time_scale: Annotated[float, typer.Option(help="the time scale `make run` serves at (for the message)")] = 10,
) -> None:
    """Set up the demo once (an agent, three simulated caller numbers, a started campaign of leads where
    calling is legal now) and print how to watch it; used by `make run`."""
    from dialwave.config import get_settings
    from dialwave.services.demo import set_up

    settings = get_settings()
    made = asyncio.run(on_database(lambda db: set_up(db, org, datetime.now(UTC), leads)))
    base = f"http://{settings.host}:{settings.port}"
    what = (
        f"a new demo campaign of {made.leads} leads in {', '.join(made.zones)}"
        if made.created
        else f"the demo campaign from before ({made.leads} leads)"
    )
    typer.echo(
        f"""
dialwave demo: {what}, started; the server dials it through the simulated carrier at
{time_scale:g}x engine time as soon as it is up.

    Dashboard:  {base}/   (sign in with the API key below)
    API key:    {made.key}   (organization '{made.organization}', shown once)
    Campaign:   {made.campaign_id}

Try the CLI in another terminal:
    export DIALWAVE_URL={base} DIALWAVE_API_KEY={made.key}
    .venv/bin/dialwave campaigns watch {made.campaign_id}
    .venv/bin/dialwave forecast {made.campaign_id} --set pacing.max_concurrency=20
    curl -sN {base}/v1/campaigns/{made.campaign_id}/stream -H "Authorization: Bearer $DIALWAVE_API_KEY"

API docs: {base}/docs   OpenAPI: {base}/openapi.json
"""
    )


def main() -> None:
    """The `dialwave` command: an ordinary mistake (no database, not migrated, a bad value) answers one
    line and a hint, exit code 2; DIALWAVE_TRACEBACK=1 shows the traceback instead."""
    try:
        app()
    except Exception as exc:
        if os.environ.get("DIALWAVE_TRACEBACK"):
            raise
        message, hint = explain(exc)
        typer.echo(f"error: {message}", err=True)
        if hint:
            typer.echo(f"hint: {hint}", err=True)
        raise SystemExit(2) from None


def explain(exc: BaseException) -> tuple[str, str | None]:
    """What went wrong, in one line, and what to do about it."""
    text = " ".join(str(getattr(exc, "orig", None) or exc).split())[:300]
    lowered = text.lower()
    if isinstance(exc, ApiError):  # the HTTP commands (cli_http): already one line and a hint
        return exc.message, exc.hint
    if isinstance(exc, DatabaseNotReady):
        return str(exc), "run `dialwave migrate` first"
    if "no such table" in lowered or ("relation" in lowered and "does not exist" in lowered):
        return f"the database has no dialwave tables ({text})", "run `dialwave migrate` first"
    if "database" in lowered and ("does not exist" in lowered or "unable to open" in lowered):
        return f"cannot open the database ({text})", "check DIALWAVE_DATABASE_URL"
    if isinstance(exc, ConnectionError | OSError) or "connect" in lowered:
        return f"cannot reach the database or bind the port ({text})", "check DIALWAVE_DATABASE_URL and --port"
    if isinstance(exc, DialwaveError):
        return exc.message, None
    return f"{type(exc).__name__}: {text}", "run again with DIALWAVE_TRACEBACK=1 to see where it failed"


if __name__ == "__main__":  # pragma: no cover
    main()
