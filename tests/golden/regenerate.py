"""Rewrite the golden numbers in tests/golden/runs/<method>.json from the current code.

    python tests/golden/regenerate.py            # every registered method
    python tests/golden/regenerate.py gdw fsr    # only these

Review the diff before committing: a change here is a change in what a method computes.
"""
import sys
from pathlib import Path

sys.path[:0] = [str(Path(__file__).parents[1]), str(Path(__file__).parents[2])]  # tests/, the repo root

from test_methods import golden_numbers, write_golden  # noqa: E402

from methods import METHODS  # noqa: E402

if __name__ == "__main__":
    for name in sys.argv[1:] or METHODS.names():
        print(f"wrote {write_golden(name, golden_numbers(name))}")
