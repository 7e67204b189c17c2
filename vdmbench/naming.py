"""Safe file names from untrusted text (prompts, model names)."""

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
