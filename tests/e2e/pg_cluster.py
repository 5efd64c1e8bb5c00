"""A PostgreSQL cluster of the test's own (Debian's postgresql-common: pg_createcluster), on a free
port, that a test may stop, start and restart without touching the shared server other tests use.
Trust auth, no fsync: a scratch server, dropped at the end."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import IN_CI
from tests.e2e.server import free_port


@dataclass
class PgCluster:
    version: str
    name: str
    port: int

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}"

    def ctl(self, action: str, *more: str) -> None:
        subprocess.run(
            ["pg_ctlcluster", "--skip-systemctl-redirect", self.version, self.name, action, *more],
            check=True,
            capture_output=True,
            timeout=60,
        )

    def stop(self) -> None:
        self.ctl("stop", "-m", "fast")  # sessions are cut, as in a restart or a failover

    def start(self) -> None:
        self.ctl("start")


def _unavailable(message: str) -> None:
    if IN_CI:
        pytest.fail(f"a PostgreSQL cluster of the test's own is required in CI: {message}")
    pytest.skip(f"no PostgreSQL cluster of the test's own: {message}")


@contextmanager
def own_cluster(prefix: str) -> Iterator[PgCluster]:
    """A new, started cluster (`<prefix>_<pid>`); skipped when it cannot be made, a failure in CI."""
    versions = sorted(os.listdir("/etc/postgresql")) if Path("/etc/postgresql").is_dir() else []
    if not versions or shutil.which("pg_createcluster") is None:
        _unavailable("pg_createcluster (postgresql-common) and a PostgreSQL server are not installed")
    cluster = PgCluster(versions[-1], f"{prefix}_{os.getpid()}", free_port())
    settings = ["-o", "fsync=off", "-o", "synchronous_commit=off", "-o", "full_page_writes=off"]
    initdb = ["--", "--auth=trust", "--no-sync"]
    made = subprocess.run(
        ["pg_createcluster", cluster.version, cluster.name, "--port", str(cluster.port), *settings, *initdb],
        capture_output=True,
        text=True,
        timeout=120,
    )
    try:
        if made.returncode != 0:
            _unavailable(f"pg_createcluster failed: {made.stderr.strip()[-500:]}")
        try:
            cluster.start()
        except subprocess.CalledProcessError as exc:
            _unavailable(f"the cluster did not start: {exc.stderr.decode(errors='replace')[-500:]}")
        yield cluster
    finally:
        subprocess.run(
            ["pg_dropcluster", "--stop", cluster.version, cluster.name], capture_output=True, timeout=60, check=False
        )
