"""Scale run for `make bench`: one real sales_forecast DAG run over a derived N-series panel.

The panel (default 1,000 series) is derived from the 5 real Iowa series by a documented, deterministic
transform (`derive_panel`). The run goes through the real scheduler with the LocalExecutor (api-server,
scheduler, dag-processor on 127.0.0.1, SQLite metadata, DuckDB, MLflow sqlite), exactly as
`make airflow` would run it, with `parallelism` = the machine's cores. Measured: wall time of the DAG run,
throughput, parallel efficiency (busy task-seconds / (wall x slots)), mapped task count, and the peak RSS
of every process of the stack (VmHWM, sampled from /proc), reported per role.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import tempfile
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

SEED = 20251124


def derive_panel(source: pd.DataFrame, n_series: int, columns: dict[str, str]) -> pd.DataFrame:
    """N series from the real ones: series i is real series (i mod 5), scaled by a level factor
    exp(U(-1.5, 1.5)) and multiplied day by day by lognormal noise (sigma 0.15), rounded to whole units.

    Zero days (closures) stay zero, so the weekly and holiday structure of the real data is kept while
    each derived series has its own level and noise. Deterministic: one seeded generator, fixed order.
    """
    rng = np.random.default_rng(SEED)
    date, series, value = columns["date"], columns["series"], columns["value"]
    bases = sorted(source[series].unique())
    parts = []
    for i in range(n_series):
        base = source[source[series] == bases[i % len(bases)]]
        level = float(np.exp(rng.uniform(-1.5, 1.5)))
        noise = rng.lognormal(0.0, 0.15, size=len(base))
        values = np.round(base[value].to_numpy(dtype=float) * level * noise).astype(int)
        parts.append(pd.DataFrame({date: base[date].to_numpy(), series: f"{bases[i % len(bases)]} #{i:04d}", value: values}))
    return pd.concat(parts, ignore_index=True)


class RssSampler:
    """Samples VmHWM (peak resident set) of every process in the given sessions.

    VmHWM is each process's own high-water mark, so a 2 s interval misses nothing but processes that
    live < 2 s (task processes live 20-60 s here); a 0.5 s scan of /proc cost ~15 % of a core.
    """

    def __init__(self, sessions: list[int], interval: float = 2.0) -> None:
        self.sessions = set(sessions)
        self.interval = interval
        self.peak: dict[int, tuple[str, int]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> None:
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                if os.getsid(int(entry.name)) not in self.sessions:
                    continue
                status = (entry / "status").read_text()
                title = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
            except (OSError, ProcessLookupError):
                continue
            for line in status.splitlines():
                if line.startswith("VmHWM:"):
                    kib = int(line.split()[1])
                    old = self.peak.get(int(entry.name), ("", 0))[1]
                    self.peak[int(entry.name)] = (title[:120], max(kib, old))

    def _run(self) -> None:
        while not self._stop.is_set():
            self._sample()
            self._stop.wait(self.interval)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def by_role(self) -> dict[str, float]:
        """Peak RSS in MiB per role (task runner, scheduler, api-server, ...): the max over its processes."""
        roles: dict[str, float] = {}
        for title, kib in self.peak.values():
            role = _role(title)
            roles[role] = max(roles.get(role, 0.0), kib / 1024)
        return dict(sorted(roles.items()))


def _role(title: str) -> str:
    for marker, role in (
        # Airflow 3 titles: "airflow worker -- LocalExecutor: <id>" (executor worker, supervises) and
        # "airflow worker -- <ti id>" (the task process itself).
        ("airflow worker -- LocalExecutor", "executor worker"), ("airflow worker --", "task process"),
        ("serve-logs", "serve-logs"),
        ("scheduler", "scheduler"), ("api-server", "api-server"), ("api_server", "api-server"), ("dag-processor", "dag-processor"),
        ("dag_processor", "dag-processor"), ("uvicorn", "api-server"),
    ):
        if marker in title:
            return role
    return "other: " + title.split(" ")[0][-40:]


def _durations_by_task(tis: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for ti in tis:
        entry = out.setdefault(ti["task_id"], {"total_s": 0.0, "instances": 0})
        entry["total_s"] = round(entry["total_s"] + float(ti["duration"] or 0), 2)
        entry["instances"] += 1
    return out


def upstream_of(tasks: list[dict[str, Any]]) -> dict[str, list[str]]:
    """task_id -> its upstream task ids, from the REST API's task list (which gives downstream ids)."""
    out: dict[str, list[str]] = {t["task_id"]: [] for t in tasks}
    for t in tasks:
        for down in t.get("downstream_task_ids") or []:
            out.setdefault(down, []).append(t["task_id"])
    return out


