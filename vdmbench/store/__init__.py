"""The results database (DuckDB): engine, schema and migrations, typed queries, export. The only
place in vdmbench that writes SQL."""
