"""The `dialwave` command, as a user runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from tests.e2e.server import running_server


def dialwave(*args: str, db: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DIALWAVE_DATABASE_URL": f"sqlite:///{db}"}
    return subprocess.run(
        [sys.executable, "-m", "dialwave.cli", *args], env=env, capture_output=True, text=True, timeout=60, check=True
    )


def test_migrate_then_keys_create_json_then_use_it(tmp_path: Path) -> None:
    db = tmp_path / "cli.db"
    assert "migrated" in dialwave("migrate", db=db).stdout
    out = json.loads(dialwave("keys", "create", "--org", "acme", "--json", db=db).stdout)
    assert out["key"].startswith("dw_live_") and len(out["key"]) >= 8 + 32
    assert out["organization_id"].startswith("org_")
    listed = dialwave("keys", "list", db=db).stdout
    assert out["key_id"] in listed and out["key"] not in listed  # only the prefix is ever shown
    with running_server(f"sqlite:///{db}") as base:
        headers = {"Authorization": f"Bearer {out['key']}"}
        assert httpx.get(f"{base}/v1/campaigns", headers=headers).status_code == 200
        dialwave("keys", "revoke", out["key_id"], db=db)
        assert httpx.get(f"{base}/v1/campaigns", headers=headers).status_code == 401


def test_keys_create_with_scope_read_makes_a_read_only_key(tmp_path: Path) -> None:
    db = tmp_path / "cli.db"
    dialwave("migrate", db=db)
    out = json.loads(dialwave("keys", "create", "--org", "acme", "--scope", "read", "--json", db=db).stdout)
    assert out["scopes"] == ["read"]


def test_orgs_limit_sets_and_clears_the_organization_cap(tmp_path: Path) -> None:
    db = tmp_path / "cli.db"
    dialwave("migrate", db=db)
    dialwave("keys", "create", "--org", "acme", db=db)
    assert "max_concurrency 25" in dialwave("orgs", "limit", "--org", "acme", "--max-concurrency", "25", db=db).stdout
    assert "unlimited" in dialwave("orgs", "limit", "--org", "acme", "--max-concurrency", "0", db=db).stdout
    env = {**os.environ, "DIALWAVE_DATABASE_URL": f"sqlite:///{db}"}
    missing = subprocess.run(
        [sys.executable, "-m", "dialwave.cli", "orgs", "limit", "--org", "nobody", "--max-concurrency", "3"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert missing.returncode == 2 and "no organization named nobody" in missing.stderr


def test_orgs_rate_sets_and_clears_the_organization_rate_limit(tmp_path: Path) -> None:
    db = tmp_path / "cli.db"
    dialwave("migrate", db=db)
    dialwave("keys", "create", "--org", "acme", db=db)
    assert (
        "API rate limit 20/s per key" in dialwave("orgs", "rate", "--org", "acme", "--per-second", "20", db=db).stdout
    )
    assert "no limit" in dialwave("orgs", "rate", "--org", "acme", "--per-second", "0", db=db).stdout
    assert "server's default" in dialwave("orgs", "rate", "--org", "acme", "--default", db=db).stdout
    missing = dialwave_fails("orgs", "rate", "--org", "nobody", "--per-second", "3", url=f"sqlite:///{db}")
    assert missing.returncode == 2 and "no organization named nobody" in missing.stderr


def test_orgs_twilio_sets_and_clears_the_organization_credentials(tmp_path: Path) -> None:
    db = tmp_path / "cli.db"
    dialwave("migrate", db=db)
    dialwave("keys", "create", "--org", "acme", db=db)
    sid = "AC" + "a" * 32
    out = dialwave("orgs", "twilio", "--org", "acme", "--account-sid", sid, "--auth-token", "tok", db=db).stdout
    assert f"set for account {sid}" in out and "tok" not in out
    assert "removed" in dialwave("orgs", "twilio", "--org", "acme", "--clear", db=db).stdout
    env = {**os.environ, "DIALWAVE_DATABASE_URL": f"sqlite:///{db}"}
    bad = subprocess.run(
        [
            sys.executable,
            "-m",
            "dialwave.cli",
            "orgs",
            "twilio",
            "--org",
            "acme",
            "--account-sid",
            "nope",
            "--auth-token",
            "t",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode != 0 and "AC followed by 32 hex digits" in bad.stderr


def dialwave_fails(*args: str, url: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DIALWAVE_DATABASE_URL": url}
    env.pop("DIALWAVE_TRACEBACK", None)
    return subprocess.run(
        [sys.executable, "-m", "dialwave.cli", *args], env=env, capture_output=True, text=True, timeout=60
    )


def test_ordinary_mistakes_answer_one_line_and_a_hint_with_exit_code_2(tmp_path: Path) -> None:
    fresh = f"sqlite:///{tmp_path / 'never-migrated.db'}"
    migrated = tmp_path / "migrated.db"
    dialwave("migrate", db=migrated)
    cases = [
        (("keys", "create", "--org", "acme"), fresh, "dialwave migrate"),
        (("keys", "list"), fresh, "dialwave migrate"),
        (("serve", "--port", "1"), fresh, "dialwave migrate"),
        (("orgs", "limit", "--org", "nobody", "--max-concurrency", "3"), f"sqlite:///{migrated}", "keys create"),
        (("keys", "revoke", "key_nope"), f"sqlite:///{migrated}", "keys list"),
        (("keys", "list"), "postgresql://postgres@127.0.0.1:5432/dialwave_no_such_db", "DIALWAVE_DATABASE_URL"),
    ]
    with ThreadPoolExecutor(max_workers=3) as pool:  # independent processes: side by side
        runs = list(pool.map(lambda case: dialwave_fails(*case[0], url=case[1]), cases))
    for (args, _, hint), done in zip(cases, runs, strict=True):
        lines = done.stderr.strip().splitlines()
        assert done.returncode == 2, (args, done.stderr)
        assert "Traceback" not in done.stderr and len(lines) == 2, (args, done.stderr)
        assert lines[0].startswith("error: ") and lines[1].startswith("hint: ") and hint in lines[1], (args, lines)
