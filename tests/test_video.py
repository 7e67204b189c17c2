import numpy as np
import pytest
import torch

from vdmbench.core.errors import VideoError
from vdmbench.core.video import (
    Video,
    read_video,
    select_indices,
    write_preview,
    write_video,
)


def random_video(t=9, h=20, w=24, seed=0, fps=8.0) -> Video:
    g = torch.Generator().manual_seed(seed)
    return Video(torch.randint(0, 256, (t, h, w, 3), generator=g, dtype=torch.uint8), fps)


@pytest.mark.parametrize("ext", [".mp4", ".mkv"])
@pytest.mark.parametrize("backend", ["decord", "pyav"])
def test_lossless_round_trip_is_bit_exact(tmp_path, ext, backend):
    pytest.importorskip(backend if backend == "decord" else "av")
    v = random_video(h=32, w=64)  # decord refuses some small sizes (e.g. 20x24): PyAV covers them
    path = write_video(v, tmp_path / f"clip{ext}")
    back = read_video(path, backend=backend)
    assert back.frames.shape == v.frames.shape
    assert torch.equal(back.frames, v.frames)
    assert back.fps == pytest.approx(8.0)


def test_opencv_reads_the_lossless_file_bit_exact(tmp_path):
    cv2 = pytest.importorskip("cv2")
    v = random_video()
    path = write_video(v, tmp_path / "clip.mp4")
    cap = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, f = cap.read()
        if not ok:
            break
        frames.append(f[..., ::-1])
    assert np.array_equal(np.stack(frames), v.frames.numpy())


def test_preview_is_h264_yuv420p_with_even_size(tmp_path):
    import av

    v = random_video(h=21, w=23)
    path = write_preview(v, tmp_path / "p.mp4")
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        assert s.codec_context.name == "h264"
        assert s.codec_context.pix_fmt == "yuv420p"
        assert (s.codec_context.width, s.codec_context.height) == (24, 22)


def test_no_temporary_files_left(tmp_path):
    write_video(random_video(), tmp_path / "a.mp4")
    assert [p.name for p in tmp_path.iterdir()] == ["a.mp4"]


def test_decord_failure_falls_back_to_pyav(tmp_path):
    v = random_video(h=20, w=24)  # decord raises on this size
    assert torch.equal(read_video(write_video(v, tmp_path / "odd.mp4")).frames, v.frames)


def test_gif_falls_back_to_pyav(tmp_path):
    from PIL import Image

    frames = [Image.new("RGB", (16, 16), (i * 40, 0, 0)) for i in range(5)]
    path = tmp_path / "anim.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=100, loop=0)
    v = read_video(path)  # decord cannot read GIFs: the fallback must take over
    assert v.num_frames == 5 and v.height == 16
    assert int(v.frames[3, 5, 5, 0]) == pytest.approx(120, abs=3)


def test_frame_selection():
    assert select_indices(10, 10.0, num_frames=3) == [0, 1, 2]
    assert select_indices(10, 10.0, stride=3) == [0, 3, 6, 9]
    assert select_indices(10, 10.0, target_fps=5.0) == [0, 2, 4, 6, 8]
    assert select_indices(6, 8.0, target_fps=16.0) == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5]
    assert select_indices(9, 24.0, target_fps=8.0) == [0, 3, 6]
    with pytest.raises(VideoError, match="5 are needed"):
        select_indices(4, 8.0, num_frames=5)


def test_read_with_selection(tmp_path):
    v = random_video(t=12)
    path = write_video(v, tmp_path / "c.mp4")
    back = read_video(path, num_frames=4, stride=2)
    assert torch.equal(back.frames, v.frames[[0, 2, 4, 6]])
    assert back.fps == pytest.approx(4.0)


@pytest.mark.parametrize("content", [b"", b"not a video at all" * 10])
def test_corrupt_and_empty_files_raise_clear_errors(tmp_path, content):
    path = tmp_path / "bad.mp4"
    path.write_bytes(content)
    with pytest.raises(VideoError, match="bad.mp4"):
        read_video(path)


def test_truncated_file_is_detected(tmp_path):
    v = random_video(t=32, h=64, w=64)
    path = write_video(v, tmp_path / "t.mkv")
    data = path.read_bytes()
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(data[: len(data) // 3])
    with pytest.raises(VideoError):
        out = read_video(cut)
        # If a backend decodes without raising, it must not silently return fewer frames.
        assert out.num_frames == 32


def test_huge_resolution_refused_before_decoding(tmp_path):
    v = random_video(t=2, h=64, w=64)
    path = write_video(v, tmp_path / "big.mp4")
    with pytest.raises(VideoError, match="exceed the limit"):
        read_video(path, max_pixels=1000)


def test_video_type_checks():
    with pytest.raises(VideoError, match="uint8"):
        Video(torch.zeros(2, 4, 4, 3), 8.0)
    with pytest.raises(VideoError, match=r"\[T, H, W, 3\]"):
        Video(torch.zeros(2, 4, 4, dtype=torch.uint8), 8.0)
    with pytest.raises(VideoError, match="NaN"):
        Video.from_float(torch.full((2, 4, 4, 3), float("nan")), 8.0)
    v = Video.from_float(torch.full((2, 4, 4, 3), 0.5), 8.0)
    assert int(v.frames[0, 0, 0, 0]) == 128
