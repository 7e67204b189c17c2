"""judge_vbench_semantic: VBench's six detector-based semantic dimensions asked of a VLM judge through
a fake OpenAI-compatible server, from each prompt's VBench auxiliary info (as VBench_full_info.json
nests it and `vdmbench vbench import` keeps it). The right question with the right object, colour
and relation per dimension; scores as specified; NaN outside a clip's dimensions; never read by
vbench_scores; a rerun calls nothing; the API key is stored nowhere."""

from __future__ import annotations

import json
import logging
import math

import numpy as np
import pandas as pd
import pytest
import torch

from tests.test_judge_fakeserver import FakeServer, Out, images, no, question, yes
from vdmbench.core.errors import MetricInputError
from vdmbench.judges.vbench_questions import color_object, dimension_questions, person_action
from vdmbench.metrics import ClipBatch, MetricContext, build_metric
from vdmbench.metrics.judge_vbench_semantic import JudgeVBenchSemantic

# Entries as VBench_full_info.json (Vchitect/VBench) writes them: prompt_en, dimension, auxiliary_info.
VBENCH = [
    {"prompt_en": "a giraffe", "dimension": ["object_class"],
     "auxiliary_info": {"object_class": {"object": "giraffe"}}},
    {"prompt_en": "a bird and a cat", "dimension": ["multiple_objects"],
     "auxiliary_info": {"multiple_objects": {"object": "bird and cat"}}},
    {"prompt_en": "an orange car", "dimension": ["color"], "auxiliary_info": {"color": {"color": "orange"}}},
    {"prompt_en": "a bicycle on the left of a car, front view", "dimension": ["spatial_relationship"],
     "auxiliary_info": {"spatial_relationship": {"spatial_relationship": {
         "object_a": "bicycle", "object_b": "car", "relationship": "on the left of"}}}},
    {"prompt_en": "indoor library", "dimension": ["scene", "background_consistency"],
     "auxiliary_info": {"scene": {"scene": {"scene": "indoor library"}}}},
    {"prompt_en": "A person is riding a bike", "dimension": ["human_action"]},
    {"prompt_en": "a cute happy corgi playing in park", "dimension": ["subject_consistency"]},
]
EXPECTED = {
    "a giraffe": {"object_class": ["Does the video show any giraffe?"]},
    "a bird and a cat": {"multiple_objects": ["Does the video show any bird and any cat at the same time?"]},
    "an orange car": {"color": ["Does the video show any car that is orange?"]},
    "a bicycle on the left of a car, front view": {
        "spatial_relationship": ["Is there any bicycle on the left of any car in the video?"]},
    "indoor library": {"scene": ["Does the video show the following scene: indoor library?"]},
    "A person is riding a bike": {"human_action": ["Is a person riding a bike in the video?"]},
    "a cute happy corgi playing in park": {},
}
DIMS = ("object_class", "multiple_objects", "color", "spatial_relationship", "scene", "human_action")


def imported():
    """(prompt text, params) as a VBench import gives them to a metric (ClipBatch.prompt_params)."""
    from vdmbench.interop.vbench import import_prompts

    suite = import_prompts(VBENCH, seeds=1)
    return [(p["text"], dict(p.get("params", {}))) for p in suite["prompts"]]


def clips(n: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, 5, 16, 16, 3), generator=g, dtype=torch.uint8)


def metric(srv: FakeServer, tmp_path, **options) -> JudgeVBenchSemantic:
    judge = {"backend": "openai", "base_url": srv.base_url, "model": "fake-vlm", "frames": 3, "backoff": 0.0}
    judge.update(options.pop("judge", {}))
    return build_metric({"name": "judge_vbench_semantic", "judge": judge, **options},
                        MetricContext(cache_dir=tmp_path / "cache"))


def test_each_dimension_asks_its_question_with_the_prompts_object_colour_and_relation():
    got = {text: dimension_questions(text, params) for text, params in imported()}
    assert got == EXPECTED
    assert color_object("a yellow umbrella", "yellow") == "umbrella" and color_object("a red car.", "red") == "car"
    assert person_action("a person is playing the violin.") == "playing the violin"
    assert person_action("a person playing the violin") is None
    # Malformed auxiliary info: one line naming the prompt, never a guess.
    with pytest.raises(MetricInputError, match="'a bird': multiple_objects.object must read 'A and B'"):
        dimension_questions("a bird", {"vbench": {"multiple_objects": {"object": "bird"}}})
    with pytest.raises(MetricInputError, match="spatial_relationship.object_b must be a non-empty text"):
        dimension_questions("x", {"vbench": {"spatial_relationship": {"object_a": "cat", "relationship": "on"}}})


