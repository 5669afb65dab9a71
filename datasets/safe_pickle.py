"""Reading pickles of plain containers and NumPy arrays without running foreign code.

Released dataset files (CIFAR's python batches, CIFAR-N's label archives) are pickles; a copy on a
shared data root could carry any callable. `load_arrays` allows only the globals that NumPy arrays
need (array reconstruction, dtype, and `_codecs.encode` for bytes written under protocol 2) and
refuses everything else, tensor storages included, with `pickle.UnpicklingError`.
"""
from __future__ import annotations

import functools
import pickle
from pathlib import Path
from typing import IO, Any

from bench.core.errors import UsageError


def _reconstruct_function():
    try:  # NumPy >= 2 writes numpy._core; numpy.core still resolves there but warns
        from numpy._core.multiarray import _reconstruct
    except ImportError:  # NumPy 1.x
        from numpy.core.multiarray import _reconstruct
    return _reconstruct


@functools.cache
def allowed_globals() -> dict[tuple[str, str], object]:
    """The only globals a pickle of NumPy arrays may name, by (module, name)."""
    import codecs

    import numpy as np

    rebuild = _reconstruct_function()
    return {
        ("numpy.core.multiarray", "_reconstruct"): rebuild,
        ("numpy._core.multiarray", "_reconstruct"): rebuild,
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
        ("_codecs", "encode"): codecs.encode,
    }


class ArrayUnpickler(pickle.Unpickler):
    """Unpickles plain containers and NumPy arrays only: any other global or a tensor storage is refused."""

    def find_class(self, module: str, name: str) -> Any:
        allowed = allowed_globals()
        if (module, name) not in allowed:
            raise pickle.UnpicklingError(f"global {module}.{name} is not allowed")
        return allowed[(module, name)]

    def persistent_load(self, pid: Any) -> Any:
        raise pickle.UnpicklingError("tensor storages are not expected (NumPy arrays only)")


def load_arrays(file: IO[bytes], encoding: str = "ASCII") -> Any:
    """`pickle.load(file, encoding=...)` restricted to containers and NumPy arrays."""
    return ArrayUnpickler(file, encoding=encoding).load()


def load_array_dict(file: IO[bytes], encoding: str, path: Path, what: str, fix: str) -> dict:
    """The dict of a released file (`load_arrays`), or a UsageError in one line naming `path` and `fix`
    when it cannot be read safely or holds no dict (`what`: what the dict should be)."""
    try:
        content = load_arrays(file, encoding=encoding)
    except Exception as err:  # a refused global, a truncated pickle, ...
        raise UsageError(f"{path} could not be read safely ({err}); {fix}") from None
    if not isinstance(content, dict):
        raise UsageError(f"{path} holds a {type(content).__name__}, not {what}; {fix}")
    return content
