"""`vdmbench score` refuses a metric it cannot feed (clip_similarity without prompts scored every
clip against an empty caption) and reads prompts from VBench-style file names when asked."""

from pathlib import Path

import pytest
import torch

from vdmbench.core.errors import ConfigError
from vdmbench.core.video import Video, write_video
from vdmbench.run.score import main, prompt_from_filename


def test_prompts_are_read_from_vbench_names():
    assert prompt_from_filename(Path("a red circle moving right-3.mp4")) == "a red circle moving right"
    assert prompt_from_filename(Path("two-part-name-12.mkv")) == "two-part-name"
    with pytest.raises(ConfigError, match="not named"):
        prompt_from_filename(Path("clip.mp4"))


def test_a_metric_that_needs_prompts_is_refused_without_them(tmp_path, capsys):
    clip = tmp_path / "a red circle-0.mp4"
    write_video(Video(torch.zeros(4, 16, 16, 3, dtype=torch.uint8), 8.0), clip)
    with pytest.raises(ConfigError, match="needs each clip's prompt.*--prompts-from-filenames"):
        main([str(clip), "--metrics", "clip_similarity", "--workers", "0"])
    with pytest.raises(ConfigError, match="needs ground_truth"):
        main([str(clip), "--metrics", "reconstruction", "--workers", "0"])
    assert main([str(clip), "--metrics", "flicker", "--workers", "0", "--prompts-from-filenames"]) == 0
    assert "flicker" in capsys.readouterr().out


def test_metric_options_and_results_dir_like_a_suite(tmp_path, capsys):
    from vdmbench.run.score import parse_metric_list

    assert parse_metric_list("flicker, motion") == ["flicker", "motion"]
    assert parse_metric_list("[flicker, {name: fvd, covariance: stylegan-v}]") == [
        "flicker", {"name": "fvd", "covariance": "stylegan-v"}]
    with pytest.raises(ConfigError, match="as in a suite"):
        parse_metric_list("[{covariance: x}]")
    real, fake = tmp_path / "real", tmp_path / "fake"
    g = torch.Generator().manual_seed(0)
    for folder in (real, fake):
        for i in range(3):
            frames = torch.randint(0, 256, (16, 32, 32, 3), generator=g, dtype=torch.uint8)
            write_video(Video(frames, 8.0), folder / f"clip-{i}.mp4")
    out = tmp_path / "elsewhere"
    spec = "[{name: fvd, features: random-i3d, covariance: stylegan-v, resize: 32}]"
    assert main([str(fake), "--metrics", spec, "--reference", str(real), "--workers", "0",
                 "--results-dir", str(out)]) == 0
    assert "fvd" in capsys.readouterr().out
    assert list((out / "cache" / "features").rglob("*.npy")), "the feature cache goes under --results-dir"
    assert not (tmp_path / "results").exists()


def test_score_refuses_a_derived_metric_up_front():
    """vbench_scores reads a run's stored values; `vdmbench score` has none: refused before any work."""
    from vdmbench.core.errors import ConfigError
    from vdmbench.run.score import check_inputs

    with pytest.raises(ConfigError, match="vdmbench vbench score"):
        check_inputs(["flicker", "vbench_scores"], prompts_from_filenames=False)
