"""HTTP API: thin routes, pydantic schemas, one error handler."""
