"""Safe change of production: deployment strategies, routing, and A/B experiments with their statistics.

Imports the foundations, access, data, models, monitoring and operations; never views, demo, cli or the
shells, and never streamlit or fastapi.
"""
