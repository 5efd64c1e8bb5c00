"""Storage: tables, the database handle, repositories (the only place queries live), migrations."""
