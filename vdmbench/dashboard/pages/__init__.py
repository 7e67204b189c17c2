"""The dashboard's pages: each module has `render(ctx)`; PAGES is the sidebar's order."""

from __future__ import annotations

from typing import Callable

from vdmbench.dashboard.pages import arena, compare, drilldown, leaderboard, plots
from vdmbench.dashboard.pages.common import Context

PAGES: dict[str, Callable[[Context], None]] = {
    "Leaderboard": leaderboard.render,
    "Compare": compare.render,
    "Drill-down": drilldown.render,
    "Plots": plots.render,
    "Arena": arena.render,
}
