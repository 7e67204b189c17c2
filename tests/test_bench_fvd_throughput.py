"""benchmarks/bench_fvd_throughput.py covers every FVD-style backend (issues #18, #21).

The benchmark's numbers are only worth something if each side computes what `vdmbench score`
computes: the same extractor on the same clips, decoding in worker processes changing no feature,
and the metric specs it passes to `vdmbench score` being ones the CLI accepts. The GPU path
(`--device cuda`) is the same code with another device string; here it runs with `cpu`.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
import torch

from vdmbench.core.video import read_video

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_fvd_throughput", ROOT / "benchmarks" / "bench_fvd_throughput.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop(spec.name, None)


@pytest.fixture(scope="module")
def clips(tmp_path_factory, bench):
    folder = tmp_path_factory.mktemp("h264")
    return bench.make_h264_clips(folder, 4, 32, seed=3, frames=16)


def test_h264_clips_are_yuv420p_h264_with_grain(bench, clips):
    import av

    with av.open(str(clips[0])) as c:
        stream = c.streams.video[0]
        assert (stream.codec_context.name, stream.codec_context.pix_fmt) == ("h264", "yuv420p")
    a, b = read_video(clips[0]).frames, read_video(clips[1]).frames
    assert a.shape == (16, 32, 32, 3) and not torch.equal(a, b)  # seeded per clip, not one clip repeated
    assert a.float().std() > 10  # waves plus grain, not a flat frame


@pytest.mark.parametrize("name", ["videomae-v2", "vjepa"])
def test_backend_end_to_end_equals_preloaded(bench, clips, name):
    torch.set_num_threads(1)
    extractor = bench.build_backend(name, model_size="small", device="cpu", batch_size=2)
    got = bench.backend_rates(extractor, list(clips), ceiling_n=4, batch_size=2, workers=1, device="cpu")
    assert got["diff"] == 0.0  # decoding in a worker process gives the very features of the preloaded clips
    assert got["ceiling"] > 0 and got["e2e"] > 0 and got["ceiling_cpu"] > 0
    # the extractor is the one `vdmbench score` builds for the spec the benchmark passes it
    from vdmbench.features.videomae import build_videomae_features
    from vdmbench.features.vjepa import build_vjepa_features

    build = build_videomae_features if name == "videomae-v2" else build_vjepa_features
    direct, _ = build(bench.BACKENDS[name][0], device="cpu", batch_size=2)
    frames = torch.stack([read_video(p).frames for p in clips[:2]])
    assert torch.equal(direct(frames), extractor(frames))


def test_backend_specs_are_what_vdmbench_score_accepts(bench):
    from vdmbench.run.score import check_inputs, parse_metric_list

    for random_backend, spec in bench.BACKENDS.values():
        if spec is None:
            continue
        parsed = parse_metric_list(f"[{spec}]")
        assert parsed[0]["features"] == random_backend
        check_inputs(parsed, prompts_from_filenames=False)  # raises for a metric score cannot compute


def test_real_size_is_the_published_architecture(bench, monkeypatch):
    # Built at real size only on a GPU run; here the builder is checked for the config it passes.
    from vdmbench.features import videomae, vjepa

    seen = {}

    def fake(module_name):
        def build(backend, **kw):
            seen[module_name] = (backend, kw["config"], kw["device"])
            return (object(), {})
        return build

    monkeypatch.setattr(videomae, "build_videomae_features", fake("videomae"))
    monkeypatch.setattr(vjepa, "build_vjepa_features", fake("vjepa"))
    bench.build_backend("videomae-v2", model_size="real", device="cuda", batch_size=4)
    bench.build_backend("vjepa", model_size="real", device="cuda", batch_size=4)
    assert seen["videomae"] == ("random-videomae-v2", videomae.VIT_G, "cuda")
    assert seen["vjepa"] == ("random-vjepa", vjepa.VIT_H, "cuda")
    assert videomae.VIT_G.embed_dim == 1408 and vjepa.VIT_H.embed_dim == 1280
