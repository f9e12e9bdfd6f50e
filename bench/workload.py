"""Tables, data and change generators shared by the benchmarks."""

from __future__ import annotations

import threading
import time
from typing import Any

from common import BenchEnv, lsn_int

SCHEMA = "bench"


def six_columns(table: str) -> str:
    """~6 columns: bigint PK, int, numeric(12,2), text ~30 chars, timestamptz, small jsonb."""
    return (
        f"CREATE TABLE {SCHEMA}.{table} (id bigint PRIMARY KEY, qty int NOT NULL, "
        "price numeric(12,2) NOT NULL, note text NOT NULL, created_at timestamptz NOT NULL, "
        "attrs jsonb NOT NULL)"
    )


def six_column_rows(first: str, last: str) -> str:
    """A SELECT producing rows `first..last` (SQL expressions) for a six_columns table."""
    return (
        "SELECT g, (g * 7) % 1000, ((g % 100000) / 100.0)::numeric(12,2), "
        "'note ' || left(md5(g::text), 25), "
        "timestamptz '2024-01-01 00:00:00+00' + g * interval '1 second', "
        "jsonb_build_object('k', g % 10, 'tag', 't' || (g % 100), 'ok', g % 2 = 0) "
        f"FROM generate_series({first}, {last}) AS g"
    )


LATENCY_TABLE = (
    f"CREATE TABLE {SCHEMA}.lat (id bigint PRIMARY KEY, written_at timestamptz NOT NULL, "
    "pad text NOT NULL)"
)
MARKER_TABLE = f"CREATE TABLE {SCHEMA}.marker (id int PRIMARY KEY, n bigint NOT NULL)"


def create_schema(env: BenchEnv, conn: Any) -> None:
    conn.execute(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}".encode())


def table_fingerprint(conn: Any, table: str) -> tuple[int, str]:
    """(count, md5 of the rows in key order): equal on both sides means equal tables."""
    row = conn.execute(
        f"SELECT count(*), coalesce(md5(string_agg(t::text, '|' ORDER BY t.id)), '') "
        f"FROM {SCHEMA}.{table} AS t".encode()
    ).fetchone()
    return int(row[0]), str(row[1])


def marker_commit(env: BenchEnv) -> int:
    """Commit one change to the published marker table and return an LSN read *inside* that
    transaction: a replica's applied commit-end position is >= it exactly when this
    transaction (and, commit order, everything before it) has been applied."""
    with env.src() as c, c.transaction():
        c.execute(f"UPDATE {SCHEMA}.marker SET n = n + 1 WHERE id = 1".encode())
        row = c.execute("SELECT pg_current_wal_insert_lsn()::text").fetchone()
    return lsn_int(row[0])


# Mixed backlog: each transaction 6 inserts, 3 updates, 1 delete (60/30/10), all server side.
BACKLOG_DO = """
DO $$
DECLARE
  next_id bigint;
  low_id bigint;
  k int;
  victim bigint;
BEGIN
  SELECT max(id) + 1, min(id) INTO next_id, low_id FROM bench.{table};
  FOR t IN 1..{transactions} LOOP
    FOR k IN 1..6 LOOP
      INSERT INTO bench.{table}
      VALUES (next_id, next_id % 1000, (next_id % 100000) / 100.0,
              'ins ' || left(md5(next_id::text), 26), clock_timestamp(),
              jsonb_build_object('k', next_id % 10, 'tag', 'i'));
      next_id := next_id + 1;
    END LOOP;
    FOR k IN 1..3 LOOP
      -- computed first: random() in the WHERE clause would be evaluated per row scanned
      victim := low_id + 1 + floor(random() * (next_id - low_id - 2))::bigint;
      UPDATE bench.{table}
         SET qty = qty + 1, price = price + 0.01, note = 'upd ' || left(md5(victim::text), 26),
             created_at = clock_timestamp()
       WHERE id = victim;
    END LOOP;
    DELETE FROM bench.{table} WHERE id = low_id;
    low_id := low_id + 1;
    COMMIT;
  END LOOP;
END
$$
"""


def make_backlog(env: BenchEnv, table: str, changes: int) -> int:
    """`changes` mixed changes in transactions of 10 on the source; returns the end LSN mark."""
    transactions = changes // 10
    with env.src() as c:
        # Ids must be contiguous between min and max for every update to hit a row.
        lo, hi, n = c.execute(
            f"SELECT min(id), max(id), count(*) FROM bench.{table}".encode()
        ).fetchone()
        assert hi - lo + 1 == n, "backlog table ids are not contiguous"
        c.execute(BACKLOG_DO.format(table=table, transactions=transactions).encode())
    return marker_commit(env)


class PacedWriter(threading.Thread):
    """Inserts into bench.lat at `rate` rows/s, `batch` rows per transaction, each row carrying
    clock_timestamp(); paced against an absolute schedule so a slow tick is caught up."""

    def __init__(self, env: BenchEnv, rate: int, seconds: float, batch: int, first_id: int):
        super().__init__(daemon=True)
        self.env, self.rate, self.seconds, self.batch = env, rate, seconds, batch
        self.next_id = first_id
        self.error: BaseException | None = None
        self.written = 0
        self.behind_max_s = 0.0

    def run(self) -> None:
        try:
            interval = self.batch / self.rate
            ticks = int(self.seconds / interval)
            with self.env.src() as c:
                t0 = time.monotonic()
                for i in range(ticks):
                    due = t0 + i * interval
                    delay = due - time.monotonic()
                    if delay > 0:
                        time.sleep(delay)
                    else:
                        self.behind_max_s = max(self.behind_max_s, -delay)
                    last = self.next_id + self.batch - 1
                    c.execute(
                        b"INSERT INTO bench.lat SELECT g, clock_timestamp(), 'x' "
                        b"FROM generate_series(%s::bigint, %s::bigint) AS g",
                        (self.next_id, last),
                    )
                    self.next_id = last + 1
                    self.written += self.batch
        except BaseException as exc:  # surfaced after join()
            self.error = exc


class VisibilityPoller(threading.Thread):
    """Polls a target database every `interval` s and records, per id, how long after its
    source `written_at` it became visible (the target's clock_timestamp() at the poll)."""

    QUERY = (
        b"SELECT id, extract(epoch FROM clock_timestamp() - written_at)::float8 * 1000 "
        b"FROM bench.lat WHERE id > %s ORDER BY id"
    )

    def __init__(self, env: BenchEnv, db: str, start_after: int, interval: float = 0.01):
        super().__init__(daemon=True)
        self.env, self.db, self.interval = env, db, interval
        self.last = start_after
        self.latencies_ms: list[float] = []
        self.until_id: int | None = None  # set when the writer is done
        self.deadline: float | None = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            with self.env.tgt(self.db) as c:
                while True:
                    for row_id, ms in c.execute(self.QUERY, (self.last,)).fetchall():
                        self.latencies_ms.append(float(ms))
                        self.last = int(row_id)
                    if self.until_id is not None and self.last >= self.until_id:
                        return
                    if self.deadline is not None and time.monotonic() > self.deadline:
                        return
                    time.sleep(self.interval)
        except BaseException as exc:
            self.error = exc
