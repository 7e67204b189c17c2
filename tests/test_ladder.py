"""The sample-size ladder of FVD, KVD and JEDi (vdmbench.core.ladder; issue #18 "sample efficiency").

The metrics' extractors are replaced by an exact stand-in (each clip's first `dim` pixel values as
float32: integers, so no batch size or BLAS kernel can change a feature), because what is tested
is the ladder's arithmetic on whatever features come out, not a network.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from rich.console import Console

from vdmbench.cli.terminal import print_ladder_warnings
from vdmbench.core.ladder import (
    RULE,
    build_ladder,
    judge_ladder,
    ladder_details,
    ladder_permutation,
    ladder_sizes,
)
from vdmbench.gate.compare import metric_config
from vdmbench.metrics import MetricContext
from vdmbench.metrics.fvd import FVD, KVD
from vdmbench.metrics.jedi import JEDi

N, T, S = 150, 9, 8  # 150 clips: the ladder is 64, 128, 150
SEED = 3


def pixels_as_features(metric):
    """Replace the extractor's network by the clip's first `dim` pixel values (exact in float32)."""
    dim = metric.extractor.dim
    metric.extractor.forward = lambda v: v.reshape(len(v), -1)[:, :dim].to(torch.float32)
    return metric


CONTEXT = MetricContext(seed=SEED)  # one context: its metrics share one (patched) extractor per backend


def make(cls, **opts):
    opts = {**({"features": "random-i3d", "resize": 32} if cls is not JEDi else {"features": "random-vjepa"}), **opts}
    return pixels_as_features(cls(CONTEXT, **opts))


@pytest.fixture(scope="module")
def clips():
    gen = torch.Generator().manual_seed(0)
    real = torch.randint(0, 256, (N, T, S, S, 3), generator=gen, dtype=torch.uint8)
    fake = torch.randint(30, 256, (N, T, S, S, 3), generator=gen, dtype=torch.uint8)  # brighter: a real distance
    return real, fake


def computed(metric, real, fake, batches=1):
    metric.update_real(real)
    for part in fake.chunk(batches):
        metric.update(part)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "below 256 clips"
        return metric.compute(), metric.describe()


# --- sizes, permutation, rule ----------------------------------------------------------------------

@pytest.mark.parametrize("n, sizes", [
    (1000, [64, 128, 256, 512, 1000]), (1024, [64, 128, 256, 512, 1024]), (256, [64, 128, 256]),
    (150, [64, 128, 150]), (128, [64, 128]), (127, [31, 63, 127]), (64, [16, 32, 64]), (8, [2, 4, 8]),
    (4, [2, 4]), (3, [3]), (2, [2]), (1, []), (0, []),
])
def test_sizes(n, sizes):
    assert ladder_sizes(n) == sizes
    # Always a size at or below n/2 from n = 4 on, so the rule judges a real doubling.
    assert n < 4 or any(2 * k <= n for k in ladder_sizes(n))


def test_subsets_are_nested_prefixes_of_one_seeded_permutation():
    perm = ladder_permutation(150, SEED)
    assert sorted(perm) == list(range(150)) and np.array_equal(perm, ladder_permutation(150, SEED))
    assert not np.array_equal(perm, ladder_permutation(150, SEED + 1))
    seen = []
    rows = build_ladder(150, SEED, (9.0, 8.0, 10.0), lambda idx: (seen.append(idx.copy()) or (float(len(idx)), None, None)))
    assert [r["n"] for r in rows] == [64, 128, 150] and rows[-1] == {"n": 150, "value": 9.0, "ci_low": 8.0, "ci_high": 10.0}
    assert [len(s) for s in seen] == [64, 128]  # the full size is the metric's own result, not recomputed
    assert np.array_equal(seen[1][:64], seen[0]) and np.array_equal(seen[1], perm[:128])


def rung(n, v, lo=None, hi=None):
    return {"n": n, "value": v, "ci_low": lo, "ci_high": hi}


@pytest.mark.parametrize("ladder, settled", [
    ([rung(64, 10.0), rung(128, 9.0), rung(256, 8.0, 7.0, 9.0)], True),      # moved 1.0 = half CI
    ([rung(64, 10.0), rung(128, 9.1), rung(256, 8.0, 7.0, 9.0)], False),     # moved 1.1 > half CI
    ([rung(64, 8.5), rung(128, 50.0), rung(200, 8.0, 7.0, 9.0)], True),      # 200 compares with 64, not 128
    ([rung(16, 1.0), rung(32, 1.04), rung(64, 1.0)], True),                  # no CI: 4% <= 5%
    ([rung(16, 1.0), rung(32, 1.06), rung(64, 1.0)], False),                 # no CI: 6% > 5%
    ([rung(3, 1.0, 0.0, 2.0)], False),                                      # too few clips to judge
    ([], False),
])
def test_rule_known_answers(ladder, settled):
    got, why = judge_ladder(ladder)
    assert got is settled and (why is None) is settled
    d = ladder_details("FVD", ladder)
    assert d["settled"] is settled and d["ladder_rule"] == RULE and ("ladder_warning" in d) is (not settled)
    if not settled:
        assert d["ladder_warning"].startswith("FVD has not settled: ") and "\n" not in d["ladder_warning"]


def test_rule_is_calibrated_for_a_metric_without_n_dependence():
    """The mean of n iid normals (no bias): settled in about 95% of draws (the doc's claim)."""
    rng = np.random.default_rng(0)
    hits = 0
    for _ in range(2000):
        x = rng.normal(size=256)
        half = 1.96 / np.sqrt(256)
        hits += judge_ladder([rung(128, x[:128].mean()), rung(256, x.mean(), x.mean() - half, x.mean() + half)])[0]
    assert 0.93 < hits / 2000 < 0.97, hits


# --- each rung is the full computation on that subset ------------------------------------------------

@pytest.mark.parametrize("cls, opts", [
    (FVD, {"n_boot": 30}),
    (FVD, {"n_boot": 30, "covariance": "stylegan-v"}),
    (FVD, {"ci": False}),
    (KVD, {"n_boot": 20, "subsets": 4, "subset_size": 100}),
    (JEDi, {"n_boot": 30}),
])
def test_every_rung_equals_a_fresh_metric_fed_that_subset(clips, cls, opts):
    real, fake = clips
    result, details = computed(make(cls, **opts), real, fake, batches=4)
    name = cls.name
    ladder = details["ladder"]
    perm = ladder_permutation(N, SEED)
    assert [r["n"] for r in ladder] == [64, 128, 150]
    for r in ladder:
        want, _ = computed(make(cls, **opts), real, fake[torch.from_numpy(perm[: r["n"]])])
        if r["n"] == N:  # the headline, from the states accumulated over 4 batches
            want = result
        # Bit-identical on this machine; 1e-12 allows another BLAS's summation order.
        assert r["value"] == pytest.approx(want[name], rel=1e-12, abs=1e-15), r
        if opts.get("ci", True):
            assert r["ci_low"] == pytest.approx(want[f"{name}_ci_low"], rel=1e-12, abs=1e-15), r
            assert r["ci_high"] == pytest.approx(want[f"{name}_ci_high"], rel=1e-12, abs=1e-15), r
            assert r["ci_low"] < r["ci_high"]
        else:
            assert r["ci_low"] is None and r["ci_high"] is None
    assert details["settled"] is judge_ladder(ladder)[0] and details["ladder_rule"] == RULE


@pytest.mark.parametrize("cls", [FVD, KVD, JEDi])
def test_the_ladder_leaves_the_headline_bit_identical(clips, cls):
    real, fake = clips
    opts = {"n_boot": 20} if cls is not KVD else {"n_boot": 20, "subsets": 3}
    with_ladder, d = computed(make(cls, **opts), real, fake, batches=3)
    without, d0 = computed(make(cls, ladder=False, **opts), real, fake, batches=3)
    assert with_ladder == without  # every key, exactly
    assert "ladder" in d and not {"ladder", "settled", "ladder_rule", "ladder_warning"} & set(d0)


def test_fvd_far_below_its_settled_size_is_flagged(clips):
    """400-d features, 150 clips: FVD's 1/n bias dwarfs its CI, so the last doubling moves it a lot."""
    real, fake = clips
    _, d = computed(make(FVD, n_boot=30), real, fake)
    values = [r["value"] for r in d["ladder"]]
    assert values[0] > values[1] > values[2]  # falls with n: the bias
    assert d["settled"] is False and d["ladder_warning"].startswith("FVD has not settled: ")


def test_ladder_option_is_checked():
    from vdmbench.core.errors import ConfigError

    with pytest.raises(ConfigError, match="ladder must be true or false"):
        FVD(features="random-i3d", resize=32, ladder="yes")
    with pytest.raises(ConfigError, match="ladder must be true or false"):
        JEDi(features="random-vjepa", ladder=1)


# --- where it surfaces ----------------------------------------------------------------------------

def test_terminal_prints_the_not_settled_line_only():
    console = Console(record=True, width=400)
    rows = [
        {"metric": "fvd", "details": ladder_details("FVD", [rung(64, 10.0), rung(128, 5.0, 4.9, 5.1)])},
        {"metric": "jedi", "details": ladder_details("JEDi", [rung(64, 1.0), rung(128, 1.0, 0.9, 1.1)])},
        {"metric": "flicker", "details": {"per_sample": True}},
    ]
    print_ladder_warnings(rows, console)
    text = console.export_text()
    assert "FVD has not settled" in text and "JEDi" not in text and text.count("warning:") == 1
    assert text.count(RULE) == 1
    console = Console(record=True, width=400)
    print_ladder_warnings(rows[1:], console)  # every set metric settled: nothing at all
    assert console.export_text() == ""


def test_gate_treats_ladder_keys_as_volatile():
    a = {"metric": "fvd", "features": "i3d", **ladder_details("FVD", [rung(64, 10.0), rung(128, 5.0, 4.9, 5.1)])}
    b = {"metric": "fvd", "features": "i3d", **ladder_details("FVD", [rung(64, 5.0), rung(128, 5.0, 4.9, 5.1)])}
    assert a["settled"] != b["settled"] and metric_config(a) == metric_config(b)
    assert metric_config({**a, "features": "videomae-v2"}) != metric_config(b)  # the protocol still counts
