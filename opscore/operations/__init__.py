"""What acts on what the monitors find: the maintenance queue and its procedures, schedules, alerts, triggers.

Imports the foundations, access, data, models, serving and monitoring; never rollout, views, demo, cli or
the shells, and never streamlit or fastapi, so a worker runs the same code as the dashboard asks for.
"""
