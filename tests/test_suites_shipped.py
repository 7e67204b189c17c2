"""Every shipped suite and model config validates; the real-world suites cover what they claim."""

import inspect
from collections import Counter

import pytest

from vdmbench.adapters import adapter_class
from vdmbench.adapters.base import TASKS
from vdmbench.config.model import list_model_configs, load_model_config
from vdmbench.config.suite import list_suites, load_suite
from vdmbench.metrics import available_metrics, metric_spec

SUITES = sorted(list_suites())
MODELS = sorted(list_model_configs())


@pytest.mark.parametrize("name", SUITES)
def test_every_shipped_suite_loads_and_lists_only_registered_metrics(name):
    suite = load_suite(name)
    known = set(available_metrics())
    names = {metric_spec(m)[0] for m in suite.metrics}
    assert names <= known, f"suite {name} lists unregistered metrics {sorted(names - known)}"


def test_t2v_core_covers_every_dimension():
    suite = load_suite("t2v-core")
    assert len(suite.prompts) >= 200
    assert len({p.id for p in suite.prompts}) == len({p.text for p in suite.prompts}) == len(suite.prompts)
    assert all(p.tags for p in suite.prompts)
    tags = Counter(t for p in suite.prompts for t in p.tags)
    for family, minimum in {"people": 20, "animals": 20, "vehicles": 20, "objects": 20, "action": 20,
                            "motion-slow": 10, "motion-fast": 10, "camera": 15, "scene": 15, "style": 15,
                            "color": 15, "count": 15, "multi-object": 15, "spatial": 15}.items():
        assert tags[family] >= minimum, (family, tags[family])
    for move in ("camera-pan", "camera-tilt", "camera-zoom", "camera-dolly", "camera-orbit", "camera-tracking",
                 "camera-aerial", "camera-static"):
        assert tags[move] >= 1, move
    assert suite.steps is None and suite.guidance is None  # each model's recommended values apply


def test_t2v_mini_is_a_subset_of_t2v_core():
    core = {p.id: p.text for p in load_suite("t2v-core").prompts}
    mini = load_suite("t2v-mini")
    assert 25 <= len(mini.prompts) <= 35
    assert all(core.get(p.id) == p.text for p in mini.prompts)
    assert {"camera", "style", "count", "spatial"} <= {t for p in mini.prompts for t in p.tags}


def test_i2v_core_renders_its_conditioning_images_and_text_matches_params():
    from dataclasses import replace

    from vdmbench.data.shapes import parse_caption
    from vdmbench.run.plan import plan_samples

    suite = load_suite("i2v-core")
    assert suite.task == "i2v" and len(suite.prompts) >= 30
    for p in suite.prompts:  # the words pin every object; only the start positions come from the seed
        objects = parse_caption(p.text)
        assert objects and all(None not in o.values() for o in objects), (p.id, objects)
        assert len(objects) == (2 if "objects-2" in p.tags else 1), p.id
        assert p.id.startswith("-".join(f"{o['color']}-{o['shape']}-{o['direction']}" for o in objects)), p.id
    small = replace(suite, height=32, width=56, num_frames=4)  # the same scenes, cheaply
    planned = plan_samples(small, {"adapter": "callable", "params": {}})
    assert len(planned) == len(suite.prompts) * len(suite.seeds)
    for s in planned:
        assert tuple(s.request.cond_frames.shape) == (1, 32, 56, 3) and s.request.cond_indices == (0,)
        assert s.ground_truth is not None and s.ground_truth.num_frames == 4
    full = plan_samples(replace(suite, prompts=suite.prompts[:1], seeds=(0,)), {"adapter": "callable", "params": {}})
    assert tuple(full[0].request.cond_frames.shape) == (1, 256, 448, 3)


@pytest.mark.parametrize("name", MODELS)
def test_every_shipped_model_config_validates_and_its_params_fit_its_class(name):
    cfg = load_model_config(name)
    assert cfg["tasks"] and set(cfg["tasks"]) <= set(TASKS), f"{name}: 'tasks' must list what it supports"
    if ":" in cfg["adapter"] or cfg["adapter"] == "callable":
        return  # user classes take their own params
    cls = adapter_class(cfg["adapter"])
    inspect.signature(cls).bind(name=cfg["name"], **cfg["params"])  # no unknown or missing params


DIFFUSERS = [n for n in MODELS if load_model_config(n)["adapter"] == "diffusers"]


@pytest.mark.parametrize("name", DIFFUSERS)
def test_diffusers_configs_name_real_classes_and_say_what_they_need(name):
    diffusers = pytest.importorskip("diffusers")
    from vdmbench.adapters.diffusers import infer_tasks

    cfg = load_model_config(name)
    p = cfg["params"]
    pipe = getattr(diffusers, p["pipeline"])
    sig = set(inspect.signature(pipe.__call__).parameters)
    assert tuple(cfg["tasks"]) == infer_tasks(sig)
    for comp in (p.get("components") or {}).values():
        assert hasattr(diffusers, comp["class"]), comp
    if p.get("scheduler"):
        assert hasattr(diffusers, p["scheduler"]["class"])
    for k in ("num_frames", "height", "width", "fps", "steps", "guidance"):
        assert p.get(k) is not None, f"{name}: recommended {k} missing"
    assert p["height"] % p["size_multiple"] == 0 and p["width"] % p["size_multiple"] == 0
    assert (p["num_frames"] - 1) % p.get("frame_step", 1) == 0
    assert cfg.get("gpu_memory"), f"{name}: say how much GPU memory it needs"


def test_the_ready_model_configs_are_all_there():
    expected = {"modelscope-t2v", "zeroscope-v2", "animatediff", "cogvideox-2b", "cogvideox-5b", "ltx-video",
                "wan2.1-t2v-1.3b", "hunyuanvideo", "svd-xt"}
    assert expected <= set(DIFFUSERS)


def test_list_models_shows_every_config_with_its_tasks(capsys):
    from vdmbench.cli.commands import main

    assert main(["list", "models"]) == 0
    out = capsys.readouterr().out
    for name in MODELS:
        assert name in out
    assert "i2v" in out and "t2v" in out
