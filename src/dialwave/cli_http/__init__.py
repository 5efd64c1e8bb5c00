"""The `dialwave` commands that talk to a running server over its HTTP API (--url/--api-key, or
DIALWAVE_URL/DIALWAVE_API_KEY): agents, numbers, campaigns, leads, calls, dnc, forecast. The other
commands (serve, migrate, keys, orgs, simulate, quickstart) work on the database directly (dialwave.cli,
dialwave.cli_accounts)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add the API commands to the `dialwave` app."""
    from dialwave.cli_http.calls import calls_app
    from dialwave.cli_http.campaigns import campaigns_app
    from dialwave.cli_http.dnc import dnc_app
    from dialwave.cli_http.forecast import forecast
    from dialwave.cli_http.leads import leads_app
    from dialwave.cli_http.resources import agents_app, numbers_app

    app.add_typer(agents_app, name="agents")
    app.add_typer(numbers_app, name="numbers")
    app.add_typer(campaigns_app, name="campaigns")
    app.add_typer(leads_app, name="leads")
    app.add_typer(calls_app, name="calls")
    app.add_typer(dnc_app, name="dnc")
    app.command("forecast")(forecast)
