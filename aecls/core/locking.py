"""One inter-process lock for aecls: `flock` on a file, held by the process that took it.

Two users: the study workers' trial lock (aecls.hpo.storage.trial_lock: count the trials, then
start one) and the pipeline's one-per-folder lock, which keeps its holder's pid in the file to say
who holds it. Written here, not taken from the `filelock` package: its lock file is truncated by
whoever tries it, which would erase that pid.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path


class FileLock:
    """An exclusive lock on `path` (created if missing), released by `release` or at exit."""

    def __init__(self, path: str | Path) -> None:
        self.path, self._file = Path(path), None

    def acquire(self, blocking: bool = True) -> bool:
        """Take the lock, waiting for it unless not `blocking`; False if another process holds it."""
        f = open(self.path, "a+")
        try:
            fcntl.flock(f, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        except BlockingIOError:
            f.close()
            return False
        self._file = f
        return True

    def release(self) -> None:
        if self._file is not None:
            fcntl.flock(self._file, fcntl.LOCK_UN)
            self._file.close()
            self._file = None

    def write_holder(self) -> None:
        """Record this process's pid in the lock file (for `holder`)."""
        self._file.truncate(0)
        self._file.write(str(os.getpid()))
        self._file.flush()

    def holder(self) -> str:
        """The pid the holder recorded, or "unknown"."""
        try:
            return self.path.read_text().strip() or "unknown"
        except OSError:
            return "unknown"
