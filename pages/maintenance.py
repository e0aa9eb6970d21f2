"""Maintenance: the queue (create, run now, cancel, retry), the schedules, the latest health report, capacity
and the maturity scorecard."""

from __future__ import annotations

import time

import streamlit as st

from opscore.exceptions import OpscoreError
from opscore.operations import schedules
from opscore.operations import tasks as queue_tasks
from opscore.operations.procedures import TASK_TYPES
from opscore.operations.worker import execute_task
from opscore.views import maintenance_queue, maintenance_reports, maintenance_schedules
from opscore.views.formatting import when
from opscore.views.maintenance_queue import ANY, LatestHealth
from opscore.views.maintenance_reports import MaintenanceReports
from pages import _shared

_shared.run_inside_dashboard()
st.title("Maintenance")
st.caption("The queue of maintenance tasks and what each found, when the schedules fill it, the latest health "
           "report, how much capacity the traffic needs, and how far each operational area has come.")
_shared.show_flash()
operator = _shared.is_operator()


def change_task(action, success: str) -> None:
    """Button callback: one queue change, its outcome shown once at the top of the next run."""
    try:
        action()
    except OpscoreError as exc:
        _shared.flash("error", str(exc))
    else:
        _shared.forget_cached_reads()
        _shared.flash("success", success)


def create_task() -> None:
    """Form callback: queue the task the form describes and select it."""
    state = st.session_state
    try:
        task = queue_tasks.create_task(
            _shared.settings(), procedure=state["new_procedure"], priority=state["new_priority"],
            type=None if state["new_type"] == ANY else state["new_type"], actor=_shared.actor(),
            due_at=queue_tasks.due_time(state["new_due"], time.time()))
    except OpscoreError as exc:
        _shared.flash("error", str(exc))
        return
    _shared.forget_cached_reads()
    state["task_id"] = task.id
    _shared.flash("success", f"Task {task.id} queued: {task.title} ({task.priority}, due {when(task.due_at)}).")


def save_schedule(name: str) -> None:
    """Form callback: store the operator's cron and enabled flag for schedule ``name``."""
    state = st.session_state
    try:
        saved = schedules.edit_schedule(_shared.settings(), name, cron=state[f"schedule_cron_{name}"],
                                        enabled=state[f"schedule_enabled_{name}"], actor=_shared.actor())
    except OpscoreError as exc:
        _shared.flash("error", str(exc))
        return
    _shared.forget_cached_reads()
    _shared.flash("success", f"Schedule {name}: {saved.cron} ({saved.timezone}), "
                             f"{'enabled' if saved.enabled else 'disabled'}.")


def run_now(task_id: str) -> None:
    """Run the task here, its checkpoints moving the bar; the outcome is the next run's message."""
    with st.status(f"Running task {task_id}…", expanded=True) as status:
        bar = st.progress(0.0, text="claiming the task")

        def progress(note: str, fraction: float | None) -> None:
            bar.progress(min(max(fraction or 0.0, 0.0), 1.0), text=note or "running")

        try:
            task = execute_task(_shared.settings(), task_id, actor=_shared.actor(), progress=progress)
        except OpscoreError as exc:
            status.update(label=f"Task {task_id} could not run", state="error")
            _shared.show_error(exc)
            return
        _shared.forget_cached_reads()
        if task.status == "success":
            status.update(label=f"Task {task_id} succeeded", state="complete")
            _shared.flash("success", f"Task {task_id} ran: {task.status} in {task.actual_seconds:.1f} s.")
        else:
            status.update(label=f"Task {task_id} ended {task.status}", state="error")
            _shared.flash("error", f"Task {task_id} ended {task.status}: {task.error or task.note}")
    st.rerun()


