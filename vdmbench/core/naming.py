"""Safe file names from untrusted text (prompts, model names), and VBench's naming of clips."""

from __future__ import annotations

import hashlib
import re
import unicodedata

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def safe_filename(text: str, max_len: int = 80) -> str:
    """A portable file name for `text`: no separators, no '..', no NUL, bounded length.

    Distinct texts that sanitize alike (or are truncated) stay distinct through a short hash suffix,
    so nothing is overwritten.
    """
    normalized = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    stem = _UNSAFE.sub("_", normalized).replace("..", "_").strip("._-")[:max_len] or "x"
    if stem != text or len(text) > max_len:
        stem = f"{stem}-{hashlib.sha256(text.encode('utf-8', 'surrogatepass')).hexdigest()[:8]}"
    return stem


_NAME_MAX_BYTES = 255  # the file-name limit of ext4, APFS, NTFS and most others


def vbench_filename(prompt: str, index: int, suffix: str = ".mp4") -> str:
    """VBench's `{prompt}-{index}{suffix}`, made safe for the filesystem with the fewest changes.

    - `/` and `\\` (path separators) become `_`; control characters (newlines, NUL) are dropped;
    - a leading `.` becomes `_` (no hidden files, no `..`);
    - a name over 255 bytes (UTF-8) keeps its first bytes plus `~` and 8 hex digits of the text's
      sha256, so distinct long prompts stay distinct.
    Every prompt of VBench's own prompt file passes unchanged.
    """
    stem = "".join(ch for ch in prompt if ch.isprintable()).replace("/", "_").replace("\\", "_")
    if not stem or stem.startswith("."):
        stem = "_" + stem
    tail = f"-{index}{suffix}"
    room = _NAME_MAX_BYTES - len(tail.encode())
    if len(stem.encode()) > room:
        digest = hashlib.sha256(prompt.encode("utf-8", "surrogatepass")).hexdigest()[:8]
        cut = stem.encode()[: room - 9].decode("utf-8", "ignore")
        stem = f"{cut}~{digest}"
    return stem + tail
