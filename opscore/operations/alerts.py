"""The alert lifecycle and its timeline: pending, firing, resolved and no-data, then who was told.

One evaluation reads every rule's signal, moves each alert's state in one transaction, then
notifies: alerts of one rule form a group, sent ``group_wait`` after the group's first firing, new
ones no sooner than ``group_interval`` after the group last sent, and still-firing unacknowledged
ones again after ``repeat_interval``. A silenced alert (its labels match an active silence) or an
inhibited one (a critical alert of the same rule and labels fires) is not sent. A firing alert nobody
acknowledged within ``alert_escalate_after_seconds`` goes to the next channel of its route, and
so does one whose rule fired ``alert_escalate_count`` times within ``alert_escalate_window_seconds``.
Every state change, delivery attempt, escalation, acknowledgement and silence is stored as an event.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, and_, func, insert, select, update

from opscore.access.actors import SYSTEM, Actor
from opscore.config import Settings
from opscore.exceptions import BadInputError, ConflictError, NotFoundError
from opscore.operations import alert_channels
from opscore.operations.alert_rules import AlertRule, configured_rules, parse_duration
from opscore.operations.alert_signals import SIGNALS, SignalContext
from opscore.store import Store, alert_deliveries, alert_events, alerts, open_store, silences

OPEN_STATES = ("pending", "firing", "nodata")
STATES = (*OPEN_STATES, "resolved")
_LISTED = (alerts.c.id, alerts.c.fingerprint, alerts.c.rule, alerts.c.severity, alerts.c.state, alerts.c.labels,
           alerts.c.summary, alerts.c.value, alerts.c.started_at, alerts.c.fired_at, alerts.c.resolved_at,
           alerts.c.last_true_at, alerts.c.acknowledged_by, alerts.c.acknowledged_at, alerts.c.notified_at,
           alerts.c.escalation_level)


def fingerprint(rule: AlertRule, labels: dict[str, str]) -> str:
    """Rule, severity and labels: one open alert per fingerprint, however often it is evaluated."""
    key = json.dumps([rule.name, rule.severity, sorted(labels.items())])
    return hashlib.sha256(key.encode()).hexdigest()[:32]


def _iso(at: float | None) -> str | None:
    return None if at is None else datetime.fromtimestamp(at, UTC).isoformat()


def _alert_dict(row: Any) -> dict[str, Any]:
    return {"id": row.id, "rule": row.rule, "severity": row.severity, "state": row.state,
            "labels": json.loads(row.labels), "summary": row.summary, "value": row.value,
            "started_at": row.started_at, "fired_at": row.fired_at, "resolved_at": row.resolved_at,
            "acknowledged_by": row.acknowledged_by, "acknowledged_at": row.acknowledged_at,
            "escalation_level": row.escalation_level, "fingerprint": row.fingerprint,
            "fired_at_iso": _iso(row.fired_at or row.started_at)}


def _event(conn: Connection, alert_id: int, at: float, kind: str, detail: str, actor: str = str(SYSTEM)) -> None:
    conn.execute(insert(alert_events).values(alert_id=alert_id, at=at, kind=kind, actor=actor, detail=detail))


@dataclass
class Evaluation:
    """What one evaluation did: alerts per state after it, state changes and deliveries made."""

    at: float
    rules: int
    changes: list[str] = field(default_factory=list)
    deliveries: int = 0
    states: dict[str, int] = field(default_factory=dict)
    tasks: list[str] = field(default_factory=list)  # maintenance tasks the triggers opened after it


def evaluate(settings: Settings, *, now: float | None = None, sleep: Callable[[float], None] = time.sleep,
             telemetry_dropped: Callable[[], int] | None = None) -> Evaluation:
    """Evaluate every rule once at ``now``, move the alerts, then notify and escalate."""
    now = time.time() if now is None else now
    rules = configured_rules(settings)
    context = SignalContext(settings, now, telemetry_dropped, horizons=horizons(rules))
    readings = [(rule, SIGNALS[rule.signal](context, rule.window_seconds)) for rule in rules]
    store = open_store(settings)
    result = Evaluation(now, len(rules))
    with store.write() as conn:
        for rule, series in readings:
            result.changes += _move(conn, rule, series, now)
    result.deliveries = _notify(settings, store, now, sleep)
    with store.read() as conn:
        result.states = dict(conn.execute(select(alerts.c.state, func.count()).where(alerts.c.state.in_(OPEN_STATES))
                                          .group_by(alerts.c.state)).all())
    return result


def horizons(rules: list[AlertRule]) -> dict[str, float]:
    """The longest window each signal is read over by these rules."""
    out: dict[str, float] = {}
    for rule in rules:
        out[rule.signal] = max(out.get(rule.signal, 0.0), rule.window_seconds)
    return out


def rule_readings(settings: Settings, *, now: float | None = None) -> list[dict[str, Any]]:
    """Every rule with its signal's current value per label set against its threshold (no state moves)."""
    rules = configured_rules(settings)
    context = SignalContext(settings, time.time() if now is None else now, horizons=horizons(rules))
    out = []
    for rule in rules:
        series = SIGNALS[rule.signal](context, rule.window_seconds)
        base = {"rule": rule.name, "severity": rule.severity, "expr": rule.expression, "threshold": rule.threshold,
                "for": rule.for_seconds, "window": rule.window_seconds}
        out += [{**base, "labels": {**rule.labels, **labels}, "value": value, "breached": rule.breached(value)}
                for labels, value in series] or [{**base, "labels": dict(rule.labels), "value": None, "breached": False}]
    return out


