"""Issue #14 item 3: `vdmbench score` reports a file it cannot read or score as that file's
failure and scores the others; it exits 1 only when no file could be scored."""

import json

import torch

from vdmbench.core.video import Video, write_video
from vdmbench.core.video_loader import LoadFailure, iterate_videos


def _clips(folder, n=3, frames=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    for i in range(n):
        write_video(Video(torch.randint(0, 256, (frames, 16, 16, 3), generator=g, dtype=torch.uint8), 8.0),
                    folder / f"c{i}.mp4")


def test_one_unreadable_file_is_a_failure_and_the_rest_are_scored(vdmbench_cli, tmp_path):
    folder = tmp_path / "clips"
    _clips(folder)
    (folder / "broken.mp4").write_bytes(b"\x00\x00\x00 not an mp4" * 20)
    p = vdmbench_cli("score", str(folder), "--metrics", "flicker", "--workers", "0", "--json", "out.json")
    assert p.returncode == 0, p.stderr[-3000:]
    assert "failed broken.mp4: " in p.stdout and "flicker: " in p.stdout
    doc = json.loads((tmp_path / "out.json").read_text())
    assert doc["files"] == 4 and doc["scored"] == 3 and list(doc["failed"]) == ["broken.mp4"]
    assert sorted(doc["per_sample"]) == ["c0.mp4", "c1.mp4", "c2.mp4"]

    # The same three clips alone give the same numbers: the bad file changed nothing else.
    (folder / "broken.mp4").unlink()
    vdmbench_cli("score", str(folder), "--metrics", "flicker", "--workers", "0", "--json", "clean.json", check=True)
    clean = json.loads((tmp_path / "clean.json").read_text())
    assert clean["metrics"] == doc["metrics"] and clean["failed"] == {}


def test_a_clip_a_metric_refuses_fails_alone(vdmbench_cli, tmp_path):
    folder = tmp_path / "clips"
    _clips(folder, n=2)
    write_video(Video(torch.zeros(1, 16, 16, 3, dtype=torch.uint8), 8.0), folder / "one-frame.mp4")
    p = vdmbench_cli("score", str(folder), "--metrics", "flicker", "--workers", "0", "--json", "out.json")
    assert p.returncode == 0, p.stderr[-3000:]
    doc = json.loads((tmp_path / "out.json").read_text())
    assert doc["scored"] == 2 and "at least 2 frames" in doc["failed"]["one-frame.mp4"]


def test_exit_1_when_no_file_could_be_scored(vdmbench_cli, tmp_path):
    folder = tmp_path / "clips"
    folder.mkdir()
    (folder / "a.mp4").write_bytes(b"garbage" * 30)
    (folder / "b.mp4").write_bytes(b"")
    p = vdmbench_cli("score", str(folder), "--metrics", "flicker", "--workers", "0", "--json", "out.json")
    assert p.returncode == 1
    assert "failed a.mp4: " in p.stdout and "failed b.mp4: " in p.stdout
    assert p.stderr.strip().splitlines() == ["vdmbench: error: none of the 2 files could be scored (see the failures above)"]
    doc = json.loads((tmp_path / "out.json").read_text())
    assert doc["scored"] == 0 and doc["metrics"] == {} and sorted(doc["failed"]) == ["a.mp4", "b.mp4"]


def test_help_documents_the_exit_code():
    import contextlib
    import io

    from vdmbench.run.score import main

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        try:
            main(["--help"])
        except SystemExit:
            pass
    text = " ".join(out.getvalue().split())
    assert "1 when none could be" in text and "failed NAME: error" in text


def test_loader_returns_failures_in_place_when_asked(tmp_path):
    _clips(tmp_path, n=2)
    (tmp_path / "x.mp4").write_bytes(b"nope")
    paths = [tmp_path / "c0.mp4", tmp_path / "x.mp4", tmp_path / "c1.mp4"]
    items = [item for batch in iterate_videos(paths, batch_size=2, on_error="return") for item in batch]
    assert [i for i, _ in items] == [0, 1, 2]
    assert isinstance(items[1][1], LoadFailure) and items[1][1].path == paths[1]
    assert isinstance(items[0][1], Video) and isinstance(items[2][1], Video)
