"""Like-for-like groups: runs are ranked together only when they ran the same effective suite.

A run's `suite_hash` covers everything in the suite that changes results (prompts, seeds, frames,
size, steps, guidance, metrics, ...) after command-line overrides, so two runs with one hash are
comparable and two with different hashes are not. The leaderboard shows one group at a time.

The standard group of a suite version is the one with the most planned samples (a cut-down run,
e.g. fewer prompts or `suite.steps=3`, never replaces a full one); ties go to the group with more
models, then the most recent. Every other group is labelled by its overrides against it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd

# What a group label may name; anything else that differs is summed up as "other settings".
_COUNTED = ("prompts", "seeds")
_IGNORED = {"description"}


def planned_samples(suite_config: dict[str, Any], tags: Sequence[str] = ()) -> int | None:
    """(prompt, seed) pairs the suite plans: per prompt its own seeds, else the suite's; None when
    the stored config has no prompt list (an old or foreign run). With `tags`: only the prompts
    carrying any of them (what a tag filter's coverage is out of)."""
    prompts = suite_config.get("prompts")
    if not isinstance(prompts, list) or not prompts:
        return None
    if tags:
        wanted = set(tags)
        prompts = [p for p in prompts if isinstance(p, dict) and wanted & set(p.get("tags") or ())]
    default = suite_config.get("seeds") or [0]
    default_n = len(default) if isinstance(default, list) else int(default)
    return sum(len(p["seeds"]) if isinstance(p, dict) and isinstance(p.get("seeds"), list) and p["seeds"]
               else default_n for p in prompts)


def tag_coverage(runs: pd.DataFrame, settings: pd.DataFrame, ok_tags: pd.DataFrame,
                 tags: Sequence[str]) -> pd.DataFrame:
    """`runs` with ok / planned / coverage counted over the prompts tagged with any of `tags`
    (ok_tags: run_id, sample_id, tag of each ok sample). A run whose stored config has no prompt
    list keeps an unknown plan (coverage NaN: not penalized), as without a filter."""
    wanted = set(tags)
    tagged = ok_tags[ok_tags.tag.isin(wanted)] if not ok_tags.empty else ok_tags
    ok = tagged.drop_duplicates(["run_id", "sample_id"]).groupby("run_id").size() if not tagged.empty else pd.Series(dtype=int)
    configs = dict(zip(settings.run_id, settings.suite_config))
    out = runs.copy()
    out["ok"] = [int(ok.get(r, 0)) for r in out.run_id]
    planned = [planned_samples(configs.get(r) or {}, tuple(tags)) for r in out.run_id]
    out["planned"] = planned
    out["coverage"] = [min(1.0, o / p) if p else float("nan") for o, p in zip(out.ok, planned)]
    return out


def overrides(standard: dict[str, Any], other: dict[str, Any], name: str = "standard") -> list[str]:
    """How `other` differs from `standard`, as short phrases ('steps 3 (standard: none)'); `name`
    is what the reference is called in them."""
    out = []
    for key in _COUNTED:
        a, b = standard.get(key), other.get(key)
        if a != b:
            na = len(a) if isinstance(a, list) else a
            nb = len(b) if isinstance(b, list) else b
            out.append(f"{key} {nb} ({name}: {na})" if na != nb else f"other {key}")
    for key in sorted((set(standard) | set(other)) - set(_COUNTED) - _IGNORED):
        a, b = standard.get(key), other.get(key)
        if a != b:
            out.append(f"{key} {_short(b)} ({name}: {_short(a)})")
    return out


def _short(v: Any) -> str:
    if v is None:
        return "none"
    text = str(v)
    return text if len(text) <= 30 else text[:27] + "..."


def settings_groups(settings: pd.DataFrame, runs: pd.DataFrame) -> pd.DataFrame:
    """One row per suite_hash among `runs`: suite_hash, planned, runs, models, last_finished,
    standard (bool), label; the standard group first.

    `settings`: run_id, suite_hash, suite_config (dashboard_reads.run_settings);
    `runs`: run_id, model, finished_at (data.runs)."""
    cols = ["suite_hash", "planned", "runs", "models", "last_finished", "standard", "label"]
    joined = runs[["run_id", "model", "finished_at"]].merge(settings, on="run_id")
    if joined.empty:
        return pd.DataFrame(columns=cols)
    rows = []
    for h, part in joined.groupby("suite_hash", sort=False):
        config = part.suite_config.iloc[0]
        rows.append({"suite_hash": h, "planned": planned_samples(config), "runs": len(part),
                     "models": part.model.nunique(), "last_finished": part.finished_at.max(), "config": config})
    groups = pd.DataFrame(rows)
    groups["_planned"] = groups.planned.fillna(-1)
    groups = groups.sort_values(["_planned", "models", "last_finished"], ascending=False).reset_index(drop=True)
    standard = groups.config.iloc[0]
    labels = []
    for i, g in groups.iterrows():
        size = f"{g.planned} samples/run" if g.planned is not None and pd.notna(g.planned) else "samples unknown"
        who = f"{g.models} model{'s' if g.models != 1 else ''}"
        if i == 0:
            labels.append(f"standard settings · {size} · {who}")
        else:
            diff = overrides(standard, g.config) or ["other settings"]
            labels.append(f"{'; '.join(diff)} · {size} · {who}")
    groups["standard"] = [i == 0 for i in range(len(groups))]
    groups["label"] = labels
    return groups[cols]
