"""Which version serves: the `champion` alias, moved forward by promotion (atomic per series, never by an
older date), back by rollback or by undoing a run whose publishing failed; and the version that serves a
given logical date."""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass
from typing import Any

from include.forecasting.keys import TAG_KEY
from include.forecasting.model_versions import _not_found


@dataclass
class PromotionResult:
    """What a promotion (or rollback) did for one series."""

    series_id: str
    model_name: str
    version: str
    previous: str | None
    changed: bool
    note: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)

def get_alias_version(client: Any, name: str, alias: str) -> Any | None:
    """The model version behind an alias, or None if the model or alias does not exist."""
    from mlflow.exceptions import MlflowException

    try:
        return client.get_model_version_by_alias(name, alias)
    except MlflowException as exc:
        if _not_found(exc) or "alias" in str(exc).lower():
            return None
        raise

def versions(client: Any, name: str) -> list[Any]:
    """All versions of a registered model, newest first (empty if it does not exist)."""
    found = client.search_model_versions(f"name = '{name}'")
    return sorted(found, key=lambda v: int(v.version), reverse=True)

def production_version(client: Any, name: str, alias: str, as_of: str) -> Any | None:
    """The version that serves logical date `as_of` (YYYY-MM-DD), deterministically.

    Normally the alias's version. When that was trained for a later date (this is a backfill or a
    rerun of an older date), the newest gate-passed version trained for `as_of` or earlier: an older
    date never uses a model fitted on its future, and its result does not depend on which newer runs
    happened to finish first.
    """
    current = get_alias_version(client, name, alias)
    if current is None or current.tags.get("logical_date", "") <= as_of:
        return current
    eligible = [
        v for v in versions(client, name)
        if v.tags.get("gate_passed") == "true" and v.tags.get("withdrawn") != "true" and v.tags.get("logical_date", "") <= as_of
    ]
    return max(eligible, key=lambda v: (v.tags["logical_date"], int(v.version)), default=None)

def find_version_by_key(client: Any, name: str, key: str, known: list[Any] | None = None) -> Any | None:
    """The version already trained for this idempotency key, if any (so reruns do not refit); `known`:
    the model's versions when the caller has already listed them."""
    for version in known if known is not None else versions(client, name):
        if version.tags.get(TAG_KEY) == key:
            return version
    return None

def promote(
    client: Any,
    name: str,
    series_id: str,
    version: str,
    alias: str,
    logical_date: str,
    actor: str,
    reason: str = "passed the quality gate",
) -> PromotionResult:
    """Move `alias` to `version` unless it is already there, a newer-dated champion holds it, or the
    version was withdrawn by a rollback (only an explicit roll forward brings it back)."""
    current = get_alias_version(client, name, alias)
    if current is not None and str(current.version) == str(version):
        return PromotionResult(series_id, name, str(version), current.tags.get("previous_champion"), False, "already champion (idempotent rerun)")
    if client.get_model_version(name, str(version)).tags.get("withdrawn") == "true":
        kept = str(current.version) if current is not None else None
        return PromotionResult(series_id, name, str(version), kept, False, f"kept v{kept}: v{version} was withdrawn (roll it forward to serve it again)")
    if current is not None and current.tags.get("logical_date", "") > logical_date:
        return PromotionResult(
            series_id, name, str(version), str(current.version), False,
            f"kept v{current.version}: it was trained for {current.tags.get('logical_date')}, newer than {logical_date}",
        )
    previous = str(current.version) if current is not None else ""
    now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    for key, value in {"previous_champion": previous, "promoted_at": now, "promoted_by": actor, "promotion_reason": reason, "withdrawn": "false"}.items():
        client.set_model_version_tag(name, str(version), key, value)
    client.set_registered_model_alias(name, alias, str(version))  # the single, atomic switch
    return PromotionResult(series_id, name, str(version), previous or None, True, reason)

def rollback(
    client: Any,
    name: str,
    series_id: str,
    alias: str,
    target: str,
    actor: str,
    reason: str,
) -> PromotionResult:
    """Move `alias` back: target "previous" (the version the champion replaced), "last-passed"
    (newest other version that passed the gate), or an explicit version number."""
    current = get_alias_version(client, name, alias)
    if current is None:
        raise LookupError(f"{name} has no {alias!r} alias to roll back")
    if target == "previous":
        wanted = current.tags.get("previous_champion") or ""
        if not wanted:
            raise LookupError(f"{name} v{current.version} has no previous champion recorded")
    elif target == "last-passed":
        candidates = [v for v in versions(client, name) if v.tags.get("gate_passed") == "true" and str(v.version) != str(current.version)]
        if not candidates:
            raise LookupError(f"{name} has no other version that passed the gate")
        wanted = str(candidates[0].version)
    elif target.isdigit():
        wanted = target
    else:
        raise ValueError(f"rollback target must be 'previous', 'last-passed' or a version number (got {target!r})")
    if str(wanted) == str(current.version):
        return PromotionResult(series_id, name, wanted, str(current.version), False, "already champion")
    direction = "rolled forward" if int(wanted) > int(current.version) else "rolled back"
    client.get_model_version(name, wanted)  # raises if the version does not exist
    now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    for key, value in {"rolled_back_at": now, "rolled_back_by": actor, "rollback_reason": reason, "rolled_back_from": str(current.version), "withdrawn": "false"}.items():
        client.set_model_version_tag(name, wanted, key, value)
    # The version rolled back from is withdrawn: no older date or backfill serves it again unless it is
    # explicitly rolled forward (which clears the tag above).
    client.set_model_version_tag(name, str(current.version), "withdrawn", "true")
    client.set_registered_model_alias(name, alias, wanted)
    return PromotionResult(series_id, name, wanted, str(current.version), True, f"{direction} from v{current.version}: {reason}")

def revert_promotions(client: Any, alias: str, promotions: list[dict[str, Any]], reason: str) -> list[dict[str, Any]]:
    """Undo this run's alias moves (publishing failed for good): each changed series' alias goes back to
    the version it replaced (or is removed if there was none). The version itself is not withdrawn (it
    passed the gate; only publishing failed), so clearing the run promotes and publishes it again. Only an
    alias still on this run's version is touched. Returns what was moved back."""
    reverted = []
    for p in promotions:
        if not p.get("changed"):
            continue
        current = get_alias_version(client, p["model_name"], alias)
        if current is None or str(current.version) != str(p["version"]):
            continue
        if p.get("previous"):
            client.set_registered_model_alias(p["model_name"], alias, str(p["previous"]))
        else:
            client.delete_registered_model_alias(p["model_name"], alias)
        client.set_model_version_tag(p["model_name"], str(p["version"]), "reverted_reason", reason)
        reverted.append({"series_id": p["series_id"], "from": str(p["version"]), "to": p.get("previous")})
    return reverted