def slot_use(
    tis: list[dict[str, Any]], upstream: dict[str, list[str]], slots: int, start: str, end: str, others: list[dict[str, Any]] | None = None
) -> dict[str, float]:
    """Where the slot-seconds of one DAG run went: busy, or idle and why.

    `tis`: the run's task instances (task_id, queued_when, start_date, end_date as ISO strings; one
    without a start date never ran and is left out);
    `upstream`: task_id -> the task ids it waits for; `others`: task instances of other runs that ran in
    the same window (they hold slots too). A task instance is *ready* once every instance of its upstream
    tasks has ended (the run's start if it has none). At every instant, an idle slot is counted as
    - `waiting_to_queue_s` if some ready task instance is not yet queued (the scheduler has not queued it:
      its loop interval, or a free slot it has not seen yet),
    - `queued_not_started_s` if some queued task instance has not started (the executor launching the task
      process; `start_date` is set once the task runner is up),
    - `nothing_ready_s` otherwise (the DAG's shape: a single task running, its downstream not ready yet),
    and slots held by other runs' tasks as `other_runs_s`. The four plus `busy_s` sum to slots x wall.
    """
    ts = lambda v: pd.Timestamp(v).timestamp() if v else None  # noqa: E731
    t0, t1 = ts(start), ts(end)
    ends: dict[str, float] = {}
    for ti in tis:
        ends[ti["task_id"]] = max(ends.get(ti["task_id"], t0), ts(ti["end_date"]) or t1)
    spans = []
    for ti in tis:
        if not ti.get("start_date"):
            continue  # never ran (upstream failed, removed): it held no slot and waited for none
        ready = max([t0] + [ends.get(u, t0) for u in upstream.get(ti["task_id"], [])])
        began = ts(ti["start_date"]) or t1
        queued = ts(ti.get("queued_when")) or began
        spans.append((ready, min(max(queued, ready), began), began, ts(ti["end_date"]) or t1))
    other = [(ts(o["start_date"]), ts(o["end_date"]) or t1) for o in others or [] if o.get("start_date")]
    points = sorted({t0, t1, *[v for s in spans for v in s], *[v for o in other for v in o]})
    out = dict.fromkeys(("busy_s", "other_runs_s", "waiting_to_queue_s", "queued_not_started_s", "nothing_ready_s"), 0.0)
    for a, b in zip(points, points[1:], strict=False):
        if b <= t0 or a >= t1:
            continue
        a, b = max(a, t0), min(b, t1)
        mid, width = (a + b) / 2, b - a
        running = sum(1 for _, _, began, ended in spans if began <= mid < ended)
        held = min(sum(1 for began, ended in other if began <= mid < ended), max(slots - running, 0))
        idle = max(slots - running - held, 0)
        unqueued = sum(1 for ready, queued, _, _ in spans if ready <= mid < queued)
        starting = sum(1 for _, queued, began, _ in spans if queued <= mid < began)
        out["busy_s"] += min(running, slots) * width
        out["other_runs_s"] += held * width
        to_queue = min(idle, unqueued)
        to_start = min(idle - to_queue, starting)
        out["waiting_to_queue_s"] += to_queue * width
        out["queued_not_started_s"] += to_start * width
        out["nothing_ready_s"] += (idle - to_queue - to_start) * width
    return {k: round(v, 1) for k, v in out.items()}


