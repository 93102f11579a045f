"""Names and keys of the registry: a series' registered-model name (slug), the code version, and the
training key (sha256 of the exact series data, the model-relevant config and the code version) that
decides whether a rerun may reuse a version instead of refitting."""

from __future__ import annotations

import functools
import hashlib
import re
from pathlib import Path

import pandas as pd

from include.forecasting import __version__

# Libraries whose version can change a fit's numbers: part of the code version.
_NUMERIC_LIBS = ("statsmodels", "numpy", "scipy", "pandas", "holidays")

TAG_KEY = "idempotency_key"

# Longest slug kept whole (a longer one is cut and hashed); with the prefix well within MLflow's 256.
_MAX_SLUG = 120


def slug(series_id: str) -> str:
    """Registry-safe lowercase name for a series id (`FIVE O'CLOCK VODKA` -> `five_o_clock_vodka`).

    An id with characters beyond ASCII (`青茄子(1)`, `Café Crème`) keeps its ASCII part and gets a short
    hash of the whole id, or two such ids would collapse to the same name (`1` for `净藕(1)` and `青茄子(1)`).
    So does a long one, cut to its first `_MAX_SLUG` characters: MLflow's database stores a registered
    model's name in 256 characters.
    """
    text = re.sub(r"[^a-z0-9]+", "_", series_id.lower()).strip("_")
    if series_id.isascii() and text and len(text) <= _MAX_SLUG:
        return text
    digest = hashlib.sha256(series_id.encode()).hexdigest()[:10]
    text = text[:_MAX_SLUG].rstrip("_")
    return f"{text}_{digest}" if text else digest

def model_name(prefix: str, series_id: str) -> str:
    """Registered model name for a series."""
    return f"{prefix}.{slug(series_id)}"

@functools.lru_cache(maxsize=1)
def code_version() -> str:
    """Package version plus a hash of the whole modelling package and the numeric libraries' versions:
    a change in any module of include/forecasting, or a new statsmodels / numpy / scipy / pandas /
    holidays, changes the key (and so refits)."""
    from importlib.metadata import version as dist_version

    digest = hashlib.sha256()
    for path in sorted(Path(__file__).parent.glob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    for lib in _NUMERIC_LIBS:
        digest.update(f"{lib}=={dist_version(lib)}".encode())
    return f"{__version__}+{digest.hexdigest()[:12]}"

def series_sha256(y: pd.Series) -> str:
    """Hash of one series' training data: its id, dates and exact values (float64 bytes, no rounding).

    The id is part of it: two products with identical history must not share an idempotency key, or
    one would silently reuse the other's model version.
    """
    digest = hashlib.sha256(f"{y.name}\n".encode())
    digest.update(pd.DatetimeIndex(y.index).strftime("%Y-%m-%d").str.cat(sep=",").encode())
    digest.update(y.to_numpy(dtype="float64").tobytes())
    return digest.hexdigest()

def idempotency_key(data_sha: str, config_sha: str, code: str) -> str:
    """The key that identifies 'the same training' across reruns, clears and backfills."""
    return hashlib.sha256(f"{data_sha}|{config_sha}|{code}".encode()).hexdigest()
