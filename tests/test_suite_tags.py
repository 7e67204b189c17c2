"""The shipped suites' prompt tags say what each prompt asks, and they separate prompts.

Tags drive the dashboard's tag filter and its per-tag / per-dimension views; the same tag on
every prompt (what the shapes suites had) makes those views empty. The shapes suites' tags are
`family-value` (the naming of t2v-core's `motion-fast`, `camera-pan` and i2v-core's
`background-plain`), read here independently from the prompt's words and params.
"""

from __future__ import annotations

from collections import Counter

import pytest

from vdmbench.config.suite import load_suite
from vdmbench.data.shapes import COLORS, DIRECTIONS, SHAPES

SHAPES_SUITES = ["smoke", "shapes-t2v", "shapes-prediction", "shapes-interpolation", "shapes-editing"]
DIAGONALS = {"up-left", "up-right", "down-left", "down-right"}


def expected_tags(text: str, params: dict) -> set[str]:
    """The tags a shapes prompt must carry, from its own words (not through the caption parser)."""
    words = text.replace("standing still", "still").split()
    color = next(w for w in words if w in COLORS)
    shape = next(w for w in words if w in SHAPES)
    direction = next(w for w in words if w in DIRECTIONS)
    tags = {f"color-{color}", f"shape-{shape}"}
    if direction == "still":
        tags.add("motion-static")
    else:
        tags |= {f"direction-{direction}", "motion-diagonal" if direction in DIAGONALS else "motion-straight"}
    if "background" in params:
        tags.add(f"background-{params['background']}")
    return tags


@pytest.mark.parametrize("name", SHAPES_SUITES)
def test_shapes_prompts_are_tagged_with_what_they_ask(name):
    suite = load_suite(name)
    derived = {p.id: expected_tags(p.text, dict(p.params)) for p in suite.prompts}
    # A tag every prompt would carry filters nothing and is left out (smoke: all four move straight).
    everywhere = set.intersection(*derived.values())
    for p in suite.prompts:
        assert set(p.tags) == derived[p.id] - everywhere, (p.id, p.tags)
        assert len(p.tags) == len(set(p.tags)), p.id


@pytest.mark.parametrize("name", SHAPES_SUITES + ["t2v-mini", "t2v-core", "i2v-core"])
def test_every_tag_selects_a_proper_subset_and_families_vary(name):
    suite = load_suite(name)
    counts = Counter(t for p in suite.prompts for t in p.tags)
    n = len(suite.prompts)
    assert all(p.tags for p in suite.prompts), "every prompt carries a tag"
    assert max(counts.values()) < n, [t for t, c in counts.items() if c == n]  # no tag on every prompt
    # Prompts differ: far more distinct tag sets than any one tag (the old suites had exactly one).
    assert len({frozenset(p.tags) for p in suite.prompts}) >= min(n, 4)


def test_shapes_t2v_tag_balance_matches_its_design():
    """36 prompts: 6 colors x 6, 4 shapes x 9, 8 directions x 4 and 4 still (the header's balance)."""
    counts = Counter(t for p in load_suite("shapes-t2v").prompts for t in p.tags)
    assert all(counts[f"color-{c}"] == 6 for c in COLORS)
    assert all(counts[f"shape-{s}"] == 9 for s in SHAPES)
    assert all(counts[f"direction-{d}"] == 4 for d in DIRECTIONS if d != "still")
    assert counts["motion-static"] == 4 and counts["motion-straight"] == 16 and counts["motion-diagonal"] == 16


def test_tagged_suites_moved_their_version_with_their_hash():
    """Tags are part of the suite hash; a new hash under an old version would split that version's
    board on the dashboard, so the retagged suites carry a new version."""
    versions = {name: load_suite(name).version for name in SHAPES_SUITES}
    assert versions == {"smoke": 2, "shapes-t2v": 3, "shapes-prediction": 3, "shapes-interpolation": 3,
                        "shapes-editing": 3}
    base = load_suite("smoke")
    from dataclasses import replace

    retagged = replace(base, prompts=tuple(replace(p, tags=("color",)) for p in base.prompts))
    assert retagged.hash != base.hash  # why the version had to move


def test_t2v_mini_carries_t2v_core_dimension_tags():
    """t2v-mini's prompts keep t2v-core's tags (same ids), so both boards show the same dimensions."""
    core = {p.id: p.tags for p in load_suite("t2v-core").prompts}
    mini = load_suite("t2v-mini").prompts
    assert all(p.tags == core[p.id] for p in mini)
    families = {"people", "animals", "vehicles", "objects", "camera", "scene", "style", "color", "count", "spatial"}
    assert families <= {t for p in mini for t in p.tags}


def test_i2v_core_prompts_are_tagged_with_every_object_they_name():
    """i2v-core (v2): each object's color, shape and size, each moving object's direction and
    motion kind, the background and the object count, read here from the caption parser."""
    from vdmbench.data.shapes import parse_caption

    suite = load_suite("i2v-core")
    assert suite.version == 2
    for p in suite.prompts:
        objects = parse_caption(p.text)
        want = {f"background-{dict(p.params)['background']}", f"objects-{len(objects)}"}
        for o in objects:
            want |= {f"color-{o['color']}", f"shape-{o['shape']}", f"size-{o['size']}"}
            if o["direction"] == "still":
                want.add("motion-static")
            else:
                want |= {f"direction-{o['direction']}",
                         "motion-diagonal" if o["direction"] in DIAGONALS else "motion-straight"}
        assert set(p.tags) == want, (p.id, p.tags)
