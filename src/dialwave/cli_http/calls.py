"""`dialwave calls list --campaign ID`: the attempts of a campaign (GET /v1/calls)."""

from __future__ import annotations

from typing import Annotated

import typer

from dialwave.cli_http.client import DEFAULT_URL
from dialwave.cli_http.common import ApiKey, AsJson, Limit, Url, connect, field, print_listing

calls_app = typer.Typer(help="Calls: one a dial attempt (/v1/calls)", no_args_is_help=True)

COLUMNS = [
    field("id"),
    field("lead_id"),
    field("attempt"),
    field("to_number"),
    field("status"),
    field("outcome"),
    field("duration_seconds"),
    field("started_at"),
]


@calls_app.command("list")
def list_(
    campaign: Annotated[str | None, typer.Option("--campaign", help="the campaign id (cmp_...)")] = None,
    lead: Annotated[str | None, typer.Option("--lead", help="only this lead's calls (lead_...)")] = None,
    outcome: Annotated[str | None, typer.Option("--outcome", help="answered, busy, no_answer, voicemail, ...")] = None,
    url: Url = DEFAULT_URL,
    api_key: ApiKey = None,
    as_json: AsJson = False,
    limit: Limit = 50,
) -> None:
    """The calls (attempts) of a campaign, a lead or an outcome."""
    with connect(url, api_key) as api:
        page = api.listing("/v1/calls", limit, campaign_id=campaign, lead_id=lead, outcome=outcome)
    print_listing(page, COLUMNS, as_json)
