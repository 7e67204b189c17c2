"""The results database (DuckDB): engine, schema and migrations, typed queries, export. The only
place in vdmbench that writes SQL; everything else asks `Store` by name."""

from vdmbench.store.database import Store
from vdmbench.store.records import LeaderboardRow, MetricRow, RunRecord, SampleRecord, SampleRow, SampleValue
from vdmbench.store.schema import SCHEMA_VERSION

__all__ = ["SCHEMA_VERSION", "LeaderboardRow", "MetricRow", "RunRecord", "SampleRecord", "SampleRow",
           "SampleValue", "Store"]
