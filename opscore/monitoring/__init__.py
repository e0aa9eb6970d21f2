"""Monitors that watch a model in production: drift, quality, accuracy and health.

Imports only the foundations (config, exceptions, store), ``opscore.data`` and ``opscore.models``;
never streamlit or fastapi, so every monitor runs the same from the CLI, a worker or a test.
"""