P_YES = {"Does the video show any giraffe?": 0.9,
         "Does the video show any bird and any cat at the same time?": 0.2,
         "Does the video show any car that is orange?": 0.7,
         "Is there any bicycle on the left of any car in the video?": 0.4,
         "Does the video show the following scene: indoor library?": 0.95,
         "Is a person riding a bike in the video?": 0.6}


def by_p(body, n):
    p = P_YES[question(body)]
    return yes(p) if p > 0.5 else no(p)


def test_scores_are_the_fraction_of_yes_and_p_yes_of_each_clips_own_dimension(tmp_path):
    pairs = imported()
    batch = ClipBatch(videos=clips(len(pairs)), prompts=[t for t, _ in pairs], prompt_params=[p for _, p in pairs])
    with FakeServer(by_p) as srv:
        m = metric(srv, tmp_path)
        values = m.sample_values(batch)
        notes = m.sample_notes(batch)
        m.update(batch, values=values)
        result = m.compute()
        assert len(srv.requests) == 6  # one per dimension clip; the corgi clip belongs to none: no call
        assert sorted(question(b) for b in srv.requests) == sorted(P_YES)
        assert all(len(images(b)) == 3 for b in srv.requests)
        # The frames sent with each question are its own clip's (frames 0, 2, 4 of 5).
        clip_of = {q: [t for t, _ in pairs].index(t) for t, qs in EXPECTED.items() for d in qs for q in qs[d]}
        for b in srv.requests:
            i = clip_of[question(b)]
            assert np.array_equal(images(b)[1], batch.videos[i, 2].numpy())
        # A rerun (another metric, same cache): every answer from the cache.
        again = metric(srv, tmp_path)
        assert again.sample_values(batch)["judge_color"][2].item() == 1.0
        assert len(srv.requests) == 6 and again.judge.usage.calls == 0 and again.judge.usage.cached == 6
    for i, (text, _) in enumerate(pairs):
        for d in DIMS:
            v, p = values[f"judge_{d}"][i].item(), values[f"judge_{d}_p_yes"][i].item()
            if d in EXPECTED[text]:
                p_ref = P_YES[EXPECTED[text][d][0]]
                assert v == (1.0 if p_ref > 0.5 else 0.0)
                assert p == pytest.approx(p_ref, abs=1e-12)  # exp of the logprob the server sent
                assert result[f"judge_{d}"].item() == v  # the run mean skips the NaN of other clips
            else:
                assert math.isnan(v) and math.isnan(p)
    assert notes[0] == {"dimensions": {"object_class": [
        {"question": "Does the video show any giraffe?", "answer": True, "p_yes": pytest.approx(0.9), "raw": "Yes",
         "status": "ok", "category": "other"}]}}
    assert notes[6] == {}
    d = m.describe()
    assert d["comparable"] is False and d["comparable_with_vbench"] is False
    assert d["label"] == "judge-based, not comparable with VBench's detector-based numbers"
    assert set(d["question_templates"]) == {f"vbench_{x}-v1" for x in DIMS}
    assert d["p_yes_from_logprobs"] == "6 of 6 answers"


def test_the_run_value_is_the_mean_over_the_dimensions_clips_only(tmp_path):
    prompts = ["a red car", "a blue car", "a green car", "a person is dancing"]
    params = [{"vbench": {"color": {"color": c}}} for c in ("red", "blue", "green")] + [{}]
    answers = {"Does the video show any car that is red?": yes(0.8), "Does the video show any car that is blue?": no(0.3),
               "Does the video show any car that is green?": Out("Yes"),  # no logprobs: the 0/1 answer counts
               "Is a person dancing in the video?": Out("Perhaps")}  # unreadable twice: the clip fails

    with FakeServer(lambda body, n: answers[question(body)]) as srv:
        m = metric(srv, tmp_path, dimensions=["color"])  # human_action not asked: no call for the dancer
        batch = ClipBatch(videos=clips(4, 1), prompts=prompts, prompt_params=params)
        values = m.sample_values(batch)
        m.update(batch, values=values)
        assert len(srv.requests) == 3
        assert values["judge_color"].tolist()[:3] == [1.0, 0.0, 1.0] and math.isnan(values["judge_color"][3])
        assert values["judge_color_p_yes"].tolist()[:3] == [pytest.approx(0.8), pytest.approx(0.3), 1.0]
        assert m.compute()["judge_color"].item() == pytest.approx(2 / 3, abs=1e-12)
        assert m.compute()["judge_color_p_yes"].item() == pytest.approx((0.8 + 0.3 + 1.0) / 3, abs=1e-12)
        assert math.isnan(m.compute()["judge_scene"].item())
        assert m.describe()["p_yes_from_logprobs"] == "2 of 3 answers"
        from vdmbench.judges import JudgeError

        with pytest.raises(JudgeError, match="human_action question.*could be read"):
            metric(srv, tmp_path).sample_values(ClipBatch(videos=clips(1, 2), prompts=prompts[3:],
                                                          prompt_params=params[3:]))
    with pytest.raises(Exception, match="dimensions must be a non-empty list"):
        build_metric({"name": "judge_vbench_semantic", "judge": {"model": "m", "base_url": "http://127.0.0.1:9/v1"},
                      "dimensions": ["colour"]}, MetricContext())


