-- Rows per source date inside the window: the size of each delivery, before aggregation. A delivery with
-- far more rows than usual (loaded twice) or far fewer (stores missing) is checked against recent ones
-- by include/forecasting/anomaly.py::delivery_findings. Dialect: BigQuery Standard SQL (DuckDB via sqlglot).
-- {{ source_table }} as in daily_sales.sql; values are bound parameters.
SELECT
  DATE(s.date) AS sales_date,
  COUNT(*) AS n_rows
FROM `{{ source_table }}` AS s
WHERE DATE(s.date) >= @window_start
  AND DATE(s.date) < @window_end
  AND (ARRAY_LENGTH(@series) = 0 OR s.item_description IN UNNEST(@series))
GROUP BY sales_date
ORDER BY sales_date
