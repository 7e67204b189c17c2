"""Issue #15 item 10: a secret typed on the command line, in any nested config and in any shape of
override (a secret-named key, or a dict-valued override holding one), never reaches the database,
the results folder or the logs."""

import logging

import pytest

from vdmbench.core.provenance import _redact, redact_config

SUITE = "sk-SUITESECRET-71c2"
NESTED = "sk-NESTEDSECRET-9e4d"
INIT = "sk-INITSECRET-3b8a"
DEEP = "sk-DEEPSECRET-55f0"
PROMPT = "sk-PROMPTSECRET-0a1b"


def test_secret_overrides_never_reach_db_results_or_logs(vdmbench_cli, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    p = vdmbench_cli(
        "run", "suite=tiny", "model=toy-moving-square", "flush_seconds=0",
        f"+suite.params.api_key={SUITE}",
        f"+suite.params.nested={{service: {{password: {NESTED}}}}}",
        "model.params.target=tests.fixtures.generators:KeyedModel",
        f"+model.params.init_kwargs={{token: {INIT}}}",
        f"+suite.prompts.0.params={{auth_header: {PROMPT}, x: [{{secret: {DEEP}}}]}}",
        check=True,
    )
    sentinels = [SUITE, NESTED, INIT, DEEP, PROMPT]
    logs = p.stdout + p.stderr + caplog.text
    for s in sentinels:
        assert s not in logs, f"{s} leaked into the output or logs"
    files = [f for f in tmp_path.rglob("*") if f.is_file()]
    assert any(f.suffix == ".duckdb" for f in files) and any(f.name == "manifest.json" for f in files)
    for f in files:
        data = f.read_bytes()
        leaked = [s for s in sentinels if s.encode() in data]
        assert not leaked, f"{leaked} leaked into {f.relative_to(tmp_path)}"
    # The run really got them (the model needs its token) and the redaction is visible.
    manifest = next(f for f in files if f.name == "manifest.json").read_text()
    assert "<redacted>" in manifest


@pytest.mark.parametrize("override, kept", [
    ("+suite.params.api_key=sk-1", "+suite.params.api_key=<redacted>"),
    ("model.params.init_kwargs={api_key: sk-1, steps: 4}", "model.params.init_kwargs={api_key: <redacted>, steps: 4}"),
    ("+model.params={init_kwargs: {token: 'sk-1,2'}}", "+model.params={init_kwargs: {token: <redacted>}}"),
    ("+x=[{password: sk-1}, 3]", "+x=[{password: <redacted>}, 3]"),
    ("suite=tiny", "suite=tiny"),
    ("+model.params.api_key_env=MY_KEY", "+model.params.api_key_env=MY_KEY"),
])
def test_dict_valued_overrides_are_redacted(override, kept):
    assert _redact(override) == kept


def test_unparseable_override_holding_a_secret_word_is_redacted_whole():
    assert "sk-1" not in _redact("+model.params={token: sk-1")


def test_redact_config_reaches_lists_of_dicts():
    assert redact_config({"a": [{"b": {"secret": 1}}]}) == {"a": [{"b": {"secret": "<redacted>"}}]}
