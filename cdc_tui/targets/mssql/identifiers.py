"""SQL Server names and string literals for T-SQL text built without a connection.

Identifiers are bracketed by SQLAlchemy's mssql identifier preparer (`]` doubled, always
bracketed), so every name in generated T-SQL goes through `quote_ident`.
"""

from __future__ import annotations

import re

from sqlalchemy.dialects.mssql.base import MSDialect

from cdc_tui.errors import UsageError

_PLACEHOLDER_LIKE = re.compile(r"%[sd]")

# `sysname` is nvarchar(128): the limit counts UTF-16 code units, not code points.
MAX_IDENTIFIER_LENGTH = 128

# SQLAlchemy leaves the dialect's constructor unannotated.
_PREPARER = MSDialect().identifier_preparer  # type: ignore[no-untyped-call]


def identifier_length(name: str) -> int:
    """The length SQL Server measures for `name`: UTF-16 code units."""
    return len(name.encode("utf-16-le")) // 2


def check_identifier(name: str, what: str) -> None:
    """Refuse a name SQL Server cannot hold; `what` names the object in the sentence."""
    if not name:
        raise UsageError(f"{what} has an empty name, which SQL Server does not accept; rename it.")
    length = identifier_length(name)
    if length > MAX_IDENTIFIER_LENGTH:
        raise UsageError(
            f"{what} {name!r} is {length} characters long and SQL Server allows at most "
            f"{MAX_IDENTIFIER_LENGTH}; rename it or choose a shorter target name."
        )


def check_no_placeholder(name: str, what: str) -> None:
    """pymssql substitutes every `%s` and `%d` in statement text, bracketed names included."""
    if _PLACEHOLDER_LIKE.search(name):
        raise UsageError(
            f"{what} {name!r} contains %s or %d, which pymssql takes for a parameter "
            "placeholder; rename it on the source or leave the table out of the pipeline."
        )


def quote_ident(name: str, what: str = "Name") -> str:
    """`name` as a bracketed T-SQL identifier (`]` doubled), after checking its length."""
    check_identifier(name, what)
    return _PREPARER.quote_identifier(name)


def quote_qualified(schema: str, name: str) -> str:
    """`[schema].[name]`, each part checked and quoted."""
    return quote_ident(schema, "Schema") + "." + quote_ident(name, "Table")


def quote_literal(text: str) -> str:
    """`text` as a Unicode T-SQL string literal: N'...' with every single quote doubled."""
    return "N'" + text.replace("'", "''") + "'"


def collision_key(name: str) -> str:
    """What two names share when SQL Server may take them for one object.

    Identifiers compare with the database collation (case-insensitive by default) and ignore
    trailing spaces, so "ID", "id" and "id " all name the same column there.
    """
    return name.rstrip(" ").casefold()
