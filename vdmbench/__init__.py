"""vdmbench: benchmark, store and gate video generators."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from vdmbench.core.video import Video

__all__ = ["Video", "__version__"]
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    # `vdmbench.Video` imports torch: only when asked for, so `vdmbench --help` starts in well under a second.
    if name == "Video":
        from vdmbench.core.video import Video

        return Video
    raise AttributeError(f"module 'vdmbench' has no attribute {name!r}")
