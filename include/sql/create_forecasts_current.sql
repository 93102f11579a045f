-- The current forecast of each series, for dashboards and BI tools: its rows of its newest published
-- logical date. The forecasts table keeps every run's rows (the monitor scores past forecasts), and
-- consecutive runs overlap (a weekly run's 7 weeks cover the next run's first 6); a quarantined series
-- keeps its last published rows, so its newest date can be older than the others'.
-- Dialect: BigQuery Standard SQL (create it once next to the table); the embedded DuckDB path runs it
-- transpiled when it creates the table (include/forecasting/publish.py::publish_duckdb).
CREATE VIEW IF NOT EXISTS `{{ forecasts_table }}_current` AS
SELECT *
FROM `{{ forecasts_table }}`
WHERE TRUE  -- BigQuery's QUALIFY needs a WHERE
QUALIFY logical_date = MAX(logical_date) OVER (PARTITION BY series_id)
