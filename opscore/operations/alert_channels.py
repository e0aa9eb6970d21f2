"""Where alerts go: channels (webhook, Slack, PagerDuty Events v2, email, the log) and routes to them.

A channel is configured by name in ``[alert_channels.NAME]``; secrets (a PagerDuty routing key, a
Slack URL, an SMTP password) may instead name an environment variable (``routing_key_env``,
``url_env``, ``password_env``), and :meth:`Channel.describe` never shows them. A route matches an
alert's labels and severity and lists channels in escalation order: the first gets the alert, the
next one gets it when it escalates. Every send is tried up to ``alert_delivery_attempts`` times with
doubling backoff, and every attempt comes back with its answer, to be recorded.
"""

from __future__ import annotations

import logging
import os
import smtplib
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

import httpx

from opscore.config import Settings
from opscore.exceptions import BadInputError

log = logging.getLogger("opscore.alerts")

CHANNEL_TYPES = ("webhook", "slack", "pagerduty", "email", "log")
PAGERDUTY_URL = "https://events.pagerduty.com/v2/enqueue"
_PAGERDUTY_SEVERITY = {"critical": "critical", "warning": "warning"}
_FIELDS = {
    "webhook": {"url", "url_env", "headers"},
    "slack": {"url", "url_env"},
    "pagerduty": {"url", "routing_key", "routing_key_env", "source"},
    "email": {"host", "port", "sender", "to", "username", "password", "password_env", "starttls"},
    "log": set(),
}


@dataclass(frozen=True)
class Attempt:
    """One try at sending: whether the receiver took it and what it answered."""

    ok: bool
    answer: str


@dataclass(frozen=True)
class Channel:
    name: str
    type: str
    options: dict[str, Any] = field(default_factory=dict)

    def secret(self, key: str) -> str:
        if self.options.get(key):
            return str(self.options[key])
        variable = self.options.get(f"{key}_env")
        value = os.environ.get(str(variable), "") if variable else ""
        if not value:
            raise BadInputError(f"alert channel {self.name!r}: set {key} or {key}_env (an environment variable "
                                f"holding it){f'; {variable} is not set' if variable else ''}")
        return value

    def describe(self) -> str:
        """What a page or an answer may show: name, type and where it goes, never a secret."""
        if self.type == "email":
            return f"{self.name} (email to {', '.join(self.options.get('to', []))})"
        return f"{self.name} ({self.type})"

    def send_once(self, action: str, alert: dict[str, Any]) -> Attempt:
        """Send ``alert`` (``trigger``, ``escalate`` or ``resolve``) once; the receiver's answer."""
        try:
            if self.type == "log":
                log.warning("alert %s %s: [%s] %s", alert["id"], action, alert["severity"], alert["summary"])
                return Attempt(True, "logged")
            if self.type == "email":
                return self._email(action, alert)
            url = (self.options.get("url") or PAGERDUTY_URL) if self.type == "pagerduty" else self.secret("url")
            body = {"webhook": webhook_body, "slack": slack_body, "pagerduty": self._pagerduty_body}[self.type](action, alert)
            answer = httpx.post(url, json=body, timeout=5.0, headers=self.options.get("headers") or None)
            return Attempt(200 <= answer.status_code < 300, f"HTTP {answer.status_code}")
        except BadInputError:
            raise
        except (httpx.HTTPError, OSError, smtplib.SMTPException) as exc:
            return Attempt(False, f"{type(exc).__name__}: {exc}")

    def _pagerduty_body(self, action: str, alert: dict[str, Any]) -> dict[str, Any]:
        return pagerduty_body(action, alert, self.secret("routing_key"), self.options.get("source", "opscore"))

    def _email(self, action: str, alert: dict[str, Any]) -> Attempt:
        message = EmailMessage()
        message["Subject"] = f"[opscore {alert['severity']}] {action}: {alert['summary']}"
        message["From"] = self.options.get("sender", "opscore@localhost")
        message["To"] = ", ".join(self.options["to"])
        message.set_content(_text(action, alert))
        with smtplib.SMTP(self.options.get("host", "localhost"), int(self.options.get("port", 25)), timeout=10) as smtp:
            if self.options.get("starttls"):
                smtp.starttls()
            if self.options.get("username"):
                smtp.login(self.options["username"], self.secret("password"))
            refused = smtp.send_message(message)
        return Attempt(not refused, "SMTP accepted" if not refused else f"SMTP refused {', '.join(refused)}")


def _text(action: str, alert: dict[str, Any]) -> str:
    labels = ", ".join(f"{k}={v}" for k, v in sorted(alert["labels"].items()))
    return f"{action.upper()} [{alert['severity']}] {alert['rule']}: {alert['summary']} ({labels}) alert #{alert['id']}"


