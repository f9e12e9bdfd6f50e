"""Turn a run of decoded changes into the few statements that apply them.

Tables that hold nothing but their primary key (no other unique index, foreign key, trigger or
rule on the target) cannot observe each other, so their changes are grouped per table across the
whole batch and each folds per key (see `apply_segments`). A change to any other table, and every
TRUNCATE, is a barrier: everything before it runs first, and that table keeps its exact order.
The result, at every source transaction boundary, is what applying the changes one by one gives.
"""

from __future__ import annotations

from collections.abc import Sequence

from cdc_tui.domain.spec import TableRef
from cdc_tui.engines.embedded.apply_ops import Op, OpKind, Pending
from cdc_tui.engines.embedded.apply_segments import Segment, new_segment
from cdc_tui.engines.embedded.apply_sql import TableShape
from cdc_tui.engines.embedded.messages import Change, Truncate


class Planner:
    """Folds changes into segments as they arrive; `take()` returns the ops and starts over.

    Planning each change as it is decoded, rather than buffering and planning the batch, saves a
    buffered object and a second pass per change on the hot path.
    """

    def __init__(self) -> None:
        self._ops: list[Op] = []
        self._grouped: dict[TableShape, Segment] = {}
        self._strict: Segment | None = None
        self.changes = 0

    def add(self, change: Change, shape: TableShape, lsn: int) -> None:
        """Plan one row change of `shape`'s table.

        Raises PermanentApplyError for a change that cannot be applied (a key missing).
        """
        self.changes += 1
        if shape.strict_order:
            strict = self._strict
            if strict is None or strict.shape is not shape:
                self._close()
                strict = self._strict = new_segment(shape)
            strict.add(change, lsn)
            return
        if self._strict is not None:
            self._strict.close(self._ops)
            self._strict = None
        segment = self._grouped.get(shape)
        if segment is None:
            segment = self._grouped[shape] = new_segment(shape)
        segment.add(change, lsn)

    def add_truncate(self, change: Truncate, targets: tuple[TableRef, ...], lsn: int) -> None:
        """Plan a TRUNCATE of `targets` (the known tables among its relations): a barrier."""
        self.changes += 1
        self._close()
        truncate = (targets, change.cascade, change.restart_identity)
        self._ops.append(Op(OpKind.TRUNCATE, None, [], [lsn], truncate=truncate))

    def take(self) -> list[Op]:
        """The statements for everything added since the last take, in an equivalent order."""
        self._close()
        ops = self._ops
        self.reset()
        return ops

    def reset(self) -> None:
        """Forget everything added (after a failure)."""
        self._ops = []
        self._grouped = {}
        self._strict = None
        self.changes = 0

    def _close(self) -> None:
        """Emit the strict segment and every grouped table, in first-seen order."""
        if self._strict is not None:
            self._strict.close(self._ops)
            self._strict = None
        for segment in self._grouped.values():
            segment.close(self._ops)
        self._grouped.clear()


def plan(pending: Sequence[Pending]) -> list[Op]:
    """The statements that apply `pending`, in an order equivalent to the source's."""
    planner = Planner()
    for item in pending:
        change = item.change
        if isinstance(change, Truncate):
            planner.add_truncate(change, item.truncate_targets, item.lsn)
        elif item.shape is None:
            raise ValueError("a row change needs its table shape")
        else:
            planner.add(change, item.shape, item.lsn)
    return planner.take()
