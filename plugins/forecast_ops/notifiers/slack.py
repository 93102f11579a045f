"""ForecastAlertNotifier: failure alerts through the Slack provider's notifiers, never raising.

Which transport is used depends on which Airflow connection exists (provider defaults):
  `slack_default`      incoming webhook  -> SlackWebhookNotifier
  `slack_api_default`  Web API bot token -> SlackNotifier (chat.postMessage to alerts.channel)
Neither: the alert is logged at WARNING and nothing fails. Slack errors (4xx/5xx, timeout, refused) are
logged with the response; the callback never raises into Airflow, so the task's own failure stays visible.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from airflow.sdk import BaseHook, BaseNotifier
from airflow.sdk.exceptions import AirflowNotFoundException

log = logging.getLogger(__name__)

WEBHOOK_CONN_ID = "slack_default"
API_CONN_ID = "slack_api_default"
TIMEOUT_S = 10


# Connections whose secrets an exception message could echo (a URL with a token, a bot token).
_SECRET_CONN_IDS = (WEBHOOK_CONN_ID, API_CONN_ID, "mlflow_default", "google_cloud_default")
_SECRET_PATTERNS = (
    # key=value / key: value pairs whose key names a secret
    (re.compile(r"(?i)\b(token|password|passwd|pwd|secret|api[_-]?key|authorization|bearer)(\s*[=:]\s*|\s+)([^\s,;&'\"]+)"), r"\1\2***"),
    (re.compile(r"\bxox[abposr]-[A-Za-z0-9-]+"), "***"),  # Slack tokens
    (re.compile(r"(\b[a-z][a-z0-9+.-]*://)[^/\s:@]+:[^/\s@]+@"), r"\1***@"),  # credentials in a URL
)


def _known_secrets() -> list[str]:
    """Secret values of this project's connections (public hook API; absent connections are skipped)."""
    found = []
    for conn_id in _SECRET_CONN_IDS:
        try:
            conn = BaseHook.get_connection(conn_id)
        except Exception:  # noqa: BLE001 - absent or unreachable: nothing to mask
            continue
        found += [v for v in (conn.password, conn.extra_dejson.get("keyfile_dict")) if isinstance(v, str) and len(v) >= 6]
    return found


def _redact(text: str) -> str:
    """Mask secrets in an alert's cause with public APIs only: this project's connection secrets, then
    anything shaped like a credential (`token=...`, Slack tokens, `user:password@` in URLs)."""
    for secret in _known_secrets():
        text = text.replace(secret, "***")
    for pattern, replacement in _SECRET_PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def _has_connection(conn_id: str) -> bool:
    try:
        BaseHook.get_connection(conn_id)
    except AirflowNotFoundException:
        return False
    except Exception as exc:  # the API server may be unreachable from a callback: treat as absent
        log.warning("could not look up connection %s: %s", conn_id, exc)
        return False
    return True


def send_payload(context: Any, payload: dict[str, Any], channel: str | None = None) -> str:
    """Send a Block Kit payload through whichever Slack connection exists; return the transport used."""
    try:
        if _has_connection(WEBHOOK_CONN_ID):
            from airflow.providers.slack.notifications.slack_webhook import SlackWebhookNotifier

            notifier: Any = SlackWebhookNotifier(
                slack_webhook_conn_id=WEBHOOK_CONN_ID, text=payload["text"], blocks=payload["blocks"], timeout=TIMEOUT_S, retry_handlers=[]
            )
            transport = "webhook"
        elif _has_connection(API_CONN_ID):
            from airflow.providers.slack.notifications.slack import SlackNotifier

            notifier = SlackNotifier(
                slack_conn_id=API_CONN_ID, text=payload["text"], blocks=payload["blocks"], channel=channel or "#general",
                timeout=TIMEOUT_S, retry_handlers=[], unfurl_links=False,
            )
            transport = "web_api"
        else:
            log.warning("SLACK NOT CONFIGURED (no %s or %s connection); alert not sent:\n%s", WEBHOOK_CONN_ID, API_CONN_ID, payload["text"])
            return "log"
        # .notify() sends exactly our payload (calling the notifier would re-render it as templates).
        notifier.notify(context)
        log.info("Slack alert sent via %s", transport)
        return transport
    except Exception as exc:  # noqa: BLE001 - an alert must never turn into a second failure
        response = getattr(exc, "response", None)
        log.error("Slack alert FAILED (%s: %s; response: %s); alert text was:\n%s", type(exc).__name__, exc, response, payload["text"])
        return "error"


def run_info(context: Any, base_url: str) -> Any:
    """Extract the alert's RunInfo from an Airflow context (task or DAG callback)."""
    from include.forecasting.alerts import RUN_LEVEL, RunInfo

    ti = context.get("ti") or context.get("task_instance")
    dag = context.get("dag")
    logical = context.get("logical_date") or (getattr(context.get("dag_run"), "logical_date", None))
    return RunInfo(
        dag_id=getattr(dag, "dag_id", None) or getattr(ti, "dag_id", "?"),
        task_id=getattr(ti, "task_id", None) or RUN_LEVEL,
        run_id=context.get("run_id") or getattr(ti, "run_id", "?"),
        logical_date=logical.date().isoformat() if hasattr(logical, "date") else str(logical),
        try_number=getattr(ti, "try_number", None),
        max_tries=getattr(ti, "max_tries", None),
        map_index=int(getattr(ti, "map_index", -1) if getattr(ti, "map_index", None) is not None else -1),
        base_url=base_url,
    )


