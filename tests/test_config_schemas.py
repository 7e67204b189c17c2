"""Issue #16, typed configuration: one schema per kind of file (suites, model configs) with
one-line errors that name the file, the key and what is expected; run options defined once
(RunOptions), from which the Hydra config, the conversion back and `run --help` come."""

import dataclasses
import math
from pathlib import Path

import pytest
import yaml

from vdmbench.config.model import ModelConfigSchema, load_model_config, validate_model_config
from vdmbench.config.suite import MAX_SEED, Suite, SuiteSchema, load_suite, parse_suite
from vdmbench.core.errors import ConfigError
from vdmbench.run.options import RunOptions, config_defaults, options_from_mapping, run_option_specs

SUITE = {"name": "s", "num_frames": 4, "height": 8, "width": 8, "prompts": [{"id": "a", "text": "a red circle"}]}
MODEL = {"name": "m", "adapter": "callable", "params": {"target": "tests.fixtures.generators:noise"}}

# Every field a suite can have. Its hash was computed with the hand-written checks that the schema
# replaced (commit 93bcb06): the same suite must keep its hash, or cached runs stop resuming.
FULL = {
    "name": "everything", "version": 3, "task": "editing", "description": "not hashed",
    "num_frames": 12, "height": 24, "width": 40, "fps": 12, "seeds": 3, "steps": 7, "guidance": 4,
    "metrics": ["flicker", {"name": "fvd", "features": "random-i3d"}],
    "reference": {"source": "shapes", "n": 16, "seed": 10_000}, "context_frames": 2, "strength": 0.5,
    "params": {"scene": {"speed": 1.5}},
    "prompts": ["a plain string prompt",
                {"id": "b", "text": "a blue square moving up", "tags": ["color"], "seeds": [5, 9],
                 "params": {"k": [1, 2]}, "source_video": "clips/b.mp4"},
                {"text": "no id given"}],
}


def write(tmp_path: Path, data, name="mine.yaml") -> Path:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data))
    return path


# --- suites ---------------------------------------------------------------------------------------

def test_suite_hash_is_the_one_computed_before_the_schema():
    assert load_suite("smoke").hash == "8992b76eef3269db"
    full = parse_suite(FULL)
    assert full.hash == "c7898cef7b65ea69"
    assert parse_suite(full.to_dict()).hash == full.hash  # to_dict round-trips


def test_suite_keeps_its_public_shape():
    s = parse_suite(FULL)
    assert isinstance(s, Suite) and s.fps == 12.0 and isinstance(s.fps, float)
    assert s.seeds == (0, 1, 2) and s.guidance == 4.0 and s.metrics[1] == {"name": "fvd", "features": "random-i3d"}
    assert [p.id for p in s.prompts] == ["p0000", "b", "p0002"]
    assert s.prompts[1].seeds == (5, 9) and s.prompts[1].tags == ("color",) and s.prompts[1].source_video == "clips/b.mp4"
    assert [(p.id, seed) for p, seed in s.samples()][:5] == [("p0000", 0), ("p0000", 1), ("p0000", 2), ("b", 5), ("b", 9)]
    assert s.to_dict()["prompts"][0] == {"id": "p0000", "text": "a plain string prompt"}


@pytest.mark.parametrize("patch, message", [
    ({"num_frames": 0}, "key 'num_frames' must be an integer >= 1, got 0"),
    ({"num_frames": True}, "key 'num_frames' must be an integer >= 1, got True"),
    ({"height": "8"}, "key 'height' must be an integer >= 1, got '8'"),
    ({"task": "t3v"}, "key 'task' must be one of ['t2v', 'i2v', 'prediction', 'interpolation', 'editing'], got 't3v'"),
    ({"fps": "8"}, "key 'fps' must be a finite number > 0, got '8'"),
    ({"guidance": "high"}, "key 'guidance' must be a finite number or null, got 'high'"),
    ({"strength": True}, "key 'strength' must be a number in (0, 1], got True"),
    ({"metrics": "flicker"}, "key 'metrics' must be a non-empty list of metric names, got 'flicker'"),
    ({"metrics": [3]}, "key 'metrics': each entry must be a metric name or {name: ..., option: ...}, got 3"),
    ({"reference": {"n": 3}}, "key 'reference' must be a mapping with 'source' (shapes or folder), got {'n': 3}"),
    ({"params": [1]}, "key 'params' must be a mapping, got [1]"),
    ({"seeds": [1, 1]}, "key 'seeds': seeds must be distinct, got [1, 1]"),
    ({"bogus": 1, "other": 2}, "unknown keys ['bogus', 'other']; allowed: ["),
    ({"prompts": [{"id": "a", "text": "  "}]}, "prompts[0]: 'text' must be a non-empty string, got '  '"),
    ({"prompts": [{"id": "a", "text": "x", "tags": "t"}]}, "prompts[0]: 'tags' must be a list of strings, got 't'"),
    ({"prompts": ["ok", 7]}, "prompts[1] must be a mapping with 'id' and 'text' or a plain string"),
    ({"prompts": [{"id": "a", "text": "x", "colour": "red"}]}, "prompts[0]: unknown keys ['colour']; allowed: ["),
    ({"prompts": [{"id": "a", "text": "x"}, {"id": "a", "text": "y"}]}, "prompts[1]: duplicate prompt id 'a'"),
])
def test_suite_errors_name_the_file_the_key_and_what_is_expected(tmp_path, patch, message):
    path = write(tmp_path, {**SUITE, **patch})
    with pytest.raises(ConfigError) as e:
        load_suite(path)
    text = str(e.value)
    assert text.startswith(f"{path}: ") and message in text and "\n" not in text, text


