-- Replace one logical date's forecasts for the published series, atomically (BigQuery script).
-- Rows arrive as the bound parameter @rows ARRAY<STRUCT<...>>; @logical_date and @series are bound too.
-- The embedded DuckDB path does the same in include/forecasting/publish.py::publish_duckdb.
BEGIN TRANSACTION;
DELETE FROM `{{ forecasts_table }}`
WHERE logical_date = @logical_date AND series_id IN UNNEST(@series);
INSERT INTO `{{ forecasts_table }}`
  (series_id, forecast_date, yhat, yhat_lower, yhat_upper, yhat_lower_95, yhat_upper_95,
   model_name, model_version, logical_date, as_of_date, run_id, published_at)
SELECT series_id, forecast_date, yhat, yhat_lower, yhat_upper, yhat_lower_95, yhat_upper_95,
       model_name, model_version, logical_date, as_of_date, run_id, published_at
FROM UNNEST(@rows);
COMMIT TRANSACTION;
