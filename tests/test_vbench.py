"""VBench interop: prompt JSON import (keyed by position), export under VBench naming, and the
exported folder read back by the folder adapter."""

import json

import pytest
import torch

from vdmbench.adapters.base import GenerationRequest
from vdmbench.adapters.folder import FolderAdapter
from vdmbench.config.suite import load_suite
from vdmbench.core.errors import ConfigError
from vdmbench.interop.vbench import MANIFEST_NAME, import_prompts, main, vbench_filename

# VBench's format, with its quirk: one text under two dimension lists.
ENTRIES = [
    {"prompt_en": "a person riding a bike", "dimension": ["subject_consistency", "dynamic_degree"]},
    {"prompt_en": "a red bicycle", "dimension": ["color"], "auxiliary_info": {"color": {"color": "red"}}},
    {"prompt_en": "a cat and a dog", "dimension": ["multiple_objects"]},
    {"prompt_en": "a person riding a bike", "dimension": ["human_action"]},
    {"prompt_en": "Van Gogh style, a boat / at sea", "dimension": ["appearance_style"]},
]


def test_filenames_keep_vbench_names_and_sanitize_only_what_must_be():
    assert vbench_filename("a red bicycle", 3) == "a red bicycle-3.mp4"
    assert vbench_filename("a boat / at sea", 0) == "a boat _ at sea-0.mp4"
    assert vbench_filename("line\nbreak", 1) == "linebreak-1.mp4"
    assert vbench_filename("..", 0) == "_..-0.mp4"
    long_a, long_b = "é" * 300 + "a", "é" * 300 + "b"
    na, nb = vbench_filename(long_a, 4), vbench_filename(long_b, 4)
    assert len(na.encode()) <= 255 and na.endswith("-4.mp4") and na != nb


def test_import_keys_by_position_not_text():
    suite = import_prompts(ENTRIES, name="vb", seeds=5, num_frames=8, height=32, width=32)
    ids = [p["id"] for p in suite["prompts"]]
    assert ids == ["vb0000", "vb0001", "vb0002", "vb0003", "vb0004"]
    texts = [p["text"] for p in suite["prompts"]]
    assert len(texts) == 5 and len(set(texts)) == 4  # the duplicated text stays two prompts
    assert suite["prompts"][3]["tags"] == ["human_action"]
    assert suite["prompts"][1]["params"] == {"vbench": {"color": {"color": "red"}}}
    only = import_prompts(ENTRIES, dimensions=["color", "human_action"])
    assert [p["id"] for p in only["prompts"]] == ["vb0001", "vb0003"]  # positions kept after filtering


def test_import_errors_name_the_entry():
    with pytest.raises(ConfigError, match="entry 1 needs a non-empty string 'prompt_en'"):
        import_prompts([ENTRIES[0], {"prompt": "x"}])
    with pytest.raises(ConfigError, match="no entry has any of the dimensions"):
        import_prompts(ENTRIES, dimensions=["nope"])


def test_import_command_writes_a_loadable_suite(tmp_path, capsys):
    src = tmp_path / "VBench_full_info.json"
    src.write_text(json.dumps(ENTRIES))
    out = tmp_path / "suites" / "vb.yaml"
    assert main(["import", str(src), "-o", str(out), "--seeds", "2", "--num-frames", "6",
                 "--height", "16", "--width", "16"]) == 0
    assert "5 prompts (4 distinct texts) x 2 seeds" in capsys.readouterr().out
    suite = load_suite(out)
    assert suite.name == "vb" and len(suite.samples()) == 10 and suite.num_frames == 6


