"""One run at a time per output folder: an exclusive lock file that names its holder.

``<output_dir>/run.lock`` is held with ``flock`` for the whole of a run (and of a report rewrite) and holds the
holder's pid, host, start time and command line. A second run into the same folder either exits at once with a
`SoftthinkLockedError` that names the holder, or (``wait=True``) waits until the holder is done and then resumes
from what it wrote. The kernel drops an ``flock`` when its process dies, so a lock file left by a killed run is
stale by construction: the next run takes it over (and says so). The holder removes the file when it finishes.

``flock`` is advisory and local: on a network file system (NFS) shared by several hosts it may not exclude a run
on another host; there the holder's host in the message is the hint.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from softthink.errors import SoftthinkLockedError
from softthink.eval.store import storage_error

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

LOCK_NAME = "run.lock"


@dataclass(frozen=True)
class LockHolder:
    """Who holds (or last held) a lock: read from the lock file."""

    pid: int | None
    host: str | None
    started: str | None
    command: str | None

    @classmethod
    def read(cls, path: Path) -> LockHolder | None:
        try:
            data: Any = json.loads(path.read_text(encoding="utf-8") or "null")
        except (OSError, ValueError):
            return None
        if not isinstance(data, dict):
            return None
        return cls(data.get("pid"), data.get("host"), data.get("started"), data.get("command"))

    def describe(self) -> str:
        return f"pid {self.pid} on host {self.host}, started {self.started} ({self.command})"


def _holder_record() -> dict[str, Any]:
    return {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "command": " ".join(sys.argv) or sys.executable,
    }


class RunLock:
    """The exclusive lock of an output folder; a context manager (``with RunLock(dir): ...``).

    Args:
        folder: the output folder (created if missing).
        wait: wait for the holder to finish instead of raising `SoftthinkLockedError`.
        on_wait: called once with the holder's description when ``wait`` has to wait (default: print to stderr).
    """

    def __init__(self, folder: str | Path, *, wait: bool = False, on_wait: Callable[[str], None] | None = None):
        self.folder = Path(folder)
        self.path = self.folder / LOCK_NAME
        self.wait = wait
        self.on_wait = on_wait or (lambda text: print(text, file=sys.stderr, flush=True))
        self._fd: int | None = None

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def acquire(self) -> None:
        """Take the lock (waiting if ``wait``); a stale file of a killed holder is taken over with a warning."""
        if fcntl is None:  # pragma: no cover - Windows
            raise SoftthinkLockedError("locking an output folder needs fcntl (Linux or macOS); Windows lacks it.")
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise storage_error(self.folder, err, "create the output folder") from err
        told = False
        while True:
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as err:
                raise storage_error(self.path, err, "create the lock file") from err
            try:
                flags = fcntl.LOCK_EX if self.wait and told else fcntl.LOCK_EX | fcntl.LOCK_NB
                fcntl.flock(fd, flags)
            except BlockingIOError:
                os.close(fd)
                holder = LockHolder.read(self.path)
                who = holder.describe() if holder else "another process"
                if not self.wait:
                    raise SoftthinkLockedError(
                        f"{self.folder} is in use by another run: {who}. Wait for it to finish (or pass --wait / "
                        "wait_for_lock=True to wait, then resume from its records), or choose another output folder "
                        "(--output-dir). Two runs into one folder would do the same work twice."
                    ) from None
                self.on_wait(f"waiting for the run holding {self.path}: {who}")
                told = True
                continue
            if self._is_current(fd):
                break
            os.close(fd)  # the holder removed the file between our open and our lock: lock the new one
        self._fd = fd
        stale = LockHolder.read(self.path)
        if stale is not None and stale.pid is not None:
            warnings.warn(
                f"{self.path}: taking over the lock of a run that ended without releasing it ({stale.describe()}); "
                "resuming from its records.",
                RuntimeWarning,
                stacklevel=2,
            )
        self._write_holder(fd)

    def _is_current(self, fd: int) -> bool:
        try:
            return os.fstat(fd).st_ino == os.stat(self.path).st_ino
        except FileNotFoundError:
            return False

    def _write_holder(self, fd: int) -> None:
        data = json.dumps(_holder_record()).encode()
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, data, 0)
        except OSError as err:
            self.release()
            raise storage_error(self.path, err, "write the lock file") from err

    def release(self) -> None:
        """Remove the lock file and drop the lock (no-op when not held)."""
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            self.path.unlink()  # before unlocking: a waiter then finds the file gone and locks a fresh one
        except OSError:
            pass  # a read-only folder cannot lose the file; the kernel drops the lock with the descriptor anyway
        os.close(fd)
