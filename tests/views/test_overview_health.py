"""The Overview's health section: one tile per check, in report order, with the report's top issue."""

from opscore.monitoring.health import CHECKS, health_report
from opscore.monitoring.health.infrastructure import HostReading
from opscore.views.overview import health_section

HOST = HostReading(cpu_percent=97, memory_percent=20, memory_available_gb=8, disk_percent=30, disk_free_gb=50, cores=2)


def test_one_tile_per_check_with_its_status_and_top_issue(served):
    section = health_section(served, 86400, host=lambda _path: HOST)
    assert [tile.name for tile in section.tiles] == list(CHECKS)
    report = health_report(served, host=lambda _path: HOST)
    for tile in section.tiles:
        check = report.checks[tile.name]
        assert tile.status in {"healthy", "warning", "critical"}
        assert tile.top_issue == (check.top_issue or "no issue found")
        assert tile.icon.startswith(":material/")
    infrastructure = section.tiles[CHECKS.index("infrastructure")]
    assert infrastructure.status == "critical" and infrastructure.top_issue.startswith("CPU is 97 % used")
    assert section.overall == "critical"
