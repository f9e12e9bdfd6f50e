"""Reading a running `COPY ... TO STDOUT` straight from libpq, in large blocks.

psycopg's `Copy.read()` returns one row per call through a Python generator, which costs about
a microsecond of interpreter time per row; on a loaded two-core host that time is taken from
the database servers. Here each row costs one libpq call and a bytearray append.
"""

from __future__ import annotations

import selectors
from collections.abc import Iterator
from typing import Any

import psycopg
from psycopg import pq
from psycopg.errors import error_from_result

# How long to wait for source data before yielding an empty block, so the caller can see a cancel.
IDLE_YIELD_S = 1.0


def copy_out_blocks(conn: psycopg.Connection[Any], block_bytes: int) -> Iterator[bytearray]:
    """Yield the data of the COPY TO running on `conn`, in blocks of about `block_bytes`.

    Start the COPY with `cursor.copy()` first; this consumes its data and its final result, so
    the `Copy` context then exits cleanly. An empty block means no data arrived for
    `IDLE_YIELD_S`. A server error raises the matching psycopg exception.
    """
    pgconn = conn.pgconn
    get = pgconn.get_copy_data
    block = bytearray()
    with selectors.DefaultSelector() as selector:
        selector.register(pgconn.socket, selectors.EVENT_READ)
        while True:
            nbytes, data = get(1)
            if nbytes > 0:
                block += data
                if len(block) >= block_bytes:
                    yield block
                    block = bytearray()
            elif nbytes == 0:
                if not selector.select(IDLE_YIELD_S):
                    yield bytearray()
                pgconn.consume_input()
            elif nbytes == -1:
                break
            else:
                raise psycopg.OperationalError(_libpq_message(pgconn))
        if block:
            yield block
        _finish(conn, selector)


def _finish(conn: psycopg.Connection[Any], selector: selectors.BaseSelector) -> None:
    """Read the COPY's closing results, raising the first error after draining them all."""
    pgconn = conn.pgconn
    error: psycopg.Error | None = None
    while True:
        while pgconn.is_busy():
            selector.select(IDLE_YIELD_S)
            pgconn.consume_input()
        result = pgconn.get_result()
        if result is None:
            break
        if result.status != pq.ExecStatus.COMMAND_OK and error is None:
            error = error_from_result(result, encoding=conn.info.encoding)
    if error is not None:
        raise error


def _libpq_message(pgconn: pq.abc.PGconn) -> str:
    return pgconn.get_error_message().strip() or "connection to the source lost during COPY"