def _alerts_config() -> Any:
    try:
        from include.forecasting.config import load_config

        return load_config().alerts
    except Exception as exc:  # invalid config is itself the failure being reported
        log.warning("alerts config unavailable (%s); using defaults", exc)
        from include.forecasting.config import AlertsConfig

        return AlertsConfig(airflow_base_url="http://127.0.0.1:8080", notify_on_champion_change=True, channel="#general")


class ForecastAlertNotifier(BaseNotifier):
    """Final-failure alert for a task (Airflow calls on_failure_callback only after the last retry).

    Mapped task instances do not post: they record their cause in XCom (`alert_cause`) and the
    `report_series` task posts one aggregated message for the whole run, once every try is final.
    """

    template_fields = ()

    def notify(self, context: Any) -> None:
        """Build the message for this failure and send it."""
        from include.forecasting import alerts

        try:
            config = _alerts_config()
            info = run_info(context, config.airflow_base_url)
            exc = context.get("exception")
            cause = alerts.describe_exception(exc, _redact)
            ti = context.get("ti")
            if info.map_index >= 0 and ti is not None:
                series = list((getattr(ti.task, "op_kwargs", None) or {}).get("series_ids") or [])
                ti.xcom_push(key="alert_cause", value={"cause": cause, "series": series, "task_id": info.task_id, "map_index": info.map_index})
                log.info("mapped failure recorded for the aggregated alert: %s", cause)
                return
            report = getattr(exc, "report", None)
            payload = alerts.validation_failure(info, report) if report else alerts.task_failure(info, cause)
            send_payload(context, payload, config.channel)
        except Exception:  # noqa: BLE001
            log.exception("failure notifier crashed; the task failure itself is recorded by Airflow")


def dag_failure_callback(context: Any) -> None:
    """DAG-level failure alert for what no task reports (timeout, deadlock).

    Task failures are reported by the task-level notifier, so reason "task_failure" is skipped here:
    one failure, one message. A plain function, not a BaseNotifier: DAG callbacks may receive a
    serialized DAG, which cannot render notifier templates.
    """
    from include.forecasting import alerts

    reason = context.get("reason", "")
    if reason in ("task_failure", "success"):
        return
    try:
        config = _alerts_config()
        send_payload(context, alerts.task_failure(run_info(context, config.airflow_base_url), f"DAG run failed: {reason}"), config.channel)
    except Exception:  # noqa: BLE001
        log.exception("DAG failure callback crashed")


def _send_built(context: Any, what: str, build: Any, channel: str | None) -> str:
    """Build a message and send it; a message that cannot be built (a value it cannot format) is logged,
    never raised: the task that reports must not fail because of its report."""
    try:
        payload = build()
    except Exception:  # noqa: BLE001 - an alert must never turn into a second failure
        log.exception("could not build the %s message; not sent", what)
        return "error"
    return send_payload(context, payload, channel)


def send_gate_warning(context: Any, decisions: list[dict[str, Any]], config: Any) -> str:
    """Post the gate-rejection warning (a warning: the run goes on with the passing series)."""
    from include.forecasting import alerts

    info = run_info(context, config.alerts.airflow_base_url)
    return _send_built(context, "gate warning", lambda: alerts.gate_rejection(info, decisions), config.alerts.channel)


def send_champion_change(context: Any, promotions: list[dict[str, Any]], config: Any) -> str:
    """Post the short 'champions updated' notice if enabled in config."""
    from include.forecasting import alerts

    if not config.alerts.notify_on_champion_change:
        return "disabled"
    info = run_info(context, config.alerts.airflow_base_url)
    return _send_built(context, "champion change", lambda: alerts.champion_change(info, promotions), config.alerts.channel)


def send_series_report(context: Any, outcome: dict[str, Any], failures: list[dict[str, Any]], config: Any) -> str:
    """Post the run's one aggregated message: quarantined series with causes, failed mapped tasks, spikes
    newly left out of training."""
    from include.forecasting import alerts

    info = run_info(context, config.alerts.airflow_base_url)
    return _send_built(
        context, "series report",
        lambda: alerts.series_report(
            info, outcome["quarantined"], failures, len(outcome["published"]), outcome["fallback"], outcome.get("spikes_left_out"),
        ),
        config.alerts.channel,
    )


def late_run_callback(context: dict[str, Any], limit_minutes: float, timeout_minutes: float | None = None) -> None:
    """Deadline-alert callback (a SyncCallback: the executor runs it when a run misses its deadline):
    post "the run is late" for a run still queued or running; a run that already ended or a backfill run
    gets a log line only (see `alerts.late_run`). `context` is Airflow's simple deadline context: the
    run's REST view under `dag_run` and `deadline.deadline_time`. Never raises."""
    from include.forecasting import alerts

    dag_run = dict(context.get("dag_run") or {})
    try:
        config = _alerts_config()
        payload = alerts.late_run(dag_run, (context.get("deadline") or {}).get("deadline_time"), limit_minutes, timeout_minutes, config.airflow_base_url)
        if payload is None:
            log.info("deadline passed for %s run %s, now %s: no late-run alert", dag_run.get("run_type"), dag_run.get("dag_run_id"), dag_run.get("state"))
            return
        send_payload(context, payload, config.channel)
    except Exception:  # noqa: BLE001 - an alert must never turn into a failure of its own
        log.exception("late-run callback crashed")
