"""The metric contract.

Every metric is a `torchmetrics.Metric`: explicit float64 states merged by `dist_reduce_fx="sum"`,
so it streams over any number of clips in constant memory and reduces across processes unchanged.

A metric module exposes `METRICS = [Class, ...]`; each class declares, once:
- `name`: its registry name (what suites list);
- `outputs`: the values it produces, as `Output(name, higher_is_better, range, description)`
  (the first is its headline value; the gate, the store and the dashboard read directions here);
- `inputs`: what it needs besides the pixels (a subset of INPUTS).
Per-sample metrics also return one value per clip (`sample_values`) for the store.

Weighted aggregation: a per-sample metric whose run value is not the mean over clips (VBench
dimensions that average over all frame pairs of all videos) names one of its own outputs in
`aggregate_weight`; that output holds each clip's weight (e.g. its number of frame pairs), and the
run value of every other output is sum(w * v) / sum(w). The weight output is not a score
(`Output(..., is_score=False)`): it is stored per sample, its `compute()` value is the total weight,
and the run's statistics leave it out of run_metrics (the total is in the weighted rows' details).

Derived metrics (`DerivedMetric`) read no pixels: at the end of a run they are computed from the
other metrics' stored per-sample values (e.g. VBench's Quality/Semantic/Total scores).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import torch

from vdmbench.core.errors import MetricInputError
from vdmbench.metrics.torchmetrics_import import import_metric_class

if TYPE_CHECKING:  # only for annotations: the metrics layer does not need pandas at import time
    import pandas as pd
    from torchmetrics import Metric
else:  # the same class, without torchmetrics' ~7 s package import (metrics/torchmetrics_import.py)
    Metric = import_metric_class()
from vdmbench.features.cache import SharedWork

# What a metric may declare in `inputs`: ClipBatch fields, and "reference" (the suite's real set).
INPUTS = frozenset({"prompts", "fps", "ground_truth", "source", "cond_indices", "reference", "prompt_params"})


class Output(str):
    """One value a metric produces: its name plus how to read it.

    An Output is a `str` equal to its name, so code that treats `metric.outputs` as names (the
    store, the runner, older plugins) keeps working while the declaration travels with it."""

    higher_is_better: bool
    range: tuple[float, float] | None
    description: str
    # False for values that are not a quality score (an aggregation weight such as a clip's number
    # of frame pairs): the gate and the dashboard must not rank or gate on them.
    is_score: bool

    def __new__(cls, name: str, higher_is_better: bool, range: tuple[float, float] | None = None,
                description: str = "", is_score: bool = True) -> Output:
        if not isinstance(higher_is_better, bool):
            raise TypeError(f"Output {name!r}: higher_is_better must be True or False, got {higher_is_better!r}")
        if range is not None and not (len(range) == 2 and range[0] <= range[1]):
            raise TypeError(f"Output {name!r}: range must be (low, high) with low <= high, got {range!r}")
        self = super().__new__(cls, name)
        self.higher_is_better = higher_is_better
        self.range = (float(range[0]), float(range[1])) if range is not None else None
        self.description = description
        self.is_score = bool(is_score)
        return self

    @property
    def name(self) -> str:
        return str(self)

    @property
    def direction(self) -> str:
        return "higher" if self.higher_is_better else "lower"

    def __getnewargs__(self) -> tuple[Any, ...]:  # pickling: rebuild with the declaration
        return (str(self), self.higher_is_better, self.range, self.description, self.is_score)

    def __repr__(self) -> str:
        return f"Output({str(self)!r}, higher_is_better={self.higher_is_better}, range={self.range})"


def _declare(cls: type[VideoMetric]) -> None:
    """Normalize a metric class's declaration (also the older spelling: `outputs` as names,
    `higher_is_better_by_output`, `requires`) and derive the older attributes from it."""
    own = cls.__dict__
    if "requires" in own and "inputs" not in own:
        cls.inputs = frozenset(own["requires"])
    unknown = set(cls.inputs) - INPUTS
    if unknown:
        raise TypeError(f"metric {cls.__name__}: unknown inputs {sorted(unknown)}; known: {sorted(INPUTS)}")
    cls.requires = frozenset(cls.inputs)
    if "outputs" in own:
        headline = own.get("higher_is_better", cls.higher_is_better)
        by_output = own.get("higher_is_better_by_output", {})
        cls.outputs = tuple(
            o if isinstance(o, Output) else Output(o, bool(by_output.get(o, headline)))
            for o in own["outputs"]
        )
    if cls.outputs:
        cls.higher_is_better = cls.outputs[0].higher_is_better
        cls.higher_is_better_by_output = {o.name: o.higher_is_better for o in cls.outputs}
    weight = getattr(cls, "aggregate_weight", None)
    if weight is not None:
        names = [o.name for o in cls.outputs]
        if weight not in names:
            raise TypeError(f"metric {cls.__name__}: aggregate_weight {weight!r} is not one of its outputs {names}")
        if weight == names[0]:
            raise TypeError(f"metric {cls.__name__}: aggregate_weight {weight!r} cannot be the headline output")
        if cls.output(weight).is_score:
            raise TypeError(f"metric {cls.__name__}: declare its weight output {weight!r} with is_score=False")


@dataclass
class ClipBatch:
    """A batch of clips plus what some metrics need besides the pixels."""

    videos: torch.Tensor  # uint8 [B, T, H, W, 3]
    prompts: list[str] = field(default_factory=list)
    fps: list[float] = field(default_factory=list)
    sample_ids: list[str] = field(default_factory=list)
    ground_truth: torch.Tensor | None = None  # uint8 [B, T, H, W, 3] (prediction/interpolation)
    source: torch.Tensor | None = None  # uint8 [B, T, H, W, 3] (editing: the clip that was edited)
    cond_indices: list[tuple[int, ...]] = field(default_factory=list)  # frames given to the model
    sha256: list[str] = field(default_factory=list)  # content hash of each clip's file, for caches
    # Each prompt's suite params (a VBench import keeps VBench's auxiliary info under "vbench").
    prompt_params: list[dict[str, Any]] = field(default_factory=list)

    def __len__(self) -> int:
        return int(self.videos.shape[0])


@dataclass
class MetricContext:
    """What the runner lends metrics: device, batching, caches, weights and the reference set."""

    device: str = "cpu"
    batch_size: int = 8
    precision: str = "fp32"
    cache_dir: Path | None = None  # feature caches (keyed by content hash)
    weights_path: dict[str, str] = field(default_factory=dict)  # explicit weight files by name
    # Iterator over the suite's reference clips (real videos), or None when the suite has none.
    reference: Callable[[], Iterator[ClipBatch]] | None = None
    reference_id: str | None = None  # content hash of the reference set, for feature caches
    seed: int = 0
    # Models and per-clip results (CLIP frame embeddings, optical flows) shared by the metrics built
    # with this context, so a suite listing clip_similarity and clip_temporal (or flow_warping_error
    # and motion) loads and computes them once. One per context, i.e. per run.
    shared: SharedWork = field(default_factory=SharedWork, repr=False, compare=False)


def check_uint8_videos(videos: torch.Tensor, metric: str) -> torch.Tensor:
    """Refuse anything but uint8 [B, T, H, W, 3]: floats in [0, 1] here are the classic FVD bug."""
    if not isinstance(videos, torch.Tensor):
        raise MetricInputError(f"{metric}: expected a torch.Tensor of videos, got {type(videos).__name__}")
    if videos.dtype != torch.uint8:
        hint = ""
        if torch.is_floating_point(videos) and videos.numel() and float(videos.max()) <= 1.0:
            hint = " (these look like floats in [0, 1]; multiply by 255 and convert to uint8)"
        raise MetricInputError(
            f"{metric}: expected uint8 videos in [0, 255] with shape [B, T, H, W, 3], got {videos.dtype}{hint}"
        )
    if videos.ndim != 5 or videos.shape[-1] != 3:
        raise MetricInputError(f"{metric}: expected shape [B, T, H, W, 3], got {list(videos.shape)}")
    return videos


class VideoMetric(Metric):
    """Base class of all vdmbench metrics."""

    name: ClassVar[str]
    outputs: ClassVar[tuple[Output, ...]] = ()
    inputs: ClassVar[frozenset[str]] = frozenset()
    per_sample: ClassVar[bool] = True
    min_frames: int = 1  # an instance may raise it (FVD with repeat_frames)
    full_state_update = False
    # Derived from `outputs` and `inputs` (see _declare), for callers of the older names:
    # higher_is_better (torchmetrics' attribute: the headline output's), higher_is_better_by_output
    # and requires.
    higher_is_better_by_output: ClassVar[dict[str, bool]] = {}
    requires: ClassVar[frozenset[str]] = frozenset()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        _declare(cls)

    def __init__(self, context: MetricContext | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.context = context or MetricContext()

    @classmethod
    def output(cls, name: str) -> Output:
        """The declaration of one of this metric's outputs."""
        for o in cls.outputs:
            if o == name:
                return o
        raise KeyError(f"{cls.name} has no output {name!r}; it has {', '.join(cls.outputs)}")

    def direction(self, output: str) -> bool:
        """True if higher is better for `output`."""
        return self.output(output).higher_is_better

    @property
    def comparable(self) -> bool:
        """False when the numbers cannot be compared with published ones (e.g. random weights)."""
        return True

    def describe(self) -> dict[str, Any]:
        """Stored with each run's metric rows: how the number was made."""
        return {"metric": self.name, "comparable": self.comparable}

    def check_batch(self, batch: ClipBatch) -> torch.Tensor:
        videos = check_uint8_videos(batch.videos, self.name)
        if videos.shape[1] < self.min_frames:
            raise MetricInputError(
                f"{self.name}: needs at least {self.min_frames} frames per clip, got {videos.shape[1]}"
            )
        for need in sorted(self.inputs - {"reference"}):  # the reference set comes from the context
            value = getattr(batch, need)
            if value is None or (isinstance(value, list) and len(value) != len(batch)):
                raise MetricInputError(f"{self.name}: needs {need} for every clip in the batch")
        return videos

    def sample_notes(self, batch: ClipBatch) -> list[dict[str, Any]] | None:
        """What the last `sample_values(batch)` found per clip besides numbers (a judge's answers),
        stored in the sample's notes under the metric's name; None: nothing."""
        return None

    def sample_values(self, batch: ClipBatch) -> dict[str, torch.Tensor]:
        """Per-clip values {output: float64 [B]} (per-sample metrics only)."""
        raise NotImplementedError(f"{self.name} is a set-level metric: it has no per-clip values")


