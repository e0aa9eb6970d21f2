"""Watching versions in production: drift, data quality, accuracy with and without labels, health.

Imports the foundations, access, data, models and serving; never operations, rollout, views, cli or the shells.
"""
