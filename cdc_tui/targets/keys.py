"""Which source columns become the target table's primary key, for every kind of target."""

from __future__ import annotations

from cdc_tui.sources.postgres.catalog import TableDef


def target_key(td: TableDef) -> tuple[tuple[str, ...], str | None]:
    """The source primary key or, failing that, the replica identity index (all NOT NULL);
    with a note when the key is not the source's primary key."""
    if td.primary_key:
        return td.primary_key, None
    if td.replica_identity == "i" and td.replica_identity_index_columns:
        return td.replica_identity_index_columns, (
            "no primary key on the source: the replica identity index columns "
            "become the target's primary key"
        )
    return (), "no primary key on the source and none on the target"
