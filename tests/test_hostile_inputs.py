"""Hostile and broken inputs: every one gets a clear error or is handled, and nothing is lost."""

import pickle
from pathlib import Path

import pytest
import torch

from vdmbench.config.suite import parse_suite
from vdmbench.core.errors import VdmbenchError
from vdmbench.core.video import Video, write_video
from vdmbench.run.runner import Runner, RunOptions
from vdmbench.store.database import Store

SUITE = {"name": "h", "num_frames": 4, "height": 16, "width": 16, "fps": 8, "metrics": ["flicker"]}
TOY = {"name": "toy", "adapter": "callable", "params": {"target": "tests.fixtures.generators:moving_square"}}


def run(tmp_path, prompts, adapter=TOY, **suite):
    s = parse_suite({**SUITE, **suite, "prompts": prompts})
    return Runner(s, adapter, RunOptions(results_dir=tmp_path / "results", progress=False)).run()


def test_nasty_prompt_texts_are_stored_exactly_and_files_stay_inside(tmp_path):
    texts = ["../../etc/passwd", "a/b\\c", "nul\x00byte", "x" * 5000, "一只红色的圆 движется влево 🚀", "'; DROP TABLE samples; --"]
    summary = run(tmp_path, [{"id": f"p{i}", "text": t} for i, t in enumerate(texts)])
    assert summary.ok == len(texts)
    store = Store(tmp_path / "results" / "vdmbench.duckdb", read_only=True)
    stored = store._query("SELECT prompt FROM samples ORDER BY sample_id").prompt.tolist()
    assert stored == texts
    results = (tmp_path / "results").resolve()
    for f in results.rglob("*"):
        assert f.resolve().is_relative_to(results)


def test_sql_looking_model_name(tmp_path):
    evil = {**TOY, "name": "m'; DROP TABLE runs; --/../x"}
    run(tmp_path, ["a red circle moving right"], adapter=evil)
    store = Store(tmp_path / "results" / "vdmbench.duckdb", read_only=True)
    assert store.runs().model.tolist() == [evil["name"]]
    (sub,) = [p.name for p in (tmp_path / "results" / "videos").iterdir()]
    assert "/" not in sub and ".." not in sub and "'" not in sub


def test_secret_never_reaches_db_files_or_logs(tmp_path, capsys):
    sentinel = "sk-SENTINEL-5f3a9c"
    keyed = {"name": "keyed", "adapter": "callable",
             "params": {"target": "tests.fixtures.generators:KeyedModel", "init_kwargs": {"token": sentinel}}}
    run(tmp_path, ["a red circle moving right"], adapter=keyed)
    out = capsys.readouterr()
    assert sentinel not in out.out + out.err
    for f in (tmp_path / "results").rglob("*"):
        if f.is_file():
            assert sentinel.encode() not in f.read_bytes(), f"secret leaked into {f}"


def test_one_frame_and_wrong_extension_videos_in_a_folder(tmp_path):
    folder = tmp_path / "vids"
    folder.mkdir()
    frames = torch.randint(0, 256, (6, 16, 16, 3), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
    write_video(Video(frames, 8.0), folder / "ok-0.mp4")
    write_video(Video(frames[:1], 8.0), folder / "single-0.mp4")
    (folder / "mislabelled-0.mp4").write_bytes(write_video(Video(frames, 8.0), tmp_path / "x.mkv").read_bytes())
    (folder / "text-0.mp4").write_text("hello, I am not a video")
    adapter = {"name": "vids", "adapter": "folder", "params": {"path": str(folder), "trim": False}}
    prompts = [{"id": i, "text": i} for i in ("ok", "single", "mislabelled", "text")]
    summary = run(tmp_path, prompts, adapter=adapter)
    store = Store(tmp_path / "results" / "vdmbench.duckdb", read_only=True)
    rows = store._query("SELECT prompt_id, status, error FROM samples ORDER BY prompt_id").set_index("prompt_id")
    assert rows.status.to_dict() == {"mislabelled": "ok", "ok": "ok", "single": "failed", "text": "failed"}
    assert "at least 2 frames" in rows.error["single"]
    assert "text-0.mp4" in rows.error["text"]
    assert summary.ok == 2 and summary.failed == 2


def test_pickled_checkpoint_with_code_is_refused(tmp_path):
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (Path.touch, (marker,))

    bad = tmp_path / "unet3d.pt"
    bad.write_bytes(pickle.dumps({"state_dict": Evil()}))
    from vdmbench.adapters import build_adapter

    with pytest.raises(VdmbenchError):
        build_adapter({"name": "evil", "adapter": "reference", "params": {"arch": "unet3d", "weights": str(bad)}})
    assert not marker.exists(), "the pickle's code ran"
