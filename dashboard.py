"""opscore's operator dashboard: ``streamlit run dashboard.py`` (or ``opscore dashboard``).

This file sets the page up, renders the shared sidebar (model, time window, sign-in) and hands
over to the page the operator picked. Pages live in ``pages/``, grouped as the operator works:
watch (Monitor), decide which version serves (Models), act (Operations).
"""

from __future__ import annotations

import streamlit as st

# ``streamlit run`` puts this file's folder first on sys.path (pytest's ``pythonpath`` does the same),
# so the pages' shared module imports as ``pages._shared`` without editing sys.path here.
from opscore.access.private_files import warn_exposed_files
from opscore.exceptions import OpscoreError
from pages import _shared

st.set_page_config(page_title="opscore", page_icon=":material/monitoring:", layout="wide")

PAGES = {
    "Monitor": [
        st.Page("pages/overview.py", title="Overview", icon=":material/dashboard:", default=True),
        st.Page("pages/live.py", title="Live predictions", icon=":material/bolt:"),
        st.Page("pages/latency.py", title="Latency", icon=":material/speed:"),
        st.Page("pages/drift.py", title="Drift", icon=":material/query_stats:"),
    ],
    "Models": [
        st.Page("pages/versions.py", title="Versions", icon=":material/history:"),
        st.Page("pages/deployments.py", title="Deployments", icon=":material/alt_route:"),
    ],
    "Operations": [
        st.Page("pages/retrain.py", title="Retrain", icon=":material/model_training:"),
        st.Page("pages/alerts.py", title="Alerts", icon=":material/notifications:"),
        st.Page("pages/maintenance.py", title="Maintenance", icon=":material/build:"),
    ],
}

page = st.navigation(PAGES)
try:
    settings = _shared.settings()
    _shared.sidebar(settings)
    _shared.announce_generated_password(settings)
    warn_exposed_files(settings)
    page.run()
except OpscoreError as exc:
    _shared.show_error(exc)
