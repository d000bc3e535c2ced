"""Files written atomically (write to a temporary name, fsync, rename) so that an interrupted run
never leaves a half-written result, checkpoint or cache entry behind."""
from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

__all__ = ["atomic_path", "write_json", "read_json", "jsonable", "sha256_file", "sha256_bytes",
           "stable_hash", "file_lock", "current_umask", "unit_lock", "lock_holder", "LOCK_STALE_SECONDS"]


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        with open(tmp_path, "rb+") as fh:
            os.fsync(fh.fileno())
        tmp_path.chmod(0o666 & ~current_umask())  # mkstemp makes 0600; a plain open() would follow the umask
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def current_umask() -> int:
    """The process's umask, read without changing it where Linux shows it (other threads may be writing)."""
    with contextlib.suppress(OSError, ValueError, StopIteration):
        status = Path("/proc/self/status").read_text()
        return int(next(line.split()[1] for line in status.splitlines() if line.startswith("Umask:")), 8)
    mask = os.umask(0o022)  # elsewhere reading the umask means setting it: put it straight back
    os.umask(mask)
    return mask


@contextlib.contextmanager
def file_lock(path: str | os.PathLike) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (created if missing) for the block: processes (and threads) that
    lock the same file wait for each other."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)  # released when the file is closed
        yield


# -- one unit of a run (a generator x seed directory) at a time -------------------------------------------
LOCK_FILE = ".unit.lock"  # flock'ed; holds the holder's {host, pid, started} while held
HELD_FILE = ".unit.lock.held"  # the exclusive-create fallback: exists while held, its mtime a heartbeat
LOCK_STALE_SECONDS = 600.0  # fallback only: a held file not refreshed for this long is stale
_NO_FLOCK = (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL)


@contextlib.contextmanager
def unit_lock(directory: str | os.PathLike, *, wait: bool = True,
              stale_after: float = LOCK_STALE_SECONDS) -> Iterator[bool]:
    """Hold the lock of one unit of work (``directory``: a run's ``G/seed-S``) for the block; yields True
    when held, False (``wait=False``) when another process holds it.

    Two mechanisms, chosen per file system:

    - ``flock`` on ``directory/.unit.lock`` (local disks; NFSv4 maps it to server-side byte-range locks
      with leases). The kernel (or the NFS server, when the client's lease expires) releases it when its
      process dies, so a killed worker never leaves a stale lock. The holder's host, pid and start time
      are written into the file for ``radiobench status``.
    - where ``flock`` is refused (ENOLCK: an NFS mount without a lock manager; ``RADIOBENCH_LOCK=exclusive``
      forces it), an exclusively created ``directory/.unit.lock.held`` recording host + pid + time, its
      mtime refreshed by a heartbeat thread every ``stale_after / 10`` s. It is stale, and taken over,
      when its process is gone (same host) or it has not been refreshed for ``stale_after`` s (another host,
      whose processes cannot be seen: a live holder keeps refreshing it, a dead one stops).
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    if os.environ.get("RADIOBENCH_LOCK", "flock") != "exclusive":
        with open(directory / LOCK_FILE, "a+") as fh:
            try:
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
            except BlockingIOError:
                yield False
                return
            except OSError as err:
                if err.errno not in _NO_FLOCK:
                    raise
            else:
                fh.seek(0)
                fh.truncate()
                fh.write(json.dumps(_holder()))
                fh.flush()
                try:
                    yield True
                finally:
                    fh.seek(0)
                    fh.truncate()
                return
    with _exclusive_lock(directory / HELD_FILE, wait, stale_after) as held:
        yield held


def _holder() -> dict[str, Any]:
    return {"host": socket.gethostname(), "pid": os.getpid(), "started": time.time()}


def _stale(path: Path, stale_after: float) -> bool:
    """Whether a fallback lock file's holder is gone (same host: its pid; any host: no heartbeat)."""
    try:
        holder, age = json.loads(path.read_text() or "{}"), time.time() - path.stat().st_mtime
    except (OSError, ValueError):
        return False  # being written or just released: look again
    if age > stale_after:
        return True
    if holder.get("host") == socket.gethostname() and isinstance(holder.get("pid"), int):
        try:
            os.kill(holder["pid"], 0)
        except ProcessLookupError:
            return True
        except PermissionError:  # another user's live process
            return False
    return False


@contextlib.contextmanager
def _exclusive_lock(path: Path, wait: bool, stale_after: float) -> Iterator[bool]:
    while True:
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666 & ~current_umask())
            break
        except FileExistsError:
            if _stale(path, stale_after):  # rename is atomic: of several processes taking over, one wins
                with contextlib.suppress(FileNotFoundError):
                    os.replace(path, path.with_name(f"{path.name}.stale-{os.getpid()}"))
                    os.unlink(path.with_name(f"{path.name}.stale-{os.getpid()}"))
                continue
            if not wait:
                yield False
                return
            time.sleep(min(1.0, stale_after / 10))
    with os.fdopen(fd, "w") as fh:
        fh.write(json.dumps(_holder()))
    stop = threading.Event()

    def heartbeat() -> None:
        while not stop.wait(stale_after / 10):
            with contextlib.suppress(OSError):
                os.utime(path)

    beat = threading.Thread(target=heartbeat, daemon=True)
    beat.start()
    try:
        yield True
    finally:
        stop.set()
        beat.join()
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def lock_holder(directory: str | os.PathLike, stale_after: float = LOCK_STALE_SECONDS) -> dict[str, Any] | None:
    """Who holds ``directory``'s unit lock ({host, pid, started}; ``{}`` when held but not yet described),
    or None when nobody does."""
    directory = Path(directory)
    held = directory / HELD_FILE
    if held.exists() and not _stale(held, stale_after):
        with contextlib.suppress(OSError, ValueError):
            return dict(json.loads(held.read_text() or "{}"))
        return {}
    path = directory / LOCK_FILE
    if not path.exists():
        return None
    with open(path) as fh:
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            with contextlib.suppress(ValueError):
                return dict(json.loads(fh.read() or "{}"))
            return {}
        except OSError:
            return None
    return None


def write_json(path: str | os.PathLike, obj: Any) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=False, default=_json_default) + "\n")


def read_json(path: str | os.PathLike) -> Any:
    return json.loads(Path(path).read_text())


def _json_default(o: Any) -> Any:
    import numpy as np

    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    if isinstance(o, (set, frozenset)):
        return sorted(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def sha256_bytes(*parts: bytes) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(len(p).to_bytes(8, "little"))
        h.update(p)
    return h.hexdigest()


def stable_hash(obj: Any, length: int = 16) -> str:
    """Hash of a JSON-serialisable object, independent of dict order."""
    text = json.dumps(obj, sort_keys=True, default=_json_default)
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def jsonable(obj: Any) -> Any:
    """``obj`` as JSON stores it (tuples as lists, numpy scalars as numbers), so stored and current values
    compare equal."""
    return json.loads(json.dumps(obj, default=_json_default))
