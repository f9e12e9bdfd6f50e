"""pymssql failures as the applier's errors: retry (reconnect and replay) or stop.

Which failures are retried is `server_errors.is_retriable`, the same rule the runner's other
SQL Server steps use.

A Relation that no longer fits its table is schema drift: the SQL Server target never follows
source DDL by itself, so any added, dropped, renamed or retyped column stops the pipeline.
"""

from __future__ import annotations

from collections.abc import Mapping

from cdc_tui.domain.spec import TableRef
from cdc_tui.engines.embedded.apply_errors import (
    ApplyError,
    PermanentApplyError,
    RetriableApplyError,
    SchemaDriftError,
)
from cdc_tui.engines.embedded.messages import Relation
from cdc_tui.targets.mssql.dml import MssqlTable
from cdc_tui.targets.mssql.identifiers import quote_qualified
from cdc_tui.targets.mssql.server_errors import error_reason, is_retriable


def classify(
    exc: BaseException,
    *,
    table: TableRef | None,
    key: str | None,
    lsn: int | None,
    retriable: bool | None = None,
) -> ApplyError:
    """The applier error for a pymssql failure; the caller raises it `from exc`."""
    reason = error_reason(exc)
    if retriable if retriable is not None else is_retriable(exc):
        return RetriableApplyError(reason, lsn)
    return PermanentApplyError(table, key, lsn, reason)


# -- schema drift -------------------------------------------------------------------------------

_NO_DDL = "the SQL Server target does not follow source DDL"


def check_relation(
    table: MssqlTable,
    rel: Relation,
    previous: Mapping[str, tuple[int, int]] | None,
    lsn: int | None,
) -> None:
    """Raise SchemaDriftError when a Relation no longer fits `table`.

    Columns map by name, so only the set of names matters, not their order. A type differs when
    the Relation's oid is not the one `table` records, or when oid or modifier changed since the
    last Relation accepted for this table (`previous`, by column name).
    """
    target = quote_qualified(table.target.schema, table.target.name)
    names = [c.name for c in rel.columns]
    known = [c.name for c in table.columns]
    if set(names) != set(known) or len(names) != len(known):
        raise SchemaDriftError(table.source, _describe_names(known, names, target), lsn)
    by_name = {c.name: c for c in table.columns}
    for col in rel.columns:
        expected = by_name[col.name].source_type_oid
        before = previous.get(col.name) if previous is not None else None
        if expected is not None and col.type_oid != expected:
            change = f"from type oid {expected} to type oid {col.type_oid}"
        elif before is not None and before != (col.type_oid, col.type_modifier):
            change = (
                f"from type oid {before[0]} with modifier {before[1]} to type oid "
                f"{col.type_oid} with modifier {col.type_modifier}"
            )
        else:
            continue
        raise SchemaDriftError(
            table.source,
            f"column {_show(col.name)} changed type on the source ({change}); {_NO_DDL}: "
            f"change the column on {target} or resync the table",
            lsn,
        )
    _check_key(table, rel, lsn)


def _show(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _columns(names: list[str]) -> str:
    listed = ", ".join(_show(n) for n in names)
    return f"column {listed}" if len(names) == 1 else f"columns {listed}"


def _describe_names(known: list[str], names: list[str], target: str) -> str:
    added = [n for n in names if n not in known]
    dropped = [n for n in known if n not in names]
    them = "it" if len(added) + len(dropped) == 1 else "them"
    if len(added) == 1 and len(dropped) == 1 and names.index(added[0]) == known.index(dropped[0]):
        return (
            f"column {_show(dropped[0])} renamed to {_show(added[0])} on the source; {_NO_DDL}: "
            f"rename it on {target} or resync the table"
        )
    if added and not dropped:
        return (
            f"{_columns(added)} added on the source; {_NO_DDL}: add {them} to {target} or "
            "resync the table"
        )
    if dropped and not added:
        return (
            f"{_columns(dropped)} dropped on the source; {_NO_DDL}: drop {them} from {target} or "
            "resync the table"
        )
    return (
        f"{_columns(added)} added and {_columns(dropped)} dropped on the source; {_NO_DDL}: "
        f"change {target} to match or resync the table"
    )


def _check_key(table: MssqlTable, rel: Relation, lsn: int | None) -> None:
    if rel.replica_identity == "f":
        return  # FULL sends whole old rows: the target key (or every column) finds the row
    flagged = [c.name for c in rel.columns if c.is_key]
    if set(flagged) == set(table.key):
        return
    source_key = f"({', '.join(_show(n) for n in flagged)})" if flagged else "nothing"
    target_key = f"({', '.join(_show(n) for n in table.key)})" if table.key else "no key"
    raise SchemaDriftError(
        table.source,
        f"the source identifies rows by {source_key} and the SQL Server target has "
        f"{target_key}; {_NO_DDL}: change the target key or resync the table",
        lsn,
    )
