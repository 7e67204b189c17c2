"""VBench's sampling protocol (5 videos per prompt, `{prompt}-{0..4}.mp4`, a seed per video) in the
import, and scoring a folder of VBench-named videos (vdmbench.run.vbench_score)."""

import numpy as np
import pytest
import torch

from vdmbench.config.suite import parse_suite
from vdmbench.core.errors import ConfigError
from vdmbench.core.video import Video, write_video
from vdmbench.interop.vbench import dimension_metrics, import_prompts
from vdmbench.metrics import MetricContext
from vdmbench.run.vbench_score import dimension_table, score_vbench_folder

ENTRIES = [
    {"prompt_en": "a calm lake", "dimension": ["temporal_flickering"]},
    {"prompt_en": "a busy street", "dimension": ["temporal_flickering", "dynamic_degree"]},
    {"prompt_en": "a red car", "dimension": ["color"]},
]


def test_import_follows_vbench_sampling_five_seeded_videos_per_prompt():
    suite = parse_suite(import_prompts(ENTRIES, num_frames=8, height=32, width=32))
    assert suite.seeds == (0, 1, 2, 3, 4) and "VBench's 5 samples per prompt" in suite.description
    later = parse_suite(import_prompts(ENTRIES, first_seed=100, num_frames=8, height=32, width=32))
    assert later.seeds == (100, 101, 102, 103, 104)
    other = import_prompts(ENTRIES, seeds=2)
    assert "not VBench's 5" in other["description"]
    with pytest.raises(ConfigError, match="first seed"):
        import_prompts(ENTRIES, first_seed=-1)


def test_import_can_score_the_imported_dimensions_vdmbench_computes():
    assert dimension_metrics(["color", "temporal_flickering", "dynamic_degree"]) == [
        "temporal_flickering", "dynamic_degree", "vbench_scores"]  # VBench's order; color has no metric yet
    assert dimension_metrics(["color"]) == []
    suite = import_prompts(ENTRIES, score_dimensions=True, metrics=["flicker"])
    assert suite["metrics"] == ["flicker", "temporal_flickering", "dynamic_degree", "vbench_scores"]


def _clip(seed, t=5, h=9, w=14, still=False):
    g = torch.Generator().manual_seed(seed)
    first = torch.randint(0, 256, (1, h, w, 3), generator=g, dtype=torch.uint8)
    if still:
        return first.repeat(t, 1, 1, 1)
    step = torch.randint(-12, 13, (t, h, w, 3), generator=g).cumsum(0)
    return (first.to(torch.int64) + step).clamp(0, 255).to(torch.uint8)


def _flicker64(frames):
    f = frames.numpy().astype(np.float64)
    return (255.0 - np.abs(np.diff(f, axis=0)).mean()) / 255.0


@pytest.fixture
def folder(tmp_path):
    clips = {}
    for p, text in enumerate(e["prompt_en"] for e in ENTRIES):
        for i in range(5 if p < 2 else 2):
            if (p, i) == (1, 3):
                continue  # one expected video missing
            clips[f"{text}-{i}.mp4"] = _clip(10 * p + i, still=(p == 0 and i == 0))
    clips["a calm lake-5.mp4"] = _clip(99)  # VBench's standard mode reads indices 0..4 only
    for name, frames in clips.items():
        write_video(Video(frames, fps=24.0), tmp_path / name)
    return tmp_path, clips


def test_standard_mode_scores_each_dimension_over_its_own_prompts(folder):
    path, clips = folder
    res = score_vbench_folder(path, ["flicker"], context=MetricContext(), full_info=ENTRIES, workers=0)
    assert res["ignored"] == ["a calm lake-5.mp4"] and res["missing"] == [
        "a busy street-3.mp4", "a red car-2.mp4", "a red car-3.mp4", "a red car-4.mp4"]
    # temporal_flickering (from `flicker`) over the flickering prompts' videos only: not "a red car".
    mine = [n for n in clips if not n.startswith("a red car") and n != "a calm lake-5.mp4"]
    expected = np.mean([_flicker64(clips[n]) for n in mine])
    dim = res["dimensions"]["temporal_flickering"]
    assert dim["value"] == pytest.approx(expected, abs=1e-12) and dim["n"] == 9 and dim["output"] == "flicker"
    q = res["scores"]["vbench_quality_score"]
    assert q["value"] == pytest.approx((expected - 0.6293) / (1 - 0.6293), abs=1e-12)
    assert q["comparable"] is False and q["ci_low"] <= q["value"] <= q["ci_high"]
    rows = dimension_table(res)
    assert rows[0][0] == "temporal_flickering" and "not comparable" in rows[-1][0]


def test_custom_mode_counts_every_file_with_its_prompt_from_the_name(folder):
    path, clips = folder
    res = score_vbench_folder(path, ["flicker"], context=MetricContext(), workers=0)
    assert res["ignored"] == [] and res["scored"] == len(clips)
    expected = np.mean([_flicker64(c) for c in clips.values()])
    assert res["dimensions"]["temporal_flickering"]["value"] == pytest.approx(expected, abs=1e-12)
    with pytest.raises(ConfigError, match="at least one VBench dimension"):
        score_vbench_folder(path, ["vbench_scores"], context=MetricContext())


