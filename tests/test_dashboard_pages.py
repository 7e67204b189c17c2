"""Issue #20, the page behaviours: URL state, one sort control, model cards, one resampling unit,
filmstrip and lossless download, arena pairing and rating CIs, per-dimension view, scatter, the
sample-efficiency ladder, judge and per-vote metric agreement, and schema-4 files shown as they are."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import parse_qsl

import duckdb
import numpy as np
import pandas as pd
import pytest

pytest.importorskip("streamlit")
from streamlit.testing.v1 import AppTest

from tests.dashboard_db import APP, fill, fill_cut_down
from vdmbench.core.stats import clustered_bootstrap_mean, paired_bootstrap
from vdmbench.dashboard import arena, charts, compare, media, model_card, url_state
from vdmbench.store import SCHEMA_VERSION, Store, dashboard_reads


@pytest.fixture(scope="module")
def filled(tmp_path_factory):
    results = tmp_path_factory.mktemp("pages") / "results"
    runs = fill(results)
    runs["cut-down"] = fill_cut_down(results)
    return results / "vdmbench.duckdb", runs


def copy_db(filled, tmp_path) -> Path:
    db, _ = filled
    shutil.copytree(db.parent, tmp_path / "results")
    return tmp_path / "results" / "vdmbench.duckdb"


def app(db: Path, page: str | None = "Leaderboard", query: dict | None = None, **state) -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=60)
    at.session_state["db_path"] = str(db)
    if page:
        at.session_state["page"] = page
    for k, v in state.items():
        at.session_state[k] = v
    at.query_params.update(query or {})
    return at.run()


def clean(at: AppTest) -> AppTest:
    assert not at.exception, [e.value for e in at.exception]
    return at


def frame(at: AppTest, column: str):
    for df in at.dataframe:
        if column in df.value.columns:
            return df
    raise AssertionError(f"no table with a {column!r} column")


# -- URL state --------------------------------------------------------------------------------------
def test_url_text_round_trips_and_ignores_what_it_cannot_read():
    defaults = {"flicker": 1.0, "fvd": 0.0}
    text = url_state.encode_weights({"flicker": 1.0, "fvd": 2.5}, defaults)
    assert text == "fvd:2.5"  # only what differs from the default
    assert url_state.decode_weights(text + ",junk,x:abc,y:-1,z:101,a:b:3") == {"fvd": 2.5, "a:b": 3.0}
    assert url_state.decode_list("a,,b") == ["a", "b"] and url_state.decode_list(None) == []
    assert url_state.match_hash("abc", ["abcdef", "xyz"]) == "abcdef"
    assert url_state.match_hash("ab", ["abc1", "abc2"]) is None and url_state.match_hash("", ["a"]) is None
    assert url_state.link({"page": "Compare", "runs": "r1,r2", "x": None}) == "?page=Compare&runs=r1%2Cr2"


def test_a_link_reproduces_the_view_and_every_change_updates_the_url(filled):
    db, runs = filled
    at = clean(app(db, page=None))
    params = dict(at.query_params)
    assert params["page"] == "Leaderboard" and params["suite"] == "dash" and params["version"] == "1"
    assert len(params["settings"]) == url_state.SETTINGS_DIGITS
    # Changes go into the URL: sort, weights, tags and the page.
    at.selectbox(key="sort_by").set_value("flicker").run()
    at.number_input(key="weight-flicker").set_value(3.0).run()
    at.sidebar.multiselect(key="tags").set_value(["color"]).run()
    clean(at)
    params = dict(at.query_params)
    assert params["sort"] == "flicker" and params["weights"] == "flicker:3" and params["tags"] == "color"
    at.sidebar.radio(key="page").set_value("Plots").run()
    assert clean(at).query_params["page"] == "Plots" and "sort" not in at.query_params  # the page's own part goes

    # The card's Compare link, opened in a new session, shows those runs, that suite and settings.
    card = clean(app(db, "Leaderboard", card="toy-noise"))
    link = next(m.value for m in card.markdown if "Compare with the leader" in m.value)
    query = dict(parse_qsl(link.split("](?")[1].split(")")[0]))
    assert query["runs"] == f"{runs['toy-square']},{runs['toy-noise']}" and query["page"] == "Compare"
    opened = clean(app(db, page=None, query=query))
    assert opened.sidebar.radio(key="page").value == "Compare"
    assert opened.multiselect(key="compare_runs").value == [runs["toy-square"], runs["toy-noise"]]
    assert opened.query_params["runs"] == query["runs"]  # and the URL keeps saying so

    # Weights, sort and tags from a link; a stale value (unknown metric, run, tag) is ignored.
    linked = clean(app(db, page=None, query={"page": "Leaderboard", "suite": "dash", "weights": "flicker:0,nope:2",
                                             "sort": "flicker", "tags": "motion,nope"}))
    assert linked.number_input(key="weight-flicker").value == 0.0
    assert linked.selectbox(key="sort_by").value == "flicker"
    assert linked.sidebar.multiselect(key="tags").value == ["motion"]
    assert linked.query_params["weights"] == "flicker:0" and linked.query_params["tags"] == "motion"


# -- one sort control -------------------------------------------------------------------------------
def test_header_click_sorts_through_the_sort_control_and_grid_sorting_is_off(filled, monkeypatch):
    db, _ = filled
    at = clean(app(db, sort_by="flicker_mean_abs_diff", show_parts=True))
    table = frame(at, "overall")
    proto = table.proto
    # Column selection on (single column): Streamlit then turns the grid's own header sorting off.
    assert list(proto.selection_mode) == [2]  # SINGLE_COLUMN
    labels = list(table.value.columns)
    sorted_label = next(c for c in labels if c.startswith("↳ flicker_mean_abs_diff"))
    assert json.loads(proto.selection_default)["selection"]["columns"] == [sorted_label]  # highlighted = the sort
    # lower is better for the mean abs diff: best (smallest) first
    assert list(table.value.model)[-1] == "toy-noise"

    from vdmbench.dashboard.pages import leaderboard

    state = {"leaderboard-x": {"selection": {"columns": ["flicker ↑"], "rows": [], "cells": []}}, "sort_by": "a"}
    monkeypatch.setattr(leaderboard, "st", SimpleNamespace(session_state=state))
    leaderboard.sort_from_header("leaderboard-x", {"overall": "overall score", "flicker ↑": "flicker"})
    assert state["sort_by"] == "flicker"
    state["leaderboard-x"] = {"selection": {"columns": ["run"], "rows": [], "cells": []}}
    leaderboard.sort_from_header("leaderboard-x", {"flicker ↑": "flicker"})
    assert state["sort_by"] == "flicker"  # a non-metric column leaves the sort alone
    assert state["_header_clicks"] == 2  # each click redraws the table (selection back on the sort column)
    # Row links: Compare against the leader and the Drill-down, both URLs of this app's state.
    links = frame(at, "compare").value
    leader = links.run.iloc[0]
    first = dict(parse_qsl(links["compare"].iloc[1].lstrip("?")))
    assert first["page"] == "Compare" and first["runs"] == f"{leader},{links.run.iloc[1]}" and first["suite"] == "dash"
    assert dict(parse_qsl(links["drill-down"].iloc[2].lstrip("?")))["run"] == links.run.iloc[2]
    own = dict(parse_qsl(links["compare"].iloc[0].lstrip("?")))  # the leader's row: against the runner-up
    assert own["runs"] == f"{leader},{links.run.iloc[1]}"


# -- model cards ------------------------------------------------------------------------------------
def test_model_card_redacts_secrets_and_names_settings_and_environment(tmp_path):
    db = tmp_path / "cards.duckdb"
    store = Store(db)
    store.create_run({
        "run_id": "r1", "suite": "s", "suite_version": 1, "suite_hash": "h", "model": "m", "config_hash": "c",
        "status": "finished", "git_sha": "0123456789abcdef",
        "model_config": {"name": "m", "adapter": "http", "params": {"url": "http://x", "api_key": "sk-SECRET",
                                                                      "headers": {"Authorization": "Bearer SECRET"}}},
        "env": {"python": "3.11.7", "device": "cpu", "torch_threads": 2, "packages": {"torch": "2.14.1"},
                "command_overrides": ["suite.steps=3"]},
        "suite_config": {"name": "s", "num_frames": 16, "height": 32, "width": 48, "fps": 8, "steps": 3,
                         "guidance": None},
    })
    card = model_card.model_card(Store(db, read_only=True), "r1")
    text = repr(card)
    assert "SECRET" not in text and card.config["params"]["api_key"] == "<redacted>"
    assert card.config["params"]["headers"]["Authorization"] == "<redacted>" and card.config["params"]["url"] == "http://x"
    assert card.adapter == "http" and card.packages == {"torch": "2.14.1"}
    assert card.environment["device"] == "cpu" and card.environment["command_overrides"] == ["suite.steps=3"]
    assert model_card.size_text(card.generation) == "16 frames · 48x32 · 8 fps · steps 3 · guidance default · strength default"


# -- Compare: one resampling unit ------------------------------------------------------------------
def test_compare_resamples_prompts_with_their_seeds_like_the_leaderboard():
    rng = np.random.default_rng(3)
    prompts = [f"p{i}" for i in range(12)]
    effect = {p: rng.normal(0.1, 0.3) for p in prompts}
    rows = []
    for p in prompts:  # two seeds that share the prompt's effect: seeds are not independent units
        for seed in (0, 1):
            base = rng.normal(0.5, 0.05)
            rows += [{"run_id": "base", "prompt_id": p, "seed": seed, "metric": "q", "value": base},
                     {"run_id": "cand", "prompt_id": p, "seed": seed, "metric": "q", "value": base + effect[p]}]
    values = pd.DataFrame(rows)
    run_metrics = pd.DataFrame({"run_id": ["base", "cand"], "metric": ["q", "q"], "value": [0.5, 0.6],
                                "ci_low": [np.nan] * 2, "ci_high": [np.nan] * 2, "n": [24, 24]})
    out = compare.metric_deltas(values, run_metrics, ["base", "cand"], {"q": True}).set_index("metric")
    pairs = compare.matched(values, "base", "cand", "q")
    by_prompt = paired_bootstrap(pairs.value_base.to_numpy(), pairs.value_other.to_numpy(),
                                 clusters=pairs.prompt_id.to_numpy(), n_boot=compare.N_BOOT, seed=0)
    by_sample = paired_bootstrap(pairs.value_base.to_numpy(), pairs.value_other.to_numpy(), n_boot=compare.N_BOOT, seed=0)
    assert out.loc["q", "ci_low"] == pytest.approx(by_prompt.ci_low) and out.loc["q", "ci_high"] == pytest.approx(by_prompt.ci_high)
    # Resampling samples would treat the two seeds of a prompt as independent: a narrower, wrong CI.
    assert (by_sample.ci_high - by_sample.ci_low) < 0.85 * (out.loc["q", "ci_high"] - out.loc["q", "ci_low"])
    assert "prompts" in compare.RESAMPLING_UNIT


# -- filmstrip and pixel-exact scaling -----------------------------------------------------------
def test_nearest_upscaling_is_pixel_exact_and_the_filmstrip_spreads_frames():
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 256, size=(32, 32, 3), dtype=np.uint8) for _ in range(16)]
    assert media.scale_factor(32) == 4 and media.scale_factor(200) == 1
    big = media.upscale_nearest(frames[0], 4)
    assert big.shape == (128, 128, 3)
    assert (big.reshape(32, 4, 32, 4, 3) == frames[0][:, None, :, None, :]).all()  # every block = one pixel
    assert media.pick_frames(16, 8) == [0, 2, 4, 6, 9, 11, 13, 15] and media.pick_frames(3, 8) == [0, 1, 2]
    strip = media.filmstrip(frames, max_width=None)
    assert strip.shape == (128, 8 * 128 + 7 * 2, 3)
    assert (strip[:, 130:258] == media.upscale_nearest(frames[2], 4)).all()  # second picked frame, after the gap
    assert (strip[:, 128:130] == 255).all()
    fitted = media.filmstrip(frames)  # fits the page's column: a smaller whole factor, still exact
    assert media.strip_factor(frames) == 3 and fitted.shape == (96, 8 * 96 + 14, 3) <= (96, media.FILMSTRIP_WIDTH, 3)
    assert (fitted[:, :96] == media.upscale_nearest(frames[0], 3)).all()


def test_drilldown_shows_the_stored_pixels_and_offers_the_lossless_file(filled):
    db, runs = filled
    samples = Store(db, read_only=True).sample_table(runs["toy-square"]).set_index("sample_id")
    path = media.resolve(db, samples.path["a-s1"])
    frames = media.read_frames(path)
    # moving_square: gray 128, a white 4x4 square at rows 4-7, column t + seed (seed 1)
    assert len(frames) == 6 and frames[0].shape == (16, 16, 3)
    assert (frames[0][4:8, 1:5] == 255).all() and (frames[0][0] == 128).all() and (frames[3][4:8, 4:8] == 255).all()
    from vdmbench.core.video import read_video

    assert (np.stack(frames) == read_video(path).frames.numpy()).all()  # the other decoder agrees
    kept, picked, total = media.filmstrip_frames(path, k=3)  # only the picked frames are kept
    assert total == 6 and picked == media.pick_frames(6, 3) == [0, 2, 5]
    assert all((f == frames[i]).all() for f, i in zip(kept, picked))

    assert media.display_width(path, 384) == 384 and media.display_width(path, 100) == 96  # 16 px: x24, x6
    assert media.display_width(Path("/nonexistent.mp4"), 384) == 384
    at = clean(app(db, "Drill-down", query={"run": runs["toy-square"], "sample": "a-s1"}))
    assert at.selectbox(key="drill_run").value == runs["toy-square"] and at.selectbox(key="drill_sample").value == "a-s1"
    assert len(at.download_button) == 1
    # 16x16, 6 frames: x8 would be 128 px a frame and fits (6 * 128 + 10 <= 860)
    assert any("16x16 shown x8 (nearest neighbour)" in c for img in at.image for c in img.captions)


# -- Arena ------------------------------------------------------------------------------------------
def _cands(shas: dict[str, str]) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    models = list(shas)
    samples = pd.DataFrame({"run_id": [f"r-{m}" for m in models], "sample_id": ["p-s0"] * len(models),
                            "prompt_id": ["p"] * len(models), "prompt": ["x"] * len(models), "seed": [0] * len(models),
                            "status": ["ok"] * len(models), "path": ["f"] * len(models), "preview_path": [None] * len(models)})
    runs = pd.DataFrame({"run_id": [f"r-{m}" for m in models], "model": models})
    hashes = pd.DataFrame({"run_id": runs.run_id, "sample_id": samples.sample_id, "sha256": list(shas.values())})
    return samples, runs, hashes


def test_identical_clips_are_never_paired():
    samples, runs, hashes = _cands({"m1": "same", "m2": "same", "m3": "other"})
    cands = arena.candidates(samples, runs, hashes)
    rng = np.random.default_rng(0)
    seen = {frozenset((p.model_a, p.model_b)) for p in (arena.draw_pair(cands, "s", rng) for _ in range(200)) if p}
    assert seen == {frozenset({"m1", "m3"}), frozenset({"m2", "m3"})}
    only_same = arena.candidates(*_cands({"m1": "same", "m2": "same"}))
    assert only_same.empty and arena.draw_pair(only_same, "s", rng) is None
    no_hash = arena.candidates(*_cands({"m1": None, "m2": None}))  # unknown hashes: not assumed equal
    assert len(no_hash) == 2


def _neg_loglik_hessian(theta: np.ndarray, a: np.ndarray, b: np.ndarray, ridge: float, eps: float = 1e-4) -> np.ndarray:
    """Finite-difference Hessian of the penalized BT negative log-likelihood, in float64."""
    def f(t: np.ndarray) -> float:
        p = 1 / (1 + np.exp(-(t[a] - t[b])))  # every vote here: a won
        return float(-np.log(p).sum() + ridge / 2 * (t ** 2).sum())

    k = len(theta)
    h = np.zeros((k, k))
    for i in range(k):
        for j in range(k):
            ei, ej = np.eye(k)[i] * eps, np.eye(k)[j] * eps
            h[i, j] = (f(theta + ei + ej) - f(theta + ei - ej) - f(theta - ei + ej) + f(theta - ei - ej)) / (4 * eps ** 2)
    return h


def test_rating_cis_are_wide_for_few_votes_and_match_the_posterior_curvature():
    one = arena.bradley_terry(pd.DataFrame([{"model_a": "x", "model_b": "y", "winner": "a"}]))
    width = (one.ci_high - one.ci_low).to_numpy()
    assert (width > 800).all()  # one vote: mostly the prior's width, not pinned at the rating
    boot = arena.bradley_terry(pd.DataFrame([{"model_a": "x", "model_b": "y", "winner": "a"}]), ci="bootstrap", n_boot=50)
    assert ((boot.ci_high - boot.ci_low) < 1e-9).all()  # what resampling one vote gives: zero width

    rng = np.random.default_rng(5)
    rows = [{"model_a": a, "model_b": b, "winner": "a"} for a, b in
            (rng.choice(["p", "q", "r"], 2, replace=False) for _ in range(60))]
    votes = pd.DataFrame(rows)
    got = arena.bradley_terry(votes).set_index("model")
    models = sorted(got.index)
    idx = {m: i for i, m in enumerate(models)}
    theta = ((got.rating - 1000) / arena.ELO_SCALE).reindex(models).to_numpy()
    h = _neg_loglik_hessian(theta, votes.model_a.map(idx).to_numpy(), votes.model_b.map(idx).to_numpy(), 0.1)
    center = np.eye(3) - 1 / 3
    sd = np.sqrt(np.diag(center @ np.linalg.inv(h) @ center.T))
    half = ((got.ci_high - got.ci_low) / 2 / arena.ELO_SCALE).reindex(models).to_numpy()
    assert half == pytest.approx(1.959964 * sd, rel=1e-3)
    many = arena.bradley_terry(pd.concat([votes] * 10))
    assert ((many.ci_high - many.ci_low).max() < (got.ci_high - got.ci_low).min())  # more votes, narrower


def test_rating_cis_cover_the_true_strengths():
    rng = np.random.default_rng(11)
    truth = np.array([-0.8, 0.0, 0.8])
    names = ["a", "b", "c"]
    hits = total = 0
    for _ in range(40):
        rows = []
        for _ in range(120):
            i, j = rng.choice(3, 2, replace=False)
            p = 1 / (1 + np.exp(truth[j] - truth[i]))
            rows.append({"model_a": names[i], "model_b": names[j], "winner": "a" if rng.random() < p else "b"})
        r = arena.bradley_terry(pd.DataFrame(rows)).set_index("model").reindex(names)
        true_elo = 1000 + arena.ELO_SCALE * (truth - truth.mean())
        hits += int(((r.ci_low <= true_elo) & (true_elo <= r.ci_high)).sum())
        total += 3
    assert 0.88 <= hits / total <= 1.0  # 95% intervals (the small ridge shrinks a little)


def test_per_vote_metric_agreement_known_answer():
    clips = pd.DataFrame({"run_a": ["A"] * 5, "sample_a": ["s1", "s2", "s3", "s4", "s5"],
                          "run_b": ["B"] * 5, "sample_b": ["s1", "s2", "s3", "s4", "s5"],
                          "winner": ["a", "a", "b", "tie", "a"]})
    values = pd.DataFrame({"run_id": ["A"] * 5 + ["B"] * 5, "sample_id": ["s1", "s2", "s3", "s4", "s5"] * 2,
                           "metric": ["q"] * 10, "value": [0.9, 0.8, 0.1, 0.5, 0.4, 0.2, 0.3, 0.6, 0.1, 0.4]})
    values = pd.concat([values, values.assign(metric="err")])
    out = arena.metric_vote_agreement(clips, values, {"q": True, "err": False}).set_index("metric")
    # s1, s2: a higher and a won (agree); s3: b higher, b won (agree); s4: a human tie (out);
    # s5: equal values (a metric tie, out)
    assert out.loc["q", "vote accuracy"] == 1.0 and out.loc["q", "votes used"] == 3 and out.loc["q", "metric ties"] == 1
    assert out.loc["err", "vote accuracy"] == 0.0  # lower is better: it prefers the other clip every time
    assert out.loc["q", "accuracy ci_low"] == 1.0


def test_judge_agreement_per_judge_and_criterion():
    human = pd.DataFrame({"prompt_id": ["p1", "p2", "p3", "p4"], "seed": [0] * 4, "model_a": ["x", "y", "x", "z"],
                          "model_b": ["y", "z", "z", "y"], "winner": ["a", "a", "a", "b"]})
    judge = pd.concat([human.assign(judge="good", criterion="overall"),
                       human.assign(judge="contrary", criterion="overall",
                                    winner=human.winner.map({"a": "b", "b": "a"})),
                       human.assign(judge="elsewhere", criterion="overall", prompt_id="other")])
    out = arena.judge_agreement(human, judge, n_boot=200).set_index("judge")
    assert out.loc["good", "accuracy"] == 1.0 and out.loc["good", "matched votes"] == 4
    assert out.loc["contrary", "accuracy"] == 0.0
    assert out.loc["elsewhere", "matched votes"] == 0 and "no pair in common" in out.loc["elsewhere", "note"]
    assert out.loc["good", "spearman"] == pytest.approx(1.0)


def test_arena_page_warns_on_few_votes_and_shows_metric_and_judge_agreement(filled, tmp_path):
    db = copy_db(filled, tmp_path)
    _, runs = filled
    ro = Store(db, read_only=True)
    sq, noise = runs["toy-square"], runs["toy-noise"]
    ok_sq = set(ro.sample_table(sq).query("status == 'ok'").sample_id)
    for sid in sorted(ok_sq & set(ro.sample_table(noise).query("status == 'ok'").sample_id)):
        prompt, seed = sid.split("-s")
        pair = arena.Pair("dash", prompt, "x", int(seed), noise, sid, "toy-noise", sq, sid, "toy-square")
        arena.record_vote(db, pair, "b")  # people prefer the square, as the flicker metric does
    votes = Store(db, read_only=True).votes("dash")
    judged = dashboard_reads.vote_clips(Store(db, read_only=True), "dash").assign(winner="b")
    Store(db).record_judge_votes(judged, suite="dash", judge="fake-vlm", criterion="overall")
    at = clean(app(db, "Arena"))
    assert any(f"Fewer than {arena.MIN_VOTES} votes" in w.value and "toy-noise" in w.value for w in at.warning)
    corr = frame(at, "vote accuracy").value.set_index("metric")
    assert corr.loc["flicker", "vote accuracy"] == "1.00" and corr.loc["flicker", "votes used"] == str(len(votes))
    judges = frame(at, "pairwise accuracy").value.set_index("judge")
    assert judges.loc["fake-vlm", "pairwise accuracy"].startswith("1.00")
    assert judges.loc["fake-vlm", "matched votes"] == len(votes)


# -- per-dimension view, scatter, ladder --------------------------------------------------------
def test_dimension_scores_have_the_leaderboards_ci():
    values = pd.DataFrame({"run_id": ["r"] * 6, "sample_id": [f"s{i}" for i in range(6)],
                           "prompt_id": ["p1", "p1", "p2", "p2", "p3", "p3"], "metric": ["q"] * 6,
                           "value": [0.1, 0.2, 0.5, 0.6, 0.9, 1.0]})
    tags = pd.DataFrame({"run_id": ["r"] * 6, "sample_id": [f"s{i}" for i in range(6)],
                         "tag": ["t"] * 4 + ["u"] * 2})
    out = charts.dimension_scores(values, tags, "q").set_index("tag")
    est = clustered_bootstrap_mean(np.array([0.1, 0.2, 0.5, 0.6]), np.array(["p1", "p1", "p2", "p2"]), n_boot=1000)
    assert out.loc["t", "value"] == pytest.approx(0.35) and out.loc["t", "prompts"] == 2
    assert (out.loc["t", "ci_low"], out.loc["t", "ci_high"]) == pytest.approx((est.ci_low, est.ci_high))
    assert out.loc["u", "value"] == pytest.approx(0.95) and out.loc["u", "samples"] == 2


def test_ladder_points_skip_rows_without_a_ladder():
    long = pd.DataFrame({"run_id": ["r1", "r2", "r1"], "metric": ["fvd", "fvd", "flicker"], "details": [
        {"ladder": [{"n": 64, "value": 300.0, "ci_low": 250.0, "ci_high": 350.0},
                    {"n": 128, "value": 280.0, "ci_low": None, "ci_high": None}], "settled": False,
         "ladder_rule": "settled when the last two steps agree within their CIs"},
        {"per_sample": False}, {"per_sample": True}]})
    pts = charts.ladder_points(long, {"r1": "m1"})
    assert list(pts.n) == [64, 128] and set(pts.model) == {"m1"} and pts.settled.tolist() == [False, False]
    assert np.isnan(pts.ci_low.iloc[1]) and pts.rule.iloc[0].startswith("settled when")


def test_plots_dimension_click_filters_the_board_and_the_ladder_is_drawn(filled, tmp_path):
    db = copy_db(filled, tmp_path)
    _, runs = filled
    store = Store(db)
    for model, settled in (("toy-square", True), ("toy-noise", False)):
        rows = [{"metric": m.metric, "value": m.value, "ci_low": m.ci_low, "ci_high": m.ci_high, "n": m.n,
                 "details": m.details} for m in store.run_metrics(runs[model])]
        rows.append({"metric": "fvd", "value": 100.0, "ci_low": 90.0, "ci_high": 110.0, "n": 256, "details": {
            "higher_is_better": False, "per_sample": False, "settled": settled, "ladder_rule": "RULE-SENTENCE",
            "ladder": [{"n": 64, "value": 140.0, "ci_low": 120.0, "ci_high": 160.0},
                       {"n": 128, "value": 115.0, "ci_low": 100.0, "ci_high": 130.0},
                       {"n": 256, "value": 100.0, "ci_low": 90.0, "ci_high": 110.0}]}})
        store.record_run_metrics(runs[model], rows)
    at = clean(app(db, "Plots", plot_metric="flicker"))
    assert any("RULE-SENTENCE" in c.value for c in at.caption)
    assert any("Not settled" in w.value and "toy-noise" in w.value and "toy-square" not in w.value for w in at.warning)
    charts_ = at.get("vega_lite_chart")
    assert len(charts_) == 6  # means, distribution, per tag, scatter, ladder, history
    assert '\\"base\\": 2' in str(charts_[4].proto) and "samples (n)" in str(charts_[4].proto)  # log2 n axis
    at.button(key="dimension-color").click().run()
    clean(at)
    assert at.sidebar.radio(key="page").value == "Leaderboard" and at.sidebar.multiselect(key="tags").value == ["color"]
    assert at.query_params["tags"] == "color" and at.query_params["page"] == "Leaderboard"
    assert any("Filtered to samples tagged color" in c.value for c in at.caption)


def test_scatter_points_and_rank_correlation():
    wide = pd.DataFrame({"model": ["a", "b", "c"], "x": [1.0, 2.0, 3.0], "x lo": [0.5, 1.5, 2.5],
                         "x hi": [1.5, 2.5, 3.5], "y": [3.0, 1.0, np.nan]})
    pts = charts.scatter_points(wide, "x", "y")
    assert list(pts.model) == ["a", "b"] and pts.x_lo.tolist() == [0.5, 1.5] and pts.y_lo.isna().all()
    assert charts.spearman(pd.Series([1, 2, 3, 4]), pd.Series([10, 30, 20, 40])) == pytest.approx(0.8)
    assert np.isnan(charts.spearman(pd.Series([1, 2]), pd.Series([1, 2])))


# -- schema 4 (before judge_votes) shown without migrating -----------------------------------------
def test_a_schema_4_file_is_shown_as_it_is_and_takes_no_votes(filled, tmp_path):
    assert SCHEMA_VERSION >= 5  # judge_votes arrived with schema 5
    db = copy_db(filled, tmp_path)
    con = duckdb.connect(str(db))
    con.execute("DROP TABLE IF EXISTS judge_votes")
    con.execute("UPDATE schema_version SET version = 4")
    con.execute("CHECKPOINT")
    con.close()
    before = hashlib.sha256(db.read_bytes()).hexdigest()
    assert dashboard_reads.unusable_reason(db) is None
    assert Store(db, read_only=True).judge_votes("dash").empty
    board = clean(app(db, "Leaderboard"))
    assert not board.error and len(frame(board, "overall").value) == 3
    at = clean(app(db, "Arena"))
    assert any("votes are not taken" in i.value for i in at.info) and not at.get("video")
    assert hashlib.sha256(db.read_bytes()).hexdigest() == before  # read, never migrated
    # A file that lacks a column the pages read keeps the one-line message.
    con = duckdb.connect(str(db))
    con.execute("ALTER TABLE samples DROP COLUMN notes")
    con.close()
    reason = dashboard_reads.unusable_reason(db)
    assert reason and "older vdmbench (schema 4" in reason and "samples.notes" in reason and "\n" not in reason


def test_the_default_suite_is_the_one_with_the_newest_run():
    from vdmbench.dashboard.pages.common import newest_suite

    suites = pd.DataFrame({"suite": ["a-old", "b-new", "c-never"],
                           "last_finished": [pd.Timestamp("2026-01-01"), pd.Timestamp("2026-06-01"), pd.NaT]})
    assert newest_suite(suites) == "b-new"
    assert newest_suite(suites.assign(last_finished=pd.Timestamp("2026-01-01"))) == "a-old"  # ties: alphabetical


def test_judge_agreement_does_not_import_torch():
    """The served app never imports torch: the judge agreement comes from vdmbench.core.vote_agreement
    (numpy, pandas, scipy), not through vdmbench.metrics, whose __init__ imports torch."""
    import subprocess
    import sys

    code = ("import sys, pandas as pd\n"
            "from vdmbench.dashboard import arena\n"
            "h = pd.DataFrame({'prompt_id': ['p1', 'p2', 'p3'], 'seed': [0] * 3, 'model_a': ['x', 'y', 'x'],\n"
            "                  'model_b': ['y', 'z', 'z'], 'winner': ['a', 'a', 'a']})\n"
            "out = arena.judge_agreement(h, h.assign(judge='j', criterion='c'), n_boot=50)\n"
            "print(out.accuracy.tolist(), 'torch' in sys.modules)\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert res.stdout.split()[-2:] == ["[1.0]", "False"]


def test_page_state_survives_visiting_another_page(filled):
    db, runs = filled
    picked = [runs["toy-noise"], runs["toy-flaky"]]
    at = clean(app(db, "Compare"))
    # Like for like by default: the two newest runs with the standard settings (not the newer cut-down run).
    assert at.multiselect(key="compare_runs").value == [runs["toy-flaky"], runs["toy-square"]]
    assert not any("other settings" in w.value for w in at.warning)
    at.multiselect(key="compare_runs").set_value(picked).run()
    at.sidebar.radio(key="page").set_value("Leaderboard").run()
    at.number_input(key="weight-flicker").set_value(2.0).run()
    at.sidebar.radio(key="page").set_value("Compare").run()
    assert clean(at).multiselect(key="compare_runs").value == picked and at.query_params["runs"] == ",".join(picked)
    at.sidebar.radio(key="page").set_value("Leaderboard").run()
    assert clean(at).number_input(key="weight-flicker").value == 2.0 and at.query_params["weights"] == "flicker:2"
