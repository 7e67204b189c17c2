"""The folder adapter: VBench naming, manifests (CSV and JSON), missing and extra files."""

import json

import pytest
import torch

from vdmbench.adapters.base import GenerationRequest
from vdmbench.adapters.callable import CallableAdapter
from vdmbench.adapters.folder import FolderAdapter
from vdmbench.core.errors import AdapterError, ConfigError
from vdmbench.core.video import Video, write_video


def clip(seed, frames=6):
    g = torch.Generator().manual_seed(seed)
    return Video(torch.randint(0, 256, (frames, 16, 16, 3), generator=g, dtype=torch.uint8), 8.0)


def req(text, seed, pid):
    return GenerationRequest(prompt=text, seed=seed, num_frames=6, height=16, width=16, fps=8.0, extra={"prompt_id": pid})


def test_vbench_names_and_missing_and_extra_files(tmp_path):
    write_video(clip(0), tmp_path / "a red car-0.mp4")
    write_video(clip(1), tmp_path / "a red car-1.mp4")
    write_video(clip(2), tmp_path / "a blue boat-O.mp4")  # a typo: letter O for zero
    write_video(clip(3), tmp_path / "unrelated.mp4")
    a = FolderAdapter("f", str(tmp_path))
    reqs = [req("a red car", 0, "car"), req("a red car", 1, "car"), req("a blue boat", 0, "boat")]
    out = a.generate(reqs)
    assert torch.equal(out[0].frames, clip(0).frames) and torch.equal(out[1].frames, clip(1).frames)
    assert isinstance(out[2], AdapterError)
    assert "expected e.g. 'a blue boat-0.mp4'" in str(out[2]) and "closest files: 'a blue boat-O.mp4'" in str(out[2])
    cov = a.coverage(reqs)
    assert cov.found == 2 and len(cov.missing) == 1 and cov.missing[0].startswith("boat seed 0")
    assert cov.extra == ["a blue boat-O.mp4", "unrelated.mp4"]
    assert cov.summary() == "2 found, 1 missing, 2 extra"


@pytest.mark.parametrize("kind", ["csv", "json", "json-videos"])
def test_manifests_match_by_prompt_id_or_text(tmp_path, kind):
    sub = tmp_path / "clips"
    sub.mkdir()
    write_video(clip(5), sub / "x.mp4")
    write_video(clip(6), sub / "y.mp4")
    rows = [{"prompt_id": "car", "seed": 0, "path": "clips/x.mp4"},
            {"prompt": "a blue boat", "seed": 3, "path": str(sub / "y.mp4")}]
    if kind == "csv":
        (tmp_path / "m.csv").write_text("prompt_id,prompt,seed,path\ncar,,0,clips/x.mp4\n,a blue boat,3," + str(sub / "y.mp4") + "\n")
        name = "m.csv"
    else:
        (tmp_path / "m.json").write_text(json.dumps(rows if kind == "json" else {"videos": rows}))
        name = "m.json"
    a = FolderAdapter("f", str(tmp_path), manifest=name)
    car, boat = a.generate([req("a red car", 0, "car"), req("a blue boat", 3, "boat")])
    assert torch.equal(car.frames, clip(5).frames) and torch.equal(boat.frames, clip(6).frames)


def test_bad_manifests_and_folders_are_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        FolderAdapter("f", str(tmp_path / "nope"))
    (tmp_path / "m.json").write_text(json.dumps([{"seed": 0, "path": "x.mp4"}]))
    with pytest.raises(ConfigError, match="row 0 needs 'path' and 'prompt_id' or 'prompt'"):
        FolderAdapter("f", str(tmp_path), manifest="m.json")
    (tmp_path / "n.json").write_text(json.dumps({"rows": []}))
    with pytest.raises(ConfigError, match="must be a list of rows"):
        FolderAdapter("f", str(tmp_path), manifest="n.json")


def test_callable_adapter_function_and_class_targets():
    fn = CallableAdapter("c", target="tests.fixtures.generators:moving_square")
    (v,) = fn.generate([req("x", 0, "x")])
    assert v.frames.shape == (6, 16, 16, 3)
    bad = CallableAdapter("c", target="tests.fixtures.generators:flaky")
    (err,) = bad.generate([req("please fail", 0, "f")])
    assert isinstance(err, AdapterError) and "exploded" in str(err)
    with pytest.raises(ConfigError, match="package.module:function"):
        CallableAdapter("c", target="no_colon")
