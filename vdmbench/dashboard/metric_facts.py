"""What the leaderboard needs to know about each output beyond what a run stores with it.

A small explicit table, kept in the dashboard layer on purpose: reading the declarations through
`vdmbench.metrics` would import torch and every metric module into the app (~8 s of CPU at the
first page view) for a handful of constants. tests/test_dashboard_v2.py checks every entry against
the declarations in vdmbench/metrics, so the table cannot drift from them silently; an output
missing here is only shown unclipped and counted in the overall score (add it here).

- RANGES: an output's declared value range (`Output.range`), for clipping CIs to it.
- FOLDED_UNDER: outputs that measure the same thing as another column (a rescaling of it, one of
  the parts averaged into it, or an overlapping statistic of the same quantity). They are shown
  next to their parent but left out of the overall score by default, so nothing counts twice.
- Derived outputs (a run stores `details.derived`, e.g. VBench's Quality/Total scores) combine other
  columns: also shown, also out of the overall score by default.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

RANGES: dict[str, tuple[float, float]] = {
    "appearance_style": (-1.01, 1.01),
    "background_consistency": (0.0, 1.0),
    "clip_similarity": (0.0, 100.0),
    "clip_temporal_consistency": (-1.0, 1.0),
    "dynamic_degree": (0.0, 1.0),
    "dynamic_degree_moving_pairs": (0.0, 1.0),
    "edit_adherence": (0.0, 1.0),
    "edit_preservation_psnr": (0.0, 100.0),
    "edit_score": (0.0, 1.0),
    "flicker": (0.0, 1.0),
    "flicker_mean_abs_diff": (0.0, 255.0),
    "flow_warping_error": (0.0, 1.0),
    "fvd": (0.0, math.inf),
    "jedi": (0.0, math.inf),
    "judge_adherence": (0.0, 1.0),
    "judge_adherence_answered": (0.0, 1.0),
    "judge_adherence_p_yes": (0.0, 1.0),
    "judge_vqascore": (0.0, 1.0),
    "judge_object_class": (0.0, 1.0),
    "judge_object_class_p_yes": (0.0, 1.0),
    "judge_multiple_objects": (0.0, 1.0),
    "judge_multiple_objects_p_yes": (0.0, 1.0),
    "judge_color": (0.0, 1.0),
    "judge_color_p_yes": (0.0, 1.0),
    "judge_spatial_relationship": (0.0, 1.0),
    "judge_spatial_relationship_p_yes": (0.0, 1.0),
    "judge_scene": (0.0, 1.0),
    "judge_scene_p_yes": (0.0, 1.0),
    "judge_human_action": (0.0, 1.0),
    "judge_human_action_p_yes": (0.0, 1.0),
    "motion_mean": (0.0, math.inf),
    "motion_smoothness": (0.0, 1.0),
    "motion_smoothness_mean_abs_diff": (0.0, 255.0),
    "motion_top5": (0.0, math.inf),
    "overall_consistency": (-1.0, 1.0),
    "psnr": (0.0, 100.0),
    "shapes_adherence": (0.0, 1.0),
    "shapes_color": (0.0, 1.0),
    "shapes_direction": (0.0, 1.0),
    "shapes_shape": (0.0, 1.0),
    "ssim": (-1.0, 1.0),
    "subject_consistency": (0.0, 1.0),
    "temporal_flickering": (0.0, 1.0),
    "temporal_flickering_static": (0.0, 1.0),
    "temporal_style": (-1.0, 1.0),
}

# output -> (parent output, why it is not counted again)
FOLDED_UNDER: dict[str, tuple[str, str]] = {
    "flicker_mean_abs_diff": ("flicker", "the same measurement: flicker = (255 - this) / 255"),
    "motion_smoothness_mean_abs_diff": ("motion_smoothness", "the same measurement on another scale"),
    "motion_top5": ("motion_mean", "an overlapping statistic of the same flow magnitudes"),
    "shapes_color": ("shapes_adherence", "one of the three parts averaged into it"),
    "shapes_shape": ("shapes_adherence", "one of the three parts averaged into it"),
    "shapes_direction": ("shapes_adherence", "one of the three parts averaged into it"),
    "judge_adherence_p_yes": ("judge_adherence", "the same judge's answers as a probability"),
    "judge_adherence_answered": ("judge_adherence", "a share of the same judge's answers"),
    "judge_object_class_p_yes": ("judge_object_class", "the same judge's answers as a probability"),
    "judge_multiple_objects_p_yes": ("judge_multiple_objects", "the same judge's answers as a probability"),
    "judge_color_p_yes": ("judge_color", "the same judge's answers as a probability"),
    "judge_spatial_relationship_p_yes": ("judge_spatial_relationship", "the same judge's answers as a probability"),
    "judge_scene_p_yes": ("judge_scene", "the same judge's answers as a probability"),
    "judge_human_action_p_yes": ("judge_human_action", "the same judge's answers as a probability"),
    "imaging_quality_musiq": ("imaging_quality", "the same measurement on MUSIQ's own scale"),
    "edit_adherence": ("edit_score", "one of the parts of the edit score"),
    "edit_preservation_psnr": ("edit_score", "one of the parts of the edit score"),
    "dynamic_degree_moving_pairs": ("dynamic_degree", "the same flow test counted per frame pair"),
}

# Outputs declared with is_score=False that a run can still store (never ranked).
NOT_SCORES = frozenset({"temporal_flickering_static"})


def value_range(metric: str) -> tuple[float, float] | None:
    return RANGES.get(metric)


def parent_of(metric: str) -> str | None:
    folded = FOLDED_UNDER.get(metric)
    return folded[0] if folded else None


def excluded_by_default(metric: str, derived: Mapping[str, bool], flagged: set[str] | frozenset[str]) -> str | None:
    """Why a metric starts with weight 0 in the overall score, or None when it counts.

    `derived` maps metric -> the run's `details.derived`; `flagged` are the not-comparable ones."""
    if metric in NOT_SCORES or metric.endswith("_weight"):
        return "not a quality score"
    if metric in flagged:
        return "not comparable with published numbers"
    if derived.get(metric):
        return "derived from other columns"
    folded = FOLDED_UNDER.get(metric)
    if folded:
        return f"folded under {folded[0]}: {folded[1]}"
    return None
