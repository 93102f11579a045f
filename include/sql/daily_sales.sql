-- Daily units sold per series, one row per (sales_date, series_id).
-- Dialect: BigQuery Standard SQL, the single source of truth. The embedded DuckDB default runs the
-- same text transpiled by sqlglot (include/forecasting/extract.py::render_sql).
-- Values are bound query parameters, never formatted into the text:
--   @window_start DATE   first day of the history window (inclusive)
--   @window_end   DATE   the run's data_interval_end (exclusive): no row from the future leaks in
--   @series       ARRAY<STRING>  series to keep; empty = all
-- {{ source_table }} is the only substitution: table ids cannot be parameters, so the config loader
-- checks it against a strict identifier pattern first.
SELECT
  DATE(s.date) AS sales_date,
  s.item_description AS series_id,
  SUM(s.bottles_sold) AS value
FROM `{{ source_table }}` AS s
WHERE (
    -- A row without a date belongs to no window; it is extracted anyway, so that validation quarantines its
    -- series by name (rule "every row has a date") instead of the row vanishing from every run.
    s.date IS NULL
    OR (DATE(s.date) >= @window_start AND DATE(s.date) < @window_end)
  )
  AND (ARRAY_LENGTH(@series) = 0 OR s.item_description IN UNNEST(@series))
GROUP BY sales_date, series_id
ORDER BY sales_date, series_id
