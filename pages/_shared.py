"""What every page shares: settings, who is signed in, the sidebar choices, cached reads, alias moves.

The entrypoint (``dashboard.py``) renders the sidebar; pages read its choices through
:func:`window_label` and :func:`version_filter`. An alias move is requested by a button, kept in
``st.session_state["pending_move"]`` and confirmed in a dialog, so a rerun never loses it.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any, TypeVar

import streamlit as st
from streamlit.runtime.pages_manager import PagesManager

from opscore.access import credentials as auth
from opscore.access.actors import Actor
from opscore.config import Settings, load_settings
from opscore.exceptions import OpscoreError
from opscore.models import alias_moves, registry
from opscore.serving.telemetry_writer import TelemetryWriter
from opscore.store import open_store
from opscore.views import sources, windows
from opscore.views.overview import HealthSection

T = TypeVar("T")
ALL_VERSIONS = "All versions"
# Reads are cached this long: fresh enough for monitoring, cheap when many people look at once.
CACHE_SECONDS = 10


def run_inside_dashboard() -> None:
    """Rerun through ``dashboard.py`` when Streamlit ran this page file on its own.

    Streamlit runs a page file alone (legacy ``pages/`` auto-discovery) until the first
    ``st.navigation`` call of the process, e.g. when a browser tab reconnects to a restarted server
    on a page URL. Switching discovery off and rerunning lands on the same page through the
    entrypoint, with its sidebar, sign-in and error handling.
    """
    if PagesManager.uses_pages_directory:
        PagesManager.uses_pages_directory = False
        st.rerun()


def settings() -> Settings:
    return load_settings()


def actor() -> Actor:
    return st.session_state.get("actor") or auth.viewer_actor()


def is_operator() -> bool:
    return actor().role == "operator"


def window_label() -> str:
    return st.session_state.get("window", windows.DEFAULT_WINDOW)


def version_filter() -> str | None:
    """The version picked in the sidebar, or None for all versions."""
    chosen = st.session_state.get("version_filter", ALL_VERSIONS)
    return None if chosen in (None, ALL_VERSIONS) else chosen


def source_filter() -> str:
    """The traffic source picked in the sidebar (the service's API unless another is chosen)."""
    chosen = st.session_state.get("source_filter", sources.DEFAULT_SOURCE)
    return chosen if chosen in sources.SOURCES else sources.DEFAULT_SOURCE


@st.cache_data(ttl=CACHE_SECONDS, show_spinner=False, max_entries=256)
def _cached_call(name: str, workspace: str, args: tuple, _func: Callable[..., Any], _settings: Settings) -> Any:
    return _func(_settings, *args)


def cached(func: Callable[..., T], *args: Any) -> T:
    """``func(settings, *args)``, cached for a few seconds per workspace and arguments."""
    current = settings()
    key = f"{current.database_url}|{current.model_store_path}"
    return _cached_call(f"{func.__module__}.{func.__qualname__}", key, args, func, current)


def _close_writer(writer: TelemetryWriter) -> None:
    writer.close(timeout=10)


@st.cache_resource(show_spinner=False, on_release=_close_writer)
def _writer(workspace: str, _settings: Settings) -> TelemetryWriter:
    return TelemetryWriter(_settings).start()


def telemetry_writer() -> TelemetryWriter | None:
    """The process's telemetry writer for rows scored here (None when telemetry is switched off)."""
    current = settings()
    return _writer(current.database_url, current) if current.telemetry else None


def forget_cached_reads() -> None:
    """After a change (alias move, new version) every page must read the new state."""
    st.cache_data.clear()


def show_error(exc: OpscoreError) -> None:
    st.error(str(exc), icon=":material/error:")


def operator_note(action: str) -> None:
    """Say why an operator-only control is disabled for the person looking at it."""
    if not is_operator():
        st.caption(f":material/lock: {action} needs an operator: sign in from the sidebar.")


def flash(kind: str, message: str) -> None:
    """A message shown once, at the top of the next run of the page (survives ``st.rerun``)."""
    st.session_state["flash"] = (kind, message)


def show_flash() -> None:
    kind, message = st.session_state.pop("flash", (None, None))
    if kind == "success":
        st.success(message, icon=":material/check_circle:")
    elif kind == "error":
        st.error(message, icon=":material/error:")


# --- Sidebar ----------------------------------------------------------------------------------------


def sidebar(current: Settings) -> None:
    """Model and time window (keyed, so they persist across pages), then sign-in."""
    with st.sidebar:
        try:
            versions = cached(_version_labels)
        except OpscoreError as exc:
            show_error(exc)
            versions = {}
        options = [ALL_VERSIONS, *versions]
        st.selectbox("Model version", options, key="version_filter",
                     format_func=lambda v: versions.get(v, v), help="Narrow monitoring pages to one version")
        st.selectbox("Time window", list(windows.WINDOWS), key="window",
                     index=list(windows.WINDOWS).index(windows.DEFAULT_WINDOW))
        st.selectbox("Traffic", list(sources.SOURCES), key="source_filter",
                     index=list(sources.SOURCES).index(sources.DEFAULT_SOURCE),
                     format_func=lambda name: sources.SOURCES[name].label,
                     help="Monitoring pages show one source at a time: the service's API requests, or rows "
                          "scored from files (opscore predict) or on the dashboard, which are timed differently")
        st.divider()
        _sign_in(current)


def _version_labels(current: Settings) -> dict[str, str]:
    return {
        v.version_id: f"{v.version_id} · {', '.join(v.aliases)}" if v.aliases else v.version_id
        for v in registry.list_versions(open_store(current))
    }


def _sign_in(current: Settings) -> None:
    who = actor()
    if who.role == "operator":
        st.markdown(f":material/verified_user: Signed in as **{who.name}** · operator")
        if st.button("Sign out", key="sign_out"):
            st.session_state.pop("actor", None)
            st.rerun()
        return
    st.markdown(":material/visibility: Viewing as **viewer**")
    with st.popover("Operator sign-in", icon=":material/login:"), st.form("sign_in_form", border=False):
        name = st.text_input("Name", key="operator_name", placeholder="who is acting (kept in the ledger)")
        password = st.text_input("Operator password", type="password", key="operator_password")
        if st.form_submit_button("Sign in", key="sign_in", type="primary"):
            try:
                st.session_state["actor"] = auth.operator_actor(current, name, password)
            except OpscoreError as exc:
                show_error(exc)
            else:
                st.rerun()


def announce_generated_password(current: Settings) -> None:
    """On the very first start, generate the operator password and show it once (log + info box)."""
    generated = auth.ensure_operator_password(current)
    if generated.value:
        print(f"opscore: generated operator password: {generated.value} (stored hashed in {generated.path})",
              file=sys.stderr, flush=True)
        st.session_state["generated_password"] = generated.value
    password = st.session_state.get("generated_password")
    if password:
        with st.container(border=True):
            st.info(
                f"First start: the operator password is **`{password}`**. It is shown once (also in the "
                f"server log) and stored only as a hash; set `OPSCORE_OPERATOR_PASSWORD` to choose your own.",
                icon=":material/key:",
            )
            if st.button("I have noted it", key="dismiss_password"):
                st.session_state.pop("generated_password")
                st.rerun()


# --- Alias moves behind a confirmation dialog --------------------------------------------------------


def request_move(action: str, version_id: str) -> None:
    """Button callback: run the pre-flight check and keep the move pending until confirmed."""
    try:
        st.session_state["pending_move"] = alias_moves.prepare_move(settings(), action, version_id)
    except OpscoreError as exc:
        flash("error", str(exc))


def _drop_pending() -> None:
    st.session_state.pop("pending_move", None)


def confirm_pending_move() -> None:
    """Open the confirmation dialog while a move is pending (call once per page run)."""
    move = st.session_state.get("pending_move")
    if move is not None:
        _move_dialog(move)


@st.dialog("Confirm production change", width="medium", on_dismiss=_drop_pending)
def _move_dialog(move: alias_moves.PendingMove) -> None:
    st.markdown(f"**{move.summary}**")
    if move.checks:
        st.markdown("Pre-flight check")
        for name, passed, detail in move.checks:
            icon = ":material/check_circle:" if passed else ":material/cancel:"
            colour = "green" if passed else "red"
            st.markdown(f":{colour}[{icon}] **{name}** — {detail}")
        if not move.ok:
            st.error(f"{move.version_id} failed its pre-flight check; it cannot take production.")
    reason = st.text_input("Reason (recorded in the ledger)", key="move_reason",
                           placeholder="e.g. p95 doubled after the last promotion")
    left, right = st.columns(2)
    confirm = left.button("Confirm", key="confirm", type="primary", disabled=not move.ok or not is_operator(),
                          width="stretch")
    if right.button("Cancel", key="cancel", width="stretch"):
        _drop_pending()
        st.rerun()
    if not is_operator():
        st.caption(":material/lock: Only an operator can confirm; sign in from the sidebar.")
    if confirm:
        try:
            entry = alias_moves.carry_out(settings(), move, actor(), reason)
        except OpscoreError as exc:
            show_error(exc)
            return
        _drop_pending()
        st.session_state.pop("move_reason", None)
        forget_cached_reads()
        if entry is None:
            flash("success", f"{move.version_id} was no longer the candidate; nothing changed.")
        elif move.action == "discard":
            flash("success", f"Candidate {move.version_id} discarded (ledger #{entry.id}).")
        else:
            flash("success", f"Production: {entry.from_version} → {entry.to_version} (ledger #{entry.id}, "
                             f"by {entry.actor}). Serving replicas pick it up within a second.")
        st.rerun()


# --- Health checks, as the Overview and Maintenance pages show them -------------------------------------


def health_tiles(section: HealthSection, details: str) -> None:
    """One tile per check (status and top issue), then every issue and what to do behind ``details``."""
    for column, tile in zip(st.columns(len(section.tiles)), section.tiles, strict=True):
        with column.container(border=True, height="stretch"):
            # Markdown, not st.metric: a status in metric type is cut short in a fifth of a laptop's width.
            st.markdown(f"**{tile.label}**  \n{tile.icon} **{tile.status}**")
            st.caption(tile.top_issue)
    with st.expander(details):
        for tile in section.tiles:
            st.markdown(f"**{tile.label}: {tile.status}**")
            for issue in tile.issues:
                st.markdown(f"- {issue}")
            for advice in tile.recommendations:
                st.markdown(f"- *To do:* {advice}")
