"""Issue #15 item 7: read what the file says, not what the decoder makes up.

Duplicated or invented frames are a VideoError, never scored; frames too small for a metric give
that metric's one-line MetricInputError; the folder adapter finds upper-case extensions and
refuses two files with the same stem for one request."""

import pytest
import torch

from vdmbench.core.errors import MetricInputError
from vdmbench.features.flow import dis_flow
from vdmbench.metrics import ClipBatch, MetricContext, build_metric

# -- frames too small for optical flow -------------------------------------------------------------

@pytest.mark.parametrize("metric", ["motion", "flow_warping_error"])
@pytest.mark.parametrize("size", [(2, 2), (8, 8), (12, 64)])  # 12x64 crashed OpenCV 5 (segfault)
def test_frames_too_small_for_flow_give_the_metrics_one_line_error(metric, size):
    h, w = size
    clips = torch.randint(0, 256, (1, 4, h, w, 3), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    m = build_metric(metric, MetricContext())
    with pytest.raises(MetricInputError) as e:
        m.sample_values(ClipBatch(videos=clips, prompts=["x"]))
    text = str(e.value)
    assert text.startswith(f"{metric}: ") and "\n" not in text
    assert f"{h}x{w}" in text and "16x16" in text


def test_dis_flow_itself_refuses_tiny_frames():
    a = torch.zeros(2, 2, 3, dtype=torch.uint8).numpy()
    with pytest.raises(MetricInputError, match="at least 16x16"):
        dis_flow(a, a)


def test_smallest_accepted_size_works():
    clips = torch.randint(0, 256, (1, 3, 16, 64, 3), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    values = build_metric("motion", MetricContext()).sample_values(ClipBatch(videos=clips, prompts=["x"]))
    assert torch.isfinite(values["motion_mean"]).all()
