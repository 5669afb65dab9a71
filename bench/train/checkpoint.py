"""Atomic file writes and per-run training checkpoints."""
from __future__ import annotations

import contextlib
import json
import os
import pickle
import re
import tempfile
from pathlib import Path
from typing import Any

import torch


def current_umask() -> int:
    """The process's umask, read without changing it where Linux allows."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write to a temporary file in the same folder, fsync, then rename over `path`, with the mode a
    plain `open` would give (0o666 less the umask; `mkstemp` alone would give 0600).

    A crash leaves either the old file or the new one, never a torn one; on an error the temporary
    file is removed and `path` is left as it was.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), 0o666 & ~current_umask())
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=1, sort_keys=True) + "\n").encode())


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """torch.save through an atomic rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


#: Globals a checkpoint may name beyond those `torch.load(weights_only=True)` accepts by default
#: (tensors and their storages, dtypes, `torch.Size`, `OrderedDict`, and plain containers, strings,
#: numbers, None). A checkpoint holds method state dicts (network and optimiser state dicts, tensors,
#: numbers, a meta sampler's tensors), generator states (byte tensors), the history (dicts of floats)
#: and the intervals (floats): a checkpoint of every registered method, scanned with
#: `torch.serialization.get_unsafe_globals_in_checkpoint`, names no other global, so the list is empty.
#: Add a type here only if a checkpoint truly needs it; it is allowed while a checkpoint loads, never
#: for the process.
CHECKPOINT_GLOBALS: tuple[Any, ...] = ()


class CheckpointRefused(pickle.UnpicklingError):
    """The restricted unpickler stopped at a global no checkpoint of ours names (a callable, a
    class); nothing in the file was run."""


def _refused_globals(message: str) -> str:
    """The globals torch's refusal names, e.g. `posix.system`, or else the unpickler's own reason
    (the last line that is not torch's pointer to its documentation)."""
    names = sorted(set(re.findall(r"GLOBAL (\S+)", message)))
    if names:
        return ", ".join(names)
    lines = [line.strip() for line in message.splitlines()
             if line.strip() and not line.strip().startswith("Check the documentation")]
    return lines[-1][:160] if lines else "unreadable pickle"


def load_checkpoint(path: Path) -> dict[str, Any] | None:
    """The saved state, or None if there is none (or it cannot be read).

    Unpickled with `weights_only=True`: a results folder shared by a cluster is writable by more
    people than the code is, and a full unpickler would run whatever callable a file names. A file
    that names anything outside the allow-list raises `CheckpointRefused` before anything runs.
    """
    if not path.exists():
        return None
    try:
        with torch.serialization.safe_globals(list(CHECKPOINT_GLOBALS)):
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        reason = f"refused: it holds objects a checkpoint never contains ({_refused_globals(str(exc))})"
        raise CheckpointRefused(reason) from None
    except (OSError, RuntimeError, EOFError):
        return None
