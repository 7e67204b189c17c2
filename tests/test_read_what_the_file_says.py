"""Issue #15 item 7: read what the file says, not what the decoder makes up.

Duplicated or invented frames are a VideoError, never scored; frames too small for a metric give
that metric's one-line MetricInputError; the folder adapter finds upper-case extensions and
refuses two files with the same stem for one request."""

import struct

import pytest
import torch

from vdmbench.adapters.base import GenerationRequest
from vdmbench.adapters.folder import FolderAdapter
from vdmbench.config.suite import parse_suite
from vdmbench.core.errors import AdapterError, MetricInputError, VideoError
from vdmbench.core.video import Video, read_video, timing, write_video
from vdmbench.features.flow import dis_flow
from vdmbench.metrics import ClipBatch, MetricContext, build_metric
from vdmbench.run.runner import Runner, RunOptions
from vdmbench.store.database import Store

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


# -- the folder adapter: extensions in any case, one file per request --------------------------------

def _clip(seed: int) -> Video:
    g = torch.Generator().manual_seed(seed)
    return Video(torch.randint(0, 256, (6, 16, 16, 3), generator=g, dtype=torch.uint8), 8.0)


def _req(text: str, seed: int) -> GenerationRequest:
    return GenerationRequest(prompt=text, seed=seed, num_frames=6, height=16, width=16, fps=8.0,
                             extra={"prompt_id": text})


def test_folder_finds_upper_case_extensions(tmp_path):
    write_video(_clip(0), tmp_path / "clip.mp4")
    (tmp_path / "clip.mp4").rename(tmp_path / "clip-0.MP4")
    write_video(_clip(1), tmp_path / "other-0.Mkv")
    a = FolderAdapter("f", str(tmp_path))
    out = a.generate([_req("clip", 0), _req("other", 0)])
    assert torch.equal(out[0].frames, _clip(0).frames)
    assert torch.equal(out[1].frames, _clip(1).frames)
    assert a.coverage([_req("clip", 0), _req("other", 0)]).summary() == "2 found, 0 missing, 0 extra"


def test_folder_two_files_with_one_stem_are_ambiguous(tmp_path):
    write_video(_clip(0), tmp_path / "a-0.mp4")
    write_video(_clip(1), tmp_path / "a-0.mkv")
    write_video(_clip(2), tmp_path / "b-0.mp4")
    a = FolderAdapter("f", str(tmp_path))
    out = a.generate([_req("a", 0), _req("b", 0)])
    assert isinstance(out[0], AdapterError)
    assert "'a-0.mkv'" in str(out[0]) and "'a-0.mp4'" in str(out[0])
    assert "both match" in str(out[0])
    assert isinstance(out[1], Video)  # the other request is unaffected
    cov = a.coverage([_req("a", 0), _req("b", 0)])
    assert cov.found == 1 and len(cov.missing) == 1 and "a-0.mkv" in cov.missing[0]


# -- frames the decoder makes up ----------------------------------------------------------------------

def _zero_duration_mp4(path, frames: torch.Tensor) -> None:
    """A lossless mp4 whose every frame lasts 0 ticks (stts delta 0): all timestamps are equal and
    the header's frame rate is 0/undefined. decord read such a file as frames at "1 fps"."""
    write_video(Video(frames, 8.0), path)
    data = bytearray(path.read_bytes())
    i = data.find(b"stts")
    (entries,) = struct.unpack(">I", data[i + 8:i + 12])
    for k in range(entries):
        struct.pack_into(">I", data, i + 16 + 8 * k, 0)
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("backend", ["auto", "pyav"])
def test_frames_sharing_one_timestamp_are_a_video_error(tmp_path, backend):
    path = tmp_path / "still-0.mp4"
    _zero_duration_mp4(path, torch.full((8, 32, 32, 3), 90, dtype=torch.uint8))
    with pytest.raises(VideoError, match="8 of its 8 frames share a timestamp"):
        read_video(path, backend=backend)


def test_a_zero_fps_file_in_a_folder_is_failed_not_scored(tmp_path):
    folder = tmp_path / "vids"
    folder.mkdir()
    _zero_duration_mp4(folder / "still-0.mp4", torch.full((8, 32, 32, 3), 90, dtype=torch.uint8))
    write_video(Video(torch.randint(0, 256, (8, 32, 32, 3), dtype=torch.uint8), 8.0), folder / "fine-0.mp4")
    suite = parse_suite({"name": "z", "num_frames": 8, "height": 32, "width": 32, "fps": 8,
                         "metrics": ["flicker"], "prompts": ["still", "fine"]})
    model = {"name": "vids", "adapter": "folder", "params": {"path": str(folder)}}
    summary = Runner(suite, model, RunOptions(results_dir=tmp_path / "results", progress=False)).run()
    store = Store(tmp_path / "results" / "vdmbench.duckdb", read_only=True)
    rows = {s.prompt: s for s in store.samples(summary.run_id)}
    assert rows["still"].status == "failed" and "share a timestamp" in rows["still"].error
    assert rows["fine"].status == "ok"
    values = store.sample_metrics(summary.run_id)
    assert not [v for v in values if v.sample_id == rows["still"].sample_id and v.value is not None]


def test_more_frames_decoded_than_the_file_holds_is_a_video_error(tmp_path):
    from vdmbench.core.video import Timing, _check_not_invented

    with pytest.raises(VideoError, match="invented"):
        _check_not_invented(tmp_path / "x.mp4", Timing(frames=1, fps=8.0), 8, "decord")
    _check_not_invented(tmp_path / "x.mp4", Timing(frames=8, fps=8.0), 8, "decord")


def test_the_fps_is_the_files_own_for_both_decoders(tmp_path):
    path = write_video(Video(torch.randint(0, 256, (5, 32, 64, 3), dtype=torch.uint8), 12.0), tmp_path / "a.mp4")
    assert read_video(path, backend="decord").fps == pytest.approx(12.0)
    assert read_video(path, backend="pyav").fps == pytest.approx(12.0)
    assert timing(path).frames == 5


def test_a_header_without_a_rate_takes_the_rate_of_the_timestamps(tmp_path):
    from dataclasses import replace

    from vdmbench.core.video import probe

    path = write_video(Video(torch.randint(0, 256, (5, 32, 64, 3), dtype=torch.uint8), 8.0), tmp_path / "a.mp4")
    no_rate = replace(probe(path), fps=0.0)
    assert timing(path, no_rate).fps == pytest.approx(8.0)
