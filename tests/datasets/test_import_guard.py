"""`import datasets` from the repo root must give Hugging Face's package (or a clear error), never ours."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]


def _run(code: str, pythonpath: str | None, *flags: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    return subprocess.run([sys.executable, *flags, "-c", code], cwd=REPO_ROOT, env=env,
                          capture_output=True, text=True, timeout=120)


@pytest.fixture
def fake_hf(tmp_path) -> Path:
    pkg = tmp_path / "site" / "datasets"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("FAKE_HF = True\nfrom datasets.sub import VALUE\n")
    (pkg / "sub.py").write_text("VALUE = 42\n")
    return tmp_path / "site"


def test_import_datasets_from_repo_root_gives_the_real_one(fake_hf):
    code = ("import sys, datasets; import datasets.sub; "
            "print(datasets.FAKE_HF, datasets.VALUE, datasets.__file__, sys.modules['datasets'] is datasets)")
    out = _run(code, str(fake_hf))
    assert out.returncode == 0, out.stderr
    flag, value, path, same = out.stdout.split()
    assert (flag, value, same) == ("True", "42", "True")
    assert Path(path).resolve() == (fake_hf / "datasets" / "__init__.py").resolve()


def test_noisytail_datasets_is_ours_alongside_the_real_one(fake_hf):
    code = ("import noisytail_datasets as nd, datasets; "
            "print(nd.__file__); print(hasattr(nd, 'build_data'), datasets.FAKE_HF)")
    out = _run(code, str(fake_hf))
    assert out.returncode == 0, out.stderr
    path, flags = out.stdout.strip().splitlines()
    assert Path(path).resolve() == REPO_ROOT / "datasets" / "__init__.py"
    assert flags == "True True"


def test_import_datasets_without_a_real_one_is_a_clear_error():
    # -S drops site-packages, so an installed Hugging Face `datasets` cannot be found either.
    code = ("import sys\ntry:\n    import datasets\nexcept ModuleNotFoundError as e:\n"
            "    print('datasets' in sys.modules); print(e)\n")
    out = _run(code, None, "-S")
    assert out.returncode == 0, out.stderr
    leftover, message = out.stdout.strip().splitlines()
    assert leftover == "False"
    assert "No module named 'datasets'" in message and "noisytail_datasets" in message