st.subheader("Queue")
by_status, by_type, by_priority = st.columns(3)
status_filter = by_status.selectbox("Status", [ANY, *queue_tasks.STATUSES], key="queue_status")
type_filter = by_type.selectbox("Type", [ANY, *TASK_TYPES], key="queue_type")
priority_filter = by_priority.selectbox("Priority", [ANY, *queue_tasks.PRIORITIES], key="queue_priority")
listed = _shared.cached(maintenance_queue.queue, status_filter, type_filter, priority_filter)
if not listed:
    st.caption("No task matches." if {status_filter, type_filter, priority_filter} != {ANY} else
               "The queue is empty: the schedules fill it, and an operator can add a task below.")
else:
    st.dataframe(maintenance_queue.queue_frame(listed), hide_index=True, key="queue_table", column_config={
        "title": st.column_config.TextColumn(width="large"), "note": st.column_config.TextColumn(width="medium")})
    by_id = {t.id: t for t in listed}
    chosen = st.selectbox("Task", list(by_id), key="task_id", format_func=lambda i: maintenance_queue.task_label(by_id[i]))
    task = by_id[chosen]
    if operator:
        run, cancel, retry, _ = st.columns([1, 1, 1, 3])
        clicked_run = run.button("Run now", key="run_task", icon=":material/play_arrow:", type="primary",
                                 disabled=task.status not in queue_tasks.QUEUED, width="stretch")
        cancel.button("Cancel", key="cancel_task", icon=":material/cancel:", width="stretch",
                      disabled=task.status not in queue_tasks.OPEN or task.cancel_requested,
                      on_click=change_task, args=(lambda: queue_tasks.cancel_task(
                          _shared.settings(), chosen, actor=_shared.actor()), f"Task {chosen}: cancelled, or asked "
                          f"to stop at its next checkpoint if it was running."))
        retry.button("Retry", key="retry_task", icon=":material/replay:", width="stretch",
                     disabled=task.status not in ("failed", "cancelled", "upstream_failed", "skipped"),
                     on_click=change_task, args=(lambda: queue_tasks.retry_task(
                         _shared.settings(), chosen, actor=_shared.actor()), f"Task {chosen} queued again, due now."))
        if clicked_run:
            run_now(chosen)
    with st.container(border=True):
        st.markdown(f"**{task.title}** · `{task.procedure}` {maintenance_queue.shown_params(task)}")
        st.caption(f"{task.type}, {task.priority}, {task.status} · created {when(task.created_at)} by "
                   f"{task.created_by} ({task.cause.kind}: {task.cause.summary})"
                   + (f" · depends on {', '.join(task.depends_on)}" if task.depends_on else "")
                   + (f" · follow-up of {task.parent_task}" if task.parent_task else ""))
        opened = _shared.cached(maintenance_queue.follow_ups, task.id)
        if opened:
            st.caption("Its findings opened: " + "; ".join(f"{t.id} ({t.type}, {t.priority}, {t.status})"
                                                           for t in opened))
        if task.status == "running" and task.progress is not None:
            st.progress(min(max(task.progress, 0.0), 1.0), text=task.note or "running")
        if task.attempts:
            st.dataframe(maintenance_queue.attempts_frame(task), hide_index=True, key="task_attempts")
        else:
            st.caption(f"Not run yet; due {when(task.due_at)}, about {task.estimated_seconds:.0f} s.")
        if task.result is not None:
            findings = maintenance_queue.result_findings(task)
            if not findings.empty:
                st.dataframe(findings, hide_index=True, key="task_findings")
            for line in maintenance_queue.result_recommendations(task):
                st.markdown(f"- *To do:* {line}")
            with st.expander("Figures"):
                st.dataframe(maintenance_queue.result_figures(task), hide_index=True, key="task_figures")
