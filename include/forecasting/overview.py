"""The registry as a person reads it: every series' champion, previous champion and last candidates
(`make models`), and finding the series a user means by name."""

from __future__ import annotations

import json
from typing import Any

from include.forecasting.promotion import get_alias_version, versions


def registered_models(client: Any, prefix: str) -> list[Any]:
    """Every registered model named `<prefix>.*`, all pages (a store returns at most 1,000 per page)."""
    found: list[Any] = []
    token = None
    while True:
        page = client.search_registered_models(f"name LIKE '{prefix}.%'", max_results=1000, page_token=token)
        found.extend(page)
        token = page.token
        if not token:
            return sorted(found, key=lambda m: m.name)

def registry_overview(client: Any, prefix: str, alias: str, last: int = 3) -> list[dict[str, Any]]:
    """Per series: champion, previous champion, and the last candidates with their backtest MASE."""
    out = []
    for model in registered_models(client, prefix):
        champion = get_alias_version(client, model.name, alias)
        rows = []
        for v in versions(client, model.name)[:last]:
            metrics = json.loads(v.tags.get("backtest", "{}"))
            rows.append(
                {
                    "version": str(v.version),
                    "logical_date": v.tags.get("logical_date"),
                    "mase": (metrics.get("candidate") or {}).get("mase"),
                    "naive_mase": (metrics.get("naive") or {}).get("mase"),
                    "gate_passed": v.tags.get("gate_passed") == "true",
                }
            )
        out.append(
            {
                "model": model.name,
                "series_id": model.tags.get("series_id"),
                "champion": str(champion.version) if champion else None,
                "previous": champion.tags.get("previous_champion") if champion else None,
                # How the alias got here: a rollback or roll forward records where it came from and why.
                "moved": (
                    {k: champion.tags[k] for k in ("rolled_back_from", "rolled_back_by", "rollback_reason", "rolled_back_at") if k in champion.tags}
                    if champion else {}
                ),
                "withdrawn": sorted((str(v.version) for v in versions(client, model.name) if v.tags.get("withdrawn") == "true"), key=int),
                "candidates": rows,
            }
        )
    return out

def match_series(names: list[str], query: str) -> list[str]:
    """The series a user means: "all" -> every name; else the names equal to `query` without case or
    extra spaces. Raises LookupError listing the closest names when nothing matches."""
    import difflib

    if query.strip().lower() == "all":
        return list(names)

    def norm(name: str) -> str:
        return " ".join(name.split()).casefold()

    found = [n for n in names if norm(n) == norm(query)]
    if found:
        return found
    by_norm = {norm(n): n for n in names}
    close = [by_norm[c] for c in difflib.get_close_matches(norm(query), list(by_norm), n=3, cutoff=0.5)]
    hint = close or sorted(names)[:10]
    raise LookupError(f"no registered model for series {query!r}; did you mean: {', '.join(repr(n) for n in hint)}?")
