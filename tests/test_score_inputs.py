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
