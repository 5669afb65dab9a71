"""Methods: one module in this package per method, each registering itself in `METHODS`.

Every module here is imported when the package is, so a new method needs no edit elsewhere
(`base`, `bilevel` and `registry` hold the shared machinery and register nothing).
"""
from __future__ import annotations

import importlib
import pkgutil

from methods.base import Batch, Method, MethodContext
from methods.registry import METHODS

for _info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
    importlib.import_module(f"{__name__}.{_info.name}")

__all__ = ["METHODS", "Batch", "Method", "MethodContext"]
