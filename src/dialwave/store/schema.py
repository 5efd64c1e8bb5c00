"""A throwaway database's schema (`dialwave simulate`, a campaign's forecast): the tables as the code
has them now, created from the metadata rather than by replaying the migrations. Alembic's import and
its fifteen steps cost about a third of a second of CPU, for a database that lives one run and that no
`dialwave migrate` will ever see. tests/integration/test_throwaway_schema.py checks that both make the
same tables, columns, indexes and foreign keys."""

from __future__ import annotations

import sqlalchemy as sa

from dialwave.store.tables import metadata


def create_throwaway_schema(url: str) -> None:
    """Every table of a new SQLite database at `url` (`sqlite:///...`), without Alembic's version table."""
    engine = sa.create_engine(url)
    try:
        metadata.create_all(engine)
    finally:
        engine.dispose()
