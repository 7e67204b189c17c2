"""The `openai` judge backend against a fake OpenAI-compatible server on 127.0.0.1: what is sent
(questions, frames, decoding parameters), how replies are read (P(yes) from logprobs, no guessing),
retries (429 with Retry-After, 5xx, malformed JSON), deadlines, rate and concurrency limits, the
cache (a rerun calls nothing), and that the API key is written nowhere."""

from __future__ import annotations

import json
import logging
import math
import threading
import time

import numpy as np
import pytest
import torch

from tests.test_judge_fakeserver import FakeServer, Out, images, no, question, user_text, yes
from vdmbench.core.errors import ConfigError
from vdmbench.judges import build_judge
from vdmbench.judges.frames import frame_indices

SECRET = "sk-test-SECRET-0123456789"


def clip(t: int = 10, h: int = 48, w: int = 64, offset: int = 0) -> torch.Tensor:
    """Frame i is a flat grey of 10 * i + offset: which frames were sent can be read off the pixels."""
    values = torch.arange(t, dtype=torch.uint8) * 10 + offset
    return values.view(t, 1, 1, 1).expand(t, h, w, 3).contiguous()


def make(srv: FakeServer, tmp_path, sleeps: list | None = None, **cfg):
    config = {"backend": "openai", "base_url": srv.base_url, "model": "fake-vlm", "frames": 4, "frame_size": 32,
              "backoff": 0.01, "max_backoff": 1.0, **cfg}
    opts = {"sleep": sleeps.append} if sleeps is not None else {}
    return build_judge(config, cache_dir=tmp_path / "judge", **opts)


def by_question(answers: dict[str, Out]):
    return lambda body, n: answers[question(body)]


def test_questions_frames_and_decoding_parameters_reach_the_server(tmp_path):
    with FakeServer(by_question({"Is there a red car?": yes(0.9), "Are there two dogs?": no(0.2)})) as srv:
        judge = make(srv, tmp_path, cost_per_1k_input=0.5, cost_per_1k_output=2.0)
        answers = judge.ask(clip(), ["Is there a red car?", "Are there two dogs?"])
    assert [(a.question, a.answer, a.status) for a in answers] == [
        ("Is there a red car?", True, "ok"), ("Are there two dogs?", False, "ok")]
    # VQAScore: P("Yes") of the first answer token, read from top_logprobs.
    assert math.isclose(answers[0].p_yes, 0.9, rel_tol=1e-9) and math.isclose(answers[1].p_yes, 0.2, rel_tol=1e-9)
    assert sorted(question(b) for b in srv.requests) == ["Are there two dogs?", "Is there a red car?"]
    for body in srv.requests:
        assert body["model"] == "fake-vlm" and body["temperature"] == 0.0 and body["seed"] == 0
        assert body["logprobs"] is True and body["top_logprobs"] == 5
        frames = images(body)
        # 4 of 10 frames, first and last included, longest side 64 -> 32 (aspect kept)
        assert [int(f[0, 0, 0]) for f in frames] == [0, 30, 60, 90]
        assert all(f.shape == (24, 32, 3) for f in frames)
        assert "4 frames of one video" in user_text(body)
    assert frame_indices(10, 4) == [0, 3, 6, 9] and frame_indices(3, 8) == [0, 1, 2]
    assert judge.usage.calls == 2 and judge.usage.prompt_tokens == 200 and judge.usage.completion_tokens == 2
    assert judge.usage.cost == pytest.approx((200 * 0.5 + 2 * 2.0) / 1000)  # the fake server bills 100 + 1 tokens


def test_429_is_retried_after_the_servers_retry_after_and_5xx_with_backoff(tmp_path):
    def respond(body, n):
        return {1: Out(status=429, headers={"Retry-After": "7"}), 2: Out(status=503)}.get(n, yes())

    sleeps: list[float] = []
    with FakeServer(respond) as srv:
        judge = make(srv, tmp_path, sleeps, deadline=60.0)
        [a] = judge.ask(clip(), ["q?"])
    assert a.answer is True and len(srv.requests) == 3
    assert sleeps == [7.0, 0.02]  # Retry-After beats the 0.01 s backoff; then 0.01 * 2
    assert judge.usage.retries == 2 and judge.usage.calls == 1


def test_a_call_that_keeps_failing_is_an_error_answer_never_cached(tmp_path):
    sleeps: list[float] = []
    with FakeServer(lambda body, n: Out(status=500)) as srv:
        judge = make(srv, tmp_path, sleeps, max_retries=2)
        [a] = judge.ask(clip(), ["q?"])
        assert len(srv.requests) == 3 and sleeps == [0.01, 0.02]
        assert a.answer is None and a.status == "error" and "giving up after 3 attempts (last: HTTP 500)" in a.error
        assert judge.usage.failed_calls == 1
        make(srv, tmp_path, [], max_retries=0).ask(clip(), ["q?"])
        assert len(srv.requests) == 4  # asked again: a failure is not an answer


