-- Source rows that repeat the source's own grain inside the window (a delivery loaded twice), summarised
-- per series. Checked on the raw table, before daily_sales.sql aggregates (its SUM would silently double
-- the duplicated days). Dialect: BigQuery Standard SQL (the DuckDB default runs it transpiled by sqlglot).
-- {{ unique_key }} is the config's source.unique_key, each name checked against an identifier pattern;
-- {{ source_table }} as in daily_sales.sql. Values are bound parameters (@window_start, @window_end, @series).
WITH repeated AS (
  SELECT
    DATE(s.date) AS sales_date,
    s.item_description AS series_id,
    COUNT(*) AS n_rows
  FROM `{{ source_table }}` AS s
  WHERE DATE(s.date) >= @window_start
    AND DATE(s.date) < @window_end
    AND (ARRAY_LENGTH(@series) = 0 OR s.item_description IN UNNEST(@series))
  GROUP BY {{ unique_key }}, sales_date, series_id
  HAVING COUNT(*) > 1
)
SELECT
  series_id,
  COUNT(*) AS n_keys,
  MIN(sales_date) AS first_date,
  MAX(sales_date) AS last_date,
  MAX(n_rows) AS max_rows
FROM repeated
GROUP BY series_id
ORDER BY series_id
