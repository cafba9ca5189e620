"""Alembic migrations: they own the schema on every backend."""