def test_malformed_json_is_retried(tmp_path):
    with FakeServer(lambda body, n: Out(raw=b"{not json") if n == 1 else yes()) as srv:
        judge = make(srv, tmp_path, [])
        [a] = judge.ask(clip(), ["q?"])
    assert a.status == "ok" and len(srv.requests) == 2 and judge.usage.retries == 1


def test_the_deadline_bounds_a_slow_server(tmp_path):
    with FakeServer(lambda body, n: Out("Yes", delay=3.0)) as srv:
        judge = make(srv, tmp_path, timeout=0.3, deadline=0.5, max_retries=10)
        start = time.monotonic()
        [a] = judge.ask(clip(), ["q?"])
        took = time.monotonic() - start
    assert a.status == "error" and "deadline of 0.5 s" in a.error
    assert took < 2.5, took  # the server would take 3 s; the deadline cuts it at 0.5 s (slack for a busy machine)


def test_an_unreadable_answer_is_asked_once_strictly_then_recorded_as_failed(tmp_path):
    def respond(body, n):
        strict = "exactly one word" in user_text(body)
        if question(body) == "Is it raining?":
            return Out("Yes.") if strict else Out("There seem to be clouds, hard to say")
        return Out("Maybe")

    with FakeServer(respond) as srv:
        judge = make(srv, tmp_path)
        rain, other = judge.ask(clip(), ["Is it raining?", "Is it night?"])
    assert rain.answer is True and rain.strict_retry and rain.raw == "Yes." and rain.p_yes is None
    assert other.answer is None and other.status == "unparseable" and other.raw == "Maybe"
    assert len(srv.requests) == 4 and judge.usage.unparseable == 1


def test_a_rerun_asks_nothing_and_only_new_frames_or_decoding_miss_the_cache(tmp_path):
    answers = {"a?": yes(0.7), "b?": no(0.1)}
    with FakeServer(by_question(answers)) as srv:
        first = make(srv, tmp_path).ask(clip(), ["a?", "b?"])
        again = make(srv, tmp_path, concurrency=1, max_retries=0, deadline=5.0)  # operational knobs only
        second = again.ask(clip(), ["a?", "b?"])
        assert len(srv.requests) == 2 and again.usage.calls == 0 and again.usage.cached == 2
        assert second == first
        changed = clip()
        changed[9, :2, :2] += 8  # a 2x2 block (one pixel after the 2x downscale) of a frame that is sent
        make(srv, tmp_path).ask(changed, ["a?"])
        assert len(srv.requests) == 3
        make(srv, tmp_path, temperature=0.5).ask(clip(), ["a?"])
        make(srv, tmp_path, frames=2).ask(clip(), ["a?"])
        assert len(srv.requests) == 5
        unseen = clip()
        unseen[1] = 255  # frame 1 is not among the 4 sent
        make(srv, tmp_path).ask(unseen, ["a?"])
        assert len(srv.requests) == 5


def test_the_api_key_is_sent_only_in_the_header_and_written_nowhere(tmp_path, caplog, monkeypatch):
    monkeypatch.setenv("JUDGE_TEST_KEY", SECRET)

    def respond(body, n):
        if n == 1:  # a server that echoes the credentials in its error
            return Out(status=401, text=f"bad key Bearer {SECRET}")
        return yes()

    caplog.set_level(logging.DEBUG)
    with FakeServer(respond) as srv:
        judge = make(srv, tmp_path, api_key_env="JUDGE_TEST_KEY")
        [failed] = judge.ask(clip(), ["q?"])
        [ok] = judge.ask(clip(), ["q?"])
    assert all(h.get("Authorization") == f"Bearer {SECRET}" for h in srv.headers)
    assert failed.status == "error" and "HTTP 401" in failed.error and SECRET not in failed.error
    assert ok.answer is True
    assert SECRET not in caplog.text and SECRET not in json.dumps(judge.describe())
    assert "JUDGE_TEST_KEY" in json.dumps(judge.describe())
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert files and not [p for p in files if SECRET.encode() in p.read_bytes()]


def test_a_missing_key_variable_and_bad_config_are_one_line_errors(tmp_path, monkeypatch):
    monkeypatch.delenv("NO_SUCH_JUDGE_KEY", raising=False)
    with pytest.raises(ConfigError, match="NO_SUCH_JUDGE_KEY is not set"):
        build_judge({"base_url": "http://127.0.0.1:9/v1", "model": "m", "api_key_env": "NO_SUCH_JUDGE_KEY"})
    with pytest.raises(ConfigError, match="unknown key"):
        build_judge({"base_url": "http://127.0.0.1:9/v1", "model": "m", "api_key": SECRET})
    with pytest.raises(ConfigError, match="needs base_url"):
        build_judge({"model": "m"})


