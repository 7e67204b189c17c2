"""BaseAdapter (capability checks, per-request error wrapping, batching), the run context, typed
params with one-line errors, and build_adapter (no models: toy adapters defined here)."""

from pathlib import Path

import pytest
import torch

from vdmbench.adapters import adapter_class, build_adapter, list_model_configs, load_model_config
from vdmbench.adapters.base import (
    AdapterContext,
    AdapterParams,
    BaseAdapter,
    Capabilities,
    GenerationRequest,
)
from vdmbench.config.schema import expected
from vdmbench.core.errors import AdapterError, ConfigError
from vdmbench.core.video import Video


def req(prompt="a red circle", seed=0, **kw):
    return GenerationRequest(**{"prompt": prompt, "seed": seed, "num_frames": 4, "height": 8, "width": 8,
                                "fps": 8.0, **kw})


class Toy(BaseAdapter):
    """Fails on prompts with 'boom'; returns frames as floats (converted by the base)."""

    capabilities = Capabilities(tasks=("t2v",), max_frames=6)

    def generate_one(self, request):
        if "boom" in request.prompt:
            raise RuntimeError("kaboom\nTraceback: lots of lines")
        return torch.full((request.num_frames, request.height, request.width, 3), 0.5)


class ToyBatched(Toy):
    def __init__(self, name, answer=None, **kw):
        super().__init__(name, **kw)
        self.answer, self.calls = answer, []

    def generate_batch(self, requests):
        self.calls.append(len(requests))
        if self.answer == "raise":
            raise MemoryError("out of memory")
        if self.answer == "short":
            return [Video(torch.zeros(4, 8, 8, 3, dtype=torch.uint8), 8.0)]
        return [self.generate_one(r) for r in requests]


def test_one_failure_never_takes_the_others_and_errors_name_the_adapter():
    ok, boom, i2v, long = Toy("toy").generate([req(), req("boom"), req(task="i2v"), req(num_frames=9)])
    assert isinstance(ok, Video) and ok.frames.dtype == torch.uint8 and ok.num_frames == 4
    assert isinstance(boom, AdapterError) and str(boom) == "toy: RuntimeError: kaboom"  # one line
    assert isinstance(boom.__cause__, RuntimeError)
    assert isinstance(i2v, AdapterError) and "cannot do task 'i2v'" in str(i2v) and "toy" in str(i2v)
    assert isinstance(long, AdapterError) and "frames=9 exceeds its maximum 6" in str(long)


def test_batched_hook_gets_only_the_requests_that_passed_the_checks():
    a = ToyBatched("b")
    out = a.generate([req(), req(task="editing"), req(seed=1)])
    assert a.calls == [2] and isinstance(out[0], Video) and isinstance(out[1], AdapterError) and isinstance(out[2], Video)
    failing = ToyBatched("b", answer="raise").generate([req(), req(seed=1)])
    assert all(isinstance(e, AdapterError) and str(e) == "b: MemoryError: out of memory" for e in failing)
    short = ToyBatched("b", answer="short").generate([req(), req(seed=1)])
    assert all("returned 1 videos for 2 requests" in str(e) for e in short)


def test_bad_outputs_fail_only_their_slot():
    class Odd(BaseAdapter):
        capabilities = Capabilities()

        def generate_one(self, request):
            return "not frames" if request.seed else torch.zeros(2, 4, 4, 3, dtype=torch.uint8)

    good, bad = Odd("odd").generate([req(seed=0), req(seed=1)])
    assert isinstance(good, Video) and isinstance(bad, AdapterError) and str(bad).startswith("odd: ")


def test_context_defaults_follow_the_results_dir_and_bind_replaces_it(tmp_path):
    ctx = AdapterContext()
    assert ctx.results_dir == Path("results") and ctx.journal_dir == Path("results/http-jobs")
    run = AdapterContext(device="cpu", results_dir=tmp_path)
    assert run.journal_dir == tmp_path / "http-jobs" and run.cache_dir == tmp_path / "cache" / "adapters"
    a = Toy("toy")
    assert a.context == AdapterContext() and a.bind(run) is a and a.context is run
    built = build_adapter({"name": "t", "adapter": "callable",
                           "params": {"target": "tests.fixtures.generators:noise"}}, context=run)
    assert built.context is run


