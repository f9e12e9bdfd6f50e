"""Names the kafka_connect engine derives from a pipeline: connectors, topics, source tables.

Connector names and the topic prefix carry a generation tag made of the pipeline's creation
time and its generation counter, so a recreated or resynced pipeline never resumes the offsets
of an earlier one (Connect keys offsets by connector name and Debezium by topic prefix).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from cdc_tui.domain.spec import TableRef
from cdc_tui.errors import UsageError

# The schema on the source that holds the tables Debezium needs besides the pipeline's own.
HELPER_SCHEMA = "cdc_tui"
# Debezium's default topic naming replaces every other character with an underscore.
_TOPIC_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")
MAX_TOPIC_LEN = 249


@dataclass(frozen=True)
class ConnectNames:
    """Everything the engine names for one generation of one pipeline."""

    pipeline: str
    tag: str

    @classmethod
    def of(cls, pipeline: str, created_at: datetime, generation: int) -> ConnectNames:
        return cls(pipeline, f"{int(created_at.timestamp()):x}g{generation}")

    @property
    def source_connector(self) -> str:
        return f"cdc-tui.{self.pipeline}.{self.tag}.source"

    @property
    def sink_connector(self) -> str:
        return f"cdc-tui.{self.pipeline}.{self.tag}.sink"

    @property
    def connectors(self) -> tuple[str, str]:
        return (self.source_connector, self.sink_connector)

    @property
    def topic_prefix(self) -> str:
        return f"cdc_tui.{self.pipeline}.{self.tag}"

    def topic(self, table: TableRef) -> str:
        """The topic Debezium writes `table`'s changes to."""
        return _TOPIC_UNSAFE.sub("_", f"{self.topic_prefix}.{table.schema}.{table.name}")


def signal_table(pipeline: str) -> TableRef:
    """The Debezium signal table (incremental snapshots) the pipeline owns on the source."""
    return TableRef(HELPER_SCHEMA, f"{pipeline}_signal")


def heartbeat_table(pipeline: str) -> TableRef:
    """The heartbeat table: Debezium and the runner write it so the slot moves and the runner
    can time a change's way from source to target."""
    return TableRef(HELPER_SCHEMA, f"{pipeline}_heartbeat")


def helper_tables(pipeline: str) -> tuple[TableRef, TableRef]:
    return (signal_table(pipeline), heartbeat_table(pipeline))


def check_tables_nameable(pipeline: str, tables: tuple[TableRef, ...] | list[TableRef]) -> None:
    """Refuse table names Debezium's table filter and the sink's table naming cannot carry."""
    for ref in tables:
        for part in (ref.schema, ref.name):
            if any(ch in part for ch in ',."'):
                raise UsageError(
                    f"Table {ref} of pipeline {pipeline!r} has a ',', '.' or '\"' in its name, "
                    "which Debezium's table list and the JDBC sink's table naming cannot carry; "
                    "use the embedded engine for it or rename the table."
                )
    names = ConnectNames(pipeline, "g0")
    seen: dict[str, TableRef] = {}
    for ref in tables:
        topic = names.topic(ref)
        if len(topic) + 16 > MAX_TOPIC_LEN:
            raise UsageError(
                f"Table {ref} of pipeline {pipeline!r} makes a Kafka topic name longer than "
                f"{MAX_TOPIC_LEN} characters; use a shorter pipeline name or the embedded engine."
            )
        if topic in seen:
            raise UsageError(
                f"Tables {seen[topic]} and {ref} of pipeline {pipeline!r} map to the same Kafka "
                "topic (Debezium replaces characters other than letters, digits, '.', '_' and "
                "'-' with '_'); replicate one of them in another pipeline."
            )
        seen[topic] = ref


def java_regex_literal(text: str) -> str:
    """`text` as a Java regular expression matching exactly it (Debezium's table lists)."""
    return "\\Q" + text.replace("\\E", "\\E\\\\E\\Q") + "\\E"


def table_filter(tables: tuple[TableRef, ...] | list[TableRef]) -> str:
    """Debezium's `table.include.list` for exactly these tables."""
    return ",".join(
        f"{java_regex_literal(t.schema)}\\.{java_regex_literal(t.name)}" for t in tables
    )