class PerSampleMetric(VideoMetric):
    """A metric defined per clip; the run value of each output is its mean over clips, or, when the
    class names an `aggregate_weight` output, sum(w * v) / sum(w) with w that output's per-clip
    value (the weight output's own run value is then the total weight)."""

    count: torch.Tensor  # a state (torchmetrics' attributes are untyped otherwise)
    aggregate_weight: ClassVar[str | None] = None

    def __init__(self, context: MetricContext | None = None, **kwargs: Any) -> None:
        super().__init__(context, **kwargs)
        for out in self.outputs:
            self.add_state(f"sum_{out}", torch.zeros((), dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("count", torch.zeros((), dtype=torch.float64), dist_reduce_fx="sum")

    def update(self, batch: ClipBatch, values: dict[str, torch.Tensor] | None = None) -> None:
        """Accumulate a batch; pass `values` from `sample_values` to avoid computing them twice."""
        if values is None:
            values = self.sample_values(batch)
        weight = self.aggregate_weight
        w = values[weight].to(torch.float64) if weight is not None else None
        for out in self.outputs:
            v = values[out].to(torch.float64)
            if w is not None and out != weight:
                # A clip of weight 0 (no frame pairs) adds nothing, even when its value is NaN.
                v = torch.where(w != 0, w * v, torch.zeros_like(v))
            setattr(self, f"sum_{out}", getattr(self, f"sum_{out}") + v.sum())
        self.count += len(batch)

    def compute(self) -> dict[str, torch.Tensor]:
        if self.count == 0:
            raise MetricInputError(f"{self.name}: no clips were scored")
        weight = self.aggregate_weight
        if weight is None:
            return {out: getattr(self, f"sum_{out}") / self.count for out in self.outputs}
        total = getattr(self, f"sum_{weight}")
        if total == 0:
            raise MetricInputError(f"{self.name}: the clips' total weight ({weight}) is 0, so there is no "
                                   "value to average (e.g. every clip has a single frame)")
        return {out: total if out == weight else getattr(self, f"sum_{out}") / total for out in self.outputs}


@dataclass(frozen=True)
class DerivedRow:
    """One run-level value of a derived metric, with its CI and how it was made."""

    output: str
    value: float
    ci_low: float | None
    ci_high: float | None
    n: int
    details: dict[str, Any]


class DerivedMetric(VideoMetric):
    """A run-level metric computed from the other metrics' stored per-sample values, not from
    pixels (so it streams nothing): the runner calls `derive` at the end of a run."""

    per_sample: ClassVar[bool] = False

    def update(self, batch: ClipBatch, values: dict[str, torch.Tensor] | None = None) -> None:
        """Nothing to accumulate: a derived metric reads the other metrics' values."""

    def compute(self) -> dict[str, torch.Tensor]:
        raise MetricInputError(f"{self.name}: computed from the other metrics' per-sample values at the end of a "
                               "run (`vdmbench run`, or vdmbench.run.vbench_score), not from clips")

    def derive(self, samples: pd.DataFrame, metrics: list[VideoMetric]) -> list[DerivedRow]:
        """Rows from `samples` (one per sample and output: sample_id, prompt_id, metric, value),
        given the run's `metrics` (their declarations say how each output aggregates)."""
        raise NotImplementedError

