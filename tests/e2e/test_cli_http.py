"""The API commands of `dialwave` (agents, numbers, campaigns, leads, calls, dnc, forecast), run as a user
runs them, against a live server with the engine (SQLite; the watch also on PostgreSQL)."""

from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from dialwave.store.migrate import upgrade
from tests.conftest import _pg_base, migrated_pg_database
from tests.e2e.server import free_port, live_campaign, new_key, running_server, zone_at_noon

FAST_STREAM = {"stream_poll_seconds": 0.1, "stream_heartbeat_seconds": 0.5}


def user_env(url: str, key: str) -> dict[str, str]:
    """The environment of a user piping the CLI's output: no terminal width set (pytest-xdist's workers
    set COLUMNS, which would cut the tables' ids), no traceback switch."""
    skip = {"COLUMNS", "LINES", "DIALWAVE_TRACEBACK"}
    return {**{k: v for k, v in os.environ.items() if k not in skip}, "DIALWAVE_URL": url, "DIALWAVE_API_KEY": key}


def dialwave(*args: str, url: str, key: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = user_env(url, key)
    return subprocess.run(
        [sys.executable, "-m", "dialwave.cli", *args], env=env, capture_output=True, text=True, timeout=timeout
    )


def ok(*args: str, url: str, key: str) -> str:
    done = dialwave(*args, url=url, key=key)
    assert done.returncode == 0, (args, done.stdout, done.stderr)
    return done.stdout


def one_line_error(done: subprocess.CompletedProcess[str]) -> tuple[str, str]:
    """(the error line, the hint line or ""): exit code 2, no traceback."""
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert "Traceback" not in done.stderr and 1 <= len(lines) <= 2, done.stderr
    assert lines[0].startswith("error: "), lines
    return lines[0], lines[1] if len(lines) > 1 else ""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """(base URL, API key) of one server for the module."""
    url = f"sqlite:///{tmp_path_factory.mktemp('cli_http') / 'cli.db'}"
    upgrade(url)
    key = new_key(url, "acme")
    with running_server(url, engine=True, time_scale=30, **FAST_STREAM) as base:
        yield base, key


def write_json(path: Path, body: Any) -> str:
    path.write_text(json.dumps(body))
    return str(path)


def cli(*args: str, url: str, key: str) -> subprocess.Popen[str]:
    env = user_env(url, key)
    command = [sys.executable, "-m", "dialwave.cli", *args]
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def watch_to_completion(base: str, key: str) -> str:
    """Watch a 12-lead campaign, 2 calls at a time, to its end, with the live display and with --json at
    once; its id. The watchers connect before the campaign starts: on a loaded machine a CLI's start-up
    can take longer than the whole campaign."""
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=30) as http:
        pacing = {"max_concurrency": 2, "attempts_per_second": 5}
        camp = live_campaign(http, 12, answered=1.0, start=False, pacing=pacing)
        display = cli("campaigns", "watch", camp["id"], url=base, key=key)
        as_json = cli("campaigns", "watch", camp["id"], "--json", url=base, key=key)
        assert as_json.stdout is not None
        first = as_json.stdout.readline()  # the draft's first state: the stream is open
        assert json.loads(first)["event"] == "campaign", first
        assert http.post(f"/v1/campaigns/{camp['id']}/start").json()["status"] == "active"
    final, errors = display.communicate(timeout=60)
    assert display.returncode == 0, errors
    assert f"campaign {camp['id']} completed: 12/12 leads done" in final
    assert "completed 12" in final and "ETA" in final and "finished (completed)" in final
    outcomes = re.search(r"calls, last hour +(.*)", final)
    assert outcomes and sum(int(n) for n in re.findall(r"\d+", outcomes.group(1))) == 12, final  # answered 9 ...

    lines, errors = as_json.communicate(timeout=60)
    assert as_json.returncode == 0, errors
    events = [json.loads(line) for line in (first + lines).splitlines()]  # one JSON object a line
    states = [e["data"] for e in events if e["event"] == "campaign"]
    assert states[-1]["status"] == "completed" and states[-1]["counts"]["completed"] == 12
    done = [s["counts"]["completed"] for s in states]
    assert done == sorted(done) and len(set(done)) >= 3, done  # seen progressing
    assert all(s["live"]["in_flight"] <= 2 for s in states)
    return str(camp["id"])


