"""`dialwave agents|numbers|campaigns list|show|create|update|delete`: the same five commands for each
resource of the API, made by `crud_app`."""

# No `from __future__ import annotations`: the commands' annotations use the factory's locals, so they
# must be evaluated where they are written.
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Any

import typer

from dialwave.cli_http.client import DEFAULT_URL
from dialwave.cli_http.common import (
    ApiKey,
    AsJson,
    BodyFile,
    Column,
    Limit,
    Url,
    connect,
    field,
    print_listing,
    print_object,
    read_json,
)


@dataclass(frozen=True)
class Resource:
    """`noun` as the CLI says it, its collection `path`, the columns of its table, and the one query filter
    its list takes (`--status`, `--number`), if any."""

    noun: str
    path: str
    columns: Sequence[Column]
    list_filter: str | None = None
    filter_help: str = ""


def created_line(noun: str, obj: dict[str, Any], verb: str = "created") -> str:
    line = f"{verb} {noun} {obj.get('id')}"
    if "version" in obj:
        line += f" (version {obj['version']})"
    secret = (obj.get("webhook") or {}).get("secret") if isinstance(obj.get("webhook"), dict) else None
    if secret:
        line += f"\nwebhook signing secret (shown once): {secret}"
    return line


def crud_app(resource: Resource, help_text: str, update: bool = True) -> typer.Typer:
    """A typer app with list, show, create, delete and (unless `update` is False) update for `resource`."""
    app = typer.Typer(help=help_text, no_args_is_help=True)
    noun, path = resource.noun, resource.path
    list_help = f"List {noun}s, oldest first: a table, or the API's JSON with --json."

    def list_of(url: str, api_key: str | None, as_json: bool, limit: int, **params: str | None) -> None:
        with connect(url, api_key) as api:
            page = api.listing(path, limit, **params)
        print_listing(page, resource.columns, as_json)

    if resource.list_filter:
        name = resource.list_filter

        @app.command("list", help=list_help)
        def list_filtered(
            url: Url = DEFAULT_URL,
            api_key: ApiKey = None,
            as_json: AsJson = False,
            limit: Limit = 50,
            where: Annotated[str | None, typer.Option(f"--{name}", help=resource.filter_help)] = None,
        ) -> None:
            list_of(url, api_key, as_json, limit, **{name: where})

    else:

        @app.command("list", help=list_help)
        def list_(url: Url = DEFAULT_URL, api_key: ApiKey = None, as_json: AsJson = False, limit: Limit = 50) -> None:
            list_of(url, api_key, as_json, limit)

    @app.command("show")
    def show(object_id: str, url: Url = DEFAULT_URL, api_key: ApiKey = None, as_json: AsJson = False) -> None:
        with connect(url, api_key) as api:
            obj = api.get(f"{path}/{object_id}")
        print_object(obj, as_json)

    show.__doc__ = f"Show one {noun} (its JSON)."

    @app.command("create")
    def create(file: BodyFile, url: Url = DEFAULT_URL, api_key: ApiKey = None, as_json: AsJson = False) -> None:
        body = read_json(file)
        with connect(url, api_key) as api:
            obj = api.post(path, body)
        print_object(obj, as_json, created_line(noun, obj))

    create.__doc__ = f"Create a {noun} from a JSON file (the body of POST {path})."

    if update:

        @app.command("update")
        def update_(
            object_id: str, file: BodyFile, url: Url = DEFAULT_URL, api_key: ApiKey = None, as_json: AsJson = False
        ) -> None:
            body = read_json(file)
            with connect(url, api_key) as api:
                obj = api.patch(f"{path}/{object_id}", body)
            print_object(obj, as_json, created_line(noun, obj, "updated"))

        update_.__doc__ = f"Change a {noun}: the file is a JSON merge-patch (only what changes; null clears)."

    @app.command("delete")
    def delete(object_id: str, url: Url = DEFAULT_URL, api_key: ApiKey = None, as_json: AsJson = False) -> None:
        with connect(url, api_key) as api:
            api.delete(f"{path}/{object_id}")
        print_object({"deleted": object_id}, as_json, f"deleted {noun} {object_id}")

    delete.__doc__ = f"Delete a {noun}."
    return app


def progress_of(campaign: dict[str, Any]) -> str:
    counts = campaign.get("counts") or {}
    done = sum(counts.get(k, 0) for k in ("completed", "failed", "skipped", "cancelled"))
    return f"{done}/{counts.get('total', 0)}"


AGENTS = Resource(
    "agent",
    "/v1/agents",
    [field("id"), field("name"), field("status"), field("version"), field("language"), field("updated_at")],
)
NUMBERS = Resource(
    "phone number",
    "/v1/phone-numbers",
    [field("id"), field("number"), field("provider"), field("friendly_name"), field("active"), field("updated_at")],
    list_filter="number",
    filter_help="only this number (any spelling)",
)
CAMPAIGNS = Resource(
    "campaign",
    "/v1/campaigns",
    [
        field("id"),
        field("name"),
        field("status"),
        ("done/total", progress_of),
        ("retry_pending", lambda c: (c.get("counts") or {}).get("retry_pending")),
        field("waiting_reason"),
        field("updated_at"),
    ],
    list_filter="status",
    filter_help="draft, scheduled, active, paused, completed or cancelled",
)

agents_app = crud_app(AGENTS, "Agents (/v1/agents)")
numbers_app = crud_app(NUMBERS, "Caller phone numbers (/v1/phone-numbers)")
