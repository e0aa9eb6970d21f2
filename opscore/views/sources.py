"""Where logged traffic comes from, and what one counted unit means for each source.

Monitoring pages show one source at a time, the service's API by default. The sources do not
count alike: the API logs one latency per HTTP request (however many rows it carried), while batch
and dashboard scoring time each row as its share of a chunk. Mixed, every scored file would move
production's latency figures; apart, each chart can say what it counts.
"""

from __future__ import annotations

from dataclasses import dataclass

from opscore.exceptions import BadInputError


@dataclass(frozen=True)
class TrafficSource:
    """A source as logged (``name``) and how its figures read on a page."""

    name: str
    label: str
    # What one counted unit is: "request" (API) or "row" (scoring a table, each row timed alone).
    unit: str
    # How one unit is measured, said on every chart of the source.
    counts: str

    @property
    def throughput_title(self) -> str:
        if self.unit == "request":
            return f"Requests per second ({self.label}, {self.counts})"
        return f"Rows scored per second ({self.label}, {self.counts})"

    @property
    def latency_title(self) -> str:
        if self.unit == "request":
            return f"Request latency per version ({self.label}, {self.counts})"
        return f"Time per row per version ({self.label}, {self.counts})"

    @property
    def error_title(self) -> str:
        noun = "requests" if self.unit == "request" else "rows"
        return f"Failed {noun} ({self.label}: the model call failed)"


SOURCES: dict[str, TrafficSource] = {
    "api": TrafficSource("api", "API", "request", "one per HTTP request"),
    "batch": TrafficSource("batch", "batch scoring", "row", "one per row, timed as its share of a chunk"),
    "dashboard": TrafficSource("dashboard", "dashboard scoring", "row", "one per row, timed as its share of a chunk"),
}
DEFAULT_SOURCE = "api"


def traffic_source(name: str) -> TrafficSource:
    """The source called ``name``; refused when opscore logs no traffic under that name."""
    try:
        return SOURCES[name]
    except KeyError:
        raise BadInputError(f"unknown traffic source {name!r}; choose one of: {', '.join(SOURCES)}") from None
