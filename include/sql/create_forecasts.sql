-- Published forecasts, one row per (series_id, forecast_date, logical_date). Dialect: BigQuery
-- Standard SQL, transpiled for DuckDB. {{ forecasts_table }} is checked by the config loader. The series_id
-- type is STRING, or INT64 when every series id is a whole number (publish.series_id_type).
CREATE TABLE IF NOT EXISTS `{{ forecasts_table }}` (
  series_id {{ series_type }} NOT NULL,
  forecast_date DATE NOT NULL,
  yhat FLOAT64 NOT NULL,
  yhat_lower FLOAT64 NOT NULL,
  yhat_upper FLOAT64 NOT NULL,
  yhat_lower_95 FLOAT64,
  yhat_upper_95 FLOAT64,
  model_name STRING NOT NULL,
  model_version STRING NOT NULL,
  logical_date DATE NOT NULL,
  as_of_date DATE NOT NULL,
  run_id STRING,
  published_at TIMESTAMP NOT NULL
)