def test_a_server_without_logprobs_is_asked_without_them(tmp_path):
    def respond(body, n):
        if "logprobs" in body:
            return Out(status=400, text="logprobs are not supported by this model")
        return Out("No")

    with FakeServer(respond) as srv:
        judge = make(srv, tmp_path)
        answers = judge.ask(clip(), ["a?", "b?"])
    assert [(a.answer, a.p_yes) for a in answers] == [(False, None), (False, None)]
    assert "logprobs" not in srv.requests[-1]
    with FakeServer(respond) as srv:  # `on` means on: a refusal is an error
        [a] = make(srv, tmp_path / "on", logprobs="on").ask(clip(), ["a?"])
    assert a.status == "error" and "HTTP 400" in a.error


def test_the_rate_limit_spaces_call_starts(tmp_path):
    sleeps: list[float] = []
    with FakeServer(lambda body, n: yes()) as srv:
        judge = make(srv, tmp_path, sleeps, rate_limit=2.0, concurrency=1)
        judge.limiter.clock = lambda: 100.0  # a frozen clock: every wait is the limiter's own
        judge.ask(clip(), ["a?", "b?", "c?"])
    assert sleeps == [0.5, 1.0]


def test_no_more_calls_in_flight_than_the_concurrency_limit(tmp_path):
    state = {"now": 0, "max": 0}
    lock = threading.Lock()

    def respond(body, n):
        with lock:
            state["now"] += 1
            state["max"] = max(state["max"], state["now"])
        time.sleep(0.15)
        with lock:
            state["now"] -= 1
        return yes()

    with FakeServer(respond) as srv:
        answers = make(srv, tmp_path, concurrency=3).ask(clip(), [f"q{i}?" for i in range(9)])
    assert all(a.answer for a in answers) and [a.question for a in answers] == [f"q{i}?" for i in range(9)]
    assert state["max"] == 3


def test_position_swapping_turns_a_positional_preference_into_a_tie(tmp_path):
    dark, bright = clip(offset=0), clip(offset=100)
    with FakeServer(lambda body, n: Out("A", {"A": math.log(0.8), "B": math.log(0.2)})) as srv:
        v = make(srv, tmp_path).choose(dark, bright, "visual quality", prompt="a lamp")
    assert v.winner == "tie" and v.forward.picked == "a" and v.backward.picked == "a"
    assert math.isclose(v.forward.p_first, 0.8) and len(srv.requests) == 2

    def brighter(body, n):  # prefers the brighter clip, wherever it is shown
        frames = images(body)
        half = len(frames) // 2
        return Out("A" if np.mean(frames[:half]) > np.mean(frames[half:]) else "B")

    with FakeServer(brighter) as srv:
        judge = make(srv, tmp_path / "b")
        assert judge.choose(dark, bright, "brightness").winner == "b"
        assert judge.choose(bright, dark, "brightness").winner == "a"
        body = srv.requests[0]
        assert "Criterion: brightness" in user_text(body) and len(images(body)) == 8


KILLED_RUN = """
import sys, torch
from vdmbench.judges import build_judge
frames = (torch.arange(10, dtype=torch.uint8) * 10).view(10, 1, 1, 1).expand(10, 48, 64, 3).contiguous()
judge = build_judge({"base_url": sys.argv[1], "model": "fake-vlm", "frames": 4, "frame_size": 32,
                     "concurrency": 1}, cache_dir=sys.argv[2])
judge.ask(frames, ["q1?", "q2?", "q3?"])
"""


def test_a_killed_run_never_repeats_a_call_whose_reply_arrived(tmp_path):
    import os
    import signal
    import subprocess
    import sys

    hanging = threading.Event()

    def respond(body, n):
        if question(body) == "q3?" and not hanging.is_set():
            hanging.set()
            return Out("Yes", delay=60.0)  # the run is killed while this call is in flight
        return yes()

    with FakeServer(respond) as srv:
        proc = subprocess.Popen([sys.executable, "-c", KILLED_RUN, srv.base_url, str(tmp_path / "judge")],
                                env={**os.environ, "OMP_NUM_THREADS": "1"})
        try:
            assert hanging.wait(timeout=120), "the child never reached its third call"
        finally:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
        assert [question(b) for b in srv.requests] == ["q1?", "q2?", "q3?"]
        judge = make(srv, tmp_path)
        answers = judge.ask(clip(), ["q1?", "q2?", "q3?"])
    assert [question(b) for b in srv.requests] == ["q1?", "q2?", "q3?", "q3?"]  # q1, q2 were paid: not asked again
    assert all(a.answer for a in answers)
    assert judge.usage.interrupted == 1 and judge.usage.cached == 2 and judge.usage.calls == 1
    assert not list((tmp_path / "judge").rglob("*.tmp")) and not list((tmp_path / "judge" / "pending").iterdir())