def test_missing_keys_and_non_mappings(tmp_path):
    with pytest.raises(ConfigError, match=r"^x\.yaml: missing key 'width' \(an integer >= 1\)$"):
        parse_suite({k: v for k, v in SUITE.items() if k != "width"}, source="x.yaml")
    with pytest.raises(ConfigError, match=r"^x\.yaml: a suite must be a mapping, got list$"):
        parse_suite([1], source="x.yaml")
    with pytest.raises(ConfigError, match="not valid YAML at line"):
        load_suite(write(tmp_path, "name: [unclosed\n"))


@pytest.mark.parametrize("fps", [".nan", ".inf", "-.inf", ".NaN"])
def test_fps_nan_or_infinite_is_refused(tmp_path, fps):
    path = write(tmp_path, yaml.safe_dump(SUITE) + f"fps: {fps}\n")
    with pytest.raises(ConfigError) as e:
        load_suite(path)
    assert str(e.value).startswith(f"{path}: key 'fps' must be a finite number > 0, got ")
    for key in ("guidance",):
        with pytest.raises(ConfigError, match=f"key '{key}' must be a finite number or null, got nan"):
            parse_suite({**SUITE, key: math.nan})


def test_seeds_must_fit_int64(tmp_path):
    assert parse_suite({**SUITE, "seeds": [0, MAX_SEED]}).seeds == (0, 2**63 - 1)
    for seeds in ([2**63], [0, 2**64 + 5], [-1]):
        path = write(tmp_path, {**SUITE, "seeds": seeds})
        with pytest.raises(ConfigError) as e:
            load_suite(path)
        assert str(e.value).startswith(f"{path}: key 'seeds': ") and "0..2**63-1" in str(e.value)
    with pytest.raises(ConfigError, match=r"prompts\[0\]: 'seeds': .*0\.\.2\*\*63-1"):
        parse_suite({**SUITE, "prompts": [{"id": "a", "text": "x", "seeds": [2**63]}]})
    with pytest.raises(ConfigError, match="key 'seeds': a seed count must be <= "):
        parse_suite({**SUITE, "seeds": 2**63})  # a count, not a list of 2**63 seeds in memory


def test_schema_is_strict_and_nulls_mean_default():
    s = parse_suite({**SUITE, "version": None, "steps": None, "params": None, "description": None,
                     "prompts": [{"id": "a", "text": "x", "tags": None, "seeds": None}]})
    assert s.version == 1 and s.steps is None and s.params == {} and s.description == ""
    assert s.prompts[0].tags == () and s.prompts[0].seeds == ()
    assert set(SuiteSchema.model_fields) >= {"name", "prompts", "fps", "seeds", "metrics"}


# --- model configs --------------------------------------------------------------------------------

@pytest.mark.parametrize("patch, message", [
    ({"steps": 3}, "unknown keys ['steps']; put backend options under 'params'"),
    ({"name": ""}, "key 'name' must be a non-empty string, got ''"),
    ({"adapter": None}, "key 'adapter' must be a non-empty string, got None"),
    ({"params": 3}, "key 'params' must be a mapping, got 3"),
    ({"tasks": ["t2v", "t4v"]}, "key 'tasks' must be a list of tasks (t2v, i2v, prediction, interpolation, editing), "
                                "got ['t2v', 't4v']"),
    ({"description": ["a", "list"]}, "key 'description' must be a string, got ['a', 'list']"),
])
def test_model_config_errors_name_the_file_the_key_and_what_is_expected(tmp_path, patch, message):
    path = write(tmp_path, {**MODEL, **patch})
    with pytest.raises(ConfigError) as e:
        load_model_config(path)
    assert str(e.value) == f"{path}: {message}"


def test_model_config_is_returned_as_written():
    written = {**MODEL, "tasks": ["t2v"], "notes": {"any": "thing"}}
    assert validate_model_config(written, "m.yaml") == written  # no defaults added: its hash keys the cache
    assert validate_model_config({**MODEL, "params": None}, "m.yaml")["params"] == {}
    with pytest.raises(ConfigError, match=r"^m\.yaml: missing key 'adapter' "):
        validate_model_config({"name": "m"}, "m.yaml")
    with pytest.raises(ConfigError, match=r"^m\.yaml: a model config must be a mapping with keys name, adapter, params"):
        validate_model_config("reference-unet3d", "m.yaml")
    with pytest.raises(ConfigError, match="unknown model 'nope'"):
        load_model_config("nope")
    assert "params" in ModelConfigSchema.model_fields