def test_http_journal_defaults_to_the_runs_results_dir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    params = {"base_url": "https://api.example.com", "submit": {"path": "/v1", "job_id": "id"},
              "poll": {"path": "/v1/{job_id}", "status": "s", "done": ["ok"], "video_url": "u"}}
    a = build_adapter({"name": "my-api", "adapter": "http", "params": params})
    assert a.journal.folder == Path("results/http-jobs/my-api")  # unchanged without a context
    a.bind(AdapterContext(results_dir=tmp_path / "bench"))
    assert a.journal.folder == tmp_path / "bench" / "http-jobs" / "my-api"
    explicit = build_adapter({"name": "x", "adapter": "http", "params": {**params, "journal_dir": "/j"}},
                             context=AdapterContext(results_dir=tmp_path))
    assert explicit.journal.folder == Path("/j/x")


class DemoParams(AdapterParams):
    url: str = expected("a URL")
    steps: int = expected("an integer >= 1", default=10, ge=1)
    scale: float = expected("a number", default=1.0)
    tags: list[str] | None = expected("a list of strings", default=None)


@pytest.mark.parametrize("data, message", [
    ({"url": "u", "stpes": 3}, "m: unknown keys ['stpes']; allowed: ['scale', 'steps', 'tags', 'url']"),
    ({}, "m: missing key 'url' (a URL)"),
    ({"url": "u", "steps": "3"}, "m: key 'steps' must be an integer >= 1, got '3'"),
    ({"url": "u", "steps": True}, "m: key 'steps' must be an integer >= 1, got True"),
    ({"url": "u", "tags": "a"}, "m: key 'tags' must be a list of strings, got 'a'"),
])
def test_params_errors_are_one_line_naming_the_key(data, message):
    with pytest.raises(ConfigError) as e:
        DemoParams.parse(data, "m")
    assert str(e.value) == message


def test_params_take_ints_for_floats_and_keep_the_rest():
    p = DemoParams.parse({"url": "u", "scale": 2, "tags": ["a"]}, "m")
    assert (p.scale, p.tags, p.steps) == (2.0, ["a"], 10) and isinstance(p.scale, float)


def test_diffusers_and_http_params_errors_from_the_yaml():
    pytest.importorskip("diffusers")
    with pytest.raises(ConfigError, match=r"^model 'd': unknown keys \['stepz'\]; allowed: \['attention_slicing', "):
        build_adapter({"name": "d", "adapter": "diffusers", "params": {"model": "x", "stepz": 3}})
    with pytest.raises(ConfigError, match=r"^model 'd': key 'cpu_offload' must be none, model or sequential "):
        build_adapter({"name": "d", "adapter": "diffusers", "params": {"model": "x", "cpu_offload": "gpu"}})
    with pytest.raises(ConfigError, match=r"^model 'h': missing key 'poll' \(a mapping with path, status"):
        build_adapter({"name": "h", "adapter": "http", "params": {"base_url": "https://x", "submit": {}}})
    with pytest.raises(ConfigError, match=r"^model 'h': key 'concurrency' must be an integer >= 1 .*, got 'four'"):
        build_adapter({"name": "h", "adapter": "http", "params": {"base_url": "https://x", "submit": {}, "poll": {},
                                                                   "concurrency": "four"}})


def test_every_shipped_diffusers_config_parses_into_its_params():
    pytest.importorskip("diffusers")
    from vdmbench.adapters.diffusers import DiffusersParams

    configs = [load_model_config(n) for n in list_model_configs()]
    diffusers = [c for c in configs if c["adapter"] == "diffusers"]
    assert diffusers
    for cfg in diffusers:
        p = DiffusersParams.parse(cfg["params"], cfg["name"])
        assert p.model and p.pipeline


def test_explicit_signature_adapters_name_the_unknown_param():
    with pytest.raises(ConfigError, match=r"model 'r': unknown param 'wieghts' for adapter 'reference'; known: arch, weights"):
        build_adapter({"name": "r", "adapter": "reference", "params": {"wieghts": "x"}})
    with pytest.raises(ConfigError, match="unknown adapter type 'refrence' \\(did you mean 'reference'\\?\\); known: "
                                          "callable, diffusers, folder, http, reference"):
        adapter_class("refrence")
    assert adapter_class("vdmbench.adapters.folder:FolderAdapter") is adapter_class("folder")
    with pytest.raises(ConfigError, match="no module named 'no_such_pkg'"):
        adapter_class("no_such_pkg.mod:Cls")
