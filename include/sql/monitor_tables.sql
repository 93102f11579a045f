-- Tables written by the forecast_monitor DAG. Dialect: BigQuery Standard SQL, transpiled for DuckDB.
-- Every table is replaced by key (never appended), so reruns and backfills of the monitor give the
-- same rows: forecast_accuracy by (series_id, logical_date, forecast_date), forecast_health by
-- (series_id, monitor_date), forecast_actuals by (series_id, date).
CREATE TABLE IF NOT EXISTS `{{ accuracy_table }}` (
  series_id STRING NOT NULL,
  logical_date DATE NOT NULL,      -- the publishing run's logical date
  forecast_date DATE NOT NULL,
  horizon INT64 NOT NULL,          -- 1 = the first period after the data the forecast saw
  yhat FLOAT64 NOT NULL,
  yhat_lower FLOAT64 NOT NULL,
  yhat_upper FLOAT64 NOT NULL,
  actual FLOAT64 NOT NULL,
  model_version STRING NOT NULL
);
CREATE TABLE IF NOT EXISTS `{{ health_table }}` (
  series_id STRING NOT NULL,
  monitor_date DATE NOT NULL,
  model_version STRING,
  scored_periods INT64 NOT NULL,
  mase FLOAT64,
  expected_mase FLOAT64,
  naive_mase FLOAT64,
  rmse FLOAT64,
  expected_rmse FLOAT64,
  mape FLOAT64,
  expected_mape FLOAT64,
  bias FLOAT64,
  coverage FLOAT64,
  expected_coverage FLOAT64,
  drift_statistic FLOAT64,
  drift_p_value FLOAT64,
  degraded BOOL NOT NULL,
  drifted BOOL NOT NULL,
  reasons STRING
);
CREATE TABLE IF NOT EXISTS `{{ actuals_table }}` (
  series_id STRING NOT NULL,
  date DATE NOT NULL,
  actual FLOAT64 NOT NULL
)