# --- run options ----------------------------------------------------------------------------------

def test_run_options_are_constructible_as_before():
    o = RunOptions(results_dir=Path("r"), progress=False, workers=0)
    assert o.db_path == Path("r") / "vdmbench.duckdb" and o.batch_size == 8 and o.overrides == []
    assert RunOptions(db=Path("x.duckdb")).db_path == Path("x.duckdb")
    keys = {s.attr for s in run_option_specs()}
    assert keys == {f.name for f in dataclasses.fields(RunOptions)} - {"overrides"}


def test_the_config_defaults_convert_back_to_the_dataclass_defaults():
    assert options_from_mapping(config_defaults()) == RunOptions()


@pytest.mark.parametrize("key, value, message", [
    ("threads", "abc", "threads must be 'auto' or a whole number >= 1, got 'abc'"),
    ("batch_size", "lots", "batch_size must be a whole number >= 1, got 'lots'"),
    ("batch_size", 0, "batch_size must be a whole number >= 1, got 0"),
    ("workers", 1.5, "workers must be a whole number >= 0, got 1.5"),
    ("resume", "maybe", "resume must be true or false, got 'maybe'"),
    ("precision", "fp8", "precision must be one of fp32, bf16, fp16, got 'fp8'"),
    ("flush_seconds", math.inf, "flush_seconds must be a finite number >= 0, got inf"),
    ("timeout", -1, "timeout must be a finite number >= 0 or null, got -1"),
    ("max_failed", "lots", "max_failed must be a count"),
    ("shard", "2/2", "shard '2/2': need 0 <= I < N"),
])
def test_options_from_a_config_check_types_in_one_line(key, value, message):
    with pytest.raises(ConfigError) as e:
        options_from_mapping({**config_defaults(), key: value})
    assert str(e.value).startswith(message) and "\n" not in str(e.value)


def test_options_from_a_config_take_text_from_interpolations():
    o = options_from_mapping({"batch_size": "4", "resume": "false", "threads": "2", "shard": "1/4", "cache": False,
                              "max_failed": "10%", "db": "", "run_id": 123, "timeout": 3})
    assert (o.batch_size, o.resume, o.threads, o.shard, o.cache) == (4, False, 2, (1, 4), False)
    assert o.max_failed == pytest.approx(0.1) and o.db is None and o.run_id == "123" and o.timeout == 3.0


def test_run_help_lists_every_run_option(vdmbench_cli):
    out = vdmbench_cli("run", "--help", check=True).stdout
    for spec in run_option_specs():
        line = next((line for line in out.splitlines() if line.startswith(f"  {spec.key}={spec.usage}")), None)
        assert line is not None, f"{spec.key} missing from run --help"
        assert spec.help.split()[0] in line
    assert "suite=NAME" in out and "model=NAME" in out and "(default: smoke)" in out


def test_cfg_job_prints_exactly_the_run_options_and_the_two_groups(vdmbench_cli):
    p = vdmbench_cli("run", "--cfg", "job", "suite=tiny", "model=toy-noise", check=True)
    cfg = yaml.safe_load(p.stdout)
    assert set(cfg) == {"suite", "model"} | {s.key for s in run_option_specs()}
    assert cfg["model"]["name"] == "toy-noise" and cfg["suite"]["name"] == "tiny"
    assert {k: cfg[k] for k in config_defaults() if k != "progress"} == {
        k: v for k, v in config_defaults().items() if k != "progress"}  # the fixture passes progress=false


def test_model_and_its_hydra_spelling_pick_the_same_file(vdmbench_cli):
    short = yaml.safe_load(vdmbench_cli("run", "--cfg", "job", "model=toy-noise", check=True).stdout)
    native = yaml.safe_load(vdmbench_cli("run", "--cfg", "job", "adapters@model=toy-noise", "suites@suite=tiny",
                                         check=True).stdout)
    assert short["model"] == native["model"] and native["suite"]["name"] == "tiny"
    p = vdmbench_cli("run", "adapters@model=nope")
    assert p.returncode == 2 and "unknown model 'nope'" in p.stderr


def test_a_bad_option_value_is_a_one_line_error(vdmbench_cli):
    p = vdmbench_cli("run", "suite=tiny", "model=toy-noise", "threads=abc")
    lines = [line for line in p.stderr.splitlines() if line.strip()]
    assert p.returncode == 2 and lines == ["vdmbench: error: threads must be 'auto' or a whole number >= 1, got 'abc'"]
    p = vdmbench_cli("run", "suite=tiny", "model=toy-noise", "batch_size=many")
    assert p.returncode == 2 and "batch_size must be a whole number >= 1, got 'many'" in p.stderr
