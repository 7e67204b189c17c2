"""Queries on `samples`, `sample_metrics` and `generations` (the clip cache)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd

from vdmbench.store.engine import Connection, insert_rows
from vdmbench.store.records import SampleRecord, SampleRow, SampleValue, json_notes, json_tags, notes_json, to_json

_SELECT = f"SELECT {', '.join(SampleRow.columns())} FROM samples"
_ORDER = {"sample": "sample_id", "prompt": "prompt_id, seed"}


def record(con: Connection, run_id: str, samples: Sequence[SampleRecord], metrics: dict[str, dict[str, float]],
           generations: Sequence[tuple]) -> None:
    """Cache entries, samples and their values as multi-row INSERT OR REPLACEs; the caller's
    transaction makes them one write. A key repeated in the input: the last one wins."""
    gens = {g[0]: [*g[:4], notes_json(g[4] if len(g) > 4 else None)] for g in generations}
    rows = {s.sample_id: [run_id, s.sample_id, s.prompt_id, s.prompt, s.seed, s.task, s.path, s.sha256,
                          s.gen_seconds, s.status, s.error, s.cache_key, s.preview_path,
                          to_json(list(s.tags)), notes_json(s.notes)] for s in samples}
    values = {(sample_id, metric): [run_id, sample_id, metric, float(value)]
              for sample_id, per_sample in metrics.items() for metric, value in per_sample.items()}
    insert_rows(con, "INSERT OR REPLACE INTO generations VALUES", "(?, ?, ?, ?, now(), ?)", list(gens.values()))
    insert_rows(con, "INSERT OR REPLACE INTO samples VALUES",
                "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, now(), ?)", list(rows.values()))
    insert_rows(con, "INSERT OR REPLACE INTO sample_metrics VALUES", "(?, ?, ?, ?)", list(values.values()))


def done_ids(con: Connection, run_id: str, include_failed: bool) -> set[str]:
    rows = con.execute("SELECT sample_id FROM samples WHERE run_id = ? AND (? OR status = 'ok')",
                       [run_id, include_failed]).fetchall()
    return {r[0] for r in rows}


def count_ok(con: Connection, run_id: str) -> int:
    row = con.execute("SELECT count(*) FROM samples WHERE run_id = ? AND status = 'ok'", [run_id]).fetchone()
    return int(row[0]) if row else 0


def failed(con: Connection, run_id: str) -> list[tuple[str, str]]:
    rows = con.execute("SELECT sample_id, error FROM samples WHERE run_id = ? AND status = 'failed' "
                       "ORDER BY sample_id", [run_id]).fetchall()
    return [(r[0], r[1] or "") for r in rows]


def rows(con: Connection, run_id: str, ok_only: bool, order: str) -> list[SampleRow]:
    """order: 'sample' (by sample id) or 'prompt' (by prompt id, then seed)."""
    found = con.execute(f"{_SELECT} WHERE run_id = ? AND (NOT ? OR status = 'ok') ORDER BY {_ORDER[order]}",
                        [run_id, ok_only]).fetchall()
    return [SampleRow.from_row(r) for r in found]


def values(con: Connection, run_id: str) -> list[SampleValue]:
    found = con.execute("SELECT run_id, sample_id, metric, value FROM sample_metrics WHERE run_id = ? "
                        "ORDER BY sample_id, metric", [run_id]).fetchall()
    return [SampleValue(*r) for r in found]


def lookup_generations(con: Connection, cache_keys: Sequence[str]) -> dict[str, dict[str, Any]]:
    if not cache_keys:
        return {}
    found = con.execute(
        "SELECT cache_key, path, sha256, gen_seconds, notes FROM generations WHERE list_contains(?, cache_key)",
        [list(cache_keys)],
    ).fetchall()
    return {r[0]: {"path": r[1], "sha256": r[2], "gen_seconds": r[3], "notes": json_notes(r[4])} for r in found}


# -- tables (DataFrames) -----------------------------------------------------------------------
def ok_values(con: Connection, run_id: str) -> pd.DataFrame:
    return con.execute(
        """SELECT s.sample_id, s.prompt_id, s.seed, m.metric, m.value
           FROM sample_metrics m JOIN samples s USING (run_id, sample_id)
           WHERE m.run_id = ? AND s.status = 'ok' ORDER BY s.sample_id, m.metric""",
        [run_id],
    ).df()


def ok_values_of(con: Connection, run_ids: Sequence[str], tags: Sequence[str]) -> pd.DataFrame:
    sql = """SELECT s.run_id, s.sample_id, s.prompt_id, s.prompt, s.seed, m.metric, m.value
             FROM sample_metrics m JOIN samples s USING (run_id, sample_id)
             WHERE list_contains(?, s.run_id) AND s.status = 'ok'"""
    params: list[Any] = [list(run_ids)]
    if tags:
        sql += " AND len(list_intersect(from_json(s.tags, '[\"VARCHAR\"]'), ?)) > 0"
        params.append(list(tags))
    return con.execute(sql + " ORDER BY s.run_id, s.sample_id, m.metric", params).df()


def tag_rows(con: Connection, run_ids: Sequence[str]) -> pd.DataFrame:
    return con.execute(
        """SELECT run_id, sample_id, unnest(from_json(tags, '["VARCHAR"]')) AS tag
           FROM samples WHERE list_contains(?, run_id) AND status = 'ok'""",
        [list(run_ids)],
    ).df()


def suite_tags(con: Connection, suite: str, version: int | None) -> list[str]:
    found = con.execute(
        """SELECT DISTINCT t FROM (
             SELECT unnest(from_json(s.tags, '["VARCHAR"]')) AS t
             FROM samples s JOIN runs r USING (run_id)
             WHERE r.suite = ? AND (? IS NULL OR r.suite_version = ?)) ORDER BY t""",
        [suite, version, version],
    ).fetchall()
    return [r[0] for r in found if r[0]]


def table(con: Connection, run_id: str) -> pd.DataFrame:
    df = con.execute(
        """SELECT sample_id, prompt_id, prompt, seed, task, status, error, gen_seconds, path,
                  preview_path, tags, notes FROM samples WHERE run_id = ? ORDER BY sample_id""",
        [run_id],
    ).df()
    df["tags"] = [json_tags(t) for t in df.tags]
    df["notes"] = [json_notes(n) for n in df.notes]
    return df


def files_of(con: Connection, run_ids: Sequence[str]) -> pd.DataFrame:
    return con.execute(
        """SELECT run_id, sample_id, prompt_id, prompt, seed, status, error, path, preview_path
           FROM samples WHERE list_contains(?, run_id)""",
        [list(run_ids)],
    ).df()


def metric_table(con: Connection, run_id: str, sample_id: str) -> pd.DataFrame:
    return con.execute(
        "SELECT metric, value FROM sample_metrics WHERE run_id = ? AND sample_id = ? ORDER BY metric",
        [run_id, sample_id],
    ).df()


def stored(con: Connection, run_id: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The run's samples (every column, JSON as its text) and per-sample values, as stored."""
    samples = con.execute("SELECT * FROM samples WHERE run_id = ? ORDER BY sample_id", [run_id]).df()
    values = con.execute("SELECT sample_id, metric, value FROM sample_metrics WHERE run_id = ?", [run_id]).df()
    return samples, values
