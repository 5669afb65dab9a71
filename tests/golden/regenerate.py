"""Rewrite the golden numbers in tests/golden/runs/<name>.json from the current code.

    python tests/golden/regenerate.py                    # every registered method and phase run
    python tests/golden/regenerate.py gdw fsr_meta_phase # only these

Review the diff before committing: a change here is a change in what a method computes.
"""
import sys
from pathlib import Path

sys.path[:0] = [str(Path(__file__).parents[1]), str(Path(__file__).parents[2])]  # tests/, the repo root

from helpers import PHASE_RUNS, golden_numbers, write_golden  # noqa: E402

from methods import METHODS  # noqa: E402

if __name__ == "__main__":
    for name in sys.argv[1:] or [*METHODS.names(), *PHASE_RUNS]:
        print(f"wrote {write_golden(name, golden_numbers(name))}")
