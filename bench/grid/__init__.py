"""Grids: presets and their expansion into runs, the papers' tables, launchers and the results store.

Importing any part of this package registers every paper's presets and table layouts
(`bench.grid.papers`), so `PRESETS` and `LAYOUTS` are complete wherever they are read.
"""
import importlib

importlib.import_module("bench.grid.papers")
