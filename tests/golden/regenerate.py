"""Rewrite tests/golden/method_runs.json from the current code. Review the diff before committing."""
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent.parent))

from test_methods import GOLDEN, golden_numbers  # noqa: E402

from methods import METHODS  # noqa: E402

if __name__ == "__main__":
    GOLDEN.write_text(json.dumps({m: golden_numbers(m) for m in METHODS.names()}, indent=1) + "\n")
    print(f"wrote {GOLDEN}")
