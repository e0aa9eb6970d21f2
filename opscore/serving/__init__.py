"""Where models serve: the predictor that follows production, micro-batching, telemetry, batch scoring, the HTTP app.

Imports foundations, access, data and models. Only ``http_api`` imports FastAPI.
"""
