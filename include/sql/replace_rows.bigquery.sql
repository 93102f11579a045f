-- Replace rows by key, atomically (BigQuery script): the monitor's tables (include/sql/monitor_tables.sql).
-- Rows arrive as the bound parameter @rows ARRAY<STRUCT<...>>. The table name, the key match and the
-- column list are filled in from constants in include/forecasting/monitor_tables.py, never user input.
-- The embedded DuckDB path does the same in include/forecasting/monitor_tables.py::replace_duckdb.
BEGIN TRANSACTION;
DELETE FROM `{{ table }}` AS t
WHERE EXISTS (SELECT 1 FROM UNNEST(@rows) AS r WHERE {{ keys }});
INSERT INTO `{{ table }}` ({{ columns }})
SELECT {{ row_columns }} FROM UNNEST(@rows) AS r;
COMMIT TRANSACTION;
