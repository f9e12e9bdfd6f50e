"""Source databases: catalog reading and preflight (PostgreSQL)."""
