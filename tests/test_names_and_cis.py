"""Issue #15 item 11: a prompt whose VBench file name is near the 255-byte limit exports (the
temporary name fits too), and a one-prompt suite stores NULL CI bounds with a reason, or a CI over
its seeds, never NaN."""

import json

import duckdb

from vdmbench.config.suite import parse_suite
from vdmbench.core.naming import vbench_filename
from vdmbench.interop.vbench import export_run
from vdmbench.run.runner import Runner, RunOptions

MODEL = {"name": "toy", "adapter": "callable", "params": {"target": "tests.fixtures.generators:moving_square"}}


def suite(prompts, seeds):
    return parse_suite({"name": "names", "num_frames": 4, "height": 16, "width": 16, "metrics": ["flicker"],
                        "seeds": seeds, "prompts": prompts})


def test_vbench_export_of_a_prompt_near_the_file_name_limit(tmp_path):
    text = "a red circle moving right " + "x" * 212  # its VBench name '{text}-0.mp4' is 244 bytes
    assert len(vbench_filename(text, 0).encode()) == 244
    summary = Runner(suite([{"id": "long", "text": text}], [0]), MODEL,
                     RunOptions(results_dir=tmp_path / "r", progress=False, workers=0, preview=False)).run()
    report = export_run(summary.db, summary.run_id, tmp_path / "vb")
    assert report.written == [vbench_filename(text, 0)]
    assert (tmp_path / "vb" / vbench_filename(text, 0)).is_file()
    assert not [p for p in (tmp_path / "vb").iterdir() if p.name.endswith(".tmp")]


def ci_rows(db):
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute("SELECT metric, ci_low, ci_high, details FROM run_metrics ORDER BY metric").fetchall()
    finally:
        con.close()


def test_one_prompt_one_seed_stores_null_cis_with_the_reason(tmp_path):
    s = Runner(suite([{"id": "a", "text": "a red circle moving right"}], [0]), MODEL,
               RunOptions(results_dir=tmp_path / "r", progress=False, workers=0)).run()
    for metric, lo, hi, details in ci_rows(s.db):
        assert lo is None and hi is None, metric
        assert json.loads(details)["ci"] == "none: one sample has no CI"


def test_one_prompt_several_seeds_gets_a_ci_over_seeds(tmp_path):
    s = Runner(suite([{"id": "a", "text": "a red circle moving right"}], [0, 1, 2, 3]), MODEL,
               RunOptions(results_dir=tmp_path / "r", progress=False, workers=0)).run()
    rows = ci_rows(s.db)
    assert rows
    for metric, lo, hi, details in rows:
        assert lo is not None and hi is not None and lo <= hi, metric
        assert json.loads(details)["ci"] == "bootstrap over seeds (one prompt), 95%"
