"""How numbers and labels look wherever vdmbench prints them: terminal, reports, dashboard."""

from __future__ import annotations

import math
import sys
from typing import Any

from rich.console import Console

NOT_COMPARABLE = "not comparable with published numbers"


def format_number(value: Any, digits: int = 4, missing: str = "-") -> str:
    """`digits` decimals; scientific notation for magnitudes >= 1e4 or < 1e-3; `missing` for
    None, NaN and infinities."""
    if value is None:
        return missing
    value = float(value)
    if not math.isfinite(value):
        return missing
    if value == 0:
        return "0"
    if abs(value) >= 1e4 or abs(value) < 1e-3:
        return f"{value:.{max(0, digits - 1)}e}"
    return f"{value:.{digits}f}"


def format_p(p: float | None) -> str:
    """A p-value: three decimals, '<0.001' below that."""
    if p is None:
        return "-"
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def make_console() -> Console:
    """A console that does not squeeze tables to 80 columns when output goes to a file or CI log.
    When the reader of stdout goes away (`| head`) it raises BrokenPipeError, which the command
    line turns into a quiet exit 141 for every command (rich itself would exit 1)."""
    console = Console(width=None if sys.stdout.isatty() else 200)
    console.on_broken_pipe = _raise_broken_pipe  # type: ignore[method-assign]
    return console


def _raise_broken_pipe() -> None:
    raise BrokenPipeError
