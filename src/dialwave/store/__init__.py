"""Storage: `tables` (SQLAlchemy Core), `db` (the database handle: read and write transactions),
`repositories/` (every query, one module per table or noun), Alembic `migrations/`."""
