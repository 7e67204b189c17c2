"""One exception family, so the CLI can print a one-line message and exit non-zero.

Every message says what was wrong and what to do about it.
"""


class VdmbenchError(Exception):
    """Base class of all errors vdmbench raises on purpose."""

    exit_code = 2


class ConfigError(VdmbenchError):
    """A suite, adapter or metric configuration is invalid or cannot be found."""


class VideoError(VdmbenchError):
    """A video cannot be read, is corrupt, or does not have the expected shape."""


class AdapterError(VdmbenchError):
    """A backend failed to generate a video for one request."""


class MetricInputError(VdmbenchError, ValueError):
    """A metric received input in the wrong range, dtype or shape."""


class WeightsError(VdmbenchError):
    """Model weights are missing, corrupt or in an unsafe format."""


class StoreError(VdmbenchError):
    """The results database cannot be opened or written."""


def error_text(e: BaseException) -> str:
    """How a failure is stored with a sample: our own errors as they are (they say what to do),
    anything else prefixed with its type."""
    text = str(e) or type(e).__name__
    return text if isinstance(e, VdmbenchError) else f"{type(e).__name__}: {text}"
