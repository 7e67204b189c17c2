"""The http adapter against a fake video API on 127.0.0.1 (tests/fixtures/fake_video_api.py):
retries on 429/500/timeouts, rate and concurrency limits, deadlines, resume without paying twice,
validated downloads, and an API key that never leaks."""

import logging
import time

import pytest

from tests.fixtures.fake_video_api import SENTINEL, URL_TOKEN, FakeVideoApi
from vdmbench.adapters.base import GenerationRequest
from vdmbench.adapters.http import HttpAdapter, json_path, render_template
from vdmbench.core.errors import AdapterError, ConfigError
from vdmbench.core.video import Video

KEY_ENV = "VDMBENCH_TEST_API_KEY"


@pytest.fixture
def api():
    with FakeVideoApi() as server:
        yield server


def params(api, tmp_path, **over):
    base = {
        "base_url": api.url, "api_key_env": KEY_ENV,
        "submit": {"path": "/v1/jobs", "body": {"prompt": "{prompt}", "seed": "{seed}", "frames": "{num_frames}"},
                   "job_id": "data.id"},
        "poll": {"path": "/v1/jobs/{job_id}", "status": "status", "done": ["succeeded"], "failed": ["failed"],
                 "error": "error.message", "video_url": "output.url"},
        "concurrency": 3, "timeout": 0.5, "deadline": 20, "poll_interval": 0.02, "max_poll_interval": 0.05,
        "backoff": 0.02, "max_backoff": 0.1, "journal_dir": str(tmp_path / "journal"),
    }
    return {**base, **over}


def req(prompt, seed=0, frames=6):
    return GenerationRequest(prompt=prompt, seed=seed, num_frames=frames, height=16, width=16, fps=8.0,
                             extra={"prompt_id": prompt.replace(" ", "-")})


@pytest.fixture(autouse=True)
def api_key(monkeypatch):
    monkeypatch.setenv(KEY_ENV, SENTINEL)


def test_submit_poll_download_with_concurrency_limit(api, tmp_path):
    a = HttpAdapter("api", **params(api, tmp_path, concurrency=2))
    out = a.generate([req(f"clip {i}", seed=i) for i in range(6)])
    assert all(isinstance(v, Video) and v.num_frames == 6 for v in out), out
    assert api.max_inflight <= 2
    assert sum(api.submits.values()) == 6
    assert a.capabilities.paid and a.capabilities.batch_size == 2


def test_rate_limit_spaces_calls(api, tmp_path):
    a = HttpAdapter("api", **params(api, tmp_path, rate_limit=25))
    t0 = time.monotonic()
    out = a.generate([req("one"), req("two"), req("three")])
    assert all(isinstance(v, Video) for v in out)
    n, span = len(api.call_times), api.call_times[-1] - api.call_times[0]
    assert time.monotonic() - t0 >= (n - 1) / 25 * 0.9
    assert (n - 1) / span <= 25 * 1.2  # calls arrive at the configured rate, not in a burst


def test_retries_on_429_500_and_timeouts_without_a_second_job(api, tmp_path):
    # The config declares the API idempotent: a timed-out submission is sent again with its key.
    a = HttpAdapter("api", **params(api, tmp_path, idempotency_header="Idempotency-Key"))
    out = a.generate([req("ratelimited cat"), req("flaky dog"), req("slow bird")])
    assert all(isinstance(v, Video) for v in out), out
    assert api.attempts["ratelimited cat"] == 2 and api.attempts["flaky dog"] == 2
    assert api.attempts["slow bird"] >= 2
    assert api.submits["slow bird"] == 1  # the timed-out submission was deduplicated by its idempotency key


def test_retries_give_up_with_a_clear_error(api, tmp_path):
    a = HttpAdapter("api", **params(api, tmp_path, max_retries=0, idempotency_header="Idempotency-Key"))
    (out,) = a.generate([req("flaky fish")])
    assert isinstance(out, AdapterError) and "giving up after 1 attempts" in str(out) and "HTTP 500" in str(out)


@pytest.mark.parametrize("prompt, message", [
    ("trunc clip", "truncated"),
    ("html clip", "HTML page"),
    ("redirect clip", "redirects to another host"),
    ("wrongframes clip", "has 4 frames, expected 6"),
    ("failjob clip", "rejected by content policy"),
    ("huge clip", "exceeds the limit"),
])
def test_bad_downloads_and_failed_jobs_are_refused(api, tmp_path, prompt, message):
    a = HttpAdapter("api", **params(api, tmp_path))
    (out,) = a.generate([req(prompt)])
    assert isinstance(out, AdapterError), out
    assert message in str(out), str(out)
    assert not list((tmp_path / "journal").rglob("*.mp4"))  # nothing unvalidated is kept