def _move(conn: Connection, rule: AlertRule, series: list[tuple[dict[str, str], float]], now: float) -> list[str]:
    """Move the open alerts of ``rule`` for this reading; returns one line per state change."""
    changes: list[str] = []
    open_rows = {row.fingerprint: row for row in conn.execute(
        select(*_LISTED).where(alerts.c.rule == rule.name, alerts.c.severity == rule.severity,
                               alerts.c.state.in_(OPEN_STATES)))}
    seen: set[str] = set()
    for series_labels, value in series:
        labels = {**rule.labels, **series_labels}
        key = fingerprint(rule, labels)
        seen.add(key)
        row = open_rows.get(key)
        summary = rule.describe(value, labels)
        if rule.breached(value):
            if row is None:
                state = "firing" if rule.for_seconds <= 0 else "pending"
                alert_id = conn.execute(insert(alerts).values(
                    fingerprint=key, rule=rule.name, severity=rule.severity, state=state, labels=json.dumps(labels),
                    summary=summary, value=value, started_at=now, fired_at=now if state == "firing" else None,
                    last_true_at=now, escalation_level=0)).inserted_primary_key[0]
                _event(conn, alert_id, now, state, f"{rule.expression}: {value:.4g}")
                changes.append(f"{rule.name}/{rule.severity} {labels} {state}")
                continue
            values: dict[str, Any] = {"value": value, "summary": summary, "last_true_at": now}
            fires = row.state != "firing" and (row.fired_at is not None or now - row.started_at >= rule.for_seconds)
            if fires or row.state == "nodata":
                values["state"] = "firing" if fires or row.fired_at is not None else "pending"
                values["fired_at"] = row.fired_at or (now if fires else None)
                _event(conn, row.id, now, values["state"], f"{rule.expression}: {value:.4g}")
                changes.append(f"{rule.name}/{rule.severity} {labels} {values['state']}")
            conn.execute(update(alerts).where(alerts.c.id == row.id).values(**values))
        elif row is not None:
            changes += _clear(conn, rule, row, now, value, summary)
    for key, row in open_rows.items():
        if key not in seen and row.state != "nodata":
            conn.execute(update(alerts).where(alerts.c.id == row.id).values(state="nodata"))
            _event(conn, row.id, now, "nodata", f"{rule.signal} has nothing to measure over the last "
                                                f"{rule.window_seconds:g} s")
            changes.append(f"{rule.name}/{rule.severity} {json.loads(row.labels)} nodata")
    return changes


def _clear(conn: Connection, rule: AlertRule, row: Any, now: float, value: float, summary: str) -> list[str]:
    if row.state == "firing" and now - row.last_true_at < rule.keep_firing_for_seconds:
        conn.execute(update(alerts).where(alerts.c.id == row.id).values(value=value))
        return []
    conn.execute(update(alerts).where(alerts.c.id == row.id).values(state="resolved", resolved_at=now, value=value,
                                                                    summary=summary))
    detail = f"{rule.expression} no longer holds: {value:.4g}"
    _event(conn, row.id, now, "resolved", detail if row.fired_at else f"{detail} (cleared before it fired)")
    return [f"{rule.name}/{rule.severity} {json.loads(row.labels)} resolved"]


