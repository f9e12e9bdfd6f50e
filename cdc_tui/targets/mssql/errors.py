"""What the SQL Server target path raises about a single value it cannot hold."""

from __future__ import annotations

from cdc_tui.domain.spec import TableRef
from cdc_tui.engines.embedded.apply_errors import PermanentApplyError
from cdc_tui.lsn import lsn_to_str


class ValueRejected(ValueError):
    """A source value SQL Server cannot hold exactly; the caller adds table, key and LSN.

    `reason` is a clause such as "timestamp 10000-01-01 00:00:00 is after 9999-12-31, the last
    day SQL Server holds" and never contains a whole row.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class UnholdableValueError(PermanentApplyError):
    """A change carries a value SQL Server cannot hold: the pipeline stops at that change."""

    default_title = "Value SQL Server cannot hold"

    def __init__(
        self, source: TableRef, target: str, key: str | None, lsn: int, reason: str
    ) -> None:
        super().__init__(source, key, lsn, reason)
        at = f" (key {key})" if key else ""
        self.message = (
            f"A change to {source}{at} from the source transaction at LSN {lsn_to_str(lsn)} "
            f"cannot be written to {target}: {reason}; correct the value on the source, or pick "
            "another numeric policy where one applies, then resync the pipeline."
        )
        self.args = (self.message,)