def test_deadline_then_resume_polls_the_same_job(api, tmp_path):
    a = HttpAdapter("api", **params(api, tmp_path, deadline=0.4))
    (out,) = a.generate([req("pending sunset")])
    assert isinstance(out, AdapterError) and "deadline" in str(out) and "job-0000" in str(out)
    api.release()
    b = HttpAdapter("api", **params(api, tmp_path))  # a new process after a restart
    (video,) = b.generate([req("pending sunset")])
    assert isinstance(video, Video)
    assert api.submits["pending sunset"] == 1 and api.attempts["pending sunset"] == 1  # paid once


def test_a_downloaded_clip_is_served_from_the_journal(api, tmp_path):
    a = HttpAdapter("api", **params(api, tmp_path))
    (first,) = a.generate([req("harbor at dawn")])
    (again,) = HttpAdapter("api", **params(api, tmp_path)).generate([req("harbor at dawn")])
    assert first.frames.equal(again.frames)
    assert api.attempts["harbor at dawn"] == 1 and api.downloads["harbor at dawn"] == 1


def test_failed_job_leaves_the_journal_so_a_later_run_may_retry(api, tmp_path):
    a = HttpAdapter("api", **params(api, tmp_path))
    a.generate([req("failjob x")])
    assert not list((tmp_path / "journal").rglob("*.json"))