def run_scale(config_path: Path, panel_csv: Path, n_series: int, logical_date: dt.date, keep: bool = False) -> dict[str, Any]:
    """Derive the panel, run the DAG once through the scheduler, and return the scale figures."""
    import duckdb
    import yaml

    from include.forecasting.config import load_config
    from include.forecasting.extract import load_seed_csv
    from scripts.airflow_stack import AirflowStack, Processes

    base = Path(tempfile.mkdtemp(prefix="forecast_scale_"))
    shipped = load_config(config_path)
    source = pd.read_csv(panel_csv)
    panel = derive_panel(source, n_series, shipped.source.columns)
    panel_path = base / "panel.csv"
    panel.to_csv(panel_path, index=False)
    data = yaml.safe_load(config_path.read_text())
    data["source"]["seed_csv"] = str(panel_path)
    data["mlflow"].update(tracking_uri=f"sqlite:///{base / 'mlflow.db'}", artifact_root=str(base / "mlruns"))
    data["warehouse"]["path"] = str(base / "warehouse.duckdb")
    data["storage"]["root"] = str(base / "artifacts")
    scale_config = base / "forecast.yaml"
    scale_config.write_text(yaml.safe_dump(data))
    config = load_config(scale_config)
    con = duckdb.connect(str(config.warehouse.path))
    load_seed_csv(con, config.source)
    con.close()

    slots = os.cpu_count() or 2
    procs = Processes(base / "logs")
    stack = AirflowStack.embedded(base / "airflow", scale_config, procs, parallelism=slots)
    try:
        stack.start({"training": slots})
        stack.wait_for_dag("sales_forecast")
        with RssSampler([p.pid for _, p in procs.started]) as rss:
            run_id = stack.trigger("sales_forecast", logical_date.isoformat())
            run = stack.wait_for_run("sales_forecast", run_id, timeout=3600)
        tis = stack.task_instances("sales_forecast", run_id)
        tasks = stack.api("GET", "/api/v2/dags/sales_forecast/tasks")["tasks"]
        others = [ti for r in stack.runs("sales_forecast") if r["dag_run_id"] != run_id for ti in stack.task_instances("sales_forecast", r["dag_run_id"])]
    finally:
        procs.stop()
    started, ended = pd.Timestamp(run["start_date"]), pd.Timestamp(run["end_date"])
    wall = (ended - started).total_seconds()
    busy = sum(float(t["duration"] or 0) for t in tis)
    mapped = [t for t in tis if t["map_index"] is not None and t["map_index"] >= 0]
    train = [t for t in tis if t["task_id"] == "train_series"]
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=config.mlflow.tracking_uri)
    from include.forecasting.registry import registered_models

    models = registered_models(client, config.mlflow.model_prefix)
    champions = sum(1 for m in models if config.mlflow.champion_alias in (m.aliases or {}))
    result = {
        "series": n_series,
        "panel_sha256": hashlib.sha256(panel_path.read_bytes()).hexdigest(),
        "transform": "series i = real series (i mod 5) x exp(U(-1.5,1.5)) x lognormal(0, 0.15) per day, rounded; seed 20251124",
        "state": run["state"],
        "executor": "LocalExecutor",
        "slots": slots,
        "wall_s": wall,
        "series_per_s": n_series / wall if wall else None,
        "busy_task_s": busy,
        "parallel_efficiency": busy / (wall * slots) if wall else None,
        "task_instances": len(tis),
        "mapped_task_instances": len(mapped),
        "train_chunks": len(train),
        "series_per_chunk": -(-n_series // max(len(train), 1)),
        "train_task_s_median": float(np.median([t["duration"] or 0 for t in train])) if train else None,
        # Where the task-seconds go: per task id, the summed duration and the instance count.
        "task_s_by_id": _durations_by_task(tis),
        "champions_registered": champions,
        "peak_rss_mib_by_role": rss.by_role(),
        # Busy and idle slot-seconds, the idle split by cause (see `slot_use`).
        "slot_use": slot_use(tis, upstream_of(tasks), slots, run["start_date"], run["end_date"], others),
        "other_runs": sorted({ti["dag_run_id"] for ti in others if ti.get("start_date")}),
        # What the other runs' task instances did (a run the scheduler created itself holds slots too).
        "other_task_instances": [
            {k: ti.get(k) for k in ("dag_run_id", "task_id", "map_index", "state", "try_number", "queued_when", "start_date", "end_date", "duration")}
            for ti in others
        ],
    }
    if not keep:
        import shutil

        shutil.rmtree(base, ignore_errors=True)
    else:
        result["workdir"] = str(base)
    return result