def test_campaigns_watch_follows_a_live_campaign_to_completion_then_calls_list(server: tuple[str, str]) -> None:
    base, key = server
    campaign = watch_to_completion(base, key)
    calls = json.loads(ok("calls", "list", "--campaign", campaign, "--limit", "0", "--json", url=base, key=key))
    assert len(calls["data"]) == 12 and {c["outcome"] for c in calls["data"]} <= {"answered", "short_duration"}
    table = ok("calls", "list", "--campaign", campaign, "--limit", "5", url=base, key=key)
    assert "5 shown (more:" in table and calls["data"][0]["id"] in table


def test_forecast_against_the_server(server: tuple[str, str]) -> None:
    base, key = server
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=30) as http:
        agent = http.post("/v1/agents", json={"name": "f", "opening_message": "Hi"}).json()
        number = http.post("/v1/phone-numbers", json={"number": "+12125550111"}).json()
        body = {
            "name": "to forecast",
            "agent_id": agent["id"],
            "caller_ids": [{"phone_number_id": number["id"]}],
            "schedule": {"windows": [{"start": "00:00", "end": "24:00"}]},  # the leads' legal hours decide
        }
        camp = http.post("/v1/campaigns", json=body).json()
        batch = [{"phone_number": f"+1212555{3000 + i:04d}", "timezone": zone_at_noon()} for i in range(20)]
        assert http.post(f"/v1/campaigns/{camp['id']}/leads", json={"leads": batch}).json()["accepted"] == 20
    out = ok("forecast", camp["id"], "--set", "pacing.max_concurrency=2", url=base, key=key)
    assert "completes at" in out and "attempts" in out and "basis" in out
    assert 'changes: pacing {"max_concurrency":2}' in out  # the server took the --set as a what-if
    answer = json.loads(ok("forecast", camp["id"], "--json", url=base, key=key))
    assert answer["attempts"] >= 20 and answer["basis"]["leads"] == 20 and answer["hourly"]
    bad = dialwave("forecast", camp["id"], "--set", "pacing.max_concurrency=0", url=base, key=key)
    assert one_line_error(bad)[0].startswith("error: 422 pacing.max_concurrency")  # refused as the PATCH would


def test_campaigns_watch_on_postgresql(tmp_path: Path) -> None:
    with migrated_pg_database("dw_cli") as name:
        url = f"{_pg_base()}/{name}"
        key = new_key(url, "acme")
        with running_server(url, engine=True, time_scale=30, **FAST_STREAM) as base:
            watch_to_completion(base, key)


