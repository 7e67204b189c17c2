"""What metrics declare once (outputs with directions and ranges, inputs) and the helpers that read
it: output_direction / output_metric map an OUTPUT name back to its metric."""

import json
import pickle

import pytest
import torch

from tests._clips import moving_squares
from vdmbench.metrics import (
    INPUTS,
    ClipBatch,
    Output,
    PerSampleMetric,
    available_metrics,
    build_metric,
    metric_outputs,
    output_declaration,
    output_direction,
    output_metric,
)

SHIPPED = available_metrics()


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_every_shipped_metric_declares_its_outputs_and_inputs(name):
    cls = SHIPPED[name]
    assert cls.name == name and cls.outputs and all(isinstance(o, Output) for o in cls.outputs)
    assert all(o.description for o in cls.outputs), "say what each output is"
    assert cls.inputs <= INPUTS and cls.requires == cls.inputs
    assert cls.higher_is_better is cls.outputs[0].higher_is_better  # the headline's, for torchmetrics


def test_output_names_are_unique_across_metrics():
    names = [o for cls in SHIPPED.values() for o in cls.outputs]
    assert len(names) == len(set(names))


def test_output_names_map_back_to_their_metric():
    assert output_metric("clip_temporal_consistency") == "clip_temporal"
    assert output_direction("clip_temporal_consistency") is True
    assert output_direction("flicker_mean_abs_diff") is False and output_direction("fvd") is False
    assert output_metric("edit_preservation_psnr") == "shapes_editing"
    assert output_direction("no_such_output") is None and output_declaration("no_such_output") is None
    assert [o.name for o in metric_outputs("flicker")] == ["flicker", "flicker_mean_abs_diff"]


def test_an_output_is_its_name_wherever_a_name_is_expected():
    o = Output("x_score", higher_is_better=False, range=(0, 1), description="d")
    assert o == "x_score" and {o: 1}["x_score"] == 1 and ", ".join([o, "y"]) == "x_score, y"
    assert json.dumps({o: o}) == '{"x_score": "x_score"}'
    back = pickle.loads(pickle.dumps(o))
    assert back == o and back.higher_is_better is False and back.range == (0.0, 1.0) and back.direction == "lower"


def test_bad_declarations_fail_when_the_class_is_defined():
    with pytest.raises(TypeError, match="higher_is_better must be True or False"):
        Output("a", 1)
    with pytest.raises(TypeError, match="range must be"):
        Output("a", True, range=(1, 0))
    with pytest.raises(TypeError, match=r"unknown inputs \['captions'\]"):
        class _Bad(PerSampleMetric):
            name = "bad"
            outputs = (Output("bad", True),)
            inputs = frozenset({"captions"})


@pytest.mark.parametrize("name", ["flicker", "flow_warping_error", "motion", "shapes_adherence"])
def test_values_fall_in_the_declared_range(name):
    clips = moving_squares(3, 4, 32, 32, seed=1)
    m = build_metric(name)
    values = m.sample_values(ClipBatch(videos=clips, prompts=["a red circle moving right"] * 3, fps=[8.0] * 3))
    for out in m.outputs:
        lo, hi = out.range
        assert bool(((values[out] >= lo) & (values[out] <= hi)).all()), (out, values[out])


def test_declared_inputs_are_checked_per_batch():
    m = build_metric("shapes_adherence")
    with pytest.raises(ValueError, match="needs prompts for every clip"):
        m.sample_values(ClipBatch(videos=torch.zeros(2, 3, 8, 8, 3, dtype=torch.uint8), prompts=["x"]))
