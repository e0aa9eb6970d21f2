"""Alerts: what fired when beside production changes, acknowledge and silence, each alert's story, rules now."""

from __future__ import annotations

import time

import streamlit as st

from opscore.exceptions import OpscoreError
from opscore.operations import alert_rules, alerts
from opscore.views import alert_plots
from opscore.views import alerts as alerts_view
from opscore.views.alerts import AlertsBoard, alert_label
from opscore.views.formatting import when
from pages import _shared

_shared.run_inside_dashboard()
st.title("Alerts")
st.caption("Every alert's states over the window with production changes on the same time axis; who was told, "
           "who acknowledged, what is silenced; and each rule's value now against its threshold.")
_shared.show_flash()

board: AlertsBoard = _shared.cached(alerts_view.alerts_board, _shared.window_label())
st.plotly_chart(alert_plots.alert_timeline(board.alerts, board.events, board.markers, board.window.start,
                                           board.window.end), key="alert_timeline")


def run_action(action, success: str) -> None:
    try:
        action()
    except OpscoreError as exc:
        _shared.flash("error", str(exc))
    else:
        _shared.forget_cached_reads()
        _shared.flash("success", success)


st.subheader(f"Alerts in the window ({len(board.alerts)}, {len(board.firing)} firing)")
if not board.alerts:
    st.caption("No alert in this window.")
else:
    st.dataframe([{"id": a["id"], "state": a["state"], "severity": a["severity"], "rule": a["rule"],
                   "labels": ", ".join(f"{k}={v}" for k, v in a["labels"].items()), "summary": a["summary"],
                   "since": when(a["started_at"]), "resolved": when(a["resolved_at"]) if a["resolved_at"] else "",
                   "acknowledged by": a["acknowledged_by"] or ""} for a in board.alerts], hide_index=True)
    by_id = {a["id"]: a for a in board.alerts}
    chosen = st.selectbox("Alert", list(by_id), key="alert_id", format_func=lambda i: alert_label(by_id[i]))
    ack, details = st.columns([1, 3])
    ack.button("Acknowledge", key="acknowledge", icon=":material/done:", type="primary",
               disabled=not _shared.is_operator() or by_id[chosen]["acknowledged_at"] is not None,
               on_click=run_action, args=(lambda: alerts.acknowledge(_shared.settings(), chosen, actor=_shared.actor()),
                                          f"Alert #{chosen} acknowledged."))
    _shared.operator_note("Acknowledging")
    one = _shared.cached(alerts.get_alert, chosen)
    with details.expander(f"History and deliveries of #{chosen}", expanded=True):
        st.dataframe([{"at": when(e["at"]), "what": e["kind"], "who": e["actor"], "detail": e["detail"]}
                      for e in one["history"]], hide_index=True, key="alert_history")
        if one["deliveries"]:
            st.dataframe([{"at": when(d["at"]), "channel": d["channel"], "action": d["action"],
                           "attempt": d["attempt"], "delivered": d["ok"], "answer": d["answer"]}
                          for d in one["deliveries"]], hide_index=True, key="alert_deliveries")
        else:
            st.caption("Not sent to any channel (pending, silenced, inhibited or waiting for its group).")

st.subheader("Silences")
if board.silences:
    st.dataframe([{"id": s["id"], "matches": ", ".join(f"{k}={v}" for k, v in s["matchers"].items()),
                   "author": s["author"], "comment": s["comment"], "ends": when(s["ends_at"])}
                  for s in board.silences], hide_index=True)
with st.form("silence_form"):
    matchers = st.text_input("Matchers (key=value, comma-separated; rule, severity or any label)", key="silence_matchers")
    comment = st.text_input("Comment (why)", key="silence_comment")
    until = st.text_input("Until (2h from now, or 2026-12-02T18:00 UTC)", value="2h", key="silence_until")
    if st.form_submit_button("Silence", icon=":material/notifications_off:", disabled=not _shared.is_operator()):
        who = _shared.actor()
        run_action(lambda: alerts.create_silence(
            _shared.settings(), matchers=alerts.parse_matchers([m for m in matchers.split(",") if m.strip()]),
            author=who.name, comment=comment, ends_at=alerts.silence_end(until, time.time()), actor=who),
            "Silence set.")
        st.rerun()
_shared.operator_note("Silencing")

st.subheader("Rules now")
st.plotly_chart(alert_plots.rule_values(board.readings), key="rule_values")
st.dataframe([{"rule": r["rule"], "severity": r["severity"], "condition": r["expr"], "for (s)": r["for"],
               "labels": ", ".join(f"{k}={v}" for k, v in r["labels"].items()),
               "now": "no data" if r["value"] is None else f"{r['value']:.4g}",
               "holds": "yes" if r["breached"] else "no"} for r in board.readings], hide_index=True)
with st.expander("Set a rule (replaces one of the same name and severity)"):
    with st.form("rule_form"):
        name = st.text_input("Name", key="rule_name", placeholder="p95_latency")
        expr = st.text_input("Condition", key="rule_expr", placeholder="p95_latency_ms > 5000")
        severity = st.selectbox("Severity", alert_rules.SEVERITIES, key="rule_severity")
        hold = st.text_input("For", value="2m", key="rule_for")
        if st.form_submit_button("Save rule", disabled=not _shared.is_operator()):
            run_action(lambda: alert_rules.set_rule(_shared.settings(), {"name": name, "expr": expr,
                                                                         "severity": severity, "for": hold},
                                                    actor=_shared.actor()), f"Rule {name} ({severity}) saved.")
            st.rerun()
    _shared.operator_note("Changing a rule")
st.caption("Channels: " + ", ".join(board.channels))
