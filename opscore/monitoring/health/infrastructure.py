"""Infrastructure: CPU, memory and the disk that holds the workspace, on the host that runs the check.

The reading is taken by psutil once per report (CPU over a short sample, since a single instant
says nothing); tests hand in their own reading instead of the host's.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psutil

from opscore.config import Settings
from opscore.monitoring.health.status import CheckResult, level

CPU_SAMPLE_SECONDS = 0.2


@dataclass(frozen=True)
class HostReading:
    """Percent busy CPU, used memory and used disk; free disk and memory in gigabytes."""

    cpu_percent: float
    memory_percent: float
    memory_available_gb: float
    disk_percent: float
    disk_free_gb: float
    cores: int


def read_host(workspace: Path) -> HostReading:
    """The host's CPU (sampled), memory and the disk the workspace is on, from psutil."""
    memory = psutil.virtual_memory()
    disk = psutil.disk_usage(str(workspace))
    return HostReading(cpu_percent=float(psutil.cpu_percent(interval=CPU_SAMPLE_SECONDS)),
                       memory_percent=float(memory.percent), memory_available_gb=memory.available / 1e9,
                       disk_percent=float(disk.percent), disk_free_gb=disk.free / 1e9,
                       cores=psutil.cpu_count() or 1)


HostReader = Callable[[Path], HostReading]


def check_infrastructure(settings: Settings, reader: HostReader = read_host) -> CheckResult:
    """Each of CPU, memory and disk against its warning and critical lines (percent used)."""
    host = reader(settings.workspace)
    result = CheckResult(figures={
        "cpu_percent": host.cpu_percent, "memory_percent": host.memory_percent,
        "memory_available_gb": round(host.memory_available_gb, 2), "disk_percent": host.disk_percent,
        "disk_free_gb": round(host.disk_free_gb, 2), "cores": host.cores,
    })
    lines = [
        ("CPU", host.cpu_percent, settings.health_cpu_warning, settings.health_cpu_critical,
         "add cores or a replica on another host; heavy retraining on the serving host competes with requests"),
        ("memory", host.memory_percent, settings.health_memory_warning, settings.health_memory_critical,
         "fewer cached versions or workers per host, or more memory"),
        ("disk", host.disk_percent, settings.health_disk_warning, settings.health_disk_critical,
         "lower retention_days, take a backup elsewhere and remove old versions' kept data, or grow the disk"),
    ]
    for name, used, warning, critical, advice in lines:
        status = level(used, warning, critical)
        if status != "healthy":
            where = f" (the disk of {settings.workspace})" if name == "disk" else ""
            result.raise_to(status, f"{name} is {used:.0f} % used{where}, at or above the {warning:.0f} % line", advice)
    return result
