"""Turn a buffer of decoded changes into the few statements that apply them.

Tables that hold nothing but their primary key (no other unique index, foreign key, trigger or
rule on the target) cannot observe each other, so their changes are grouped per table across the
whole buffer and each folds per key (see `apply_segments`). A change to any other table, and every
TRUNCATE, is a barrier: everything before it runs first, and that table keeps its exact order.
The result, at every source transaction boundary, is what applying the changes one by one gives.
"""

from __future__ import annotations

from collections.abc import Sequence

from cdc_tui.engines.embedded.apply_ops import Op, OpKind, Pending
from cdc_tui.engines.embedded.apply_segments import Segment, new_segment
from cdc_tui.engines.embedded.apply_sql import TableShape
from cdc_tui.engines.embedded.messages import Truncate


def plan(pending: Sequence[Pending]) -> list[Op]:
    """The statements that apply `pending`, in an order equivalent to the source's."""
    ops: list[Op] = []
    grouped: dict[TableShape, Segment] = {}
    strict: Segment | None = None
    for item in pending:
        change = item.change
        shape = item.shape
        if isinstance(change, Truncate):
            _close(strict, grouped, ops)
            strict = None
            truncate = (item.truncate_targets, change.cascade, change.restart_identity)
            ops.append(Op(OpKind.TRUNCATE, None, [], [item.lsn], truncate=truncate))
            continue
        if shape is None:
            raise ValueError("a row change needs its table shape")
        if shape.strict_order:
            if strict is None or strict.shape is not shape:
                _close(strict, grouped, ops)
                strict = new_segment(shape)
            strict.add(change, item.lsn)
            continue
        if strict is not None:
            strict.close(ops)
            strict = None
        segment = grouped.get(shape)
        if segment is None:
            segment = grouped[shape] = new_segment(shape)
        segment.add(change, item.lsn)
    _close(strict, grouped, ops)
    return ops


def _close(strict: Segment | None, grouped: dict[TableShape, Segment], ops: list[Op]) -> None:
    """Emit the strict segment and every grouped table, in first-seen order."""
    if strict is not None:
        strict.close(ops)
    for segment in grouped.values():
        segment.close(ops)
    grouped.clear()
