"""The registry of adapters, metrics and gate policies: lazy entries, one-line errors, and plugins
through Python entry points (a package in a temporary folder, entry points faked)."""

import importlib.metadata
import subprocess
import sys
import textwrap

import pytest

from tests.fixtures import REPO
from vdmbench.core.errors import ConfigError
from vdmbench.core.registry import Registry, install_hint

PLUGIN = "vdmbench_test_plugin"

BRIGHTNESS = '''
"""Mean brightness of a clip: a metric that lives outside vdmbench."""

import torch

from vdmbench.metrics import ClipBatch, Output, PerSampleMetric


class MeanBrightness(PerSampleMetric):
    name = "mean_brightness"
    outputs = (Output("mean_brightness", higher_is_better=True, range=(0.0, 1.0),
                      description="mean pixel value over the clip, / 255"),)

    def sample_values(self, batch: ClipBatch) -> dict[str, torch.Tensor]:
        videos = self.check_batch(batch)
        return {"mean_brightness": videos.flatten(1).to(torch.float64).mean(1) / 255.0}


METRICS = [MeanBrightness]
'''

LEGACY = '''
import torch

from vdmbench.metrics import PerSampleMetric


class OldStyle(PerSampleMetric):
    """Declared the way metrics were before Output existed."""

    name = "old_style"
    outputs = ("old_a", "old_b")
    higher_is_better = True
    higher_is_better_by_output = {"old_b": False}
    requires = frozenset({"prompts"})

    def sample_values(self, batch):
        n = len(batch)
        return {"old_a": torch.ones(n, dtype=torch.float64), "old_b": torch.zeros(n, dtype=torch.float64)}


METRICS = [OldStyle]
'''

ADAPTER = '''
import torch

from vdmbench.adapters.base import BaseAdapter, Capabilities


class GreyAdapter(BaseAdapter):
    capabilities = Capabilities(tasks=("t2v",), batch_size=4)

    def __init__(self, name, level=128, **kw):
        super().__init__(name, **kw)
        self.level = level

    def generate_one(self, request):
        return torch.full((request.num_frames, request.height, request.width, 3), self.level, dtype=torch.uint8)
'''

POLICIES = '''
STRICT = {"name": "strict", "alpha": 0.01, "metrics": {"flicker": {"abs": 0.0}}}
'''

NEEDS_MISSING = '''
import vdmbench_no_such_dependency  # noqa: F401

METRICS = []
'''

ENTRY_POINTS = [
    ("vdmbench.metrics", "mean_brightness", f"{PLUGIN}.brightness:MeanBrightness"),
    ("vdmbench.metrics", "legacy_module", f"{PLUGIN}.legacy"),  # a module exposing METRICS
    ("vdmbench.adapters", "grey", f"{PLUGIN}.adapter:GreyAdapter"),
    ("vdmbench.gate_policies", "strict", f"{PLUGIN}.policies:STRICT"),
]


@pytest.fixture(scope="module")
def plugin_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("plugin")
    pkg = root / PLUGIN
    pkg.mkdir()
    for name, text in (("__init__", ""), ("brightness", BRIGHTNESS), ("legacy", LEGACY), ("adapter", ADAPTER),
                       ("policies", POLICIES), ("needs_missing", NEEDS_MISSING)):
        (pkg / f"{name}.py").write_text(textwrap.dedent(text))
    return root


def fake_entry_points(monkeypatch, extra):
    """importlib.metadata.entry_points as if a package declaring `extra` were installed."""
    real = importlib.metadata.entry_points

    def entry_points(**params):
        found = real(**params)
        group = params.get("group")
        if group is None:
            return found
        mine = [importlib.metadata.EntryPoint(n, v, g) for g, n, v in extra if g == group]
        return importlib.metadata.EntryPoints([*found, *mine])

    monkeypatch.setattr(importlib.metadata, "entry_points", entry_points)


@pytest.fixture
def plugin(plugin_dir, monkeypatch):
    monkeypatch.syspath_prepend(str(plugin_dir))
    fake_entry_points(monkeypatch, ENTRY_POINTS)
    return plugin_dir


