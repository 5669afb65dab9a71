"""One module per paper: its recipes, the presets that mirror its tables, the tables' layouts,
how it prints our methods, and the known defects of its published numbers. Every module here
registers itself when `bench.grid` is imported (adding a paper needs no edit elsewhere)."""
from __future__ import annotations

import importlib
import pkgutil

for _info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
    importlib.import_module(f"{__name__}.{_info.name}")