if operator:
    labels = maintenance_queue.procedure_labels()
    with st.expander("Create a task"), st.form("create_task_form"):
        st.selectbox("Procedure", list(labels), key="new_procedure", format_func=labels.get)
        left, middle, right = st.columns(3)
        left.selectbox("Type", [ANY, *TASK_TYPES], key="new_type",
                       format_func=lambda t: "the procedure's own" if t == ANY else t)
        middle.selectbox("Priority", queue_tasks.PRIORITIES, index=queue_tasks.PRIORITIES.index("medium"),
                         key="new_priority")
        right.text_input("Due", value="now", key="new_due", help="now, a delay (30m, 2h, 1d) or a time like "
                         "2026-12-03T18:00 (UTC)")
        st.form_submit_button("Create", key="create_task", icon=":material/add:", type="primary", on_click=create_task)
_shared.operator_note("Creating, running, cancelling or retrying a task")

st.subheader("Schedules")
board = _shared.cached(maintenance_schedules.schedule_board)
st.dataframe(maintenance_schedules.schedules_frame(board), hide_index=True, key="schedules_table")
by_name = {entry["name"]: entry for entry in board}
name = st.selectbox("Schedule", list(by_name), key="schedule_name")
entry = by_name[name]
runs, fired = st.columns([2, 3])
runs.markdown(f"**Next five runs** ({entry['timezone']})")
if entry["next_runs"]:
    runs.dataframe(maintenance_schedules.next_runs_frame(entry), hide_index=True, key="schedule_runs")
else:
    runs.caption("Disabled: it does not fire until it is enabled again.")
fired.markdown("**Last firings**")
if entry["last_firings"]:
    fired.dataframe(maintenance_schedules.firings_frame(entry), hide_index=True, key="schedule_firings")
else:
    fired.caption("Never fired in this workspace yet: a worker (opscore worker, or opscore serve) fires it.")
if operator:
    with st.form(f"schedule_form_{name}"):
        cron, enabled, save = st.columns([3, 1, 1], vertical_alignment="bottom")
        cron.text_input("Cron (day and month names, e.g. 0 3 * * SUN)", value=entry["cron"],
                        key=f"schedule_cron_{name}")
        enabled.checkbox("Enabled", value=entry["enabled"], key=f"schedule_enabled_{name}")
        save.form_submit_button("Save", key="save_schedule", icon=":material/save:", on_click=save_schedule,
                                args=(name,))
_shared.operator_note("Editing a schedule")

st.subheader("Latest health report")
health: LatestHealth = _shared.cached(maintenance_queue.latest_health)
if health.task is not None:
    st.caption(f"Overall **{health.section.overall}**, from task {health.task.id} ({health.task.created_by}), "
               f"checked {when(health.section.checked_at)}.")
else:
    st.caption(f"Overall **{health.section.overall}**. No health-check task has run yet: the five checks ran "
               f"now over the last 24 hours of API traffic ({when(health.section.checked_at)}).")
_shared.health_tiles(health.section, "Every issue and what to do")

with st.spinner("Timing production's model for the capacity plan…"):
    reports: MaintenanceReports = _shared.cached(maintenance_reports.maintenance_reports)

st.subheader("Capacity")
st.caption("From the API traffic of the last four weeks and the service time of production's model on this host.")
left, right = st.columns(2)
left.plotly_chart(reports.heatmap, key="capacity_heatmap")
right.plotly_chart(reports.projection, key="capacity_projection")
plan = reports.plan
peak = "the projected busiest hour" if plan.projected_peak_rps is not None else "the busiest hour measured"
st.metric(f"Replicas for p95 under {plan.p95_target_ms:.0f} ms at {peak}",
          "—" if plan.replicas_needed is None else str(plan.replicas_needed),
          help="From the service time of production's model measured on this host (M/M/1 per replica)")
st.dataframe(reports.capacity_table, hide_index=True, key="capacity_table")
for note in reports.notes:
    st.caption(f":material/info: {note}")

st.subheader("Maturity scorecard")
st.plotly_chart(reports.maturity, key="maturity_chart")
st.dataframe(reports.scorecard.drop(columns="score"), hide_index=True, key="maturity_table",
             column_config={"next_step": st.column_config.TextColumn("next step")})
