"""`dialwave campaigns ...`: CRUD, the status actions (start, pause, resume, cancel) and `watch`."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from dialwave.cli_http.client import DEFAULT_URL
from dialwave.cli_http.common import ApiKey, AsJson, BodyFile, Url, connect, print_object, read_json
from dialwave.cli_http.resources import CAMPAIGNS, created_line, crud_app, progress_of
from dialwave.cli_http.watch import watch

campaigns_app = crud_app(CAMPAIGNS, "Campaigns (/v1/campaigns): CRUD, start/pause/resume/cancel, watch", update=False)
campaigns_app.command("watch")(watch)


@campaigns_app.command("update")
def update(
    campaign_id: str,
    file: BodyFile,
    if_match: Annotated[
        int | None, typer.Option("--if-match", help="the version you read: a stale write is refused (409)")
    ] = None,
    url: Url = DEFAULT_URL,
    api_key: ApiKey = None,
    as_json: AsJson = False,
) -> None:
    """Change a campaign: the file is a JSON merge-patch (only what changes; null clears).

    What may change depends on the status (docs/api.md, the edit matrix)."""
    body = read_json(file)
    headers = {"If-Match": str(if_match)} if if_match is not None else None
    with connect(url, api_key) as api:
        obj = api.patch(f"{CAMPAIGNS.path}/{campaign_id}", body, headers=headers)
    print_object(obj, as_json, created_line("campaign", obj, "updated"))


def status_line(campaign: dict[str, Any]) -> str:
    line = f"{campaign['id']}: {campaign['status']} ({progress_of(campaign)} done)"
    if campaign.get("waiting_reason"):
        line += f"; waiting: {campaign['waiting_reason']}"
    return line


def _action(name: str, doc: str) -> None:
    def act(campaign_id: str, url: Url = DEFAULT_URL, api_key: ApiKey = None, as_json: AsJson = False) -> None:
        with connect(url, api_key) as api:
            obj = api.post(f"{CAMPAIGNS.path}/{campaign_id}/{name}")
        print_object(obj, as_json, status_line(obj))

    act.__doc__ = doc
    campaigns_app.command(name)(act)


_action("start", "Start a draft campaign (active, or scheduled when schedule.start_at is ahead).")
_action("pause", "Pause an active or scheduled campaign: no new attempt starts.")
_action("resume", "Resume a paused campaign.")
_action("cancel", "Cancel a campaign: its waiting leads become cancelled.")
