"""Target databases: DDL, type mapping, preflight (PostgreSQL, SQL Server)."""
