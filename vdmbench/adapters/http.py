"""Hosted video APIs as a model: submit a job, poll it until done, download and validate the video.

    # adapters/my-api.yaml
    name: my-api
    adapter: http
    params:
      base_url: https://api.example.com
      api_key_env: MY_API_KEY            # the key is read from this variable, never from the YAML
      submit:
        path: /v1/videos                 # POST, JSON body below; {placeholders} are filled per request
        body: {model: gen-1, prompt: "{prompt}", seed: "{seed}", frames: "{num_frames}"}
        job_id: id                       # JSON path of the job id in the answer
      poll:
        path: /v1/videos/{job_id}
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
exactly one placeholder keeps its type (an int stays an int).

Why it is built this way:
- Paid calls are never repeated by accident: each request's job id is written to a journal
  (<results_dir>/http-jobs/<model>/<key>.json, key = hash of the endpoints + request; `journal_dir`
  moves it) before polling, so a restarted run polls the job it
  already paid for; submissions carry an Idempotency-Key so APIs that support it drop duplicates
  of a submission whose answer was lost.
- Retries (429, 5xx, timeouts, dropped connections) back off exponentially with jitter, honour
  Retry-After, and never go past the request's deadline.
- Downloads are untrusted: redirects to another host are refused, the API key is only ever sent
  to the API's own host, HTML and bodies over max_download_bytes are refused, and the file must
  decode completely with the expected number of frames.
- The API key never appears in the database, the logs, the journal or an error message: every
  message is scrubbed of it before it leaves this module.
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

_PLACEHOLDER = re.compile(r"\{([a-z_0-9]+)\}")
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


def render_template(template: Any, values: dict[str, Any]) -> Any:
    """Fill {placeholders} in every string of a JSON-like template."""
    if isinstance(template, dict):
        return {k: render_template(v, values) for k, v in template.items()}
    if isinstance(template, list):
        return [render_template(v, values) for v in template]
    if not isinstance(template, str):
        return template
    whole = _PLACEHOLDER.fullmatch(template)
    if whole:
        return values[whole.group(1)]
    return _PLACEHOLDER.sub(lambda m: str(values[m.group(1)]), template)


def _placeholders(template: Any) -> set[str]:
    if isinstance(template, dict):
        return set().union(*(_placeholders(v) for v in template.values())) if template else set()
    if isinstance(template, list):
        return set().union(*(_placeholders(v) for v in template)) if template else set()
    return set(_PLACEHOLDER.findall(template)) if isinstance(template, str) else set()


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
    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


class HttpParams(AdapterParams):
    """The `params` of a hosted-API model YAML (see the module docstring for an example)."""

    what: ClassVar[str] = "http params"

    base_url: str = expected("an http(s) URL")
    submit: dict[str, Any] = expected("a mapping with path, job_id (and method, body)")
    poll: dict[str, Any] = expected("a mapping with path, status, done, video_url (and method, failed, error)")
    api_key_env: str | None = expected("the name of the variable holding the key (never the key)", default=None)
    auth_header: str = expected("a header name", default="Authorization")
    auth_prefix: str = expected("a string", default="Bearer ")
    headers: dict[str, str] | None = expected("a mapping of header -> value", default=None)
    idempotency_header: str | None = expected("a header name or null", default="Idempotency-Key")
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
                                     ("poll", self.poll, ("path", "status", "done", "video_url"))):
            if any(k not in spec for k in required):
                raise Problem(f"'{what}' must be a mapping with {', '.join(required)}")
        unknown = (_placeholders(self.submit.get("body")) | _placeholders(self.submit["path"])) - set(_FIELDS)
        if unknown:
            raise Problem(f"unknown placeholders {sorted(unknown)} in submit; known: {list(_FIELDS)}")
        if _placeholders(self.poll["path"]) - {"job_id"}:
            raise Problem("poll.path may only use {job_id}")
        return self


class HttpAdapter(BaseAdapter):
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
        return Endpoint(str(spec["path"]), str(spec.get("method", method)).upper(), spec.get("body"))

    # -- secrets ---------------------------------------------------------------------------------
    def scrub(self, text: str) -> str:
        """The text with the API key removed (servers do echo headers back in error bodies)."""
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
                        entry = self.journal.load(self.request_key(req)) or {}
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
        if not entry.get("job_id"):
            # Written before the call, so a submission whose answer is lost is retried with the
            # same idempotency key after a restart.
            entry = {"state": "submitting", "prompt_id": req.extra.get("prompt_id"), "seed": req.seed,
                     "created_at": time.time()}
            self.journal.save(key, entry)
            job_id = await self._submit(client, req, key)
            entry = {**entry, "state": "submitted", "job_id": job_id, "submitted_at": time.time()}
            self.journal.save(key, entry)
            log.info("%s: submitted %s-s%s as job %s", self.name, req.extra.get("prompt_id"), req.seed, job_id)
        else:
            log.info("%s: resuming job %s from the journal (not submitted again)", self.name, entry["job_id"])
        try:
            url = await self._wait_done(client, str(entry["job_id"]))
        except _JobFailed as e:
            self.journal.remove(key)  # a failed job is not billed as a video: a later run may try again
            raise self._fail(str(e)) from None
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

    async def _submit(self, client: Any, req: GenerationRequest, key: str) -> str:
        values = self._values(req)
        url = self._url(render_template(self.submit.path, {k: quote(str(v), safe="") for k, v in values.items()}))
        idem = self.params.idempotency_header
        headers = {idem: key} if idem else {}
        body = render_template(self.submit.body, values) if self.submit.body is not None else None
        data = await self._json(client, self.submit.method, url, json_body=body, headers=headers)
        job_id = json_path(data, str(self.params.submit["job_id"]))
        if job_id is None or isinstance(job_id, (dict, list)) or str(job_id) == "":
            raise self._fail(f"submit answer has no job id at '{self.params.submit['job_id']}'")
        return str(job_id)

    async def _wait_done(self, client: Any, job_id: str) -> str:
        spec = self.params.poll
        url = self._url(self.poll.path.replace("{job_id}", quote(job_id, safe="")))
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
        if self._key and urlsplit(url).hostname == self.api_host:  # the key goes to the API only
            headers[self.params.auth_header] = f"{self.params.auth_prefix}{self._key}"
        return headers

    async def _json(self, client: Any, method: str, url: str, json_body: Any = None,
                    headers: dict[str, str] | None = None) -> Any:
        async def attempt() -> Any:
            async with self._open(client, method, url, json_body, headers) as resp:
                body = await _read_limited(resp, _MAX_JSON_BYTES, "answer")
            try:
                return json.loads(body)
            except ValueError:
                ctype = resp.headers.get("content-type", "?")
                raise self._fail(f"{method} {_short(url)}: answer is not JSON ({ctype}): {body[:120]!r}") from None

        return await self._retrying(attempt, f"{method} {_short(url)}")

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

    async def _retrying(self, attempt: Any, what: str) -> Any:
        import httpx

        p = self.params
        for n in range(p.max_retries + 1):
            try:
                return await attempt()
            except _Retryable as e:
                reason, retry_after = str(e), e.retry_after
            except (httpx.TimeoutException, httpx.TransportError) as e:
                reason, retry_after = f"{type(e).__name__}", None
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
                raise _Retryable(f"HTTP {resp.status_code}", retry_after)
            if resp.status_code >= 400:
                text = (await _read_limited(resp, 4096, "error", strict=False)).decode("utf-8", "replace")
                await resp.aclose()
                raise self.a._fail(f"{method} {_short(url)}: HTTP {resp.status_code}: {' '.join(text.split())[:300]}")
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


def _short(url: str) -> str:
    s = urlsplit(url)
    return f"{s.scheme}://{s.netloc}{s.path}"  # no query string: signed URLs carry tokens there


ADAPTER = HttpAdapter
