"""Atomic file writes: write to a temporary name beside the target, then rename onto it.

A reader (or a resumed run) sees either the old file or the complete new one, never half a file.
Temporary names carry the writer's pid, so a resumed run can delete what a killed writer left
(`remove_stale_temporaries`), and they always fit the file-name limit, however long the target's
name is (a prompt-derived name may already be close to 255 bytes).
"""

from __future__ import annotations

import contextlib
import os
import re
import uuid
from pathlib import Path
from typing import Iterator

NAME_MAX_BYTES = 255  # the file-name limit of ext4, APFS, NTFS and most others
_TEMP = re.compile(r"\.~(\d+)~[0-9a-f]+\.tmp$")


def temp_path(path: Path) -> Path:
    """`.{name}.~{pid}~{random}.tmp` beside `path`, the name cut (by bytes) so the whole fits."""
    tail = f".~{os.getpid()}~{uuid.uuid4().hex[:8]}.tmp"
    room = NAME_MAX_BYTES - 1 - len(tail.encode())
    stem = path.name.encode("utf-8", "surrogateescape")[:room].decode("utf-8", "ignore")
    return path.with_name(f".{stem}{tail}")


def temp_owner(name: str) -> int | None:
    """The pid of the process that made a temporary name (None: not one of ours)."""
    m = _TEMP.search(name)
    if m:
        return int(m.group(1))
    if name.startswith(".") and name.endswith(".tmp"):  # older `.{name}.{pid}.tmp` names
        return next((int(p) for p in reversed(name.split(".")[:-1]) if p.isdigit()), None)
    return None


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, *, fsync: bool = False) -> Iterator[Path]:
    """Yield a temporary path to write; on success it replaces `path`, on any error it is deleted.
    The temporary file is not created: the caller writes, copies or links it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path(path)
    try:
        yield tmp
        if fsync:
            _fsync(tmp)
        os.replace(tmp, path)
    finally:
        if tmp.is_symlink() or tmp.exists():
            tmp.unlink()


def write_bytes(path: str | os.PathLike, data: bytes, *, fsync: bool = False) -> Path:
    with atomic_path(path, fsync=fsync) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_text(path: str | os.PathLike, text: str, *, fsync: bool = False) -> Path:
    return write_bytes(path, text.encode("utf-8"), fsync=fsync)


def remove_stale_temporaries(folder: Path) -> None:
    """Delete temporary files under `folder` whose writer process is gone. Call it before this
    process starts writing there: a temporary with our own pid is a leftover of a pid reuse."""
    if not folder.is_dir():
        return
    for tmp in folder.rglob(".*.tmp"):
        pid = temp_owner(tmp.name)
        if pid is None or pid == os.getpid() or not _alive(pid):
            tmp.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
