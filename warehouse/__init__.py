"""Table storage (Delta Lake), exactly-once commits with checkpoints, DuckDB sessions and macros."""