# -- notification --------------------------------------------------------------------------------
def _matching_silence(active: list[Any], row: Any) -> Any | None:
    labels = {**json.loads(row.labels), "rule": row.rule, "severity": row.severity}
    for silence in active:
        if all(labels.get(k) == v for k, v in json.loads(silence.matchers).items()):
            return silence
    return None


def _silence_detail(silence: Any) -> str:
    return f"silence #{silence.id} by {silence.author} until {_iso(silence.ends_at)}: {silence.comment}"


def _noted(conn: Connection, alert_id: int, kind: str, detail: str) -> bool:
    return conn.execute(select(alert_events.c.id).where(
        alert_events.c.alert_id == alert_id, alert_events.c.kind == kind, alert_events.c.detail == detail)).first() is not None


def _notify(settings: Settings, store: Store, now: float, sleep: Callable[[float], None]) -> int:
    """Send what is due (grouped, silenced, inhibited, escalated); returns the sends made."""
    with store.read() as conn:
        firing = conn.execute(select(*_LISTED).where(alerts.c.state == "firing")).all()
        resolved = conn.execute(select(*_LISTED).where(
            alerts.c.state == "resolved", alerts.c.notified_at.is_not(None),
            ~select(alert_events.c.id).where(alert_events.c.alert_id == alerts.c.id,
                                             alert_events.c.kind == "resolve_sent").exists())).all()
        active = conn.execute(select(silences).where(silences.c.ends_at > now)).all()
    critical = {(r.rule, r.labels) for r in firing if r.severity == "critical"}
    sends: list[tuple[Any, str, int]] = []
    due_groups: dict[str, bool] = {}
    with store.write() as conn:
        for row in firing:
            silence = _matching_silence(active, row)
            if silence is not None:
                detail = _silence_detail(silence)
                if not _noted(conn, row.id, "silenced", detail):
                    _event(conn, row.id, now, "silenced", detail, silence.author)
                continue
            if row.severity == "warning" and (row.rule, row.labels) in critical:
                detail = f"inhibited: the critical alert of {row.rule} fires for the same labels"
                if not _noted(conn, row.id, "inhibited", detail):
                    _event(conn, row.id, now, "inhibited", detail)
                continue
            if row.notified_at is None:
                if row.rule not in due_groups:
                    due_groups[row.rule] = _group_due(settings, firing, row.rule, now)
                if due_groups[row.rule]:
                    sends.append((row, "trigger", _start_level(settings, conn, row, now)))
            elif row.acknowledged_at is None:
                level = _escalation(settings, row, now)
                if level > row.escalation_level:
                    sends.append((row, "escalate", level))
                elif now - row.notified_at >= settings.alert_repeat_interval_seconds:
                    sends.append((row, "repeat", row.escalation_level))
    for row in resolved:
        sends.append((row, "resolve", row.escalation_level))
    return sum(_deliver(settings, store, row, action, level, now, sleep) for row, action, level in sends)


def _group_due(settings: Settings, firing: list[Any], rule: str, now: float) -> bool:
    group = [r for r in firing if r.rule == rule]
    sent = [r.notified_at for r in group if r.notified_at is not None]
    if sent:
        return now - max(sent) >= settings.alert_group_interval_seconds
    return now - min(r.fired_at for r in group) >= settings.alert_group_wait_seconds


def _start_level(settings: Settings, conn: Connection, row: Any, now: float) -> int:
    """Level 1 straight away when the rule fired too often lately; level 0 otherwise."""
    fired = conn.execute(select(func.count()).select_from(alerts).where(
        alerts.c.rule == row.rule, alerts.c.fired_at >= now - settings.alert_escalate_window_seconds)).scalar_one()
    return 1 if fired >= settings.alert_escalate_count else 0


