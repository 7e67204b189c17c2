"""vdmbench: benchmark, store and gate video generators."""

from vdmbench.core.video import Video

__all__ = ["Video", "__version__"]
__version__ = "0.1.0"
