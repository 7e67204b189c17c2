"""A run's failure budget (`max_failed=`): when failed samples make `vdmbench run` exit non-zero.

A run in which no sample succeeded always fails; `max_failed` makes CI stricter than that.
"""

from __future__ import annotations

import math

from vdmbench.core.errors import ConfigError


def parse_max_failed(value: int | float | str | None) -> int | float | None:
    """`max_failed=`: a count of samples (an integer >= 0), a fraction in [0, 1) of the samples
    (0.1 or '10%'), or None (no limit beyond 'at least one sample succeeded')."""
    if value in (None, "", "null", "none"):
        return None
    text = str(value).strip()
    try:
        if text.endswith("%"):
            fraction = float(text[:-1]) / 100
        elif isinstance(value, bool):
            raise ValueError
        elif isinstance(value, int) or text.isdigit():
            if int(text) < 0:
                raise ValueError
            return int(text)
        else:
            fraction = float(text)
    except ValueError:
        fraction = math.nan
    if not 0 <= fraction < 1:
        raise ConfigError(
            f"max_failed must be a count (0, 3, ...), a fraction below 1 (0.1) or a percentage ('10%'), got {value!r}"
        )
    return fraction


def failure_budget_exceeded(failed: int, total: int, max_failed: int | float | None) -> bool:
    """True when more samples failed than `max_failed` allows (a float is a fraction of `total`)."""
    if max_failed is None:
        return False
    if isinstance(max_failed, int):
        return failed > max_failed
    return total > 0 and failed / total > max_failed
