"""Hosted video APIs as a model: submit a job, poll it until done, download and validate the video.

    # adapters/my-api.yaml
    name: my-api
    adapter: http
    params:
      base_url: https://api.example.com
      api_key_env: MY_API_KEY            # the key is read from this variable, never from the YAML
      submit:
        path: /v1/videos                 # POST, JSON body below; {placeholders} are filled per request
        body: {model: gen-1, prompt: "{prompt}", seed: "{seed}", frames: "{num_frames}", fps: "{fps:int}"}
        job_id: id                       # JSON path of the job id in the answer
      idempotency_header: Idempotency-Key  # only where the API drops duplicates by it (default: none)
      poll:
        path: /v1/videos/{job_id}        # or url_field: links.status (the submit answer's poll URL)
        status: status                   # JSON path of the state
        done: [succeeded]
        failed: [failed, canceled]
        error: error.message             # JSON path of the failure reason (optional)
        video_url: output.url            # JSON path of the video URL
      download_hosts: [cdn.example.com]  # hosts a video may be fetched from (default: the API's)
      concurrency: 4                     # jobs in flight at once
      rate_limit: 2                      # HTTP calls per second (all calls: polls count too)
      deadline: 900                      # seconds per request, submit to validated file

Placeholders: prompt, prompt_id, seed, num_frames, height, width, fps, duration, steps, guidance,
task, image_b64 and image_data_url (the first conditioning frame as PNG, for i2v). A value that is
exactly one placeholder keeps its type (an int stays an int); `{name:int}` (float, str, bool)
casts it.

Why it is built this way:
- Paid calls are never repeated by accident: each request's job id is written to a journal
  (<results_dir>/http-jobs/<model>/<key>.json, key = hash of the endpoints + request; `journal_dir`
  moves it) before the submission is sent, so a restarted run polls the job it already paid for.
  A submission that may have arrived (timeout after sending, dropped connection, gateway error, a
  run stopped mid-submit) is sent again only where `idempotency_header` declares that the API
  drops duplicates; otherwise the sample fails as an "ambiguous submit" and its entry stays, so no
  rerun submits it until a person has checked the provider and deleted the entry.
- Retries (429, 5xx, timeouts, dropped connections) back off exponentially with jitter, honour
  Retry-After, and never go past the request's deadline.
- Downloads are untrusted: redirects to another host are refused, the API key is only ever sent
  to the API's own origin (scheme, host, port), HTML and bodies over max_download_bytes are
  refused, and the file must decode completely with the expected number of frames.
- The API key never appears in the database, the logs, the journal or an error message: every
  message is scrubbed of it before it leaves this module. URL query strings (signed tokens) are
  scrubbed from messages too, and from httpx's/httpcore's log records by a logging filter.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import logging
import os
import random
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal
from urllib.parse import quote, urljoin, urlsplit

from pydantic import model_validator

from vdmbench.adapters.base import (
    AdapterContext,
    AdapterParams,
    BaseAdapter,
    Capabilities,
    GenerationRequest,
    cache_key,
)
from vdmbench.adapters.http_journal import JobJournal
from vdmbench.config.schema import Problem, expected
from vdmbench.config.suite import Task
from vdmbench.core import atomic
from vdmbench.core.errors import AdapterError, ConfigError, VdmbenchError
from vdmbench.core.naming import safe_filename
from vdmbench.core.video import VIDEO_EXTENSIONS, Video, read_video

log = logging.getLogger(__name__)

_PLACEHOLDER = re.compile(r"\{([a-z_0-9]+)(?::([a-z]+))?\}")
_CASTS = ("int", "float", "str", "bool")
_URL_QUERY = re.compile(r"((?:https?|wss?)://[^\s?#'\"<>]*)\?[^\s#'\"<>]*", re.IGNORECASE)
_FIELDS = ("prompt", "prompt_id", "seed", "num_frames", "height", "width", "fps", "duration", "steps",
           "guidance", "task", "image_b64", "image_data_url")
_MAX_JSON_BYTES = 4 << 20
_MAX_REDIRECTS = 5


def json_path(data: Any, path: str) -> Any:
    """`a.b.0.c` into nested dicts and lists; None where any step is missing."""
    cur = data
    for part in path.split("."):
        if isinstance(cur, dict):
            cur = cur.get(part)
        elif isinstance(cur, list) and part.lstrip("-").isdigit() and -len(cur) <= int(part) < len(cur):
            cur = cur[int(part)]
        else:
            return None
        if cur is None:
            return None
    return cur


def cast_value(value: Any, to: str | None) -> Any:
    """A placeholder's value cast to `{name:int}` / `float` / `str` / `bool` (None stays None;
    a float cast to int is rounded to the nearest integer: fps 8.0 -> 8)."""
    if to is None or value is None:
        return value
    if to == "int":
        return int(round(value)) if isinstance(value, float) else int(value)
    if to == "float":
        return float(value)
    if to == "bool":
        return value if isinstance(value, bool) else str(value).lower() not in ("", "0", "false", "no", "none")
    return str(value)


def render_template(template: Any, values: dict[str, Any]) -> Any:
    """Fill {placeholders} in every string of a JSON-like template. A string that is exactly one
    placeholder keeps the value's type, or takes the one it names (`"{fps:int}"` -> 8)."""
    if isinstance(template, dict):
        return {k: render_template(v, values) for k, v in template.items()}
    if isinstance(template, list):
        return [render_template(v, values) for v in template]
    if not isinstance(template, str):
        return template
    whole = _PLACEHOLDER.fullmatch(template)
    if whole:
        return cast_value(values[whole.group(1)], whole.group(2))
    return render_string(template, values)


