"""Operator alerts: one immutable JSON object per alert in the lake, and an optional webhook.

Alerts land as ``tables/alerts/{alert_id}.json`` (``stores.layout.alert_key``), written
create-if-absent, so a sensor tick that is evaluated twice (a daemon restart, a duplicate tick)
records its alert once and posts it once. The webhook (``ODDSFORGE_ALERT_WEBHOOK``, e.g. a Slack
incoming webhook) gets the same JSON with a short timeout; a webhook that is down is logged and
never fails the sensor or the check that raised it, because the lake copy is the record.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import re
from dataclasses import asdict, dataclass, field
from typing import Any

import httpx

from stores.lake import Lake
from stores.layout import ALERTS_PREFIX, alert_key

WEBHOOK_ENV = "ODDSFORGE_ALERT_WEBHOOK"
WEBHOOK_TIMEOUT_SECONDS = 5.0
_SAFE_ID = re.compile(r"[A-Za-z0-9_.-]{1,200}")

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Alert:
    alert_id: str
    """Stable id of what happened (a run id, ``quota-{run id}``): the object's key and the dedupe key."""
    kind: str
    """``run_failure`` or ``odds_api_quota``."""
    summary: str
    raised_at: dt.datetime
    details: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not _SAFE_ID.fullmatch(self.alert_id):
            raise ValueError(f"alert id {self.alert_id!r} is not a safe object name")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self) | {"raised_at": self.raised_at.isoformat()}


def record_alert(lake: Lake, alert: Alert) -> bool:
    """Store ``alert`` unless an alert with its id exists. Returns whether it was new."""
    body = json.dumps(alert.as_dict(), sort_keys=True, default=str).encode()
    return lake.put_new(alert_key(alert.alert_id), body)


def post_webhook(url: str, alert: Alert, timeout: float = WEBHOOK_TIMEOUT_SECONDS) -> bool:
    """POST the alert as JSON (with a Slack-style ``text``); False, logged, when it did not arrive."""
    payload = {"text": f"[oddsforge] {alert.kind}: {alert.summary}", **alert.as_dict()}
    try:
        response = httpx.post(url, json=payload, timeout=timeout)
        response.raise_for_status()
    except httpx.HTTPError as exc:
        log.warning("alert %s not delivered to the webhook: %s", alert.alert_id, exc)
        return False
    return True


def raise_alert(lake: Lake, alert: Alert, webhook: str | None = None) -> bool:
    """Record ``alert`` and, the first time only, post it to the webhook (``ODDSFORGE_ALERT_WEBHOOK``
    unless given). Returns whether the alert was new."""
    if not record_alert(lake, alert):
        return False
    url = webhook if webhook is not None else os.environ.get(WEBHOOK_ENV)
    if url:
        post_webhook(url, alert)
    return True


def read_alerts(lake: Lake, since: dt.datetime | None = None) -> list[dict[str, Any]]:
    """Every recorded alert (newest first), optionally only those raised at or after ``since``."""
    alerts = [json.loads(lake.get_bytes(k)) for k in lake.list_keys(ALERTS_PREFIX) if k.endswith(".json")]
    if since is not None:
        alerts = [a for a in alerts if dt.datetime.fromisoformat(a["raised_at"]) >= since]
    return sorted(alerts, key=lambda a: a["raised_at"], reverse=True)
