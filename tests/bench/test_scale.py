"""The scale panel is derived deterministically from the real series (the DAG run itself is `make bench`)."""

from __future__ import annotations

import pandas as pd
from conftest import SEED

from bench.scale import RssSampler, derive_panel

COLUMNS = {"date": "date", "series": "item_name", "value": "total_amount_sold"}


def test_derived_panel_is_deterministic_and_keeps_the_structure():
    source = pd.read_csv(SEED)
    panel = derive_panel(source, 12, COLUMNS)
    pd.testing.assert_frame_equal(panel, derive_panel(source, 12, COLUMNS))
    bases = sorted(source["item_name"].unique())
    rows_per_base = source["item_name"].value_counts()
    assert panel["item_name"].nunique() == 12
    assert len(panel) == sum(rows_per_base[bases[i % 5]] for i in range(12))  # series i copies base i mod 5
    first = panel[panel["item_name"] == "BLACK VELVET #0000"].reset_index(drop=True)
    base = source[source["item_name"] == "BLACK VELVET"].reset_index(drop=True)
    assert list(first["date"]) == list(base["date"])
    assert ((base["total_amount_sold"] == 0) <= (first["total_amount_sold"] == 0)).all()  # closures stay closed
    levels = panel.groupby("item_name")["total_amount_sold"].mean()
    assert levels.max() / levels.min() > 3  # derived series differ in level
    assert (panel["total_amount_sold"] >= 0).all() and panel["total_amount_sold"].dtype.kind == "i"


def test_rss_sampler_reads_this_process():
    import os

    with RssSampler([os.getsid(0)], interval=0.05) as sampler:
        blob = [0] * 1_000_000
    del blob
    assert sampler.peak and max(kib for _, kib in sampler.peak.values()) > 10_000


def test_slot_use_splits_idle_time_by_cause():
    """A hand-built timeline on 2 slots, 0-100 s: `a` runs 0-10; `b1`, `b2` (after `a`) are queued at 15
    and 20 and run 20-60 and 25-50; `c` (after `b`) is queued at 62, starts 70, runs to 100. A task of
    another run holds a slot 80-90. Every figure is derived by hand from that timeline."""
    from bench.scale import slot_use

    t = lambda s: f"2026-01-01T00:{s // 60:02d}:{s % 60:02d}+00:00"  # noqa: E731
    ti = lambda task, q, s, e: {"task_id": task, "queued_when": t(q), "start_date": t(s), "end_date": t(e)}  # noqa: E731
    never_ran = {"task_id": "d", "queued_when": None, "start_date": None, "end_date": None}  # e.g. upstream failed
    tis = [ti("a", 0, 0, 10), ti("b", 15, 20, 60), ti("b", 20, 25, 50), ti("c", 62, 70, 100), never_ran]
    other = [{"task_id": "x", "start_date": t(80), "end_date": t(90)}]
    use = slot_use(tis, {"b": ["a"], "c": ["b"], "d": ["a"]}, 2, t(0), t(100), other)
    # busy: a 10 + b1 40 + b2 25 + c 30
    assert use["busy_s"] == 105
    # b1 and b2 ready at 10: unqueued 10-15 (both, 2 idle slots), 15-20 (b2 only, while b1 is queued);
    # c ready at 60 (b's last instance ends), queued at 62: one of the 2 idle slots for 2 s
    assert use["waiting_to_queue_s"] == 2 * 5 + 5 + 2
    # queued not started: b1 15-20 (1 slot), b2 20-25 (the slot b1 does not hold), c 62-70 (1 of 2 idle)
    assert use["queued_not_started_s"] == 5 + 5 + 8
    assert use["other_runs_s"] == 10
    # nothing ready: the second slot 0-10 (only a), 50-60 (only b1), 60-62 (one task to queue, 2 slots),
    # 62-70, 70-80 and 90-100 (only c)
    assert use["nothing_ready_s"] == 10 + 10 + 2 + 8 + 10 + 10
    assert sum(use.values()) == 200  # = 2 slots x 100 s
