"""Watching versions in production: drift, data quality, accuracy with and without labels, health.

Imports the foundations, access, data, models and serving; never operations, rollout, views, cli or the
shells, and never streamlit or fastapi, so every monitor runs the same from the CLI, a worker or a test.
"""
