"""A results database as an older vdmbench left it: the first `version` migrations applied."""

from __future__ import annotations

from pathlib import Path

import duckdb

from vdmbench.store.schema import MIGRATIONS


def old_schema_db(path: Path, version: int) -> duckdb.DuckDBPyConnection:
    """Create `path` at schema `version`; the open connection is returned so a test can add rows
    (close it before opening the file with Store)."""
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE schema_version (version INTEGER)")
    for stmts in MIGRATIONS[:version]:
        for stmt in stmts:
            con.execute(stmt)
    con.execute("INSERT INTO schema_version VALUES (?)", [version])
    return con
