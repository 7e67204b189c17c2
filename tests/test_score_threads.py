"""`vdmbench score --threads`: the torch thread count of the scoring, restored afterwards, and a
one-line error for a bad value (issue #21)."""

import pytest
import torch

from vdmbench.core.errors import ConfigError
from vdmbench.core.video import Video, write_video
from vdmbench.metrics.flicker import Flicker
from vdmbench.run import score


def test_threads_apply_while_scoring_and_are_restored(tmp_path, monkeypatch):
    clip = tmp_path / "a.mp4"
    write_video(Video(torch.zeros(3, 16, 16, 3, dtype=torch.uint8), 8.0), clip)
    seen = []
    real = Flicker.sample_values
    monkeypatch.setattr(Flicker, "sample_values", lambda self, b: seen.append(torch.get_num_threads()) or real(self, b))
    before = torch.get_num_threads()
    target = 3 if before != 3 else 2
    assert score.main([str(clip), "--metrics", "flicker", "--workers", "0", "--threads", str(target)]) == 0
    assert seen == [target]
    assert torch.get_num_threads() == before


@pytest.mark.parametrize("bad", ["zero", "0", "-1", "1.5"])
def test_bad_thread_count_is_a_one_line_error(tmp_path, bad):
    with pytest.raises(ConfigError, match="threads must be 'auto' or a whole number >= 1"):
        score.main([str(tmp_path), "--threads", bad])