def test_a_run_stores_weighted_dimensions_and_labelled_vbench_scores(vdmbench_cli, tmp_path):
    """Through the real runner: the derived metric reads the stored values (no clip streaming), the
    temporal_flickering weight stays out of run_metrics, and the Quality row is labelled."""
    cfg = tmp_path / "cfg" / "suites"
    cfg.mkdir(parents=True)
    (cfg / "vbq.yaml").write_text(
        "name: vbq\nnum_frames: 5\nheight: 12\nwidth: 18\nfps: 24\nseeds: [0, 1]\n"
        "metrics: [{name: temporal_flickering, static_filter: false}, vbench_scores]\n"
        "prompts:\n  - {id: a, text: a red circle moving right}\n  - {id: b, text: a blue square moving up}\n"
        "  - {id: c, text: a green circle moving left}\n")
    run = vdmbench_cli("run", "suite=vbq", "model=toy-moving-square", f"hydra.searchpath=[file://{tmp_path / 'cfg'}]",
                       "preview=false")
    assert run.returncode == 0, run.stderr
    from vdmbench.store.database import Store

    store = Store(tmp_path / "results" / "vdmbench.duckdb", read_only=True)
    run_id = store.runs().run_id[0]
    rows = {r.metric: r for r in store.run_metrics(run_id)}
    assert "temporal_flickering_static" not in rows and "vbench_quality_score" in rows
    values = store.sample_values(run_id)
    flick = values[values.metric == "temporal_flickering"].value.to_numpy()
    assert rows["temporal_flickering"].value == pytest.approx(flick.mean(), abs=1e-12)
    q = rows["vbench_quality_score"]
    assert q.value == pytest.approx((flick.mean() - 0.6293) / (1 - 0.6293), abs=1e-12)
    assert q.details["comparable"] is False and "subject_consistency" in q.details["not_comparable_because"]
    assert q.ci_low <= q.value <= q.ci_high


def test_the_shipped_quality_mini_suite_runs_offline_and_says_it_is_not_comparable():
    from vdmbench.config.suite import load_suite
    from vdmbench.metrics import metric_spec
    from vdmbench.metrics.vbench_scores import QUALITY_DIMENSIONS

    suite = load_suite("vbench-quality-mini")
    assert len(suite.prompts) == 30 and "not comparable" in suite.description
    specs = dict(metric_spec(m) for m in suite.metrics)
    assert set(specs) - {"vbench_scores"} <= set(QUALITY_DIMENSIONS) and "vbench_scores" in specs
    for name, options in specs.items():  # every network on seeded random weights: no download
        assert name in ("temporal_flickering", "vbench_scores") or options.get("pretrained") == "random", name
    assert all(set(p.tags) <= set(QUALITY_DIMENSIONS) and p.tags for p in suite.prompts)


def test_the_score_command_prints_the_table_and_writes_json(folder, tmp_path, capsys):
    import json

    from vdmbench.run.vbench_score import main

    path, _ = folder
    info = tmp_path / "full_info.json"
    info.write_text(json.dumps(ENTRIES))
    out = tmp_path / "res.json"
    assert main([str(path), "--metrics", "flicker", "--full-info", str(info), "--json", str(out), "--workers", "0",
                 "--device", "cpu", "--results-dir", str(tmp_path / "r")]) == 0
    text = capsys.readouterr().out
    assert "4 videos VBench expects are missing" in text and "temporal_flickering" in text
    assert "vbench_quality_score (not comparable with the VBench leaderboard)" in text
    saved = json.loads(out.read_text())
    assert saved["dimensions"]["temporal_flickering"]["n"] == 9 and saved["mode"].startswith("standard")


def test_a_text_listed_twice_is_read_once_per_entry_as_vbench_does(folder):
    path, clips = folder
    twice = [*ENTRIES, {"prompt_en": "a calm lake", "dimension": ["temporal_flickering", "color"]}]
    res = score_vbench_folder(path, ["flicker"], context=MetricContext(), full_info=twice, workers=0)
    lake = [n for n in clips if n.startswith("a calm lake") and n != "a calm lake-5.mp4"]
    street = [n for n in clips if n.startswith("a busy street")]
    values = [_flicker64(clips[n]) for n in lake + lake + street]  # VBench's list holds the lake's videos twice
    dim = res["dimensions"]["temporal_flickering"]
    assert dim["n"] == 14 and dim["value"] == pytest.approx(np.mean(values), abs=1e-12)


def test_vbench_command_routes_score_here_and_the_rest_to_interop(folder, tmp_path, capsys):
    from vdmbench.cli.vbench import main as vbench_command

    path, _ = folder
    assert vbench_command(["score", str(path), "--metrics", "flicker", "--workers", "0", "--device", "cpu",
                           "--results-dir", str(tmp_path / "r")]) == 0
    assert "temporal_flickering" in capsys.readouterr().out
    src = tmp_path / "info.json"
    src.write_text('[{"prompt_en": "a calm lake", "dimension": ["temporal_flickering"]}]')
    assert vbench_command(["import", str(src), "-o", str(tmp_path / "s.yaml")]) == 0
    assert "1 prompts (1 distinct texts) x 5 seeds" in capsys.readouterr().out
