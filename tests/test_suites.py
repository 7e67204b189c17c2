import pytest
import yaml

from vdmbench.config.suite import list_suites, load_suite, parse_suite
from vdmbench.core.errors import ConfigError

BASE = {
    "name": "s", "num_frames": 4, "height": 8, "width": 8,
    "prompts": [{"id": "a", "text": "a red circle"}, "plain string prompt"],
}


def test_every_shipped_suite_is_valid():
    suites = list_suites()
    assert "smoke" in suites
    for name in suites:
        s = load_suite(name)
        assert s.samples()


def test_smoke_suite_shape():
    s = load_suite("smoke")
    assert s.task == "t2v" and len(s.samples()) == 8
    assert "flicker" in s.metrics


def test_hash_is_stable_and_content_sensitive():
    a, b = parse_suite(dict(BASE)), parse_suite(dict(BASE))
    assert a.hash == b.hash
    assert parse_suite({**BASE, "description": "other words"}).hash == a.hash
    assert parse_suite({**BASE, "seeds": [0, 1]}).hash != a.hash
    assert parse_suite({**BASE, "num_frames": 5}).hash != a.hash


def test_seeds_count_and_per_prompt_override():
    s = parse_suite({**BASE, "seeds": 3, "prompts": [{"id": "a", "text": "x", "seeds": [7]}, {"id": "b", "text": "y"}]})
    assert [(p.id, seed) for p, seed in s.samples()] == [("a", 7), ("b", 0), ("b", 1), ("b", 2)]


@pytest.mark.parametrize(
    "patch, message",
    [
        ({"num_frames": 0}, "'num_frames' must be an integer >= 1"),
        ({"num_frames": "8"}, "'num_frames' must be an integer"),
        ({"task": "t3v"}, "'task' must be one of"),
        ({"prompts": []}, "'prompts' must be a non-empty list"),
        ({"seeds": [1, 1]}, "seeds must be distinct"),
        ({"bogus": 1}, "unknown keys \\['bogus'\\]"),
        ({"metrics": "flicker"}, "'metrics' must be a non-empty list"),
        ({"prompts": [{"id": "a", "text": ""}]}, "prompts\\[0\\]: 'text' must be a non-empty string"),
        ({"prompts": [{"id": "a/../b", "text": "x"}]}, "prompts\\[0\\]: 'id' must be a short identifier"),
        ({"prompts": [{"id": "a", "text": "x"}, {"id": "a", "text": "y"}]}, "duplicate prompt id 'a'"),
    ],
)
def test_validation_errors_name_file_key_and_expectation(patch, message):
    with pytest.raises(ConfigError, match=message) as info:
        parse_suite({**BASE, **patch}, source="my.yaml")
    assert str(info.value).startswith("my.yaml")


def test_missing_key_and_malformed_yaml(tmp_path):
    with pytest.raises(ConfigError, match="missing key 'height'"):
        parse_suite({k: v for k, v in BASE.items() if k != "height"})
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml: not valid YAML"):
        load_suite(bad)
    with pytest.raises(ConfigError, match="unknown suite 'nope'"):
        load_suite("nope")


def test_load_by_path(tmp_path):
    p = tmp_path / "mine.yaml"
    p.write_text(yaml.safe_dump(BASE))
    assert load_suite(p).name == "s"
