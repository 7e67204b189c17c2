"""The metrics registry and what callers read from the metrics' declarations.

Where a metric comes from (vdmbench.core.registry):
- the built-in table below, imported only when its name is used;
- any other module of this package exposing `METRICS = [...]`: adding a metric is one file here
  (and its name in a suite);
- the `vdmbench.metrics` entry-point group of installed packages: `name = "module:Class"`, or
  `anything = "module"` for a module exposing `METRICS`.
"""

from __future__ import annotations

import pkgutil
from typing import Any

from vdmbench.core.errors import ConfigError
from vdmbench.core.registry import Registry
from vdmbench.metrics.base import INPUTS, ClipBatch, MetricContext, Output, PerSampleMetric, VideoMetric

__all__ = [
    "INPUTS",
    "REGISTRY",
    "ClipBatch",
    "MetricContext",
    "Output",
    "PerSampleMetric",
    "VideoMetric",
    "available_metrics",
    "build_metric",
    "metric_class",
    "metric_outputs",
    "metric_spec",
    "output_declaration",
    "output_direction",
    "output_metric",
]

BUILTIN = {
    "clip_similarity": "vdmbench.metrics.clip:ClipSimilarity",
    "clip_temporal": "vdmbench.metrics.clip:ClipTemporalConsistency",
    "flicker": "vdmbench.metrics.flicker:Flicker",
    "flow_warping_error": "vdmbench.metrics.flow:FlowWarpingError",
    "fvd": "vdmbench.metrics.fvd:FVD",
    "kvd": "vdmbench.metrics.fvd:KVD",
    "motion": "vdmbench.metrics.motion:Motion",
    "reconstruction": "vdmbench.metrics.reconstruction:Reconstruction",
    "shapes_adherence": "vdmbench.metrics.shapes_adherence:ShapesAdherence",
    "shapes_editing": "vdmbench.metrics.editing:ShapesEditing",
    # VBench's dimensions (docs/vbench.md) and VBench's scores over them
    "aesthetic_quality": "vdmbench.metrics.vbench_aesthetic:AestheticQuality",
    "appearance_style": "vdmbench.metrics.vbench_appearance_style:AppearanceStyle",
    "background_consistency": "vdmbench.metrics.vbench_consistency:BackgroundConsistency",
    "dynamic_degree": "vdmbench.metrics.vbench_dynamic_degree:DynamicDegree",
    "imaging_quality": "vdmbench.metrics.vbench_imaging_quality:ImagingQuality",
    "motion_smoothness": "vdmbench.metrics.vbench_motion_smoothness:MotionSmoothness",
    "overall_consistency": "vdmbench.metrics.vbench_viclip:OverallConsistency",
    "subject_consistency": "vdmbench.metrics.vbench_consistency:SubjectConsistency",
    "temporal_flickering": "vdmbench.metrics.vbench_temporal_flickering:TemporalFlickering",
    "temporal_style": "vdmbench.metrics.vbench_viclip:TemporalStyle",
    "vbench_scores": "vdmbench.metrics.vbench_scores:VBenchScores",
    "jedi": "vdmbench.metrics.jedi:JEDi",
    # VLM judges (docs/judge.md)
    "judge_adherence": "vdmbench.metrics.judge_adherence:JudgeAdherence",
    "judge_vqascore": "vdmbench.metrics.judge_adherence:JudgeVQAScore",
    "judge_vbench_semantic": "vdmbench.metrics.judge_vbench_semantic:JudgeVBenchSemantic",
}
# Modules of this package that hold no metric class (functions over stored runs, shared parts).
NOT_METRICS = {"judge_pairwise", "random_weights", "torchmetrics_import"}


def _package_modules() -> list[str]:
    """Modules of this package the table does not cover (a metric added as one file)."""
    covered = {target.partition(":")[0] for target in BUILTIN.values()}
    names = (f"{__name__}.{m.name}" for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_"))
    skip = {f"{__name__}.{m}" for m in ("base", *NOT_METRICS)}
    return [n for n in names if n not in covered and n not in skip]


def _check(name: str, obj: Any) -> None:
    if not (isinstance(obj, type) and issubclass(obj, VideoMetric)):
        raise ConfigError(f"metric {name!r}: {obj!r} is not a vdmbench VideoMetric subclass")
    if getattr(obj, "name", None) != name:
        raise ConfigError(f"metric {name!r}: its class {obj.__name__} is named {getattr(obj, 'name', None)!r}; "
                          "the registry name and the class's `name` must agree")
    if not obj.outputs:
        raise ConfigError(f"metric {name!r}: {obj.__name__} declares no outputs")


REGISTRY = Registry(
    "metric", "vdmbench.metrics", BUILTIN, providers=_package_modules, collection="METRICS", check=_check,
    hint=" (`vdmbench list metrics` describes them)",
)


def metric_class(name: str) -> type[VideoMetric]:
    """The class of a metric by registry name (imports its module only)."""
    cls: type[VideoMetric] = REGISTRY.get(name)
    return cls


def available_metrics() -> dict[str, type[VideoMetric]]:
    """Every metric class by registry name (imports every metric module: for listings)."""
    return REGISTRY.load_all()


def metric_spec(spec: str | dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """A suite lists a metric as a name or as {name: ..., <option>: ...}."""
    if isinstance(spec, str):
        return spec, {}
    if isinstance(spec, dict) and isinstance(spec.get("name"), str):
        opts = {k: v for k, v in spec.items() if k != "name"}
        return spec["name"], opts
    raise ConfigError(f"a metric must be a name or a mapping with 'name', got {spec!r}")


def build_metric(spec: str | dict[str, Any], context: MetricContext | None = None) -> VideoMetric:
    name, options = metric_spec(spec)
    cls = metric_class(name)
    try:
        return cls(context=context, **options)
    except TypeError as e:
        raise ConfigError(f"metric {name!r}: bad options {options}: {e}") from e


def metric_outputs(name: str) -> list[Output]:
    """The declared outputs of a metric, by registry name (`clip_temporal`)."""
    return list(metric_class(name).outputs)


def _find_output(output: str) -> tuple[str, Output] | None:
    # Likely owners first (an output is usually named after its metric), so most lookups import
    # one module; metrics that cannot load are skipped, not fatal.
    names = REGISTRY.names(strict=False)
    names.sort(key=lambda n: not (output.startswith(n) or n.startswith(output.split("_")[0])))
    for name, cls in REGISTRY.items(names, strict=False):
        for o in cls.outputs:
            if o == output:
                return name, o
    return None


def output_declaration(output: str) -> Output | None:
    """The declaration of an OUTPUT name (`clip_temporal_consistency`), or None when no known
    metric produces it (a metric of an uninstalled plugin, a name from an old run)."""
    found = _find_output(output)
    return found[1] if found else None


def output_metric(output: str) -> str | None:
    """The registry name of the metric that produces an output, or None."""
    found = _find_output(output)
    return found[0] if found else None


def output_direction(output: str) -> bool | None:
    """True if higher is better for an OUTPUT name, False if lower, None if no metric declares it."""
    found = _find_output(output)
    return found[1].higher_is_better if found else None
