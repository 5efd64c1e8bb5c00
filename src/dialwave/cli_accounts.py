"""`dialwave keys` and `dialwave orgs`: API keys and organization settings, on the database directly."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from typing import Annotated

import typer

from dialwave.cli_db import create_key, done, on_database

keys = typer.Typer(help="API keys", no_args_is_help=True)
orgs_app = typer.Typer(help="Organizations", no_args_is_help=True)
NO_ORG = "an organization is created with its first key: `dialwave keys create --org NAME`"


@keys.command("create")
def keys_create(
    org: Annotated[str, typer.Option(help="organization name (created if new)")],
    scope: Annotated[list[str] | None, typer.Option(help="read and/or write (default both)")] = None,
    name: Annotated[str | None, typer.Option(help="a label for the key")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON object")] = False,
) -> None:
    """Create an API key. The key is shown once; only its hash is stored."""
    try:
        out = asyncio.run(create_key(org, scope or ["read", "write"], name))
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    if as_json:
        typer.echo(json.dumps(out))
    else:
        typer.echo(f"{out['key']}\n(organization {out['organization_id']}, key id {out['key_id']}; shown once)")


@keys.command("list")
def keys_list(org: Annotated[str | None, typer.Option(help="only this organization")] = None) -> None:
    """List keys (prefix, scopes, revoked or not); never the keys themselves."""
    from dialwave.services import auth

    for row in asyncio.run(on_database(lambda db: auth.list_keys(db, org))):
        state = f"revoked {row['revoked_at']}" if row["revoked_at"] else "active"
        typer.echo(f"{row['id']}  {row['prefix']}…  {row['organization']}  {','.join(row['scopes'])}  {state}")  # type: ignore[arg-type]


@keys.command("revoke")
def keys_revoke(key_id: str) -> None:
    """Revoke a key by its id (key_...); it stops working at once."""
    from dialwave.services import auth

    done(
        lambda db: auth.revoke_key(db, key_id, datetime.now(UTC)),
        f"no active key {key_id}",
        "`dialwave keys list` shows the keys and their ids",
    )
    typer.echo(f"revoked {key_id}")


@orgs_app.command("twilio")
def orgs_twilio(
    org: Annotated[str, typer.Option(help="organization name")],
    account_sid: Annotated[str | None, typer.Option(help="AC... (omit with --clear)")] = None,
    auth_token: Annotated[
        str | None, typer.Option(envvar="DIALWAVE_TWILIO_AUTH_TOKEN", help="or set DIALWAVE_TWILIO_AUTH_TOKEN")
    ] = None,
    clear: Annotated[bool, typer.Option(help="remove the organization's Twilio credentials")] = False,
) -> None:
    """Organization-wide Twilio credentials, for its Twilio numbers that carry none of their own."""
    from dialwave.domain.resources import TwilioSettings
    from dialwave.services import orgs as org_service

    twilio: dict[str, str] | None = None
    if not clear:
        if not account_sid or not auth_token:
            raise typer.BadParameter("give --account-sid and --auth-token (or --clear)", param_hint="--account-sid")
        try:
            TwilioSettings(account_sid=account_sid, auth_token=auth_token)
        except ValueError as exc:
            raise typer.BadParameter("must be AC followed by 32 hex digits", param_hint="--account-sid") from exc
        twilio = {"account_sid": account_sid, "auth_token": auth_token}

    done(lambda db: org_service.set_twilio(db, org, twilio), f"no organization named {org}", NO_ORG)
    typer.echo(f"{org}: Twilio credentials {'removed' if clear else 'set for account ' + str(account_sid)}")


@orgs_app.command("limit")
def orgs_limit(
    org: Annotated[str, typer.Option(help="organization name")],
    max_concurrency: Annotated[int, typer.Option(help="calls in flight across all its campaigns; 0 = no cap")],
) -> None:
    """Cap an organization's calls in flight across all of its campaigns."""
    from dialwave.services import orgs as org_service

    if max_concurrency < 0:
        raise typer.BadParameter("must be >= 0", param_hint="--max-concurrency")

    done(
        lambda db: org_service.set_max_concurrency(db, org, max_concurrency or None),
        f"no organization named {org}",
        NO_ORG,
    )
    typer.echo(
        f"{org}: max_concurrency {max_concurrency or 'unlimited'} (the running dispatcher applies it within 1 s)"
    )


@orgs_app.command("rate")
def orgs_rate(
    org: Annotated[str, typer.Option(help="organization name")],
    per_second: Annotated[
        float | None, typer.Option(help="requests a second per API key, bursts of twice that; 0 = no limit")
    ] = None,
    default: Annotated[bool, typer.Option(help="use the server's DIALWAVE_RATE_LIMIT_PER_SECOND again")] = False,
) -> None:
    """Limit how many API requests a second each of an organization's keys may make (429 beyond)."""
    from dialwave.services import orgs as org_service

    if default == (per_second is not None):
        raise typer.BadParameter("give --per-second N or --default", param_hint="--per-second")
    if per_second is not None and not 0 <= per_second <= 1_000_000:
        raise typer.BadParameter("must be between 0 and 1000000", param_hint="--per-second")

    done(lambda db: org_service.set_rate_limit(db, org, per_second), f"no organization named {org}", NO_ORG)
    said = "the server's default" if per_second is None else f"{per_second:g}/s" if per_second else "no limit"
    typer.echo(f"{org}: API rate limit {said} per key (running servers apply it within 10 s)")
