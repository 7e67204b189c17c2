"""Judge backend `openai`: any OpenAI-compatible chat-completions endpoint (vLLM, SGLang, Ollama,
hosted APIs).

One call is one POST {base_url}/chat/completions with the frames as image_url parts (base64 data
URLs), temperature and seed from the config, and `logprobs` + `top_logprobs` so P("Yes") can be read
from the first answer token. With `logprobs: auto`, a server that refuses them (HTTP 400 naming
logprobs) is asked again without, once, and from then on. Retries with exponential backoff on 429
(honouring Retry-After) and 5xx, on transport errors and on malformed replies; never past the
call's deadline. The API key is read from the variable `api_key_env` names and lives only in the
Authorization header: error messages are scrubbed of it.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import threading
import time
from typing import Any, Callable, Mapping, Sequence

from vdmbench.core.errors import ConfigError
from vdmbench.judges.base import Judge, JudgeConfig, JudgeError, Reply
from vdmbench.judges.frames import Shown

log = logging.getLogger(__name__)


class RateLimiter:
    """At most `rate` call starts per second, across threads (None: no limit)."""

    def __init__(self, rate: float | None, clock: Callable[[], float], sleep: Callable[[float], None]) -> None:
        self.interval = 1.0 / rate if rate else 0.0
        self.clock, self.sleep = clock, sleep
        self._next = 0.0
        self._lock = threading.Lock()

    def wait(self) -> None:
        if not self.interval:
            return
        with self._lock:
            now = self.clock()
            start = max(now, self._next)
            self._next = start + self.interval
        if start > now:
            self.sleep(start - now)


class _Retry(Exception):
    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason, self.retry_after = reason, retry_after


class OpenAIJudge(Judge):
    backend = "openai"

    def __init__(self, config: JudgeConfig | dict[str, Any], cache_dir: Any = None, *,
                 clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep,
                 env: Mapping[str, str] | None = None, transport: Any = None) -> None:
        super().__init__(config, cache_dir, clock=clock)
        if importlib.util.find_spec("httpx") is None:
            raise ConfigError("judge backend 'openai' needs httpx, which is not installed; "
                              "install it: pip install 'vdmbench[api]'")
        c = self.config
        env = os.environ if env is None else env
        self._key = ""
        if c.api_key_env:
            self._key = env.get(c.api_key_env, "")
            if not self._key:
                raise ConfigError(f"judge: the API key variable {c.api_key_env} is not set "
                                  f"(export {c.api_key_env}=... before running)")
        self.sleep = sleep
        self.limiter = RateLimiter(c.rate_limit, clock, sleep)
        self.url = str(c.base_url).rstrip("/") + "/chat/completions"
        self._logprobs = c.logprobs != "off"
        self._transport = transport
        self._client: Any = None  # made on the first call: a fully cached run opens no connection
        self._client_lock = threading.Lock()

    def client(self) -> Any:
        import httpx

        with self._client_lock:
            if self._client is None:
                self._client = httpx.Client(transport=self._transport, follow_redirects=False)
            return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()

    def scrub(self, text: str) -> str:
        return text.replace(self._key, "***") if self._key else text

    def _body(self, system: str, user: str, shown: Sequence[Shown], max_tokens: int) -> dict[str, Any]:
        c = self.config
        content: list[dict[str, Any]] = [{"type": "image_url", "image_url": {"url": url}}
                                         for s in shown for url in s.data_urls]
        content.append({"type": "text", "text": user})
        body: dict[str, Any] = {
            "model": c.model,
            # An empty system text (the vqascore template) sends no system message, as VQAScore does.
            "messages": ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": content}],
            "temperature": c.temperature, "max_tokens": max_tokens, "n": 1,
        }
        if c.seed is not None:
            body["seed"] = c.seed
        if self._logprobs:
            body["logprobs"] = True
            body["top_logprobs"] = c.top_logprobs
        return body

    def _send(self, system: str, user: str, shown: Sequence[Shown], *, deadline_at: float,
              max_tokens: int) -> Reply:
        import httpx

        c = self.config
        headers = {"Authorization": f"Bearer {self._key}"} if self._key else {}
        attempt = 0
        while True:
            attempt += 1
            remaining = deadline_at - self.clock()
            if remaining <= 0:
                raise JudgeError(f"judge: no answer within the call's deadline of {c.deadline:g} s "
                                 f"({attempt - 1} attempt(s)); raise `deadline` or check the server")
            self.limiter.wait()
            body = self._body(system, user, shown, max_tokens)
            try:
                try:
                    resp = self.client().post(self.url, json=body, headers=headers,
                                             timeout=min(c.timeout, max(remaining, 1e-3)))
                except httpx.TimeoutException as e:
                    raise _Retry(f"no answer within {min(c.timeout, remaining):.3g} s ({type(e).__name__})") from None
                except httpx.TransportError as e:
                    raise _Retry(f"{type(e).__name__}: {e}") from None
                if resp.status_code == 429 or resp.status_code >= 500:
                    raise _Retry(f"HTTP {resp.status_code}", _retry_after(resp.headers.get("retry-after")))
                if (resp.status_code == 400 and "logprobs" in body and c.logprobs == "auto"
                        and "logprob" in resp.text.lower()):
                    log.info("judge: %s refuses logprobs; asking without them (no P(yes) from here on)", self.url)
                    self._logprobs = False
                    attempt -= 1
                    continue
                if resp.status_code >= 400:
                    text = " ".join(resp.text.split())[:300]
                    raise JudgeError(self.scrub(f"judge: {self.url} answered HTTP {resp.status_code}: {text}"))
                return _reply(resp, attempt)
            except _Retry as e:
                if attempt > c.max_retries:
                    raise JudgeError(self.scrub(f"judge: {self.url}: giving up after {attempt} attempts "
                                                f"(last: {e.reason})")) from None
                delay = min(c.max_backoff, c.backoff * 2 ** (attempt - 1))
                if e.retry_after is not None:
                    delay = max(delay, e.retry_after)  # the server's word wins over our guess
                if self.clock() + delay >= deadline_at:
                    raise JudgeError(self.scrub(
                        f"judge: {self.url}: {e.reason}; the next retry (in {delay:g} s) would pass the call's "
                        f"deadline of {c.deadline:g} s")) from None
                log.info("judge: %s: %s; retry %d in %.2f s", self.url, self.scrub(e.reason), attempt, delay)
                self.sleep(delay)


def _reply(resp: Any, attempts: int) -> Reply:
    try:
        data = resp.json()
        choice = data["choices"][0]
        text = choice["message"]["content"]
    except (ValueError, KeyError, IndexError, TypeError):
        raise _Retry(f"malformed reply (not an OpenAI chat completion): {resp.text[:120]!r}") from None
    if isinstance(text, list):  # some servers return content parts
        text = "".join(p.get("text", "") for p in text if isinstance(p, dict))
    if not isinstance(text, str):
        raise _Retry("malformed reply: message.content is not text")
    usage = data.get("usage") or {}
    return Reply(
        text=text, choice={"logprobs": choice.get("logprobs"), "finish_reason": choice.get("finish_reason")},
        prompt_tokens=int(usage.get("prompt_tokens") or 0), completion_tokens=int(usage.get("completion_tokens") or 0),
        model=data.get("model"), fingerprint=data.get("system_fingerprint"), attempts=attempts,
    )


def _retry_after(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None  # an HTTP date: the exponential backoff applies instead
