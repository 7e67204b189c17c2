"""`vdmbench list metrics` caches its rows: the second listing imports no metric module (and no
torch), shows the same rows, and any change to vdmbench's files, a damaged cache file or an
installed metric plugin makes it compute them from the classes again."""

from __future__ import annotations

import importlib.metadata
import json
import os
import subprocess
import sys

from tests.fixtures import REPO
from vdmbench.cli import metric_listing

LIST_AND_REPORT = ("import sys\n"
                   "from vdmbench.cli.metric_listing import metric_rows\n"
                   "rows = metric_rows()\n"
                   "print(len(rows), 'torch' in sys.modules, 'vdmbench.metrics' in sys.modules)\n")


def _in_fresh_process(cache_home):
    env = {**os.environ, "XDG_CACHE_HOME": str(cache_home), "PYTHONPATH": str(REPO)}
    p = subprocess.run([sys.executable, "-c", LIST_AND_REPORT], env=env, capture_output=True, text=True,
                       timeout=300, check=True)
    n, torch_loaded, metrics_loaded = p.stdout.split()
    return int(n), torch_loaded == "True", metrics_loaded == "True"


def test_second_listing_reads_the_cache_and_imports_no_metric_module(tmp_path):
    first = _in_fresh_process(tmp_path)
    second = _in_fresh_process(tmp_path)
    assert first[1:] == (True, True)  # computed from the classes
    assert second == (first[0], False, False)  # the same rows, without torch or the metrics package
    (cached,) = (tmp_path / "vdmbench" / "listings").iterdir()
    assert json.loads(cached.read_text()) == metric_listing.compute_metric_rows()


def test_a_changed_file_a_damaged_cache_or_a_plugin_recomputes(tmp_path, monkeypatch):
    rows = [["m", "m ↑", "per clip", "-", "a metric"]]
    computed = []

    def compute():
        computed.append(1)
        return rows

    monkeypatch.setattr(metric_listing, "compute_metric_rows", compute)
    assert metric_listing.metric_rows(tmp_path) == rows and len(computed) == 1
    assert metric_listing.metric_rows(tmp_path) == rows and len(computed) == 1  # served from the cache
    (cached,) = tmp_path.iterdir()
    cached.write_text("{not json")
    assert metric_listing.metric_rows(tmp_path) == rows
    assert len(computed) == 2  # damaged: computed again (and rewritten)
    assert json.loads(cached.read_text()) == rows
    monkeypatch.setattr(metric_listing, "_PACKAGE_DIR", tmp_path / "pkg")  # vdmbench's files change
    (tmp_path / "pkg" / "metrics").mkdir(parents=True)
    (tmp_path / "pkg" / "metrics" / "x.py").write_text("x = 1\n")
    metric_listing.metric_rows(tmp_path)
    assert len(computed) == 3 and len(list(tmp_path.glob("metrics-*.json"))) == 2
    plugin = importlib.metadata.EntryPoint("extra", "my_plugin:Extra", "vdmbench.metrics")
    monkeypatch.setattr(importlib.metadata, "entry_points",
                        lambda group=None: importlib.metadata.EntryPoints([plugin] if group == "vdmbench.metrics" else []))
    metric_listing.metric_rows(tmp_path)
    metric_listing.metric_rows(tmp_path)
    assert len(computed) == 5  # with a plugin nothing is cached
