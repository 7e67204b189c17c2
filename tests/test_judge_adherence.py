"""judge_adherence: the prompt's yes/no questions asked of each clip through a fake OpenAI-compatible
server; scores against an independent float64 recomputation, questions given or generated once and
shared by every model, failures never guessed, and a rerun that calls nothing."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from tests.test_judge_fakeserver import FakeServer, Out, images, no, question, user_text, yes
from vdmbench.core.errors import ConfigError
from vdmbench.judges import JudgeError
from vdmbench.metrics import ClipBatch, MetricContext, build_metric
from vdmbench.run.checks import check_metric_spec

PROMPT = "two dogs playing to the left of a red car"
QUESTIONS = [{"category": "count", "question": "Are there two dogs?"},
             {"category": "color", "question": "Is the car red?"},
             "Are the dogs to the left of the car?"]


def clips(n: int, offset: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(offset)
    return torch.randint(0, 256, (n, 6, 16, 16, 3), generator=g, dtype=torch.uint8)


def metric(srv: FakeServer, tmp_path, **options):
    judge = {"backend": "openai", "base_url": srv.base_url, "model": "fake-vlm", "frames": 3, "backoff": 0.0}
    judge.update(options.pop("judge", {}))
    ctx = MetricContext(cache_dir=tmp_path / "cache")
    return build_metric({"name": "judge_adherence", "judge": judge, **options}, ctx)


P_YES = {"Are there two dogs?": 0.9, "Is the car red?": 0.8, "Are the dogs to the left of the car?": 0.3}


def answer_by_p(body, n):
    p = P_YES[question(body)]
    return yes(p) if p > 0.5 else no(p)


def test_scores_are_the_fraction_of_yes_and_the_mean_p_yes(tmp_path):
    with FakeServer(answer_by_p) as srv:
        m = metric(srv, tmp_path, questions={PROMPT: QUESTIONS})
        batch = ClipBatch(videos=clips(2), prompts=[PROMPT, PROMPT])
        values = m.sample_values(batch)
        notes = m.sample_notes(batch)
        m.update(batch, values=values)
        result = m.compute()
    assert len(srv.requests) == 6 and all(len(images(b)) == 3 for b in srv.requests)
    p = np.array([0.9, 0.8, 0.3], dtype=np.float64)
    expected_p = float(np.mean(np.exp(np.log(p))))  # the server sends log-probabilities
    for i in range(2):
        assert values["judge_adherence"][i].item() == pytest.approx(2 / 3, abs=1e-12)
        assert values["judge_adherence_p_yes"][i].item() == pytest.approx(expected_p, abs=1e-12)
        assert values["judge_adherence_answered"][i].item() == 1.0
    assert values["judge_adherence"].dtype == torch.float64
    assert result["judge_adherence_p_yes"].item() == pytest.approx(expected_p, abs=1e-12)
    first = notes[0]
    assert first["questions"] == "given"
    assert [(a["question"], a["category"], a.get("answer")) for a in first["answers"]] == [
        ("Are there two dogs?", "count", True), ("Is the car red?", "color", True),
        ("Are the dogs to the left of the car?", "other", False)]
    assert math.isclose(first["answers"][2]["p_yes"], 0.3) and first["answers"][0]["raw"] == "Yes"
    d = m.describe()
    assert d["judge"]["model"] == "fake-vlm" and d["usage"]["calls"] == 6 and d["p_yes_from_logprobs"] == "6 of 6 answers"


def test_generated_questions_are_made_once_and_shared_by_every_model(tmp_path):
    decomposition = json.dumps([{"category": "count", "question": "Are there two dogs?"},
                                {"category": "color", "question": "Is the car red?"}])

    def respond(body, n):
        if "Break the prompt into atomic" in user_text(body):
            assert not images(body) and PROMPT in user_text(body)
            return Out(f"```json\n{decomposition}\n```")
        return yes(0.6)

    with FakeServer(respond) as srv:
        model_a = metric(srv, tmp_path)
        model_a.sample_values(ClipBatch(videos=clips(2, 0), prompts=[PROMPT, PROMPT]))
        decompositions = [b for b in srv.requests if not images(b)]
        assert len(decompositions) == 1 and len(srv.requests) == 1 + 2 * 2
        bank = json.loads((tmp_path / "cache" / "judge" / "questions.json").read_text())
        [section] = bank.values()
        assert [q["question"] for q in section[PROMPT]["questions"]] == ["Are there two dogs?", "Is the car red?"]
        assert section[PROMPT]["made_by"].startswith("fake-vlm@")
        # Another model's clips: the same questions, no new decomposition.
        model_b = metric(srv, tmp_path)
        values = model_b.sample_values(ClipBatch(videos=clips(1, 7), prompts=[PROMPT]))
        assert len(srv.requests) == 5 + 2 and all(images(b) for b in srv.requests[5:])
        assert sorted(question(b) for b in srv.requests[5:]) == ["Are there two dogs?", "Is the car red?"]
        assert values["judge_adherence"].tolist() == [1.0]
        assert values["judge_adherence_p_yes"].tolist() == [pytest.approx(0.6, abs=1e-12)]
        # A rerun of model a: everything from the caches.
        again = metric(srv, tmp_path)
        again.sample_values(ClipBatch(videos=clips(2, 0), prompts=[PROMPT, PROMPT]))
        assert len(srv.requests) == 7 and again.judge.usage.calls == 0 and again.judge.usage.cached == 4


def test_unreadable_answers_are_left_out_and_a_failed_call_fails_the_clip(tmp_path):
    def respond(body, n):
        q = question(body)
        if q == "Is the car red?":
            return Out("It is hard to tell")
        return yes(0.9) if q == "Are there two dogs?" else no(0.3)

    with FakeServer(respond) as srv:
        values = metric(srv, tmp_path, questions={PROMPT: QUESTIONS}).sample_values(
            ClipBatch(videos=clips(1), prompts=[PROMPT]))
    assert values["judge_adherence"].tolist() == [0.5]  # yes, no; the unreadable one is not counted
    assert values["judge_adherence_answered"].tolist() == [pytest.approx(2 / 3)]
    assert values["judge_adherence_p_yes"].tolist() == [pytest.approx((0.9 + 0.3) / 2, abs=1e-12)]

    broken = {"on": True}

    def flaky(body, n):
        if broken["on"] and question(body) == "Is the car red?":
            return Out(status=500)
        return answer_by_p(body, n)

    with FakeServer(flaky) as srv:
        m = metric(srv, tmp_path / "flaky", questions={PROMPT: QUESTIONS}, judge={"max_retries": 1})
        with pytest.raises(JudgeError, match="1 judge call"):
            m.sample_values(ClipBatch(videos=clips(1), prompts=[PROMPT]))
        asked = len(srv.requests)
        broken["on"] = False
        rerun = metric(srv, tmp_path / "flaky", questions={PROMPT: QUESTIONS})
        values = rerun.sample_values(ClipBatch(videos=clips(1), prompts=[PROMPT]))
        assert len(srv.requests) == asked + 1  # only the failed question is asked again
        assert values["judge_adherence"].tolist() == [pytest.approx(2 / 3)]


def test_options_are_checked_before_any_call(tmp_path):
    check_metric_spec({"name": "judge_adherence", "judge": {"model": "m"}, "questions_file": "q.yaml"})
    with pytest.raises(ConfigError, match="unknown option 'judges'"):
        check_metric_spec({"name": "judge_adherence", "judges": {}})
    with pytest.raises(ConfigError, match="needs a judge"):
        build_metric("judge_adherence", MetricContext())
    qfile = tmp_path / "q.yaml"
    qfile.write_text(f"'{PROMPT}': ['Is the car red?', {{category: count, question: 'Are there two dogs?'}}]\n")
    with FakeServer(answer_by_p) as srv:
        m = metric(srv, tmp_path, questions_file=str(qfile))
        assert m.questions_for(PROMPT) == ([{"category": "other", "question": "Is the car red?"},
                                            {"category": "count", "question": "Are there two dogs?"}], "given")
        qfile.write_text(f"'{PROMPT}': []\n")
        with pytest.raises(ConfigError, match="non-empty list"):
            metric(srv, tmp_path, questions_file=str(qfile))
    assert srv.requests == []


def test_in_a_real_run_every_sample_gets_the_three_values_and_the_key_is_stored_nowhere(tmp_path, monkeypatch):
    from tests.dashboard_db import adapter
    from vdmbench.config.suite import parse_suite
    from vdmbench.run.runner import Runner, RunOptions
    from vdmbench.store import Store

    secret = "sk-run-SECRET-42"
    monkeypatch.setenv("JUDGE_RUN_KEY", secret)
    prompts = ["a white square moving right", "a grey background"]

    def respond(body, n):
        assert images(body) and body["messages"][1]["content"][0]["type"] == "image_url"
        return yes(0.8) if "square" in question(body) else no(0.4)

    with FakeServer(respond) as srv:
        judge = {"backend": "openai", "base_url": srv.base_url, "model": "fake-vlm", "frames": 2,
                 "api_key_env": "JUDGE_RUN_KEY"}
        suite = parse_suite({
            "name": "judged", "version": 1, "task": "t2v", "num_frames": 4, "height": 16, "width": 16, "fps": 8,
            "seeds": [0, 1], "prompts": [{"id": f"p{i}", "text": t} for i, t in enumerate(prompts)],
            "metrics": [{"name": "judge_adherence", "judge": judge,
                         "questions": {prompts[0]: ["Is there a square?", "Is it moving?"],
                                       prompts[1]: ["Is there a square?"]}}],
        }, source="test")
        summary = Runner(suite, adapter("toy-square", "moving_square"),
                         RunOptions(results_dir=tmp_path, progress=False, workers=0)).run()
        # The toy model ignores the prompt: p1's clips equal p0's, so its one question is a cache hit.
        assert len(srv.requests) == 2 * 2
    store = Store(tmp_path / "vdmbench.duckdb")
    values = store.sample_values(summary.run_id)
    adherence = values[values.metric == "judge_adherence"].set_index("prompt_id").value
    assert adherence.loc["p0"].tolist() == [0.5, 0.5] and adherence.loc["p1"].tolist() == [1.0, 1.0]
    rows = {r.metric: r for r in store.run_metrics(summary.run_id)}
    assert rows["judge_adherence_p_yes"].value == pytest.approx(((0.8 + 0.4) / 2 + 0.8) / 2)
    details = rows["judge_adherence"].details
    assert details["usage"]["calls"] == 4 and details["usage"]["cached"] == 2 and details["judge"]["api_key_env"] == "JUDGE_RUN_KEY"
    assert (tmp_path / "cache" / "features" / "judge").is_dir()
    leaked = [p for p in tmp_path.rglob("*") if p.is_file() and secret.encode() in p.read_bytes()]
    assert not leaked


def test_judge_vqascore_asks_the_whole_prompt_in_vqascores_words(tmp_path):
    def respond(body, n):
        assert [m["role"] for m in body["messages"]] == ["user"]  # no system message, as VQAScore
        p = 0.85 if "red car" in user_text(body) else 0.25
        return yes(p) if p > 0.5 else no(p)

    with FakeServer(respond) as srv:
        ctx = MetricContext(cache_dir=tmp_path / "cache")
        m = build_metric({"name": "judge_vqascore", "judge": {"base_url": srv.base_url, "model": "fake-vlm",
                                                              "frames": 3}}, ctx)
        batch = ClipBatch(videos=clips(2), prompts=[PROMPT, "an empty street"])
        values = m.sample_values(batch)
        assert sorted(user_text(b) for b in srv.requests) == [  # sent concurrently: in any order
            'Does this figure show "an empty street"? Please answer yes or no.',
            f'Does this figure show "{PROMPT}"? Please answer yes or no.']
        assert values["judge_vqascore"].tolist() == [pytest.approx(0.85, abs=1e-12), pytest.approx(0.25, abs=1e-12)]
        assert m.sample_notes(batch)[1]["answer"]["answer"] is False
        again = build_metric({"name": "judge_vqascore", "judge": {"base_url": srv.base_url, "model": "fake-vlm",
                                                                  "frames": 3}}, ctx)
        again.sample_values(batch)
        assert len(srv.requests) == 2


def test_the_distinct_prompts_of_a_batch_are_decomposed_at_once(tmp_path):
    import threading
    import time

    state, lock = {"now": 0, "max": 0}, threading.Lock()

    def respond(body, n):
        if images(body):
            return yes()
        with lock:
            state["now"] += 1
            state["max"] = max(state["max"], state["now"])
        time.sleep(0.2)
        with lock:
            state["now"] -= 1
        return Out(json.dumps(["Is there a cat?"]))

    prompts = ["a cat", "a cat on a mat", "a cat in a hat", "a cat"]
    with FakeServer(respond) as srv:
        m = metric(srv, tmp_path, judge={"concurrency": 4})
        values = m.sample_values(ClipBatch(videos=clips(4), prompts=prompts))
        assert sum(1 for b in srv.requests if not images(b)) == 3  # one per distinct prompt
    assert state["max"] == 3 and values["judge_adherence"].tolist() == [1.0] * 4


def test_questions_come_from_the_suites_structured_fields_before_any_are_generated(tmp_path):
    """params.questions (the suite YAML's own list) > the questions option > VBench's auxiliary info
    > generated; only the prompt with none of them is decomposed by the judge."""
    asked: dict[str, list[str]] = {}

    def respond(body, n):
        if not images(body):
            assert "a plain prompt" in user_text(body)
            return Out(json.dumps(["Is it plain?"]))
        asked.setdefault(question(body), []).append("x")
        return yes(0.7) if "red" in question(body) or "left" in question(body) else no(0.4)

    prompts = ["a red car", "a bicycle on the left of a car", "a bird", "a plain prompt", "a red car"]
    params = [{"vbench": {"color": {"color": "red"}}},
              {"vbench": {"spatial_relationship": {"spatial_relationship": {
                  "object_a": "bicycle", "object_b": "car", "relationship": "on the left of"}}}},
              {"questions": ["Is there a bird?", {"category": "count", "question": "Is there exactly one bird?"}],
               "vbench": {"object_class": {"object": "bird"}}},
              {}, {"vbench": {"color": {"color": "red"}}, "questions": ["Is the car red?"]}]
    with FakeServer(respond) as srv:
        m = metric(srv, tmp_path, questions={"a bird": ["Is it a bird?"], "a red car": ["Is it a car?"]})
        batch = ClipBatch(videos=clips(5), prompts=prompts, prompt_params=params)
        values = m.sample_values(batch)
        notes = m.sample_notes(batch)
        assert sum(1 for b in srv.requests if not images(b)) == 1  # only "a plain prompt"
    assert [n["questions"] for n in notes] == ["given", "vbench", "prompt_params", "generated", "prompt_params"]
    assert [[a["question"] for a in n["answers"]] for n in notes] == [
        ["Is it a car?"], ["Is there any bicycle on the left of any car in the video?"],
        ["Is there a bird?", "Is there exactly one bird?"], ["Is it plain?"], ["Is the car red?"]]
    assert [a["category"] for a in notes[1]["answers"]] == ["spatial"] and notes[2]["answers"][1]["category"] == "count"
    assert values["judge_adherence"].tolist() == [0.0, 1.0, 0.0, 0.0, 1.0]
    assert values["judge_adherence_p_yes"].tolist() == [pytest.approx(p) for p in (0.4, 0.7, 0.4, 0.4, 0.7)]
    # Without the option, VBench's colour question is asked of the red car.
    with FakeServer(respond) as srv:
        m = metric(srv, tmp_path / "no-option")
        m.sample_values(ClipBatch(videos=clips(1), prompts=prompts[:1], prompt_params=params[:1]))
        assert [question(b) for b in srv.requests] == ["Does the video show any car that is red?"]
    with pytest.raises(ConfigError, match="params.questions of prompt 'a bird'"):
        m.questions_for("a bird", {"questions": []})