def test_leads_import_prints_the_row_errors_and_writes_them_beside_the_file(
    server: tuple[str, str], tmp_path: Path
) -> None:
    base, key = server
    agent_body = {"name": "Booker", "opening_message": "Hi {{name}}", "required_variables": ["name"]}
    agent = json.loads(
        ok("agents", "create", "--json", "-f", write_json(tmp_path / "a.json", agent_body), url=base, key=key)
    )
    camp_body = {"name": "import", "agent_id": agent["id"]}
    camp = json.loads(
        ok("campaigns", "create", "--json", "-f", write_json(tmp_path / "c.json", camp_body), url=base, key=key)
    )
    zone = zone_at_noon()
    rows = [f"+1212555{2000 + i:04d},Person {i},{zone}" for i in range(8)]
    rows[2] = f"+1234,Bad,{zone}"  # data row 3
    rows[5] = f"+12125559999,,{zone}"  # data row 6: no name
    rows.append(rows[0])  # a duplicate
    leads = tmp_path / "leads.csv"
    leads.write_text("phone_number,name,timezone\n" + "\n".join(rows) + "\n")

    out = ok("leads", "import", str(leads), "--campaign", camp["id"], url=base, key=key)
    assert "9 rows: 6 accepted, 2 rejected, 1 duplicates, 0 on a do-not-call list" in out
    assert "Row 3: invalid phone number '+1234'" in out and "Row 6: missing required variable 'name'" in out
    written = tmp_path / "leads-errors.csv"
    assert f"errors written to {written}" in out
    with written.open(newline="") as f:
        assert list(csv.DictReader(f)) == [
            {"row": "3", "error": "invalid phone number '+1234'"},
            {"row": "6", "error": "missing required variable 'name'"},
        ]

    again = json.loads(ok("leads", "import", str(leads), "--campaign", camp["id"], "--json", url=base, key=key))
    assert again["accepted"] == 0 and again["duplicates"] == 7 and again["rejected"] == 2
    shown = json.loads(ok("campaigns", "show", camp["id"], "--json", url=base, key=key))
    assert shown["counts"]["total"] == 6

    missing = one_line_error(dialwave("leads", "import", str(leads), "--campaign", "cmp_nope", url=base, key=key))
    assert "404" in missing[0] and "cmp_nope" in missing[0]


def test_agents_numbers_and_campaigns_round_trip_and_errors_say_one_line(
    server: tuple[str, str], tmp_path: Path
) -> None:
    base, key = server
    agent = json.loads(
        ok("agents", "create", "-f", write_json(tmp_path / "a.json", {"name": "Rex"}), "--json", url=base, key=key)
    )
    assert agent["id"] in ok("agents", "list", url=base, key=key)
    patch = write_json(tmp_path / "p.json", {"name": "Rex 2"})
    assert f"updated agent {agent['id']} (version 2)" in ok(
        "agents", "update", agent["id"], "-f", patch, url=base, key=key
    )
    assert json.loads(ok("agents", "show", agent["id"], "--json", url=base, key=key))["name"] == "Rex 2"

    number_body = {"number": "+14155550177", "friendly_name": "Support"}
    created = ok("numbers", "create", "-f", write_json(tmp_path / "n.json", number_body), url=base, key=key)
    assert created.startswith("created phone number pn_")
    listed = json.loads(ok("numbers", "list", "--number", "+1 (415) 555-0177", "--json", url=base, key=key))
    [number] = listed["data"]
    assert number["friendly_name"] == "Support"

    bad = {"name": "x", "schedule": {"windows": [{"start": "25:00", "end": "12:00"}]}}
    error, _ = one_line_error(
        dialwave("campaigns", "create", "-f", write_json(tmp_path / "bad.json", bad), url=base, key=key)
    )
    assert error.startswith("error: 422 schedule.windows[0].start: ")

    body = {"name": "crud", "agent_id": agent["id"], "caller_ids": [{"phone_number_id": number["id"]}]}
    camp = json.loads(
        ok("campaigns", "create", "-f", write_json(tmp_path / "c.json", body), "--json", url=base, key=key)
    )
    rename = write_json(tmp_path / "r.json", {"name": "crud 2", "pacing": {"max_concurrency": 7}})
    ok("campaigns", "update", camp["id"], "-f", rename, "--if-match", str(camp["version"]), url=base, key=key)
    stale = dialwave("campaigns", "update", camp["id"], "-f", rename, "--if-match", "1", url=base, key=key)
    assert "409" in one_line_error(stale)[0]
    assert "CAMPAIGN_NOT_READY" in one_line_error(dialwave("campaigns", "start", camp["id"], url=base, key=key))[0]
    table = ok("campaigns", "list", "--status", "draft", url=base, key=key)
    assert camp["id"] in table and "crud 2" in table

    # pagination: --limit follows the cursor across pages
    for i in range(3):
        ok("agents", "create", "-f", write_json(tmp_path / f"a{i}.json", {"name": f"page {i}"}), url=base, key=key)
    assert len(json.loads(ok("agents", "list", "--limit", "2", "--json", url=base, key=key))["data"]) == 2
    everything = json.loads(ok("agents", "list", "--limit", "0", "--json", url=base, key=key))
    assert len(everything["data"]) >= 5 and everything["next_cursor"] is None

    assert f"deleted campaign {camp['id']}" in ok("campaigns", "delete", camp["id"], url=base, key=key)
    ok("numbers", "delete", number["id"], url=base, key=key)
    assert "404" in one_line_error(dialwave("numbers", "show", number["id"], url=base, key=key))[0]

    error, hint = one_line_error(dialwave("agents", "list", url=base, key="dw_live_wrong"))
    assert error.startswith("error: 401") and "DIALWAVE_API_KEY" in hint and "dialwave keys create" in hint
    error, hint = one_line_error(dialwave("agents", "list", url=f"http://127.0.0.1:{free_port()}", key=key))
    assert "cannot reach" in error and "dialwave serve" in hint and "DIALWAVE_URL" in hint
    error, hint = one_line_error(dialwave("agents", "list", url=base, key=""))
    assert error == "error: no API key" and "DIALWAVE_API_KEY" in hint
    error, _ = one_line_error(dialwave("agents", "create", "-f", str(tmp_path / "none.json"), url=base, key=key))
    assert "cannot read" in error


