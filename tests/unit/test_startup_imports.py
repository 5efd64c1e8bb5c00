"""Start-up cost: the hosted platforms' SDKs (Vapi, Telnyx, Retell: about 6 s of imports together on
this machine) load when their carrier is first used, not when a server, a worker or the CLI starts."""

import subprocess
import sys

HEAVY_SDKS = ("vapi", "telnyx", "retell")


def test_starting_the_api_and_the_engine_imports_none_of_the_hosted_sdks() -> None:
    code = (
        "import sys, dialwave.api.app, dialwave.wiring, dialwave.cli; "
        f"print(','.join(m for m in {HEAVY_SDKS!r} if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert out.stdout.strip() == "", f"imported at start-up: {out.stdout.strip()}"


# What only a server that dials or delivers loads (each carrier's SDK when its carrier is made, aiohttp
# with a webhook transport, Alembic to migrate or check the schema, asyncpg with PostgreSQL, the
# dashboard's templates): `dialwave simulate` runs none of it, and these were a third of its start-up.
SERVER_ONLY = ("twilio", "livekit", "google.protobuf", "aiohttp", "alembic", "asyncpg", "jinja2", "dialwave.web")


def test_a_simulation_imports_nothing_only_a_server_runs() -> None:
    code = (
        f"import sys, dialwave.cli, dialwave.simulate; print(','.join(m for m in {SERVER_ONLY!r} if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert out.stdout.strip() == "", f"imported by dialwave simulate: {out.stdout.strip()}"
