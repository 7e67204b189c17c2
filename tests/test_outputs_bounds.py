"""Issue #15 item 8: what an adapter returns is bounded by the request before it is copied, a clip
of another shape than requested is flagged with the sample, and SystemExit / KeyboardInterrupt
inside a backend end only its samples, with a message."""

import resource
import sys

import numpy as np
import pytest
import torch

from vdmbench.adapters.base import Capabilities, GenerationRequest
from vdmbench.adapters.callable import CallableAdapter
from vdmbench.adapters.outputs import MAX_OUTPUT_BYTES, check_output_shape, to_video
from vdmbench.config.suite import parse_suite
from vdmbench.core.errors import AdapterError
from vdmbench.core.video import Video
from vdmbench.run.runner import Runner, RunOptions
from vdmbench.store.database import Store

SUITE = {"name": "b", "num_frames": 4, "height": 16, "width": 16, "fps": 8, "metrics": ["flicker"]}


def req(**kw) -> GenerationRequest:
    return GenerationRequest(**{"prompt": "p", "seed": 0, "num_frames": 4, "height": 16, "width": 16, "fps": 8.0, **kw})


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def run(tmp_path, fn, prompts=("a", "b"), **options):
    suite = parse_suite({**SUITE, "prompts": list(prompts)})
    adapter = fn if not callable(fn) else CallableAdapter("m", target=fn)
    opts = RunOptions(results_dir=tmp_path / "results", progress=False, **options)
    summary = Runner(suite, {"name": "m", "adapter": "callable", "params": {}}, opts, adapter=adapter).run()
    store = Store(tmp_path / "results" / "vdmbench.duckdb", read_only=True)
    return summary, {s.prompt: s for s in store.samples(summary.run_id)}


# -- bounds before materializing -------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [torch.uint8, torch.float32])
def test_an_expand_view_claiming_gigabytes_is_refused_without_allocating(dtype):
    huge = torch.zeros(1, 1, 1, 3, dtype=dtype).expand(100, 2000, 3500, 3)  # claims 2.1 GB (uint8)
    before = peak_rss_mib()
    out = CallableAdapter("m", target=lambda r: huge).generate([req()])
    assert isinstance(out[0], AdapterError)
    assert "[100, 2000, 3500, 3]" in str(out[0]) and "before copying" in str(out[0])
    assert peak_rss_mib() - before < 500


def test_a_numpy_broadcast_view_is_refused_too():
    huge = np.broadcast_to(np.zeros((1, 1, 1, 3), np.uint8), (100, 2000, 3500, 3))
    with pytest.raises(AdapterError, match="before copying"):
        to_video(huge, 8.0, req())


def test_a_list_of_frames_is_bounded_before_stacking():
    frame = np.zeros((2000, 3500, 3), np.uint8)
    with pytest.raises(AdapterError, match="before copying"):
        to_video([frame] * 100, 8.0, req())


def test_a_video_holding_a_view_is_bounded_by_the_runner_too(tmp_path):
    class DuckTyped:  # not a BaseAdapter: the runner's own check applies
        name = "duck"
        capabilities = Capabilities()

        def generate(self, requests):
            return [Video(torch.zeros(1, 1, 1, 3, dtype=torch.uint8).expand(100, 2000, 3500, 3), 8.0) for _ in requests]

    before = peak_rss_mib()
    summary, rows = run(tmp_path, DuckTyped())
    assert summary.ok == 0 and summary.failed == 2
    assert "before copying" in rows["a"].error
    assert peak_rss_mib() - before < 500


def test_the_byte_cap_holds_whatever_the_request():
    big = req(num_frames=1000, height=4000, width=4000)
    with pytest.raises(AdapterError, match="GiB"):
        check_output_shape((1000, 4000, 4000, 3), 1, big)
    assert MAX_OUTPUT_BYTES < 1000 * 4000 * 4000 * 3


# -- a clip of another shape is flagged --------------------------------------------------------------

def test_a_clip_of_another_shape_is_flagged_in_the_sample(tmp_path):
    def six_frames_of_20x24(r):
        return torch.full((6, 20, 24, 3), 100, dtype=torch.uint8) if r.prompt == "a" else \
            torch.full((4, 16, 16, 3), 100, dtype=torch.uint8)

    v = CallableAdapter("m", target=six_frames_of_20x24).generate([req(prompt="a")])[0]
    assert isinstance(v, Video)
    assert v.notes["shape_mismatch"] == {"requested": [4, 16, 16], "returned": [6, 20, 24]}
    summary, rows = run(tmp_path, six_frames_of_20x24)
    assert summary.ok == 2
    assert rows["a"].notes == {"shape_mismatch": {"requested": [4, 16, 16], "returned": [6, 20, 24]}}
    assert not rows["b"].notes


# -- SystemExit and KeyboardInterrupt inside a backend -----------------------------------------------

def exits_on_a(r):
    if r.prompt == "a":
        sys.exit(3)
    return torch.full((4, 16, 16, 3), 100, dtype=torch.uint8)


@pytest.mark.parametrize("timeout", [None, 30.0])
def test_sys_exit_in_a_backend_ends_only_that_sample(tmp_path, timeout):
    summary, rows = run(tmp_path, exits_on_a, timeout=timeout)
    assert summary.ok == 1 and summary.failed == 1
    assert rows["a"].status == "failed" and "sys.exit(3)" in rows["a"].error
    assert rows["b"].status == "ok"


def test_sys_exit_in_a_duck_typed_adapter_fails_its_call_not_the_run(tmp_path):
    class Exits:
        name = "exits"
        capabilities = Capabilities()

        def generate(self, requests):
            if requests[0].prompt == "a":
                raise SystemExit(3)
            return [Video(torch.full((4, 16, 16, 3), 100, dtype=torch.uint8), 8.0) for _ in requests]

    summary, rows = run(tmp_path, Exits())
    assert summary.ok == 1 and "sys.exit(3)" in rows["a"].error


def test_keyboard_interrupt_from_the_backend_thread_ends_its_samples_with_a_message(tmp_path):
    class Interrupts:
        name = "interrupts"
        capabilities = Capabilities()

        def generate(self, requests):
            if requests[0].prompt == "a":
                raise KeyboardInterrupt
            return [Video(torch.full((4, 16, 16, 3), 100, dtype=torch.uint8), 8.0) for _ in requests]

    summary, rows = run(tmp_path, Interrupts(), timeout=30.0)
    assert summary.ok == 1
    assert "KeyboardInterrupt from its generation thread" in rows["a"].error