def test_dnc_add_list_remove_and_import(server: tuple[str, str], tmp_path: Path) -> None:
    base, key = server
    assert "added 2, already listed 0" in ok(
        "dnc", "add", "+14155550101", "+14155550102", "--reason", "asked", url=base, key=key
    )
    listed = json.loads(ok("dnc", "list", "--json", url=base, key=key))
    assert {"+14155550101", "+14155550102"} <= {row["phone_number"] for row in listed["data"]}
    assert "+14155550101" in ok("dnc", "list", "--phone-number", "+1 415 555 0101", url=base, key=key)
    assert "removed +14155550101" in ok("dnc", "remove", "+14155550101", url=base, key=key)
    assert "404" in one_line_error(dialwave("dnc", "remove", "+14155550101", url=base, key=key))[0]

    numbers = tmp_path / "dnc.csv"
    numbers.write_text("phone_number,note\n+14155550102,x\n+14155550103,y\nnot-a-number,z\n+14155550104,w\n")
    report = json.loads(ok("dnc", "import", str(numbers), "--reason", "list", "--json", url=base, key=key))
    assert (report["numbers"], report["added"], report["already_listed"], report["rejected"]) == (4, 2, 1, 1)
    assert report["errors"][0].startswith("Row 4: invalid phone number 'not-a-number'")  # line 4 of the file
    assert (tmp_path / "dnc-errors.csv").read_text().splitlines()[1].startswith("4,invalid phone number")
    plain = tmp_path / "plain.txt"
    plain.write_text("+14155550105\n+14155550106\n")
    assert "2 numbers: 2 added, 0 already listed, 0 rejected" in ok("dnc", "import", str(plain), url=base, key=key)


def test_the_database_commands_import_what_they_need(tmp_path: Path) -> None:
    """cli.py imports the database side inside the commands (the API commands start faster without it):
    each database command still finds what it uses."""
    env = {**os.environ, "DIALWAVE_DATABASE_URL": f"sqlite:///{tmp_path / 'db.db'}"}
    for args in (["migrate"], ["demo", "--leads", "3"], ["quickstart", "--org", "q"], ["keys", "list"]):
        done = subprocess.run(
            [sys.executable, "-m", "dialwave.cli", *args], env=env, capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, (args, done.stderr)
    assert "demo" in done.stdout and "q" in done.stdout