def test_export_run_then_score_the_folder_again(vdmbench_cli, tmp_path, capsys):
    src = tmp_path / "vb.json"
    src.write_text(json.dumps(ENTRIES))
    cfg = tmp_path / "cfg"
    assert main(["import", str(src), "-o", str(cfg / "suites" / "vb.yaml"), "--seeds", "2",
                 "--num-frames", "6", "--height", "16", "--width", "16"]) == 0
    search = f"hydra.searchpath=[file://{cfg}]"
    run = vdmbench_cli("run", "suite=vb", "model=toy-moving-square", search, "preview=false")
    assert run.returncode == 0, run.stdout + run.stderr
    import duckdb

    con = duckdb.connect(str(tmp_path / "results" / "vdmbench.duckdb"), read_only=True)
    run_id = con.execute("SELECT run_id FROM runs").fetchone()[0]
    con.close()
    out = tmp_path / "vbench_videos"
    capsys.readouterr()
    assert main(["export", run_id[:10], "-o", str(out), "--db", str(tmp_path / "results" / "vdmbench.duckdb")]) == 0
    printed = capsys.readouterr().out
    assert "exported 10 clips" in printed and "2 samples share a prompt text" in printed
    names = sorted(p.name for p in out.glob("*.mp4"))
    vbench_names = [f"{t}-{i}.mp4" for t in ["a person riding a bike", "a red bicycle", "a cat and a dog",
                                             "Van Gogh style, a boat _ at sea"] for i in (0, 1)]
    dup = next(p.id for p in load_suite(cfg / "suites" / "vb.yaml").prompts[1:]
               if p.text in [q.text for q in load_suite(cfg / "suites" / "vb.yaml").prompts[:1]])
    # the second prompt with an already-taken text goes under its prompt id, and is in the manifest
    assert names == sorted([*vbench_names, f"{dup}-0.mp4", f"{dup}-1.mp4"])
    assert (out / MANIFEST_NAME).is_file()
    # The exported folder is a model again: every sample is found, nothing is extra.
    suite = load_suite(cfg / "suites" / "vb.yaml")
    reqs = [GenerationRequest(prompt=p.text, seed=s, num_frames=6, height=16, width=16, fps=8.0,
                              extra={"prompt_id": p.id}) for p, s in suite.samples()]
    folder = FolderAdapter("exported", str(out), manifest=str(out / MANIFEST_NAME))
    cov = folder.coverage(reqs)
    assert (cov.found, cov.missing, cov.extra) == (10, [], [])
    videos = folder.generate(reqs[:2])
    assert all(v.frames.shape == torch.Size([6, 16, 16, 3]) for v in videos)
    check = main(["check", str(cfg / "suites" / "vb.yaml"), str(out)])
    assert check == 0 and "10 found, 0 missing, 0 extra" in capsys.readouterr().out


def test_export_with_other_seeds_round_trips_through_the_folder_and_check(vdmbench_cli, tmp_path, capsys):
    """VBench names carry the seed's position (0, 1, ...), the suite's seeds may be 10 and 11: the
    manifest written beside the clips maps (prompt id, seed) to the file, and check reads it."""
    cfg = tmp_path / "cfg" / "suites"
    cfg.mkdir(parents=True)
    (cfg / "seeds.yaml").write_text(
        "name: seeds\nnum_frames: 6\nheight: 16\nwidth: 16\nseeds: [10, 11]\nmetrics: [flicker]\n"
        "prompts:\n  - {id: a, text: a red circle moving right}\n  - {id: b, text: a blue square moving up}\n")
    run = vdmbench_cli("run", "suite=seeds", "model=toy-moving-square", f"hydra.searchpath=[file://{tmp_path / 'cfg'}]",
                       "preview=false")
    assert run.returncode == 0, run.stderr
    import duckdb

    con = duckdb.connect(str(tmp_path / "results" / "vdmbench.duckdb"), read_only=True)
    run_id = con.execute("SELECT run_id FROM runs").fetchone()[0]
    con.close()
    out = tmp_path / "vb"
    assert main(["export", run_id, "-o", str(out), "--db", str(tmp_path / "results" / "vdmbench.duckdb")]) == 0
    assert sorted(p.name for p in out.glob("*.mp4")) == sorted(
        f"{t}-{i}.mp4" for t in ("a red circle moving right", "a blue square moving up") for i in (0, 1))
    capsys.readouterr()
    assert main(["check", str(cfg / "seeds.yaml"), str(out)]) == 0
    assert "4 found, 0 missing, 0 extra" in capsys.readouterr().out
