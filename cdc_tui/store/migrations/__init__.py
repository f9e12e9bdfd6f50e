"""Alembic migrations of the metadata DB (a package so it ships with cdc-tui)."""
