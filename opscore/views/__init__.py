"""What the dashboard reads: one view model per page, assembled in one call, and the plotly figure builders.

Imports any capability below it; never streamlit (pages render these objects) and nothing imports views but the shells.
"""
