"""docs/sqlserver.md against the code, so the DBA guide and the mapping cannot drift apart.

These stand in for a live SQL Server (none can run here): they check documents, not a server.
"""

from __future__ import annotations

from pathlib import Path

from cdc_tui.targets.mssql.ddl import BATCH_SEPARATOR, position_table_batches
from cdc_tui.targets.mssql.types import MAPPING_TABLE

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "sqlserver.md"


def _section(text: str, title: str) -> str:
    """The body of the `## title` section, up to the next `## ` heading."""
    start = text.index(f"\n## {title}\n") + len(title) + 5
    end = text.find("\n## ", start)
    return text[start:] if end == -1 else text[start:end]


def _first_table(section: str) -> list[tuple[str, ...]]:
    """Rows of the first Markdown table, header and rule dropped, backticks removed."""
    lines = [line.strip() for line in section.splitlines()]
    start = next(i for i, line in enumerate(lines) if line.startswith("|"))
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        cells = line.strip("|").split("|")
        rows.append(tuple(cell.strip().replace("`", "") for cell in cells))
    return rows


def test_type_mapping_table_matches_the_code() -> None:
    rows = _first_table(_section(GUIDE.read_text(encoding="utf-8"), "Type mapping"))
    assert rows == [(r.pg_type, r.sqlserver_type, r.note) for r in MAPPING_TABLE]


def test_type_mapping_header() -> None:
    section = _section(GUIDE.read_text(encoding="utf-8"), "Type mapping")
    header = next(line for line in section.splitlines() if line.startswith("|"))
    assert header == "| PostgreSQL type | SQL Server type | Notes |"


def test_guide_has_the_policy_sections() -> None:
    text = GUIDE.read_text(encoding="utf-8")
    for title in (
        "Numeric policy",
        "NaN, Infinity and out-of-range values",
        "Text key collation",
        "Identity columns",
        "The position table",
    ):
        assert _section(text, title).strip(), title


def test_position_table_block_is_the_generated_script() -> None:
    section = _section(GUIDE.read_text(encoding="utf-8"), "The position table")
    block = section.split("```sql\n", 1)[1].split("```", 1)[0]
    expected = "\n".join(f"{b}\n{BATCH_SEPARATOR}\n" for b in position_table_batches())
    assert block == expected
