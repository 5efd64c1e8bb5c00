"""A throwaway database (dialwave simulate, a campaign's forecast) is made from the metadata, not by the
migrations (store/schema.py): both must make the same schema, table by table."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from dialwave.store.migrate import upgrade
from dialwave.store.schema import create_throwaway_schema


def _schema(path: Path) -> dict[str, Any]:
    """Per table: its columns (name, type, not null, default, primary key), its indexes (columns,
    unique, how made, partial and its condition) and its foreign keys."""
    conn = sqlite3.connect(path)
    try:
        found: dict[str, Any] = {}
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        for table in tables:
            columns = sorted(tuple(r[1:]) for r in conn.execute(f"PRAGMA table_info('{table}')"))
            indexes = set()
            for _, name, unique, origin, partial in conn.execute(f"PRAGMA index_list('{table}')"):
                parts = tuple(r[2] for r in conn.execute(f"PRAGMA index_info('{name}')"))
                sql = conn.execute("SELECT sql FROM sqlite_master WHERE name = ?", (name,)).fetchone()
                where = sql[0].split(" WHERE ", 1)[1] if sql and sql[0] and " WHERE " in sql[0] else None
                named = None if name.startswith("sqlite_autoindex") else name  # SQLite numbers its own
                indexes.add((named, parts, unique, origin, partial, where))
            keys = sorted(tuple(r[2:]) for r in conn.execute(f"PRAGMA foreign_key_list('{table}')"))
            found[table] = (columns, indexes, keys)
        return found
    finally:
        conn.close()


def test_the_throwaway_schema_is_the_migrated_one(tmp_path: Path) -> None:
    upgrade(f"sqlite:///{tmp_path}/migrated.db")
    create_throwaway_schema(f"sqlite:///{tmp_path}/throwaway.db")
    migrated, throwaway = _schema(tmp_path / "migrated.db"), _schema(tmp_path / "throwaway.db")
    assert migrated.pop("alembic_version")
    assert set(throwaway) == set(migrated)
    for table, shape in migrated.items():
        assert throwaway[table] == shape, table
