"""Where dataset files are looked for and downloaded to.

Search order for every source: the `data_root` argument, then `$BENCH_DATA`, then the
per-user cache (`~/.cache/noisytail-bench`, where downloads go when neither is set); a
source may add its own system directory.
"""
from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from bench.core.errors import UsageError

ENV_VAR = "BENCH_DATA"
CACHE_DIR = Path.home() / ".cache" / "noisytail-bench"


def user_roots(data_root: str | os.PathLike | None) -> list[Path]:
    """The explicit roots: `data_root` then `$BENCH_DATA` (each only if given)."""
    roots = [Path(data_root).expanduser()] if data_root else []
    env = os.environ.get(ENV_VAR, "")
    if env:
        roots.append(Path(env).expanduser())
    return roots


def download_root(data_root: str | os.PathLike | None) -> Path:
    """Where a download goes: `data_root`, else `$BENCH_DATA`, else the user cache."""
    roots = user_roots(data_root)
    return roots[0] if roots else CACHE_DIR


def first_with(candidates: Iterable[Path], files: Iterable[str]) -> Path | None:
    """The first candidate directory that contains every one of `files`."""
    files = list(files)
    for folder in candidates:
        if all((folder / name).is_file() for name in files):
            return folder
    return None


def dedupe(paths: Iterable[Path]) -> list[Path]:
    """Paths in order, without repeats."""
    seen: dict[str, Path] = {}
    for path in paths:
        seen.setdefault(str(path), path)
    return list(seen.values())


def not_found(title: str, data_root: str | os.PathLike | None, folder: str, download: bool, expected: str,
              fix: str) -> UsageError:
    """The one-line error of a dataset that is never downloaded: what was missing, the folders
    `<root>/<folder>` searched, the `expected` layout and the `fix`."""
    looked = ", ".join(str(r / folder) for r in dedupe([*user_roots(data_root), CACHE_DIR]))
    no_download = " (it cannot be downloaded automatically)" if download else ""
    return UsageError(f"{title} not found{no_download}; looked in: {looked}. Expected {expected}. Fix: {fix} "
                      f"--data-root DIR (DIR/{folder}/ or that folder itself) or set ${ENV_VAR}")


def text_lines(path: Path, title: str, what: str = "") -> list[str]:
    """The lines of a released list file, without the final newline's empty line (other line ends and
    blank lines are left to the caller's grammar); a UsageError names a file that is not UTF-8 text."""
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as err:
        raise UsageError(f"{title}: {what}'{path}' is not UTF-8 text ({err}); use the released file") from err
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()  # the final newline
    return lines
