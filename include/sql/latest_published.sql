-- Per series: the newest logical date it has published forecasts for, and the model version that made them.
-- After a rollback, these are the rows to republish with the version that now serves that date.
-- Dialect: BigQuery Standard SQL; the embedded DuckDB path runs it transpiled (extract.render_sql).
--   @series  ARRAY<STRING>  the series asked about
SELECT
  CAST(f.series_id AS STRING) AS series_id,  -- the table may key series by INT64 (create_forecasts.sql)
  f.logical_date,
  MAX(f.model_version) AS model_version
FROM `{{ forecasts_table }}` AS f
WHERE CAST(f.series_id AS STRING) IN UNNEST(@series)
  AND f.logical_date = (
    SELECT MAX(g.logical_date) FROM `{{ forecasts_table }}` AS g WHERE g.series_id = f.series_id
  )
GROUP BY f.series_id, f.logical_date
ORDER BY f.series_id
