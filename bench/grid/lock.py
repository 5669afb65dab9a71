"""An exclusive lock on a results folder, so two `bench run` commands never write one store.

The lock is `flock` on `<out>/.lock`: the kernel drops it when its holder exits, however it
exits (SIGKILL included), so a dead run never leaves a stale lock behind. The file keeps the
holder's pid, host, command and start time, for the message the second command prints. It
works on local file systems and on NFSv4; on a file system without `flock` support the lock
is skipped with a warning rather than blocking every run.
"""
from __future__ import annotations

import fcntl
import json
import os
import platform
import sys
import time
from pathlib import Path
from types import TracebackType

from bench.core.errors import UsageError

LOCK_NAME = ".lock"


class ResultsLock:
    """`with ResultsLock(out):` holds the folder for the block, or raises a UsageError naming the holder."""

    def __init__(self, root: Path | str) -> None:
        self.path = Path(root) / LOCK_NAME
        self._fd: int | None = None

    def __enter__(self) -> ResultsLock:  # noqa: PYI034 (typing.Self needs Python 3.11)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(fd)
            os.close(fd)
            raise UsageError(
                f"results folder '{self.path.parent}' is in use by another bench run ({holder}); "
                "wait for it to finish, or pass another --out"
            ) from None
        except OSError as exc:  # e.g. a file system without flock: run unlocked, but say so
            print(f"bench: warning: cannot lock '{self.path}' ({exc.strerror}); running without a lock",
                  file=sys.stderr)
            os.close(fd)
            return self
        info = {"pid": os.getpid(), "host": platform.node(), "started": time.strftime("%Y-%m-%d %H:%M:%S"),
                "command": " ".join(["bench", *sys.argv[1:]])[:300]}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(info).encode(), 0)
        self._fd = fd
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


def _holder(fd: int) -> str:
    try:
        info = json.loads(os.pread(fd, 4096, 0).decode() or "{}")
    except (OSError, ValueError):
        info = {}
    if not info:
        return "holder unknown"
    return f"pid {info.get('pid')} on {info.get('host')}, started {info.get('started')}: {info.get('command')}"