def test_the_key_never_appears_in_errors_or_logs(api, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    a = HttpAdapter("api", **params(api, tmp_path))
    (out,) = a.generate([req("echo me")])
    assert isinstance(out, AdapterError) and "HTTP 400" in str(out)
    assert SENTINEL not in str(out) and "<redacted>" in str(out)
    assert SENTINEL not in caplog.text
    for f in (tmp_path / "journal").rglob("*"):
        if f.is_file():
            assert SENTINEL.encode() not in f.read_bytes()


def test_config_errors(api, tmp_path, monkeypatch):
    monkeypatch.delenv(KEY_ENV)
    with pytest.raises(ConfigError, match=f"{KEY_ENV} is not set"):
        HttpAdapter("api", **params(api, tmp_path))
    monkeypatch.setenv(KEY_ENV, SENTINEL)
    with pytest.raises(ConfigError, match="unknown placeholders"):
        HttpAdapter("api", **params(api, tmp_path, submit={"path": "/x", "body": {"p": "{nope}"}, "job_id": "id"}))
    with pytest.raises(ConfigError, match="base_url"):
        HttpAdapter("api", **params(api, tmp_path, base_url="ftp://x"))


def test_template_and_json_path():
    values = {"prompt": "a cat", "seed": 3}
    assert render_template({"p": "{prompt}", "s": "{seed}", "t": "seed={seed}", "l": ["{prompt}"]}, values) == \
        {"p": "a cat", "s": 3, "t": "seed=3", "l": ["a cat"]}
    assert json_path({"a": [{"b": 1}]}, "a.0.b") == 1
    assert json_path({"a": [{"b": 1}]}, "a.5.b") is None and json_path({"a": 1}, "a.b") is None


def test_run_through_the_cli_keeps_the_key_out_of_everything(vdmbench_cli, tmp_path, api):
    cfg = tmp_path / "cfg"
    (cfg / "adapters").mkdir(parents=True)
    (cfg / "suites").mkdir()
    (cfg / "suites" / "api-suite.yaml").write_text(
        "name: api-suite\nnum_frames: 6\nheight: 16\nwidth: 16\nfps: 8\nseeds: [0, 1]\nmetrics: [flicker]\n"
        "prompts:\n  - {id: ok, text: 'a calm lake'}\n  - {id: leak, text: 'echo the header'}\n"
    )
    import yaml

    p = params(api, tmp_path)
    p.pop("journal_dir")  # the default, under results/
    (cfg / "adapters" / "fake-api.yaml").write_text(yaml.safe_dump({"name": "fake-api", "adapter": "http", "params": p}))
    search = f"hydra.searchpath=[file://{cfg}]"
    plan = vdmbench_cli("run", "suite=api-suite", "model=fake-api", search, "--dry-run")
    assert plan.returncode == 0, plan.stdout + plan.stderr
    assert "paid API calls: 4" in plan.stdout
    assert sum(api.attempts.values()) == 0  # a dry run calls nothing
    run = vdmbench_cli("run", "suite=api-suite", "model=fake-api", search)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "2 samples ok, 2 failed" in run.stdout
    assert SENTINEL not in run.stdout + run.stderr and URL_TOKEN not in run.stdout + run.stderr
    leaked = [f for f in tmp_path.rglob("*") if f.is_file() and SENTINEL.encode() in f.read_bytes()]
    assert leaked == [], leaked
    # Signed download URLs stay out of every file but the journal (which needs them to resume).
    logged = [f for f in tmp_path.rglob("*") if f.is_file() and f.suffix != ".json"
              and URL_TOKEN.encode() in f.read_bytes()]
    assert logged == [], logged
    assert list((tmp_path / "results" / "http-jobs" / "fake-api").glob("*.json"))


def test_i2v_sends_the_conditioning_image(api, tmp_path):
    import base64
    import io

    import numpy as np
    import torch
    from PIL import Image

    p = params(api, tmp_path, tasks=["i2v"])
    p["submit"] = {**p["submit"], "body": {**p["submit"]["body"], "image": "{image_data_url}"}}
    a = HttpAdapter("api", **p)
    frame = torch.randint(0, 256, (1, 16, 16, 3), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    r = GenerationRequest(prompt="animate", seed=0, num_frames=6, height=16, width=16, fps=8.0, task="i2v",
                          cond_frames=frame, cond_indices=(0,))
    url = a._values(r)["image_data_url"]
    png = base64.b64decode(url.split(",", 1)[1])
    assert torch.equal(torch.tensor(np.array(Image.open(io.BytesIO(png)))), frame[0])
    (out,) = a.generate([r])
    assert isinstance(out, Video)
    (missing,) = a.generate([GenerationRequest(prompt="x", seed=0, num_frames=6, height=16, width=16, fps=8.0, task="i2v")])
    assert isinstance(missing, AdapterError) and "conditioning image" in str(missing)


# -- never paying twice --------------------------------------------------------------------------

def test_a_submit_that_timed_out_after_sending_is_not_posted_again(api, tmp_path):
    a = HttpAdapter("api", **params(api, tmp_path))  # no idempotency_header: the API cannot dedupe
    (out,) = a.generate([req("slow heron")])
    assert isinstance(out, AdapterError) and "ambiguous submit" in str(out), out
    (entry,) = (tmp_path / "journal" / "api").glob("*.json")
    assert "the provider may have created the job; check it and clear the journal entry " + str(entry) in str(out)
    assert api.attempts["slow heron"] == 1  # sent once, never again
    assert '"ambiguous"' in entry.read_text()
    (again,) = HttpAdapter("api", **params(api, tmp_path)).generate([req("slow heron")])  # a rerun
    assert isinstance(again, AdapterError) and "ambiguous submit" in str(again)
    assert api.attempts["slow heron"] == 1
    entry.unlink()  # the user checked the provider and cleared the entry
    (video,) = HttpAdapter("api", **params(api, tmp_path)).generate([req("slow heron")])
    assert isinstance(video, Video) and api.attempts["slow heron"] == 2


def test_a_run_killed_while_submitting_does_not_submit_again(api, tmp_path):
    from vdmbench.adapters.http_journal import JobJournal

    a = HttpAdapter("api", **params(api, tmp_path))
    key = a.request_key(req("calm sea"))
    JobJournal(tmp_path / "journal" / "api").save(key, {"state": "submitting", "seed": 0})
    (out,) = a.generate([req("calm sea")])
    assert isinstance(out, AdapterError) and "ambiguous submit" in str(out) and f"{key}.json" in str(out)
    assert api.attempts["calm sea"] == 0
    # Where the config declares the API idempotent, such an entry is resubmitted with its key.
    b = HttpAdapter("api", **params(api, tmp_path, idempotency_header="Idempotency-Key"))
    JobJournal(tmp_path / "journal" / "api").save(b.request_key(req("calm lake")), {"state": "submitting", "seed": 0})
    (video,) = b.generate([req("calm lake")])
    assert isinstance(video, Video) and api.attempts["calm lake"] == 1


def test_an_oversized_2xx_submit_answer_is_ambiguous_not_forgotten(api, tmp_path):
    """A 2xx answer over the 4 MB limit: the job was made, so its journal entry stays (ambiguous)
    and no later run submits it again; an idempotent API gets the submission retried instead."""
    (out,) = HttpAdapter("api", **params(api, tmp_path)).generate([req("bloated owl")])
    assert isinstance(out, AdapterError) and "ambiguous submit" in str(out) and "exceeds the limit" in str(out), out
    (entry,) = (tmp_path / "journal" / "api").glob("*.json")
    assert '"ambiguous"' in entry.read_text()
    (again,) = HttpAdapter("api", **params(api, tmp_path)).generate([req("bloated owl")])
    assert isinstance(again, AdapterError) and "ambiguous submit" in str(again)
    assert api.attempts["bloated owl"] == 1 and api.submits["bloated owl"] == 1


def test_a_server_error_on_submit_is_not_retried_without_idempotency(api, tmp_path):
    (out,) = HttpAdapter("api", **params(api, tmp_path)).generate([req("flaky gull")])
    assert isinstance(out, AdapterError) and "HTTP 500" in str(out) and "not retried" in str(out)
    assert api.attempts["flaky gull"] == 1
    (ok,) = HttpAdapter("api", **params(api, tmp_path)).generate([req("ratelimited gull")])
    assert isinstance(ok, Video) and api.attempts["ratelimited gull"] == 2  # a 429 made no job: retried


def test_a_journalled_job_the_api_forgot_names_its_journal_entry(api, tmp_path):
    (out,) = HttpAdapter("api", **params(api, tmp_path, deadline=0.4)).generate([req("pending moon")])
    assert isinstance(out, AdapterError) and "deadline" in str(out)
    api.jobs.clear()  # the provider expired the job
    (lost,) = HttpAdapter("api", **params(api, tmp_path)).generate([req("pending moon")])
    (entry,) = (tmp_path / "journal" / "api").glob("*.json")
    assert isinstance(lost, AdapterError) and "unknown to the API (HTTP 404" in str(lost), lost
    assert str(entry) in str(lost) and "delete that file" in str(lost)
    assert api.submits["pending moon"] == 1
    entry.unlink()
    api.release()
    (video,) = HttpAdapter("api", **params(api, tmp_path)).generate([req("pending moon")])
    assert isinstance(video, Video) and api.submits["pending moon"] == 2


def test_the_key_goes_to_the_apis_origin_only_not_another_port(tmp_path):
    with FakeVideoApi(file_host=True) as api:
        a = HttpAdapter("api", **params(api, tmp_path, download_hosts=["127.0.0.1"]))
        (video,) = a.generate([req("river bend")])
        assert isinstance(video, Video), video
        assert api.file_auth == [None]  # same host, other port: no Authorization header
        assert api.downloads["river bend"] == 1


def test_signed_url_tokens_never_reach_the_logs(api, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    a = HttpAdapter("api", **params(api, tmp_path))
    out = a.generate([req("quiet forest"), req("html forest")])
    assert isinstance(out[0], Video) and isinstance(out[1], AdapterError)
    assert any(r.name == "httpx" and "/files/" in r.getMessage() for r in caplog.records)  # httpx did log the URLs
    assert URL_TOKEN not in caplog.text and URL_TOKEN not in str(out[1])
    assert "?<redacted>" in caplog.text
    assert URL_TOKEN not in a.scrub(f"oops https://cdn.example.com/v.mp4?sig={URL_TOKEN} failed")


def test_typed_placeholders_and_a_poll_url_from_the_submit_answer(api, tmp_path):
    p = params(api, tmp_path)
    p["submit"] = {**p["submit"], "body": {**p["submit"]["body"], "fps": "{fps:int}", "fps_text": "{fps:str}",
                                           "label": "{prompt_id}@{fps:int}", "seconds": "{duration:float}"}}
    p["poll"] = {k: v for k, v in p["poll"].items() if k != "path"} | {"url_field": "links.status"}
    (video,) = HttpAdapter("api", **p).generate([req("typed clip")])
    assert isinstance(video, Video), video  # polled at links.status: the config has no poll.path
    body = api.bodies["typed clip"]
    assert body["fps"] == 8 and isinstance(body["fps"], int) and body["frames"] == 6
    assert body["fps_text"] == "8.0" and body["label"] == "typed-clip@8" and body["seconds"] == 0.75
    assert render_template({"f": "{fps:int}", "n": "{steps:int}"}, {"fps": 7.6, "steps": None}) == {"f": 8, "n": None}
    with pytest.raises(ConfigError, match="unknown placeholder types"):
        HttpAdapter("api", **params(api, tmp_path, submit={"path": "/x", "body": {"f": "{fps:integer}"}, "job_id": "id"}))
    with pytest.raises(ConfigError, match="url_field"):
        HttpAdapter("api", **params(api, tmp_path, poll={"status": "s", "done": ["d"], "video_url": "u"}))
