"""Atomic file writes (a crash never leaves a half-written result, config or report) and the lock that
serialises processes writing the same files."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import WriteFailed

if TYPE_CHECKING:  # pandas costs ~0.5 s to import; `status` and `list` write no table
    import pandas as pd


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


UMASK = _umask()
SHORT_WRITE_FREE = 4 << 20  # bytes: less free space than this after a short write means a full disk


def write_failed(path: Path, exc: OSError) -> WriteFailed:
    """One line naming the file and what happened (no space left, read-only, no permission)."""
    reason = {errno.ENOSPC: "the disk is full", errno.EDQUOT: "the disk quota is exceeded",
              errno.EROFS: "the file system is read-only", errno.EACCES: "permission denied",
              errno.EPERM: "permission denied"}.get(exc.errno, exc.strerror or f"{exc}")
    if exc.errno is None:  # numpy's short write ("N requested and M written") carries no errno
        with contextlib.suppress(OSError):
            free = shutil.disk_usage(path.parent).free
            reason = f"the disk is full: {exc}, {free} bytes free" if free < SHORT_WRITE_FREE else reason
    return WriteFailed(f"{path}: could not write ({reason}); free space or fix the permissions, then rerun")


def atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    """Call `write(tmp)` on a temporary file in the same directory, then rename it onto `path`.
    An OSError becomes WriteFailed naming `path`."""
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        os.close(fd)
        write(Path(tmp))
        os.chmod(tmp, 0o666 & ~UMASK)  # mkstemp's 0600 would hide results from the rest of a shared cluster
        with open(tmp, "rb+") as handle:  # on disk before the rename, so a power loss cannot leave it empty
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        raise write_failed(path, exc) from exc
    finally:
        if tmp is not None and os.path.exists(tmp):
            with contextlib.suppress(OSError):
                os.unlink(tmp)


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """Hold an exclusive advisory lock on `path` (created if needed) for the block, waiting for it (POSIX flock;
    the OS releases it when the holder dies). A lock file that cannot be created is a WriteFailed naming it."""
    try:
        fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o644)
    except OSError as exc:
        raise write_failed(path, exc) from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def write_text(path: Path, text: str) -> None:
    atomic_write(path, lambda tmp: tmp.write_text(text))


def write_csv(path: Path, frame: pd.DataFrame) -> None:
    atomic_write(path, lambda tmp: frame.to_csv(tmp, index=False))


def sha256_file(path: Path) -> str:
    """The SHA-256 of a file's bytes, read in 4 MiB blocks (checkpoints and corruption arrays run to GBs)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()
