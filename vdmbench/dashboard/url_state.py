"""The view in the URL: what a link carries, and how its text is read back (no Streamlit here).

Parameters (all optional; an unknown or stale value is ignored, never an error):
  page      Leaderboard | Compare | Drill-down | Plots | Arena
  task, suite, version
  settings  the first 12 hex digits of the settings group's suite_hash (groups.py)
  tags      comma-separated prompt tags (the sidebar's tag filter)
  weights   leaderboard weights that differ from their default: `metric:weight,...`
  sort      the leaderboard's sort (a metric, or `overall`)
  runs      Compare's runs, baseline first, comma-separated run ids
  run, sample  Drill-down's run and sample
  metric    the Plots page's metric
  card      the model whose card the leaderboard opens
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from urllib.parse import urlencode

SETTINGS_DIGITS = 12  # enough to tell settings groups apart, short enough to read in a link


def encode_list(values: Iterable[str]) -> str:
    return ",".join(str(v) for v in values)


def decode_list(text: str | None) -> list[str]:
    return [part for part in (text or "").split(",") if part]


def encode_weights(weights: Mapping[str, float], defaults: Mapping[str, float]) -> str:
    """Only the weights a user changed, so a link stays short and a default that changes with a new
    metric is not frozen into old links."""
    return ",".join(f"{m}:{w:g}" for m, w in sorted(weights.items()) if defaults.get(m) != w)


def decode_weights(text: str | None) -> dict[str, float]:
    out: dict[str, float] = {}
    for part in decode_list(text):
        name, sep, value = part.rpartition(":")
        try:
            w = float(value)
        except ValueError:
            continue
        if sep and name and 0.0 <= w <= 100.0:  # the weight inputs' own bounds
            out[name] = w
    return out


def short_hash(suite_hash: str | None) -> str:
    return (suite_hash or "")[:SETTINGS_DIGITS]


def match_hash(prefix: str | None, options: Iterable[str]) -> str | None:
    """The option whose hash starts with the link's prefix (None when none or several do)."""
    if not prefix:
        return None
    found = [h for h in options if str(h).startswith(prefix)]
    return found[0] if len(found) == 1 else None


def link(params: Mapping[str, str | None]) -> str:
    """A relative link (`?page=Compare&runs=...`) that opens this view in the running app."""
    return "?" + urlencode({k: v for k, v in params.items() if v not in (None, "")})