def _escalation(settings: Settings, row: Any, now: float) -> int:
    """The route level an unacknowledged alert has reached: one step per ``alert_escalate_after_seconds``."""
    if settings.alert_escalate_after_seconds <= 0:
        return row.escalation_level
    last = len(alert_channels.route_for(settings, row.rule, row.severity, json.loads(row.labels)).channels) - 1
    steps = int((now - row.fired_at) // settings.alert_escalate_after_seconds)
    return min(last, max(row.escalation_level, steps))


def _deliver(settings: Settings, store: Store, row: Any, action: str, level: int, now: float,
             sleep: Callable[[float], None]) -> int:
    labels = json.loads(row.labels)
    route = alert_channels.route_for(settings, row.rule, row.severity, labels)
    known = alert_channels.channels(settings)
    level = min(level, len(route.channels) - 1)
    targets = route.channels[: level + 1] if action == "resolve" else route.channels[level:level + 1]
    payload = _alert_dict(row)
    with store.write() as conn:
        if action == "escalate" or (action == "trigger" and level > 0):
            reason = ("not acknowledged within "
                      f"{settings.alert_escalate_after_seconds:g} s" if action == "escalate" else
                      f"{row.rule} fired {settings.alert_escalate_count}+ times within "
                      f"{settings.alert_escalate_window_seconds:g} s")
            _event(conn, row.id, now, "escalated", f"to {route.channels[level]} (level {level}): {reason}")
        values: dict[str, Any] = {"escalation_level": level}
        if action != "resolve":
            values["notified_at"] = now
        conn.execute(update(alerts).where(alerts.c.id == row.id).values(**values))
        if action == "resolve":
            _event(conn, row.id, now, "resolve_sent", f"to {', '.join(targets)}")
    for name in targets:
        attempts = alert_channels.send(known[name], "trigger" if action == "repeat" else action, payload,
                                       attempts=settings.alert_delivery_attempts,
                                       backoff=settings.alert_delivery_backoff_seconds, sleep=sleep)
        with store.write() as conn:
            for n, attempt in enumerate(attempts, start=1):
                conn.execute(insert(alert_deliveries).values(alert_id=row.id, at=now, channel=name, action=action,
                                                             attempt=n, ok=int(attempt.ok), answer=attempt.answer))
            last = attempts[-1]
            _event(conn, row.id, now, "delivered" if last.ok else "delivery_failed",
                   f"{action} to {known[name].describe()} after {len(attempts)} attempt(s): {last.answer}")
    return len(targets)


# -- operator actions and reads --------------------------------------------------------------------
def acknowledge(settings: Settings, alert_id: int, *, actor: Actor, now: float | None = None) -> dict[str, Any]:
    """Record who acknowledged a firing alert and when: it stops escalating and repeating."""
    actor.require_operator("acknowledging an alert")
    now = time.time() if now is None else now
    with open_store(settings).write() as conn:
        row = conn.execute(select(*_LISTED).where(alerts.c.id == alert_id)).first()
        if row is None:
            raise NotFoundError(f"no alert #{alert_id}")
        if row.acknowledged_at is not None:
            raise ConflictError(f"alert #{alert_id} was acknowledged by {row.acknowledged_by} at {_iso(row.acknowledged_at)}")
        if row.state == "resolved":
            raise ConflictError(f"alert #{alert_id} is resolved; there is nothing to acknowledge")
        conn.execute(update(alerts).where(alerts.c.id == alert_id).values(acknowledged_by=str(actor), acknowledged_at=now))
        _event(conn, alert_id, now, "acknowledged", f"acknowledged by {actor}", str(actor))
        return _alert_dict(conn.execute(select(*_LISTED).where(alerts.c.id == alert_id)).one())


def parse_matchers(items: list[str]) -> dict[str, str]:
    """``["rule=p95_latency", "version=v2"]`` as a dict, naming any item that is not ``key=value``."""
    matchers = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise BadInputError(f"matcher {item!r}: expected key=value, e.g. rule=p95_latency")
        matchers[key.strip()] = value.strip()
    return matchers


def silence_end(text: str, now: float) -> float:
    """When a silence given as ``2h`` (from now) or an ISO time (UTC unless it says) ends."""
    try:
        return now + parse_duration(text, "until")
    except BadInputError:
        pass
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError as exc:
        raise BadInputError(f"until: expected a duration from now (2h, 30m) or a time like "
                            f"2026-12-02T18:00, got {text!r}") from exc
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


def create_silence(settings: Settings, *, matchers: dict[str, str], author: str, comment: str, ends_at: float,
                   actor: Actor, now: float | None = None) -> dict[str, Any]:
    """Mute alerts whose labels (or ``rule``, ``severity``) match every matcher until ``ends_at``."""
    actor.require_operator("silencing alerts")
    now = time.time() if now is None else now
    missing = [name for name, given in (("matchers", matchers), ("author", author.strip()), ("comment", comment.strip()))
               if not given]
    if missing:
        raise BadInputError(f"a silence needs {', '.join(missing)}: say what it mutes, who set it and why")
    if ends_at <= now:
        raise BadInputError(f"a silence must end in the future; {_iso(ends_at)} is not after {_iso(now)}")
    with open_store(settings).write() as conn:
        silence_id = conn.execute(insert(silences).values(
            matchers=json.dumps(matchers, sort_keys=True), author=author.strip(), comment=comment.strip(),
            created_at=now, ends_at=ends_at)).inserted_primary_key[0]
        silence = conn.execute(select(silences).where(silences.c.id == silence_id)).one()
        # On the timeline of every open alert it mutes at once, in the words the evaluator uses after.
        for row in conn.execute(select(*_LISTED).where(alerts.c.state.in_(OPEN_STATES))).all():
            if _matching_silence([silence], row) is not None:
                _event(conn, row.id, now, "silenced", _silence_detail(silence), silence.author)
    return {"id": silence_id, "matchers": matchers, "author": author.strip(), "comment": comment.strip(),
            "created_at": now, "ends_at": ends_at, "created_by": str(actor)}


def list_silences(settings: Settings, *, now: float | None = None) -> list[dict[str, Any]]:
    """Silences still in force, newest first."""
    now = time.time() if now is None else now
    with open_store(settings).read() as conn:
        rows = conn.execute(select(silences).where(silences.c.ends_at > now).order_by(silences.c.id.desc())).all()
    return [{"id": r.id, "matchers": json.loads(r.matchers), "author": r.author, "comment": r.comment,
             "created_at": r.created_at, "ends_at": r.ends_at} for r in rows]


def list_alerts(settings: Settings, *, state: str | None = None, since: float | None = None,
                limit: int = 200) -> list[dict[str, Any]]:
    """Alerts newest first; ``state`` narrows to one state, ``since`` to alerts open at or after it."""
    if state is not None and state not in STATES:
        raise BadInputError(f"state must be one of {', '.join(STATES)}, got {state!r}")
    query = select(*_LISTED).order_by(alerts.c.id.desc()).limit(limit)
    if state is not None:
        query = query.where(alerts.c.state == state)
    if since is not None:
        query = query.where((alerts.c.resolved_at.is_(None)) | (alerts.c.resolved_at >= since))
    with open_store(settings).read() as conn:
        return [_alert_dict(row) for row in conn.execute(query)]


def get_alert(settings: Settings, alert_id: int) -> dict[str, Any]:
    """One alert with its history (every event, oldest first) and its delivery attempts."""
    with open_store(settings).read() as conn:
        row = conn.execute(select(*_LISTED).where(alerts.c.id == alert_id)).first()
        if row is None:
            raise NotFoundError(f"no alert #{alert_id}")
        events = conn.execute(select(alert_events).where(alert_events.c.alert_id == alert_id)
                              .order_by(alert_events.c.at, alert_events.c.id)).all()
        sent = conn.execute(select(alert_deliveries).where(alert_deliveries.c.alert_id == alert_id)
                            .order_by(alert_deliveries.c.id)).all()
    return {**_alert_dict(row),
            "history": [{"at": e.at, "kind": e.kind, "actor": e.actor, "detail": e.detail} for e in events],
            "deliveries": [{"at": d.at, "channel": d.channel, "action": d.action, "attempt": d.attempt,
                            "ok": bool(d.ok), "answer": d.answer} for d in sent]}


def timeline(settings: Settings, start: float, end: float) -> list[dict[str, Any]]:
    """Every alert event in [start, end), with its alert's rule and severity, oldest first."""
    query = (select(alert_events.c.alert_id, alert_events.c.at, alert_events.c.kind, alert_events.c.actor,
                    alert_events.c.detail, alerts.c.rule, alerts.c.severity)
             .join(alerts, and_(alerts.c.id == alert_events.c.alert_id))
             .where(alert_events.c.at >= start, alert_events.c.at < end)
             .order_by(alert_events.c.at, alert_events.c.id).limit(10_000))
    with open_store(settings).read() as conn:
        return [dict(row._mapping) for row in conn.execute(query)]
