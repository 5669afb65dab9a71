"""Method registry. A method is one module in this package that registers itself.

Every module here is imported on first use of the package, so a new method needs no edit
elsewhere. Modules that hold shared machinery (`base`, `bilevel`, `meta_nets`) register nothing.
`ORDER` fixes the listing order of the known methods; new ones are listed after them.
"""
from __future__ import annotations

import importlib
import pkgutil

from bench.core.registry import Registry
from methods.base import Batch, Method, MethodContext

METHODS: Registry[type[Method]] = Registry("method")

#: the order `bench ls methods`, presets and tables list methods in (others follow, by name)
ORDER = ("ce", "balanced_softmax", "dal", "dividemix", "dividemix_bs", "mwnet", "gdw", "famus", "fsr",
         "dynamic_loss", "dynamic_loss_bs", "dynamic_loss_la")

for _info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
    importlib.import_module(f"{__name__}.{_info.name}")
METHODS.reorder(lambda name: (ORDER.index(name) if name in ORDER else len(ORDER), name))

__all__ = ["METHODS", "Batch", "Method", "MethodContext"]
