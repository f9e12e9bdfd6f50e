"""Alembic revision scripts of the metadata DB."""
