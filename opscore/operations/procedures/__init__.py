"""Maintenance procedures, one module per area, registered by name (see ``registry``): what a task runs."""

import importlib
import pkgutil

from opscore.operations.procedures.registry import (
    MAINTENANCE_SETS,
    SEVERITIES,
    TASK_TYPES,
    Checkpoint,
    Finding,
    Procedure,
    ProcedureResult,
    TaskCancelled,
    TaskSkipped,
    available_procedures,
    get_procedure,
    no_checkpoint,
    procedure,
    procedures_in,
)

for _module in pkgutil.iter_modules(__path__):
    if _module.name != "registry":
        importlib.import_module(f"{__name__}.{_module.name}")

__all__ = [
    "MAINTENANCE_SETS", "SEVERITIES", "TASK_TYPES", "Checkpoint", "Finding", "Procedure", "ProcedureResult",
    "TaskCancelled", "TaskSkipped", "available_procedures", "get_procedure", "no_checkpoint", "procedure", "procedures_in",
]
