"""Statistical tests for drift, one module each, registered by name (see ``registry``)."""

import importlib
import pkgutil

from opscore.monitoring.stattests.registry import (
    CATEGORICAL,
    NUMERIC,
    StatTest,
    available_tests,
    get_test,
    register,
)

for _module in pkgutil.iter_modules(__path__):
    if _module.name != "registry":
        importlib.import_module(f"{__name__}.{_module.name}")

__all__ = ["CATEGORICAL", "NUMERIC", "StatTest", "get_test", "register", "available_tests"]
