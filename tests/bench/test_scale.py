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