def test_built_in_names_import_nothing_until_used():
    code = ("import sys\n"
            "from vdmbench.metrics import build_metric, REGISTRY\n"
            "from vdmbench.adapters import adapter_class\n"
            "names = REGISTRY.names()\n"
            "build_metric('flicker'); adapter_class('callable')\n"
            "print(sorted(m for m in sys.modules if m.startswith(('vdmbench.metrics.', 'vdmbench.adapters.'))))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True).stdout
    assert eval(out) == ["vdmbench.adapters.base", "vdmbench.adapters.callable", "vdmbench.adapters.outputs",
                         "vdmbench.metrics.base", "vdmbench.metrics.flicker", "vdmbench.metrics.torchmetrics_import"]


def test_unknown_names_list_the_known_ones():
    from vdmbench.metrics import build_metric

    with pytest.raises(ConfigError) as e:
        build_metric("flickr")
    assert str(e.value).startswith("unknown metric 'flickr' (did you mean 'flicker'?); known: aesthetic_quality, ")
    known = str(e.value).split("known: ")[1].split(" (")[0].split(", ")
    assert known == sorted(known) and {"clip_similarity", "flicker", "fvd", "subject_consistency"} <= set(known)
    assert "\n" not in str(e.value)


def test_a_missing_dependency_says_what_to_install(plugin):
    reg = Registry("metric", "vdmbench.test-none", {"needy": f"{PLUGIN}.needs_missing:METRICS"})
    with pytest.raises(ConfigError) as e:
        reg.get("needy")
    assert str(e.value) == ("metric 'needy' needs the package 'vdmbench_no_such_dependency', which is not "
                            "installed; install it: pip install vdmbench_no_such_dependency")
    assert install_hint("httpx") == "'vdmbench[api]'" and install_hint("cv2.ximgproc") == "opencv-python-headless"
    missing_module = Registry("adapter type", "vdmbench.test-none", {"gone": "vdmbench_gone.mod:X"})
    with pytest.raises(ConfigError, match=r"cannot import 'vdmbench_gone\.mod' \(no module named 'vdmbench_gone'\)"):
        missing_module.get("gone")


def test_a_broken_plugin_breaks_only_itself(plugin, monkeypatch):
    from vdmbench.metrics import REGISTRY, build_metric

    fake_entry_points(monkeypatch, [*ENTRY_POINTS, ("vdmbench.metrics", "needy", f"{PLUGIN}.needs_missing")])
    assert build_metric("flicker").name == "flicker" and build_metric("old_style").name == "old_style"
    assert "mean_brightness" in REGISTRY.load_all(strict=False)
    with pytest.raises(ConfigError, match="needs the package 'vdmbench_no_such_dependency'"):
        REGISTRY.load_all()


def test_third_party_metric_adapter_and_policy_are_found(plugin):
    from vdmbench.adapters import build_adapter
    from vdmbench.adapters.base import GenerationRequest
    from vdmbench.gate.policy import load_policy, policy_names
    from vdmbench.metrics import available_metrics, build_metric, output_direction, output_metric

    metrics = available_metrics()
    assert {"mean_brightness", "old_style", "flicker"} <= set(metrics)
    assert output_metric("mean_brightness") == "mean_brightness" and output_direction("old_b") is False
    m = build_metric("mean_brightness")
    assert m.outputs[0].range == (0.0, 1.0) and m.direction("mean_brightness") is True

    adapter = build_adapter({"name": "g", "adapter": "grey", "params": {"level": 10}})
    (video,) = adapter.generate([GenerationRequest("x", 0, 2, 4, 4, 8.0)])
    assert int(video.frames.max()) == 10

    assert "strict" in policy_names()
    strict = load_policy("strict")
    assert strict.alpha == 0.01 and set(strict.metrics) == {"flicker"}


def test_older_metric_declarations_still_work(plugin):
    from vdmbench.metrics import metric_class, metric_outputs

    cls = metric_class("old_style")
    assert cls.outputs == ("old_a", "old_b") and [o.higher_is_better for o in metric_outputs("old_style")] == [True, False]
    assert cls.inputs == cls.requires == frozenset({"prompts"}) and cls.higher_is_better is True


def test_a_name_defined_twice_is_refused(plugin, monkeypatch):
    from vdmbench.metrics import build_metric

    fake_entry_points(monkeypatch, [*ENTRY_POINTS, ("vdmbench.metrics", "flicker", f"{PLUGIN}.brightness:MeanBrightness")])
    with pytest.raises(ConfigError, match=r"metric 'flicker' is defined twice: by 'vdmbench.metrics.flicker:Flicker' "):
        build_metric("flicker")


def test_a_registry_name_must_match_the_class(plugin, monkeypatch):
    from vdmbench.metrics import build_metric

    fake_entry_points(monkeypatch, [("vdmbench.metrics", "brightness", f"{PLUGIN}.brightness:MeanBrightness")])
    with pytest.raises(ConfigError, match="is named 'mean_brightness'; the registry name and the class's `name` must agree"):
        build_metric("brightness")


def test_list_metrics_shows_the_plugin_and_a_run_scores_it(plugin, vdmbench_cli, tmp_path):
    listed = vdmbench_cli("list", "metrics", check=True).stdout
    assert "mean_brightness" in listed and "old_style" in listed
    run = vdmbench_cli("run", "suite=tiny", "model=toy-moving-square", "suite.metrics=[flicker,mean_brightness]")
    assert run.returncode == 0, run.stdout + run.stderr
    import duckdb

    con = duckdb.connect(str(tmp_path / "results" / "vdmbench.duckdb"), read_only=True)
    (n, lo, hi), = con.execute("SELECT count(*), min(value), max(value) FROM sample_metrics "
                               "WHERE metric = 'mean_brightness'").fetchall()
    details, = con.execute("SELECT details FROM run_metrics WHERE metric = 'mean_brightness'").fetchone()
    assert n == 12 and 0.5 < lo <= hi < 0.6  # grey 128 with a white square
    assert '"higher_is_better": true' in details


def test_list_metrics_marks_weights_as_not_scores(vdmbench_cli, monkeypatch):
    listed = vdmbench_cli("list", "metrics", check=True).stdout
    assert "appearance_style ↑, appearance_style_weight (a weight, not a score)" in listed, listed
    assert "flicker ↑, flicker_mean_abs_diff ↓" in listed
