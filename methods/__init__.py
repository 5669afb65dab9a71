"""Method registry. A method is one module here plus one line in `_MODULES` below."""
from __future__ import annotations

import importlib

from bench.registry import Registry
from methods.base import Batch, Method, MethodContext

METHODS: Registry[type[Method]] = Registry("method")

#: modules that register a method (import order = listing order of `bench ls methods`)
_MODULES = ("methods.ce", "methods.balanced_softmax", "methods.dal")

for _module in _MODULES:
    importlib.import_module(_module)

__all__ = ["METHODS", "Batch", "Method", "MethodContext"]
