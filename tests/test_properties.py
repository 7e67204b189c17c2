"""Property tests (hypothesis) for the pieces that take arbitrary text: file names, suites."""

import string

from hypothesis import given, settings
from hypothesis import strategies as st

from vdmbench.config.suite import parse_suite
from vdmbench.core.errors import ConfigError
from vdmbench.core.naming import safe_filename


@given(st.text(max_size=400))
@settings(max_examples=300, deadline=None)
def test_safe_filename_is_always_a_single_portable_component(text):
    name = safe_filename(text)
    assert name and len(name.encode()) <= 100
    assert set(name) <= set(string.ascii_letters + string.digits + "._-")
    assert "/" not in name and "\\" not in name and "\x00" not in name and ".." not in name
    assert not name.startswith(".")


@given(st.text(min_size=1, max_size=50), st.text(min_size=1, max_size=50))
@settings(max_examples=200, deadline=None)
def test_distinct_texts_never_share_a_file_name(a, b):
    if a != b:
        assert safe_filename(a) != safe_filename(b)


@given(st.dictionaries(st.text(max_size=12), st.one_of(st.none(), st.integers(), st.text(max_size=8),
                                                        st.lists(st.integers(), max_size=3)), max_size=6))
@settings(max_examples=200, deadline=None)
def test_arbitrary_mappings_either_parse_or_raise_config_error(data):
    try:
        parse_suite(data, source="fuzz.yaml")
    except ConfigError as e:
        assert str(e).startswith("fuzz.yaml")


@given(st.text(min_size=1, max_size=300).filter(lambda t: t.strip()))
@settings(max_examples=100, deadline=None)
def test_any_prompt_text_is_kept_exactly(text):
    suite = parse_suite({"name": "p", "num_frames": 2, "height": 4, "width": 4, "prompts": [{"id": "a", "text": text}]})
    assert suite.prompts[0].text == text
    assert len(suite.hash) == 16