def test_vbench_scores_never_reads_the_judge_outputs():
    from vdmbench.metrics.base import Output, PerSampleMetric
    from vdmbench.metrics.vbench_scores import VBenchScores, dimension_sources

    class Color(PerSampleMetric):
        name = "color"
        outputs = (Output("color", higher_is_better=True),)

    judged = JudgeVBenchSemantic(judge={"model": "m", "base_url": "http://127.0.0.1:9/v1"})
    rows = []
    for i in range(4):
        for d in DIMS:
            rows += [(f"s{i}", f"p{i}", f"judge_{d}", 1.0), (f"s{i}", f"p{i}", f"judge_{d}_p_yes", 0.9)]
        rows.append((f"s{i}", f"p{i}", "color", 0.25 * i))
    table = pd.DataFrame(rows, columns=["sample_id", "prompt_id", "metric", "value"])
    scores = VBenchScores()
    assert dimension_sources([judged]) == {} and scores.derive(table, [judged]) == []
    [semantic] = scores.derive(table, [judged, Color()])
    assert semantic.output == "vbench_semantic_score" and list(semantic.details["dimensions"]) == ["color"]
    assert semantic.details["dimensions"]["color"]["output"] == "color"
    assert semantic.value == pytest.approx(np.mean([0.0, 0.25, 0.5, 0.75]))  # the judge's 1.0s are not in it


def test_in_a_run_of_an_imported_vbench_suite_values_and_notes_are_stored_and_the_key_nowhere(
        tmp_path, monkeypatch, caplog, capsys):
    from tests.dashboard_db import adapter
    from vdmbench.config.suite import parse_suite
    from vdmbench.interop.vbench import import_prompts
    from vdmbench.run.runner import Runner, RunOptions
    from vdmbench.store import Store

    secret = "sk-vbench-SECRET-7"
    monkeypatch.setenv("JUDGE_VB_KEY", secret)
    caplog.set_level(logging.DEBUG)
    suite = import_prompts(VBENCH[:3] + VBENCH[5:], seeds=1, num_frames=4, height=16, width=16)
    suite["metrics"] = [{"name": "judge_vbench_semantic",
                         "judge": {"base_url": "", "model": "fake-vlm", "frames": 2, "api_key_env": "JUDGE_VB_KEY"}}]
    with FakeServer(by_p) as srv:
        suite["metrics"][0]["judge"]["base_url"] = srv.base_url
        summary = Runner(parse_suite(suite, source="test"), adapter("toy-square", "moving_square"),
                         RunOptions(results_dir=tmp_path, progress=False, workers=0)).run()
        assert len(srv.requests) == 4 and all(h.get("Authorization") == f"Bearer {secret}" for h in srv.headers)
    store = Store(tmp_path / "vdmbench.duckdb")
    values = store.sample_values(summary.run_id).set_index(["prompt_id", "metric"]).value
    assert values[("vb0000", "judge_object_class")] == 1.0 and values[("vb0001", "judge_multiple_objects")] == 0.0
    assert values[("vb0002", "judge_color_p_yes")] == pytest.approx(0.7)
    assert values[("vb0003", "judge_human_action")] == 1.0  # ids by position in the list given
    assert ("vb0000", "judge_color") not in values.index  # NaN: not stored
    assert not any(m.endswith("_score") for m in store.sample_values(summary.run_id).metric)
    rows = {r.metric: r for r in store.run_metrics(summary.run_id)}
    assert "judge_scene" not in rows  # no scene prompt in this suite and rows["judge_color"].n == 1
    assert rows["judge_color"].details["comparable"] is False and "not comparable" in rows["judge_color"].details["label"]
    notes = store.sample_table(summary.run_id).set_index("prompt_id").notes
    assert notes["vb0002"]["judge_vbench_semantic"]["dimensions"]["color"][0]["question"] == (
        "Does the video show any car that is orange?")
    leaked = [p for p in tmp_path.rglob("*") if p.is_file() and secret.encode() in p.read_bytes()]
    assert not leaked and secret not in caplog.text and secret not in json.dumps(rows["judge_color"].details)
    captured = capsys.readouterr()
    assert secret not in captured.out + captured.err