def render_string(template: str, values: dict[str, Any], quoted: bool = False) -> str:
    """Fill {placeholders} into a string (`quoted`: URL-encoded, for paths)."""
    def one(m: re.Match[str]) -> str:
        text = str(cast_value(values[m.group(1)], m.group(2)))
        return quote(text, safe="") if quoted else text

    return _PLACEHOLDER.sub(one, template)


def _placeholder_specs(template: Any) -> set[tuple[str, str]]:
    if isinstance(template, dict):
        return set().union(*(_placeholder_specs(v) for v in template.values())) if template else set()
    if isinstance(template, list):
        return set().union(*(_placeholder_specs(v) for v in template)) if template else set()
    return set(_PLACEHOLDER.findall(template)) if isinstance(template, str) else set()


def _placeholders(template: Any) -> set[str]:
    return {name for name, _ in _placeholder_specs(template)}


def scrub_urls(text: str) -> str:
    """Query strings of URLs (signed download tokens live there) replaced by `?<redacted>`."""
    return _URL_QUERY.sub(r"\1?<redacted>", text)


class UrlQueryFilter(logging.Filter):
    """Scrubs URL query strings from log records: httpx logs every request's full URL at INFO,
    and whatever reaches a logger reaches Hydra's log files too."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed record: leave it to logging's own error handling
            return True
        scrubbed = scrub_urls(message)
        if scrubbed != message:
            record.msg, record.args = scrubbed, ()
        return True


_HTTP_LOGGERS = ("httpx", "httpcore", "httpcore.connection", "httpcore.http11", "httpcore.http2",
                 "httpcore.proxy", "hpack", __name__)


def install_log_filters() -> None:
    """The URL filter on the HTTP client's loggers (a logger's filter sees only its own records,
    so the child loggers get one each). Idempotent."""
    for name in _HTTP_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, UrlQueryFilter) for f in logger.filters):
            logger.addFilter(UrlQueryFilter())


@dataclass(frozen=True)
class Endpoint:
    path: str
    method: str = "GET"
    body: Any = None


class RateLimiter:
    """At most `per_second` calls per second, spaced evenly (no bursts that trip an API's limiter)."""

    def __init__(self, per_second: float | None) -> None:
        self.interval = 1.0 / per_second if per_second else 0.0
        self._next = 0.0
        self._lock: asyncio.Lock | None = None

    async def wait(self) -> None:
        if not self.interval:
            return
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            now = time.monotonic()
            delay = self._next - now
            self._next = max(now, self._next) + self.interval
        if delay > 0:
            await asyncio.sleep(delay)


class _Retryable(Exception):
    def __init__(self, reason: str, retry_after: float | None = None, status: int | None = None) -> None:
        super().__init__(reason)
        self.retry_after = retry_after
        self.status = status


class _HttpError(AdapterError):
    """A 4xx answer (the message is scrubbed already)."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


class _BadAnswer(AdapterError):
    """A 2xx answer that is not the JSON expected."""


class _AmbiguousSubmit(Exception):
    """The submission may have reached the API, and the API does not drop duplicates."""


# Answers to a submission that say no job was made: retried even where the API is not idempotent.
_NOT_PROCESSED = (429, 503)
# Answers after which a job may exist anyway (a gateway gave up waiting for the API).
_MAYBE_PROCESSED = (502, 504)


class HttpParams(AdapterParams):
    """The `params` of a hosted-API model YAML (see the module docstring for an example)."""

    what: ClassVar[str] = "http params"

    base_url: str = expected("an http(s) URL")
    submit: dict[str, Any] = expected("a mapping with path, job_id (and method, body)")
    poll: dict[str, Any] = expected(
        "a mapping with path, status, done, video_url (and method, failed, error; url_field instead of path)")
    api_key_env: str | None = expected("the name of the variable holding the key (never the key)", default=None)
    auth_header: str = expected("a header name", default="Authorization")
    auth_prefix: str = expected("a string", default="Bearer ")
    headers: dict[str, str] | None = expected("a mapping of header -> value", default=None)
    idempotency_header: str | None = expected(
        "a header name the API deduplicates submissions by (e.g. Idempotency-Key), or null when it has none",
        default=None)
    tasks: list[Task] | None = expected("a list of tasks", default=None)
    batch_size: int | None = expected("an integer >= 1 (default: concurrency)", default=None, ge=1)
    concurrency: int = expected("an integer >= 1 (jobs in flight at once)", default=4, ge=1)
    rate_limit: float | None = expected("a number > 0 of HTTP calls per second (polls count too)", default=None, gt=0)
    max_retries: int = expected("an integer >= 0", default=5, ge=0)
    backoff: float = expected("a number of seconds >= 0, doubled per retry", default=1.0, ge=0)
    max_backoff: float = expected("a number of seconds >= 0", default=30.0, ge=0)
    timeout: float = expected("a number of seconds > 0 per HTTP call", default=30.0, gt=0)
    deadline: float = expected("a number of seconds > 0 per request, submit to validated file", default=900.0, gt=0)
    poll_interval: float = expected("a number of seconds > 0", default=2.0, gt=0)
    max_poll_interval: float = expected("a number of seconds > 0", default=15.0, gt=0)
    download_hosts: list[str] | None = expected("a list of host names (default: the API's)", default=None)
    max_download_bytes: int = expected("an integer >= 1", default=500_000_000, ge=1)
    expected_frames: int | Literal["request", "none", "any"] | None = expected(
        "an integer, request, none or any", default="request")
    journal_dir: str | None = expected("a folder (default: the run's results_dir/http-jobs)", default=None)
    paid: bool = expected("true or false", default=True)
    deterministic: bool = expected("true or false", default=False)

    @model_validator(mode="after")
    def _consistent(self) -> HttpParams:
        split = urlsplit(self.base_url)
        if split.scheme not in ("http", "https") or not split.hostname:
            raise Problem(f"base_url must be an http(s) URL, got {self.base_url!r}")
        for what, spec, required in (("submit", self.submit, ("path", "job_id")),
                                     ("poll", self.poll, ("status", "done", "video_url"))):
            if any(k not in spec for k in required):
                raise Problem(f"'{what}' must be a mapping with {', '.join(required)}")
        if "path" not in self.poll and "url_field" not in self.poll:
            raise Problem("'poll' needs path (e.g. /v1/videos/{job_id}) or url_field (the JSON path of the "
                          "poll URL in the submit answer)")
        specs = _placeholder_specs(self.submit.get("body")) | _placeholder_specs(self.submit["path"])
        unknown = {name for name, _ in specs} - set(_FIELDS)
        if unknown:
            raise Problem(f"unknown placeholders {sorted(unknown)} in submit; known: {list(_FIELDS)}")
        bad_casts = sorted(f"{{{n}:{t}}}" for n, t in specs if t and t not in _CASTS)
        if bad_casts:
            raise Problem(f"unknown placeholder types {bad_casts} in submit; known: {list(_CASTS)}")
        if _placeholders(self.poll.get("path", "")) - {"job_id"}:
            raise Problem("poll.path may only use {job_id}")
        return self

    @property
    def idempotent(self) -> bool:
        """The config declares that the API drops duplicate submissions carrying the same key."""
        return bool(self.idempotency_header)


class HttpAdapter(BaseAdapter):
    # Read by `--dry-run` without building the adapter: each request is a paid job unless the
    # config says `paid: false` (its capabilities say the same once built).
    paid_by_default: ClassVar[bool] = True

    def __init__(self, name: str, params: HttpParams | None = None, *, context: AdapterContext | None = None,
                 **options: Any) -> None:
        super().__init__(name, context=context)
        if params is not None and options:
            raise TypeError("HttpAdapter takes params or keyword options, not both")
        p = self.params = params or HttpParams.parse(options, f"model {name!r}")
        # What identifies a job: the endpoints and their templates. Operational knobs (deadline,
        # rates, retries, paths) are left out, so changing them never submits (pays for) a job again.
        self._identity = {"base_url": p.base_url, "submit": p.submit, "poll": p.poll}
        self.base_url = p.base_url.rstrip("/") + "/"
        self.api_host = urlsplit(p.base_url).hostname or ""  # check() refused a URL without one
        self.api_origin = _origin(p.base_url)
        install_log_filters()
        self._key = ""
        if p.api_key_env:
            self._key = os.environ.get(p.api_key_env, "")
            if not self._key:
                raise ConfigError(f"model {name!r}: the API key variable {p.api_key_env} is not set "
                                  f"(export {p.api_key_env}=... before running)")
        self.submit = self._endpoint(p.submit, "POST")
        self.poll = self._endpoint(p.poll, "GET")
        self.uses_image = bool(_placeholders(self.submit.body) & {"image_b64", "image_data_url"})
        self.limiter = RateLimiter(p.rate_limit)
        self.download_hosts = set(p.download_hosts or [self.api_host])
        self.capabilities = Capabilities(
            tasks=tuple(p.tasks or ("t2v",)), batch_size=int(p.batch_size or self.concurrency),
            deterministic=p.deterministic, paid=p.paid,
        )

    @property
    def concurrency(self) -> int:
        return self.params.concurrency

    @property
    def journal(self) -> JobJournal:
        """Job ids per request, under params.journal_dir or the run's results_dir/http-jobs."""
        root = Path(self.params.journal_dir) if self.params.journal_dir else Path(str(self.context.journal_dir))
        return JobJournal(root / safe_filename(self.name))

    @staticmethod
    def _endpoint(spec: dict[str, Any], method: str) -> Endpoint:
        return Endpoint(str(spec.get("path", "")), str(spec.get("method", method)).upper(), spec.get("body"))

    # -- secrets ---------------------------------------------------------------------------------
    def scrub(self, text: str) -> str:
        """The text with the API key and URL query strings (signed tokens) removed: servers do
        echo headers and URLs back in error bodies."""
        text = scrub_urls(text)
        return text.replace(self._key, "<redacted>") if self._key else text

    def _fail(self, message: str) -> AdapterError:
        return AdapterError(self.scrub(f"{self.name}: {message}"))

    def error(self, e: BaseException) -> AdapterError:
        # Scrubbed, and without the original exception attached: it may carry the key.
        return AdapterError(self.scrub(str(super().error(e))))

    # -- public ----------------------------------------------------------------------------------
    def request_key(self, req: GenerationRequest) -> str:
        """Hash of (API endpoints and templates, request), computed like the runner's cache key:
        the same request to the same API maps to the same journal entry across restarts."""
        return cache_key({"adapter": "http", "params": self._identity}, req)

    def _validate(self, path: Path, req: GenerationRequest) -> Video:
        """The file decodes completely (read_video compares decoded and claimed frames) and has
        the frame count the request (or `expected_frames`) asks for."""
        try:
            video = read_video(path)
        except VdmbenchError as e:
            raise self._fail(f"the downloaded video does not decode completely (truncated or corrupt): {e}") from None
        spec = self.params.expected_frames
        expected = None if spec in (None, "none", "any") else req.num_frames if spec == "request" else int(spec)
        if expected is not None and video.num_frames != expected:
            raise self._fail(f"the downloaded video has {video.num_frames} frames, expected {expected}")
        return video

    def generate_batch(self, requests: list[GenerationRequest]) -> list[Video | BaseException]:
        coro = self._generate_all(requests)
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return asyncio.run(coro)
        # Called from code that already runs an event loop (a notebook): use a loop of our own.
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(1) as pool:
            return pool.submit(asyncio.run, coro).result()

    async def _generate_all(self, requests: list[GenerationRequest]) -> list[Video | BaseException]:
        import httpx

        gate = asyncio.Semaphore(self.concurrency)
        limits = httpx.Limits(max_connections=self.concurrency * 2)
        deadline = self.params.deadline
        async with httpx.AsyncClient(timeout=self.params.timeout, follow_redirects=False, limits=limits) as client:
            async def one(req: GenerationRequest) -> Video:
                async with gate:
                    try:
                        return await asyncio.wait_for(self._one(client, req), deadline)
                    except asyncio.TimeoutError:
                        key = self.request_key(req)
                        entry = self.journal.load(key) or {}
                        if entry.get("state") == "submitting" and not self.params.idempotent:
                            # Cancelled while the submission was in flight: it may have arrived.
                            raise self._ambiguous(key, entry, f"deadline of {deadline:g} s exceeded during submit") from None
                        job = f" (job {entry['job_id']} stays in the journal and is polled again on the next run)" \
                            if entry.get("job_id") else ""
                        raise self._fail(f"deadline of {deadline:g} s exceeded{job}") from None

            # Each request's exception stays in its slot; BaseAdapter makes it a scrubbed AdapterError.
            return list(await asyncio.gather(*(one(r) for r in requests), return_exceptions=True))

    # -- one request -----------------------------------------------------------------------------
    async def _one(self, client: Any, req: GenerationRequest) -> Video:
        key = self.request_key(req)
        entry = self.journal.load(key) or {}
        if entry.get("state") == "downloaded":
            path = self.journal.video_path(key, entry.get("suffix", ".mp4"))
            try:
                return self._validate(path, req)
            except VdmbenchError:
                log.warning("%s: journalled video for %s unusable; fetching it again", self.name, key[:12])
        if entry.get("state") == "ambiguous":
            raise self._ambiguous(key, entry, entry.get("reason") or "a previous submission's answer was lost")
        if not entry.get("job_id"):
            if entry.get("state") == "submitting" and not self.params.idempotent:
                # A run stopped while this submission was in flight: the job may exist.
                raise self._ambiguous(key, entry, "a previous run stopped while submitting")
            # Written before the call: a submission whose answer is lost is retried with the same
            # idempotency key where the API has one, and is never sent again blindly where not.
            entry = {"state": "submitting", "prompt_id": req.extra.get("prompt_id"), "seed": req.seed,
                     "created_at": time.time()}
            self.journal.save(key, entry)
            try:
                job_id, poll_url = await self._submit(client, req, key)
            except _AmbiguousSubmit as e:
                raise self._ambiguous(key, entry, str(e)) from None
            except (AdapterError, _Retryable):
                self.journal.remove(key)  # no job was made (or the API dedupes): a later run may try again
                raise
            entry = {**entry, "state": "submitted", "job_id": job_id, "submitted_at": time.time()}
            if poll_url:
                entry["poll_url"] = poll_url
            self.journal.save(key, entry)
            log.info("%s: submitted %s-s%s as job %s", self.name, req.extra.get("prompt_id"), req.seed, job_id)
        else:
            log.info("%s: resuming job %s from the journal (not submitted again)", self.name, entry["job_id"])
        try:
            url = await self._wait_done(client, str(entry["job_id"]), entry.get("poll_url"))
        except _JobFailed as e:
            self.journal.remove(key)  # a failed job is not billed as a video: a later run may try again
            raise self._fail(str(e)) from None
        except _HttpError as e:
            if e.status in (404, 410):
                raise self._fail(
                    f"job {entry['job_id']} is unknown to the API (HTTP {e.status} on poll; it may have expired "
                    f"or been deleted); its journal entry {self.journal.entry_path(key)} keeps this request from "
                    "being submitted again: delete that file to submit it again (a new, paid job)") from None
            raise
        suffix = Path(urlsplit(url).path).suffix.lower()
        suffix = suffix if suffix in VIDEO_EXTENSIONS else ".mp4"
        path = self.journal.video_path(key, suffix)
        await self._download(client, url, path)
        try:
            video = self._validate(path, req)
        except VdmbenchError:
            path.unlink(missing_ok=True)
            raise
        self.journal.save(key, {**entry, "state": "downloaded", "suffix": suffix, "downloaded_at": time.time()})
        return video

    def _values(self, req: GenerationRequest) -> dict[str, Any]:
        values: dict[str, Any] = {
            "prompt": req.prompt, "prompt_id": req.extra.get("prompt_id"), "seed": req.seed,
            "num_frames": req.num_frames, "height": req.height, "width": req.width, "fps": req.fps,
            "duration": req.num_frames / req.fps, "steps": req.steps, "guidance": req.guidance, "task": req.task,
            "image_b64": None, "image_data_url": None,
        }
        if self.uses_image:
            if req.cond_frames is None or len(req.cond_frames) == 0:
                raise self._fail(f"task {req.task} needs a conditioning image, the request has none")
            from PIL import Image

            buf = io.BytesIO()
            Image.fromarray(req.cond_frames[0].cpu().numpy(), "RGB").save(buf, format="PNG")
            b64 = base64.b64encode(buf.getvalue()).decode()
            values.update(image_b64=b64, image_data_url=f"data:image/png;base64,{b64}")
        return values

    def _ambiguous(self, key: str, entry: dict[str, Any], reason: str) -> AdapterError:
        """Journal the request as ambiguous (no run submits it again until the entry is cleared)
        and the error that fails its sample."""
        reason = self.scrub(reason)
        if entry.get("state") != "ambiguous":
            self.journal.save(key, {**entry, "state": "ambiguous", "reason": reason, "ambiguous_at": time.time()})
        return self._fail(
            f"ambiguous submit ({reason}): the provider may have created the job; check it and clear the journal "
            f"entry {self.journal.entry_path(key)} (delete the file) to submit this request again, or set "
            "idempotency_header if the API deduplicates submissions")

    async def _submit(self, client: Any, req: GenerationRequest, key: str) -> tuple[str, str | None]:
        """The job id and, with poll.url_field, the poll URL the answer gives."""
        values = self._values(req)
        url = self._url(render_string(self.submit.path, values, quoted=True))
        idem = self.params.idempotency_header
        headers = {idem: key} if idem else {}
        body = render_template(self.submit.body, values) if self.submit.body is not None else None
        once = not self.params.idempotent
        try:
            data = await self._json(client, self.submit.method, url, json_body=body, headers=headers, once=once)
        except _BadAnswer as e:
            if once:  # a 2xx answer: the job may well exist
                raise _AmbiguousSubmit(str(e).removeprefix(f"{self.name}: ")) from None
            raise
        job_id = json_path(data, str(self.params.submit["job_id"]))
        if job_id is None or isinstance(job_id, (dict, list)) or str(job_id) == "":
            message = f"submit answer has no job id at '{self.params.submit['job_id']}'"
            if once:
                raise _AmbiguousSubmit(message)
            raise self._fail(message)
        poll_url = None
        field = self.params.poll.get("url_field")
        if field:
            found = json_path(data, str(field))
            if not isinstance(found, str) or not found:
                raise _AmbiguousSubmit(f"job {job_id} was created but the answer has no poll URL at '{field}'")
            poll_url = self._url(found)
        return str(job_id), poll_url

    async def _wait_done(self, client: Any, job_id: str, poll_url: str | None = None) -> str:
        spec = self.params.poll
        url = poll_url or self._url(self.poll.path.replace("{job_id}", quote(job_id, safe="")))
        done, failed = set(map(str, spec["done"])), set(map(str, spec.get("failed") or ()))
        interval = self.params.poll_interval
        while True:
            data = await self._json(client, self.poll.method, url)
            status = str(json_path(data, str(spec["status"])))
            if status in done:
                video_url = json_path(data, str(spec["video_url"]))
                if not isinstance(video_url, str) or not video_url:
                    raise self._fail(f"job {job_id} is {status} but has no video URL at '{spec['video_url']}'")
                return self._url(video_url)
            if status in failed:
                reason = json_path(data, str(spec["error"])) if spec.get("error") else None
                raise _JobFailed(f"job {job_id} {status}" + (f": {str(reason)[:300]}" if reason else ""))
            await asyncio.sleep(interval)
            interval = min(self.params.max_poll_interval, interval * 1.5)

    # -- HTTP --------------------------------------------------------------------------------------
    def _url(self, path_or_url: str) -> str:
        return urljoin(self.base_url, path_or_url.lstrip("/") if not urlsplit(path_or_url).scheme else path_or_url)

    def _headers(self, url: str, extra: dict[str, str] | None = None) -> dict[str, str]:
        headers = {**(self.params.headers or {}), **(extra or {})}
        if self._key and _origin(url) == self.api_origin:  # the key goes to the API's origin only
            headers[self.params.auth_header] = f"{self.params.auth_prefix}{self._key}"
        return headers

    async def _json(self, client: Any, method: str, url: str, json_body: Any = None,
                    headers: dict[str, str] | None = None, once: bool = False) -> Any:
        """The JSON answer, retried on failures. `once`: a call that must not reach the API twice
        (a submission to an API without idempotency keys): retried only where it surely did not
        arrive; where it may have, _AmbiguousSubmit."""
        async def attempt() -> Any:
            async with self._open(client, method, url, json_body, headers) as resp:
                try:
                    body = await _read_limited(resp, _MAX_JSON_BYTES, "answer")
                except AdapterError as e:  # a 2xx answer (the job may exist), too large to read
                    raise _BadAnswer(f"{self.name}: {method} {_short(url)}: {e}") from None
            try:
                return json.loads(body)
            except ValueError:
                ctype = resp.headers.get("content-type", "?")
                raise _BadAnswer(self.scrub(f"{self.name}: {method} {_short(url)}: answer is not JSON "
                                            f"({ctype}): {body[:120]!r}")) from None

        return await self._retrying(attempt, f"{method} {_short(url)}", once=once)

    async def _download(self, client: Any, url: str, path: Path) -> None:
        host = urlsplit(url).hostname
        if urlsplit(url).scheme not in ("http", "https") or host not in self.download_hosts:
            raise self._fail(f"video URL host {host!r} is not in download_hosts {sorted(self.download_hosts)}")
        async def attempt(tmp: Path) -> None:
            async with self._open(client, "GET", url) as resp:
                ctype = resp.headers.get("content-type", "").lower()
                if "html" in ctype:
                    raise self._fail(f"download {_short(url)} is an HTML page ({ctype}), not a video")
                _check_length(resp, self.params.max_download_bytes, "video")
                size = 0
                with open(tmp, "wb") as f:
                    async for chunk in resp.aiter_bytes():
                        if size == 0 and chunk.lstrip()[:15].lower().startswith((b"<!doctype", b"<html")):
                            raise self._fail(f"download {_short(url)} is an HTML page, not a video")
                        size += len(chunk)
                        if size > self.params.max_download_bytes:
                            raise self._fail(f"download {_short(url)} exceeds max_download_bytes={self.params.max_download_bytes}")
                        f.write(chunk)

        # Renamed onto `path` only once a whole attempt succeeded.
        with atomic.atomic_path(path) as tmp:
            await self._retrying(lambda: attempt(tmp), f"download {_short(url)}")

    def _open(self, client: Any, method: str, url: str, json_body: Any = None,
              headers: dict[str, str] | None = None) -> _Response:
        return _Response(self, client, method, url, json_body, headers)

    async def _retrying(self, attempt: Any, what: str, once: bool = False) -> Any:
        import httpx

        p = self.params
        for n in range(p.max_retries + 1):
            try:
                return await attempt()
            except _Retryable as e:
                reason, retry_after = str(e), e.retry_after
                if once and e.status in _MAYBE_PROCESSED:
                    raise _AmbiguousSubmit(f"{what}: {reason}") from None
                if once and e.status not in _NOT_PROCESSED:
                    raise self._fail(f"{what}: {reason} (not retried: the API has no idempotency key, and "
                                     "a job may not be paid for twice)") from None
            except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as e:
                reason, retry_after = f"{type(e).__name__}", None  # nothing was sent
            except (httpx.TimeoutException, httpx.TransportError) as e:
                reason, retry_after = f"{type(e).__name__}", None
                if once:  # sent, or partly sent: the API may have made the job
                    raise _AmbiguousSubmit(f"{what}: {reason} after sending") from None
            if n == p.max_retries:
                raise self._fail(f"{what}: giving up after {n + 1} attempts (last: {reason})")
            delay = min(p.max_backoff, p.backoff * 2 ** n) * random.uniform(0.5, 1.5)
            if retry_after is not None:
                delay = min(p.max_backoff, max(delay, retry_after))
            log.info("%s: %s: %s; retry %d in %.1f s", self.name, what, self.scrub(reason), n + 1, delay)
            await asyncio.sleep(delay)
        raise AssertionError("unreachable")


class _JobFailed(Exception):
    pass


class _Response:
    """`async with`: a streamed response that followed same-host redirects and is a 2xx."""

    def __init__(self, adapter: HttpAdapter, client: Any, method: str, url: str, json_body: Any,
                 headers: dict[str, str] | None) -> None:
        self.a, self.client, self.method, self.url = adapter, client, method, url
        self.json_body, self.extra = json_body, headers
        self.resp: Any = None

    async def __aenter__(self) -> Any:
        url, method, body = self.url, self.method, self.json_body
        for _ in range(_MAX_REDIRECTS + 1):
            await self.a.limiter.wait()
            req = self.client.build_request(method, url, json=body, headers=self.a._headers(url, self.extra))
            resp = await self.client.send(req, stream=True)
            if resp.is_redirect:
                target = urljoin(url, resp.headers.get("location", ""))
                await resp.aclose()
                if urlsplit(target).hostname != urlsplit(url).hostname:
                    raise self.a._fail(f"{method} {_short(url)} redirects to another host "
                                       f"({urlsplit(target).hostname}); refused")
                if resp.status_code in (301, 302, 303):
                    method, body = ("GET", None) if method != "HEAD" else (method, body)
                url = target
                continue
            if resp.status_code == 429 or resp.status_code >= 500:
                retry_after = _retry_after(resp.headers.get("retry-after"))
                await resp.aclose()
                raise _Retryable(f"HTTP {resp.status_code}", retry_after, resp.status_code)
            if resp.status_code >= 400:
                text = (await _read_limited(resp, 4096, "error", strict=False)).decode("utf-8", "replace")
                await resp.aclose()
                message = f"{method} {_short(url)}: HTTP {resp.status_code}: {' '.join(text.split())[:300]}"
                raise _HttpError(self.a.scrub(f"{self.a.name}: {message}"), resp.status_code)
            self.resp = resp
            return resp
        raise self.a._fail(f"{self.method} {_short(self.url)}: more than {_MAX_REDIRECTS} redirects")

    async def __aexit__(self, *exc: Any) -> None:
        if self.resp is not None:
            await self.resp.aclose()


def _check_length(resp: Any, limit: int, what: str) -> None:
    length = resp.headers.get("content-length")
    if length and length.isdigit() and int(length) > limit:
        raise AdapterError(f"{what} of {int(length)} bytes exceeds the limit of {limit}")


async def _read_limited(resp: Any, limit: int, what: str, strict: bool = True) -> bytes:
    if strict:
        _check_length(resp, limit, what)
    out = bytearray()
    async for chunk in resp.aiter_bytes():
        out += chunk
        if len(out) > limit:
            if strict:
                raise AdapterError(f"{what} exceeds the limit of {limit} bytes")
            break
    return bytes(out[:limit])


def _retry_after(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None  # an HTTP date: the exponential backoff applies instead


def _origin(url: str) -> tuple[str, str, int | None]:
    """(scheme, host, port) with the scheme's default port filled in."""
    s = urlsplit(url)
    scheme = s.scheme.lower()
    try:
        port = s.port
    except ValueError:
        port = None
    return scheme, (s.hostname or "").lower(), port or {"http": 80, "https": 443}.get(scheme)


def _short(url: str) -> str:
    s = urlsplit(url)
    return f"{s.scheme}://{s.netloc}{s.path}"  # no query string: signed URLs carry tokens there


ADAPTER = HttpAdapter
