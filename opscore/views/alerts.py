"""The Alerts page in one call: alerts and their timeline over the window, rules now, silences, channels."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from opscore.config import Settings
from opscore.models import registry
from opscore.models.registry import ProductionChange
from opscore.operations import alert_channels, alerts
from opscore.store import open_store
from opscore.views.windows import Window, resolve_window


@dataclass(frozen=True)
class AlertsBoard:
    window: Window
    alerts: list[dict[str, Any]]
    events: list[dict[str, Any]]
    markers: list[ProductionChange]
    readings: list[dict[str, Any]]
    silences: list[dict[str, Any]]
    channels: list[str]

    @property
    def firing(self) -> list[dict[str, Any]]:
        return [a for a in self.alerts if a["state"] == "firing"]


def alerts_board(settings: Settings, window_label: str) -> AlertsBoard:
    window = resolve_window(settings, window_label)
    return AlertsBoard(
        window=window,
        alerts=alerts.list_alerts(settings, since=window.start),
        events=alerts.timeline(settings, window.start, window.end),
        markers=registry.production_changes(open_store(settings)),
        readings=alerts.rule_readings(settings, now=window.end),
        silences=alerts.list_silences(settings, now=window.end),
        channels=[c.describe() for c in alert_channels.channels(settings).values()],
    )


def alert_label(alert: dict[str, Any]) -> str:
    labels = ", ".join(f"{k}={v}" for k, v in alert["labels"].items())
    return f"#{alert['id']} {alert['rule']} ({alert['severity']}, {alert['state']}) {labels}"