def webhook_body(action: str, alert: dict[str, Any]) -> dict[str, Any]:
    """The generic webhook's JSON: the action and the alert as ``GET /alerts/{id}`` lists it."""
    return {"action": action, "alert": alert}


def slack_body(action: str, alert: dict[str, Any]) -> dict[str, Any]:
    """A Slack incoming-webhook body: ``text`` for notifications, ``blocks`` for the message."""
    text = _text(action, alert)
    fields = [{"type": "mrkdwn", "text": f"*{k}*\n{v}"} for k, v in sorted(alert["labels"].items())]
    blocks: list[dict[str, Any]] = [{"type": "section", "text": {"type": "mrkdwn", "text": text}}]
    if fields:
        blocks.append({"type": "section", "fields": fields[:10]})
    return {"text": text, "blocks": blocks}


def pagerduty_body(action: str, alert: dict[str, Any], routing_key: str, source: str) -> dict[str, Any]:
    """PagerDuty Events API v2: trigger (an escalation triggers again) or resolve, deduplicated by fingerprint."""
    body: dict[str, Any] = {"routing_key": routing_key, "event_action": "resolve" if action == "resolve" else "trigger",
                            "dedup_key": alert["fingerprint"]}
    if action != "resolve":
        body["payload"] = {"summary": alert["summary"], "source": source,
                           "severity": _PAGERDUTY_SEVERITY.get(alert["severity"], "error"),
                           "timestamp": alert["fired_at_iso"], "custom_details": {
                               "rule": alert["rule"], "labels": alert["labels"], "value": alert["value"],
                               "alert_id": alert["id"]}}
    return body


def channels(settings: Settings) -> dict[str, Channel]:
    """The configured channels by name (``log`` always exists)."""
    found = {"log": Channel("log", "log")}
    for name, options in settings.alert_channels.items():
        if not isinstance(options, dict):
            raise BadInputError(f"alert channel {name!r} must be a table with a type, got {options!r}")
        kind = options.get("type")
        if kind not in CHANNEL_TYPES:
            raise BadInputError(f"alert channel {name!r}: type must be one of {', '.join(CHANNEL_TYPES)}, got {kind!r}")
        rest = {k: v for k, v in options.items() if k != "type"}
        unknown = set(rest) - _FIELDS[kind]
        if unknown:
            raise BadInputError(f"alert channel {name!r} ({kind}): unknown field(s) {', '.join(sorted(unknown))}")
        if kind == "email" and not rest.get("to"):
            raise BadInputError(f"alert channel {name!r} (email): 'to' must list at least one address")
        found[name] = Channel(name, kind, rest)
    return found


@dataclass(frozen=True)
class Route:
    """Alerts whose labels match ``matchers`` and whose severity is listed go to ``channels`` in order."""

    channels: tuple[str, ...]
    matchers: dict[str, str] = field(default_factory=dict)
    severities: tuple[str, ...] = ("warning", "critical")

    def matches(self, rule: str, severity: str, labels: dict[str, str]) -> bool:
        every = {**labels, "rule": rule}
        return severity in self.severities and all(every.get(k) == v for k, v in self.matchers.items())


def routes(settings: Settings) -> list[Route]:
    """The configured routes, checked against the channels, then the catch-all route to the log."""
    known = channels(settings)
    found = []
    for i, raw in enumerate(settings.alert_routes):
        names = tuple(raw.get("channels", ())) if isinstance(raw, dict) else ()
        if not names:
            raise BadInputError(f"alert route #{i + 1}: 'channels' must list at least one channel")
        missing = [n for n in names if n not in known]
        if missing:
            raise BadInputError(f"alert route #{i + 1}: unknown channel(s) {', '.join(missing)}; "
                                f"configured: {', '.join(sorted(known))}")
        found.append(Route(names, {str(k): str(v) for k, v in (raw.get("matchers") or {}).items()},
                           tuple(raw.get("severities", ("warning", "critical")))))
    return [*found, Route(("log",))]


def route_for(settings: Settings, rule: str, severity: str, labels: dict[str, str]) -> Route:
    return next(r for r in routes(settings) if r.matches(rule, severity, labels))


def send(channel: Channel, action: str, alert: dict[str, Any], *, attempts: int, backoff: float,
         sleep: Callable[[float], None]) -> list[Attempt]:
    """Try up to ``attempts`` times, waiting ``backoff``, then twice that, ...; every attempt's answer."""
    tried: list[Attempt] = []
    for n in range(max(1, attempts)):
        if n:
            sleep(backoff * 2 ** (n - 1))
        try:
            attempt = channel.send_once(action, alert)
        except BadInputError as exc:
            return [*tried, Attempt(False, str(exc))]
        tried.append(attempt)
        if attempt.ok:
            break
    return tried
