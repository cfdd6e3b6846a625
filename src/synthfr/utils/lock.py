"""One lock file per output folder, so two runs never write into the same folder at once.

``with folder_lock(out, "generate"):`` creates ``OUT/.synthfr.lock`` (or ``.synthfr-<key>.lock``) atomically
(``O_CREAT | O_EXCL``) holding ``{pid, host, started, command}``. A second run into the same folder fails at
once with :class:`synthfr.errors.LockedError` naming the holder. A lock whose process is gone (same host, dead
pid: a ``kill -9``) is stale and is taken over; a lock held on another host is never broken automatically
(the message says how to remove it by hand). The lock is removed on exit, also on errors and Ctrl-C.

``key`` lets cooperating processes (torchrun ranks writing one folder) hold one lock each.
"""
from __future__ import annotations

import contextlib
import json
import os
import socket
import sys
import time
from pathlib import Path
from typing import Iterator

from synthfr.errors import LockedError

__all__ = ["folder_lock", "FolderLock", "lock_path"]


def lock_path(folder: str | Path, key: str | None = None) -> Path:
    return Path(folder) / (".synthfr.lock" if not key else f".synthfr-{key}.lock")


def _alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    # a zombie (finished, not yet reaped) holds nothing
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


class FolderLock:
    """An exclusive lock on ``folder`` (created if missing); see the module docstring."""

    def __init__(self, folder: str | Path, what: str = "synthfr", key: str | None = None):
        self.folder = Path(folder)
        self.what = what
        self.path = lock_path(self.folder, key)
        self.held = False

    def _info(self) -> dict:
        return {"pid": os.getpid(), "host": socket.gethostname(), "what": self.what,
                "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "command": " ".join(sys.argv)[:500]}

    def acquire(self) -> "FolderLock":
        self.folder.mkdir(parents=True, exist_ok=True)
        for _ in range(3):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                holder = self._read()
                if holder is None:  # being written right now, or garbage: look again shortly
                    time.sleep(0.2)
                    holder = self._read()
                if self._stale(holder):
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(self.path)
                    continue
                h = holder or {}
                raise LockedError(
                    f"{self.folder} is in use by another {h.get('what', 'synthfr')} run (pid {h.get('pid', '?')} on "
                    f"{h.get('host', '?')}, started {h.get('started', '?')}; lock file {self.path}); wait for it to "
                    "finish, or delete the lock file if that process is gone") from None
            with os.fdopen(fd, "w") as f:
                json.dump(self._info(), f)
            self.held = True
            return self
        raise LockedError(f"could not take the lock {self.path}; another run keeps re-creating it")

    def _read(self) -> dict | None:
        try:
            doc = json.loads(self.path.read_text())
            return doc if isinstance(doc, dict) else None
        except (OSError, ValueError):
            return None

    def _stale(self, holder: dict | None) -> bool:
        if holder is None:
            # unreadable for a while: a crash between create and write; stale after a minute
            try:
                return time.time() - self.path.stat().st_mtime > 60
            except FileNotFoundError:
                return True
        if holder.get("host") != socket.gethostname():
            return False  # cannot see that machine's processes
        try:
            pid = int(holder.get("pid", -1))
        except (TypeError, ValueError):
            return True
        return pid != os.getpid() and not _alive(pid)

    def release(self) -> None:
        if self.held:
            holder = self._read()
            if holder is None or holder.get("pid") == os.getpid():
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(self.path)
            self.held = False

    def __enter__(self) -> "FolderLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


@contextlib.contextmanager
def folder_lock(folder: str | Path, what: str = "synthfr", key: str | None = None) -> Iterator[FolderLock]:
    lock = FolderLock(folder, what, key).acquire()
    try:
        yield lock
    finally:
        lock.release()
