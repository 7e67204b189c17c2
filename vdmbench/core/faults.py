"""Failures of the machine, not of a sample: a full disk, a quota, a read-only or failing file
system, a killed worker process. They stop the run with one line that says what to do; the run
stays resumable and its samples are tried again by the same command (never stored as failed)."""

from __future__ import annotations

import errno

from vdmbench.core.errors import VdmbenchError

# errno -> (what happened, what to do)
_ERRNOS = {
    errno.ENOSPC: ("no space left on device", "free space"),
    errno.EDQUOT: ("disk quota exceeded", "free space or raise the quota"),
    errno.EROFS: ("read-only file system", "make it writable"),
    errno.EIO: ("input/output error", "check the disk"),
}
# The same failures as the text of libraries that do not keep the OSError (DuckDB, FFmpeg, workers).
_TEXTS = (
    ("no space left on device", errno.ENOSPC),
    ("disk quota exceeded", errno.EDQUOT),
    ("read-only file system", errno.EROFS),
    ("input/output error", errno.EIO),
)
_KILLED = ("is killed by signal", "exited unexpectedly", "database has been invalidated")


class EnvironmentFailure(VdmbenchError):
    """The machine failed while storing or computing: stop the run, keep it resumable."""

    exit_code = 2


def environment_failure(e: BaseException) -> tuple[str, str] | None:
    """(what happened, what to do) when `e` (or an exception it was raised from) is a failure of
    the machine rather than of the sample; None otherwise."""
    seen: set[int] = set()
    cur: BaseException | None = e
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        if isinstance(cur, EnvironmentFailure):
            return str(cur), ""
        if isinstance(cur, OSError) and cur.errno in _ERRNOS:
            return _ERRNOS[cur.errno]
        found = environment_failure_text(str(cur))
        if found is not None:
            return found
        cur = cur.__cause__ or cur.__context__
    return None


def environment_failure_text(text: str) -> tuple[str, str] | None:
    """The same, from an error's text (e.g. a sample's stored error)."""
    lowered = text.lower()
    for words, code in _TEXTS:
        if words in lowered:
            return _ERRNOS[code]
    if any(words in lowered for words in _KILLED):
        if "invalidated" in lowered:
            return "the results database stopped after a failed write", "check free space and the disk"
        return "a worker process was killed", "check the machine's memory"
    return None


def raise_if_environment(e: BaseException, what: str, *, doing: str = "writing") -> None:
    """Raise an EnvironmentFailure naming `what` when `e` is a failure of the machine."""
    if isinstance(e, EnvironmentFailure):
        raise e
    found = environment_failure(e)
    if found is not None:
        happened, todo = found
        raise EnvironmentFailure(f"{happened} while {doing} {what}; {todo} and run the same command "
                                 "again (the run resumes where it stopped)") from e
