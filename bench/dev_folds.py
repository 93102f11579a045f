"""Model development on folds that `make bench` never reports.

The bench reports the last `--folds` rolling-origin folds of every panel. Modelling choices are made here,
on the `--folds` folds *before* those (same horizon, same panels, same methods), so a reported figure is
never one a choice was tuned on. statsforecast's fits on the dev folds are slow (AutoARIMA ~6 s per daily
fit) and cached per panel in `.cache/dev_folds/`.

Usage:
  python bench/dev_folds.py reference            # statsforecast trio on the dev folds (cached)
  python bench/dev_folds.py project [--set field=JSON ...] [--panel NAME] [--folds 16] [--detail]
      the project's fit (training.fit_series) on the dev folds, with ModelSettings overrides
      (e.g. --set zero_halflife=1.5), vs the cached trio; --detail adds MASE per series and per fold
  python bench/dev_folds.py gate [--panel NAME] [--folds 16] [--gate-folds 8]
      what the DAG's quality gate costs: at each origin, the gate's backtest (candidate vs seasonal naive
      on the folds before it), and the MASE of the model always, of naive where the gate rejects, and of
      naive only until a series' first pass (after it, the champion serves)
  python bench/dev_folds.py serving-lag [--panel NAME] [--folds 16] [--lag 7]
      a champion serving `--lag` periods after its training: its forecast with the probability of no sale
      it was trained with vs estimated again from the data it forecasts from (as the DAG serves), and a refit
  python bench/dev_folds.py calibration [--set field=JSON ...] [--panel NAME] [--folds 16]
      whether the forecast's parts are calibrated: its probability of no sale against the zero share
      observed (by probability bucket), and where the actuals fall around the median and the 80 % bounds,
      on zero and on selling periods apart (80 % coverage over all periods mixes the two)
  --panel: a shipped panel, or a weekly development set built from one (WEEKLY_SETS: iowa_weeks_sun,
      iowa_weeks_fri, veg_weeks_wed); none: all of them
  make dev-folds DEV_ARGS="project --panel veg_daily_kg --detail"   (builds both venvs first)
See docs/DEVELOPING.md for the loop a modelling change goes through.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "plugins")]

from bench import quality  # noqa: E402
from bench.run import BENCH_PYTHON, HOLIDAYS, PANELS, with_holidays  # noqa: E402
from include.forecasting import evaluation, pipeline, training  # noqa: E402
from include.forecasting.config import load_config  # noqa: E402
from include.forecasting.extract import read_sales_csv  # noqa: E402

CACHE = ROOT / ".cache" / "dev_folds"
# Weekly development sets that no bench run reports (README "Modelling" and docs/DEVELOPING.md quote them):
# a shipped daily panel summed to weeks ending on another weekday, so a weekly choice is seen on more than
# one shop and one week-end. name -> (daily panel, pandas week anchor, folds): "last" scores their newest
# `--folds` folds (nothing reports them, and Iowa's ~125 weeks cannot hold twice as many folds of 7 weeks
# besides the history), "before" the `--folds` folds before those, as for the shipped panels.
WEEKLY_SETS = {
    "iowa_weeks_sun": ("iowa_daily", "W-SUN", "last"),
    "iowa_weeks_fri": ("iowa_daily", "W-FRI", "last"),
    "veg_weeks_wed": ("veg_daily_kg", "W-WED", "before"),
}
SET_COLUMNS = {"date": "date", "series": "series", "value": "value"}


class DevPanel(quality.Panel):
    """A panel whose folds are the `folds` folds just before the reported ones."""

    def origins(self, y: pd.Series) -> list[int]:
        """The older half of 2 x `folds` rolling origins (the newer half is what the bench reports)."""
        return evaluation.fold_origins(len(y), 2 * self.folds, self.settings.horizon, self.m + 1)[: self.folds]


def weekly_set_csv(name: str) -> Path:
    """The CSV (date,series,value) of a `WEEKLY_SETS` panel, written once under the cache: each series'
    sales summed per week (dated on the week's last day), the week still running at the panel's newest
    day left out."""
    target = CACHE / f"{name}.csv"
    if not target.exists():
        daily, anchor, _ = WEEKLY_SETS[name]
        frame = read_sales_csv(*PANELS[daily])
        week_end = frame["sales_date"].dt.to_period(anchor).dt.end_time.dt.normalize()
        weeks = frame.assign(date=week_end).groupby(["date", "series_id"], as_index=False)["value"].sum()
        weeks = weeks[weeks["date"] <= frame["sales_date"].max()]
        CACHE.mkdir(parents=True, exist_ok=True)
        weeks.rename(columns={"series_id": "series"}).to_csv(target, index=False, date_format="%Y-%m-%d")
    return target


def dev_panel(name: str, settings_update: dict | None, folds: int, holidays: str | None) -> quality.Panel:
    """Load a development panel, with settings overrides applied: a shipped panel as a DevPanel (the folds
    before the reported ones), a `WEEKLY_SETS` panel on the folds its entry names."""
    if name in WEEKLY_SETS:
        path, columns, newest = weekly_set_csv(name), SET_COLUMNS, WEEKLY_SETS[name][2] == "last"
    else:
        (path, columns), newest = PANELS[name], False
    config = with_holidays(load_config(), holidays if holidays is not None else HOLIDAYS.get(name))
    base = quality.load_panel(name, path, columns, config, folds if newest else 2 * folds)
    settings = base.settings
    if settings_update:
        settings = training.ModelSettings(**{**settings.__dict__, **settings_update})
    return (quality.Panel if newest else DevPanel)(base.name, base.path, base.ys, settings, folds)


def reference(names: list[str], folds: int) -> None:
    """Fit the statsforecast trio on every panel's dev folds and cache their points."""
    CACHE.mkdir(parents=True, exist_ok=True)
    for name in names:
        target = CACHE / f"{name}_{folds}.parquet"
        if target.exists():
            continue
        panel = dev_panel(name, None, folds, None)
        # The bench's own statsforecast step: the panel's origins make it fit the development folds.
        fits, _, _ = quality.statsforecast_points(panel, BENCH_PYTHON, panel.settings.candidate_orders[0])
        rows = [fits[model] for model in quality.TRIO]
        pd.concat(rows, ignore_index=True).to_parquet(target)
        print(f"{name}: cached {target}", file=sys.stderr)


def mase_table(points: pd.DataFrame, by: str) -> pd.DataFrame:
    """Mean MASE per `by` ("series_id" or "fold") and method (columns), from `quality.points` rows of
    several methods: each series-fold's MAE over its scale, as `quality.summarise` scores them."""
    err = points.assign(ae=(points["actual"] - points["yhat"]).abs())
    per = err.groupby(["method", "series_id", "fold"]).agg(ae=("ae", "mean"), scale=("scale", "first"))
    return (per["ae"] / per["scale"]).groupby(["method", by]).mean().unstack("method")


def detail(points: pd.DataFrame, reference: pd.DataFrame | None) -> str:
    """Per series and per fold: the project's MASE beside the trio's, and its ratio to the best of them
    (where a change wins or loses; a ratio over a series' MASE near 0 is left blank)."""
    both = pd.concat([points, reference]) if reference is not None else points
    out = []
    for by in ("series_id", "fold"):
        table = mase_table(both, by)
        if reference is not None:
            best = table[list(quality.TRIO)].min(axis=1)
            table["ratio_to_best"] = (table["project"] / best).where(best > 1e-9)
        out.append(table.sort_values("ratio_to_best" if "ratio_to_best" in table else "project").round(3).to_string())
    return "\n\n".join(out)


def project(names: list[str], folds: int, overrides: dict, holidays: str | None, show_detail: bool = False) -> None:
    """The project's fit on the dev folds vs the cached trio: MASE ratio, coverage, seconds per fit (and,
    with `show_detail`, the same per series and per fold)."""
    for name in names:
        panel = dev_panel(name, overrides, folds, holidays)
        p, secs = quality.points(panel, "project", quality.project_forecaster(panel.settings))
        mine = quality.summarise(p, secs)
        line = f"{name:14s} project MASE {mine['mase']:.4f} cov {mine['coverage_80']:.3f} fit {secs['wall']:.3f}s (CPU {secs['cpu']:.3f}s)"
        cached = CACHE / f"{name}_{folds}.parquet"
        ref = pd.read_parquet(cached) if cached.exists() else None
        if ref is not None:
            scores = {m: quality.summarise(ref[ref["method"] == m], {})["mase"] for m in quality.TRIO}
            best = min(scores, key=scores.get)
            line += f" | best {best} {scores[best]:.4f} ratio {mine['mase'] / scores[best]:.3f} | " + " ".join(f"{m} {v:.3f}" for m, v in scores.items())
        print(line, flush=True)
        if show_detail:
            print(detail(p, ref), flush=True)


def serving_table(panel: quality.Panel, model: evaluation.Forecaster, naive: evaluation.Forecaster, gate_folds: int) -> pd.DataFrame:
    """The DAG's serving rule, simulated on a panel's folds: one row per series and fold with the MASE of
    the model's and of naive's forecast, whether the gate passed the model at that origin (its backtest
    vs naive's on the `gate_folds` folds before the origin, on `pipeline._backtest`'s folds), and the
    MASE of what would be served: `gated`, naive wherever the gate rejects (a series with no champion);
    `until_first_pass`, naive only until the series' first pass (after it the champion, the model,
    serves). Two simplifications: each backtest fold runs the full fit (the DAG refits the candidate's
    own orders there, `pipeline._backtest_spec`, the same first order unless a fit is rejected), and
    the MASE scale keeps the spikes the DAG leaves out of it."""
    h, m = panel.settings.horizon, panel.m
    rows = []
    for series_id, y in panel.ys.items():
        for fold, origin in enumerate(panel.origins(y)):
            history, actual = y.iloc[:origin], y.to_numpy(dtype=float)[origin : origin + h]
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    passed = pipeline._backtest(history, model, gate_folds, h, m).mase < pipeline._backtest(history, naive, gate_folds, h, m).mase
            except ValueError:  # too few sales to backtest: the DAG quarantines the series (fallback)
                passed = False
            train = history.to_numpy(dtype=float)
            scores = {
                name: evaluation.fold_metrics(actual, forecaster(history, h)["yhat"].to_numpy(dtype=float)[: len(actual)], train, m)["mase"]
                for name, forecaster in (("model", model), ("naive", naive))
            }
            rows.append({"series_id": series_id, "fold": fold, **scores, "passed": bool(passed)})
    table = pd.DataFrame(rows).sort_values(["series_id", "fold"], ignore_index=True)
    table["gated"] = np.where(table["passed"], table["model"], table["naive"])
    table["until_first_pass"] = np.where(table.groupby("series_id")["passed"].cummax(), table["model"], table["naive"])
    return table


def gate_cost(names: list[str], folds: int, gate_folds: int) -> None:
    """What the quality gate costs on each panel's dev folds (`serving_table` with the project's model):
    MASE of the model always, of naive where the gate rejects, of naive until a first pass; rejections."""
    for name in names:
        panel = dev_panel(name, None, folds, None)
        naive = evaluation.seasonal_naive(panel.m, panel.settings.interval_levels)
        r = serving_table(panel, quality.project_forecaster(panel.settings), naive, gate_folds)
        means = r[["model", "naive", "gated", "until_first_pass"]].mean()
        print(
            f"{name:14s} gate on {gate_folds} folds: model {means['model']:.4f}, naive where rejected {means['gated']:.4f} "
            f"({means['gated'] / means['model'] - 1:+.1%}), until first pass {means['until_first_pass']:.4f} "
            f"({means['until_first_pass'] / means['model'] - 1:+.1%}), naive {means['naive']:.4f}; rejected {1 - r['passed'].mean():.1%}",
            flush=True,
        )


def serving_lag(names: list[str], folds: int, lag: int) -> None:
    """A champion serving `lag` periods after it was trained (its candidates rejected since), on each
    panel's dev folds: at every origin the model fitted `lag` periods before it forecasts from the
    origin's data (`training.forecast_with_spec`, as the DAG publishes), with the probability of no sale
    it was trained with (its `zero_rule` dropped, as versions before the rule) and estimated again from
    that data (as served); beside them a fit at the origin. MASE and 80 % coverage of each."""
    for name in names:
        panel = dev_panel(name, None, folds, None)
        s, h = panel.settings, panel.settings.horizon
        rows: dict[str, list[pd.DataFrame]] = {"trained shares": [], "served": [], "refit": []}
        for series_id, y in panel.ys.items():
            for fold, origin in enumerate(panel.origins(y)):
                history = y.iloc[:origin]
                try:
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        spec = training.fit_series(y.iloc[: origin - lag], s).spec
                        refit = training.fit_series(history, s).forecast(h, s.interval_levels)
                except training.ModelFitError:
                    continue  # the same series-folds for all three: one that cannot fit is left out
                frames = {
                    "trained shares": training.forecast_with_spec(history, dataclasses.replace(spec, zero_rule={}), h, s.interval_levels),
                    "served": training.forecast_with_spec(history, spec, h, s.interval_levels),
                    "refit": refit,
                }
                for method, frame in frames.items():
                    rows[method].append(quality.fold_rows(panel, series_id, fold, y, origin, frame, method))
        scores = {m: quality.summarise(pd.concat(r, ignore_index=True), {}) for m, r in rows.items()}
        print(
            f"{name:14s} lag {lag}: " + ", ".join(f"{m} MASE {v['mase']:.4f} cov {v['coverage_80']:.3f}" for m, v in scores.items()),
            flush=True,
        )


# Buckets of the forecast's probability of no sale: narrow where most open periods are, wide at the top.
PI_BUCKETS = (0.0, 0.05, 0.2, 0.35, 0.5, 0.65, 1.0)


def calibration_points(panel: quality.Panel) -> pd.DataFrame:
    """The project's forecast on every fold of `panel` with the probability of no sale behind each point
    (`training.zero_probability`): one row per period with `pi`, `yhat`, `lo`, `hi` (the first configured
    level, 80 % by default), `lo95`, `hi95`, `actual` and `closed` (a closed weekday: forecast 0 whatever
    `pi`). A series the trainer cannot fit is left out (its fallback has no such probability)."""
    settings, h = panel.settings, panel.settings.horizon
    rows = []
    for series_id, y in panel.ys.items():
        for fold, origin in enumerate(panel.origins(y)):
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    model = training.fit_series(y.iloc[:origin], settings)
            except training.ModelFitError:
                continue
            frame = model.forecast(h, settings.interval_levels)
            fold_points = quality.fold_rows(panel, series_id, fold, y, origin, frame, "project")  # actual, yhat, lo, hi
            n = len(fold_points)
            keys = training.period_keys(pd.DatetimeIndex(frame["forecast_date"]), settings.cadence)[:n]
            rows.append(fold_points.assign(
                pi=training.zero_probability(model.spec, keys)[:n],
                closed=np.isin(keys, model.spec.closed_weekdays),
                lo95=frame["yhat_lower_95"].to_numpy(dtype=float)[:n] if "yhat_lower_95" in frame else np.nan,
                hi95=frame["yhat_upper_95"].to_numpy(dtype=float)[:n] if "yhat_upper_95" in frame else np.nan,
            ))
    return pd.concat(rows, ignore_index=True)


def calibration_tables(points: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """From `calibration_points`: (1) per bucket of the probability of no sale (open periods only), the
    periods, the mean probability forecast and the zero share observed; (2) on zero periods, selling
    periods and all: the share of actuals above and below the median and outside the 80 % bounds, the
    80 % and 95 % coverage (a period with actual 0 counts as below a positive bound), and the 80 %
    interval score (width + 10 x the distance by which the actual falls outside; Gneiting & Raftery
    2007) over the mean actual of all periods, so lower is better and sets of folds compare."""
    open_ = points[~points["closed"]]
    bucket = pd.cut(open_["pi"], PI_BUCKETS, include_lowest=True)
    reliability = open_.groupby(bucket, observed=True).agg(
        periods=("pi", "size"), forecast=("pi", "mean"), observed=("actual", lambda a: float((a <= 0).mean()))
    )
    eps = 1e-9
    level_of_actuals = float(points["actual"].abs().mean()) or 1.0
    rows = {}
    for label, part in (("zero periods", points[points["actual"] <= 0]), ("selling periods", points[points["actual"] > 0]), ("all", points)):
        a = part["actual"]
        rows[label] = {
            "periods": len(part),
            "above median": float((a > part["yhat"] + eps).mean()),
            "below median": float((a < part["yhat"] - eps).mean()),
            "above 80 % upper": float((a > part["hi"] + eps).mean()),
            "below 80 % lower": float((a < part["lo"] - eps).mean()),
            "80 % coverage": float(((a >= part["lo"] - eps) & (a <= part["hi"] + eps)).mean()),
            "95 % coverage": float(((a >= part["lo95"] - eps) & (a <= part["hi95"] + eps)).mean()),
            "80 % interval score": float(
                ((part["hi"] - part["lo"]) + 10.0 * ((part["lo"] - a).clip(lower=0) + (a - part["hi"]).clip(lower=0))).mean() / level_of_actuals
            ),
        }
    return reliability, pd.DataFrame(rows).T


def calibration(names: list[str], folds: int, overrides: dict, holidays: str | None) -> None:
    """Print `calibration_tables` for each panel's dev folds."""
    for name in names:
        panel = dev_panel(name, overrides, folds, holidays)
        reliability, balance = calibration_tables(calibration_points(panel))
        print(f"{name} ({folds} folds): probability of no sale, forecast vs observed (open periods)")
        print(reliability.round(3).to_string())
        print(balance.round(3).to_string(), flush=True)


def _tuples(value: object) -> object:
    """JSON lists as the tuples ModelSettings holds."""
    return tuple(_tuples(v) for v in value) if isinstance(value, list) else value


def main() -> int:
    """CLI."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=["reference", "project", "gate", "calibration", "serving-lag"])
    parser.add_argument("--panel", action="append", choices=[*PANELS, *WEEKLY_SETS])
    parser.add_argument("--folds", type=int, default=8)
    parser.add_argument("--set", action="append", default=[], help="ModelSettings field=value (JSON value)")
    parser.add_argument("--holidays", default=None, help="COUNTRY[-SUBDIVISION] or none (default: the bench's calendar for the panel)")
    parser.add_argument("--detail", action="store_true", help="also MASE per series and per fold beside the trio's")
    parser.add_argument("--gate-folds", type=int, default=4, help="gate: the backtest folds the gate judges on (config backtest.folds)")
    parser.add_argument("--lag", type=int, default=7, help="serving-lag: periods between a champion's training and its forecast")
    args = parser.parse_args()
    names = args.panel or [*PANELS, *WEEKLY_SETS]
    if args.what == "reference":
        reference(names, args.folds)
    elif args.what == "gate":
        gate_cost(names, args.folds, args.gate_folds)
    elif args.what == "serving-lag":
        serving_lag(names, args.folds, args.lag)
    else:
        overrides = {k: _tuples(json.loads(v)) for k, v in (s.split("=", 1) for s in args.set)}
        if args.what == "calibration":
            calibration(names, args.folds, overrides, args.holidays)
        else:
            project(names, args.folds, overrides, args.holidays, args.detail)
    return 0


if __name__ == "__main__":
    sys.exit(main())
