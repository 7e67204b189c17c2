"""The judge: yes/no questions about a clip, and which of two clips is better, every call cached.

    judge = build_judge({"backend": "openai", "base_url": ..., "model": ...}, cache_dir=...)
    answers = judge.ask(frames, ["Is there a red car?", "Are there two dogs?"])   # uint8 [T, H, W, 3]
    verdict = judge.choose(frames_a, frames_b, "visual quality", prompt="...")   # asked both ways

A backend implements `_send(system, user, shown, deadline_at) -> Reply`; this class does the rest:
frame selection (frames.py), templates, the cache (cache.py), reading replies without guessing
(parse.py: an unreadable reply is asked once more with the stricter template, then recorded as
failed), concurrency, and the usage counts of the run. A judge knows no database and no generator.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch

from vdmbench.core.errors import VdmbenchError
from vdmbench.judges.cache import JudgeCache
from vdmbench.judges.config import JudgeConfig
from vdmbench.judges.frames import Shown, show
from vdmbench.judges.parse import parse_choice, parse_questions, parse_yes_no, probability_of
from vdmbench.judges.templates import Template, load_template

Frames = torch.Tensor | np.ndarray


class JudgeError(VdmbenchError):
    """A judge call failed for good (retries spent, deadline passed, a refused request)."""


@dataclass(frozen=True)
class Reply:
    """What a backend got back for one call (the cache stores exactly this)."""

    text: str
    choice: dict[str, Any] = field(default_factory=dict)  # OpenAI-format choice (logprobs live here)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    model: str | None = None  # as the server names it
    fingerprint: str | None = None  # system_fingerprint, where the server gives one
    attempts: int = 1


@dataclass(frozen=True)
class Answer:
    """One yes/no question about one clip."""

    question: str
    answer: bool | None  # None: failed (unreadable twice, or the call failed)
    p_yes: float | None  # P("Yes") of the first answer token, where the backend gives logprobs
    raw: str  # the reply as received (of the stricter retry, when there was one)
    status: str  # ok | unparseable | error
    strict_retry: bool = False
    error: str | None = None
    category: str = "other"

    def note(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None and not (k == "strict_retry" and not v)}


@dataclass(frozen=True)
class Choice:
    """One ordering of a pairwise question: which position the judge picked."""

    picked: str | None  # "a" (first shown) | "b" | None (failed)
    p_first: float | None  # P("A") of the first answer token, where logprobs exist
    raw: str
    status: str
    strict_retry: bool = False
    error: str | None = None


@dataclass(frozen=True)
class Verdict:
    """Two clips compared on a criterion, asked in both orders. `winner` is "a", "b", "tie" (the
    two orders disagree: the judge followed the position, not the clips) or None (a call failed)."""

    winner: str | None
    forward: Choice  # clip a shown first
    backward: Choice  # clip b shown first

    def note(self) -> dict[str, Any]:
        return {"winner": self.winner, "forward": asdict(self.forward), "backward": asdict(self.backward)}


@dataclass
class Usage:
    """What this judge cost, counted over its lifetime (one metric of one run)."""

    calls: int = 0  # sent to the server and answered
    cached: int = 0  # answered from the cache
    failed_calls: int = 0  # given up on (not cached: a rerun asks again)
    retries: int = 0
    unparseable: int = 0  # answers recorded as failed after the stricter retry
    interrupted: int = 0  # calls of a killed run whose reply was never stored
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}


@dataclass(frozen=True)
class _Query:
    """One question to ask: template and its fields, the frames shown, how to read the reply, and
    the text that identifies it in the cache key."""

    template: Template
    fields: dict[str, Any]
    shown: tuple[Shown, ...]
    parse: Callable[[str], Any]
    text: dict[str, Any]
    max_tokens: int | None = None


@dataclass(frozen=True)
class _Call:
    key: str
    system: str
    user: str
    shown: tuple[Shown, ...]
    max_tokens: int


def _key(parts: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


class Judge:
    """Base of the backends (see the module docstring)."""

    backend = "base"

    def __init__(self, config: JudgeConfig | dict[str, Any], cache_dir: str | Path | None = None, *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.config = JudgeConfig.parse(config)
        folder = self.config.cache_dir or cache_dir
        self.cache = JudgeCache(folder)
        self.clock = clock
        self.templates = {name: load_template(name) for name in ("yes_no", "vqascore", "pairwise", "decompose")}
        self.usage = Usage(interrupted=self.cache.interrupted)
        self._lock = threading.Lock()

    # -- what a backend provides --------------------------------------------------------------------
    def _send(self, system: str, user: str, shown: Sequence[Shown], *, deadline_at: float,
              max_tokens: int) -> Reply:
        raise NotImplementedError

    def revision(self) -> str | None:
        """The model's revision or sha where known (part of every key)."""
        return self.config.revision

    def identity(self) -> dict[str, Any]:
        """What identifies the model and its decoding in every cache key."""
        return {**self.config.identity(), "revision": self.revision()}

    def label(self, template: str = "pairwise") -> str:
        """The judge's identity as one string, backend/model/revision/template version (e.g.
        `openai/Qwen/Qwen2.5-VL-7B-Instruct@-/pairwise-v1`), as stored with its votes."""
        t = self.templates[template] if template in self.templates else load_template(template)
        return f"{self.config.backend}/{self.config.model}@{self.revision() or '-'}/{t.id}"

    def close(self) -> None:
        pass

    # -- the public interface ---------------------------------------------------------------------
    def show(self, frames: Frames) -> Shown:
        c = self.config
        return show(frames, count=c.frames, frame_size=c.frame_size, image_format=c.image_format,
                    jpeg_quality=c.jpeg_quality)

    def ask(self, frames: Frames, questions: Sequence[str], template: str = "yes_no") -> list[Answer]:
        """Each question about one clip, answered yes/no (with P(yes) where logprobs exist).
        `template`: a yes/no template (`yes_no`; `vqascore`, whose question is a whole prompt)."""
        return self.ask_batch([(frames, questions)], template)[0]

    def ask_batch(self, items: Sequence[tuple[Frames, Sequence[str]]], template: str = "yes_no",
                  ) -> list[list[Answer]]:
        """Several clips with their questions, all calls in flight up to `concurrency` at once
        (or in batches, for in-process backends)."""
        shown = [self.show(frames) for frames, _ in items]
        if template not in self.templates:
            self.templates[template] = load_template(template)
        t = self.templates[template]
        jobs = [(i, q) for i, (_, questions) in enumerate(items) for q in questions]
        results = self._query_many([
            _Query(t, {"question": q, "n_frames": len(shown[i].indices)}, (shown[i],), parse_yes_no, {"question": q})
            for i, q in jobs])
        out: list[list[Answer]] = [[] for _ in items]
        for (i, q), (value, reply, strict, error) in zip(jobs, results):
            if error is not None:
                a = Answer(q, None, None, "", "error", error=error)
            elif value is None:
                a = Answer(q, None, None, reply.text if reply else "", "unparseable", strict_retry=strict)
            else:
                assert reply is not None
                a = Answer(q, bool(value), probability_of(reply.choice, "yes"), reply.text, "ok", strict_retry=strict)
            out[i].append(a)
        return out

    def choose(self, frames_a: Frames, frames_b: Frames, criterion: str, prompt: str = "") -> Verdict:
        """Which clip is better on `criterion`, asked with a first and then with b first."""
        return self.choose_batch([(frames_a, frames_b, criterion, prompt)])[0]

    def choose_batch(self, items: Sequence[tuple[Frames, Frames, str, str]]) -> list[Verdict]:
        t = self.templates["pairwise"]
        queries = []
        for a, b, criterion, prompt in items:
            sa, sb = self.show(a), self.show(b)
            for first, second in ((sa, sb), (sb, sa)):
                fields = {"criterion": criterion, "prompt": prompt, "n_a": len(first.indices), "n_b": len(second.indices)}
                queries.append(_Query(t, fields, (first, second), parse_choice, {"criterion": criterion, "prompt": prompt}))
        choices = []
        for value, reply, strict, error in self._query_many(queries):
            if error is not None:
                choices.append(Choice(None, None, "", "error", error=error))
            elif value is None:
                choices.append(Choice(None, None, reply.text if reply else "", "unparseable", strict_retry=strict))
            else:
                assert reply is not None
                choices.append(Choice(str(value), probability_of(reply.choice, "a"), reply.text, "ok", strict_retry=strict))
        return [_verdict(choices[2 * i], choices[2 * i + 1]) for i in range(len(items))]

    def decompose(self, prompt: str) -> list[dict[str, str]]:
        """Atomic yes/no questions for a prompt (text only, no frames), asked through this judge."""
        t = self.templates["decompose"]
        [(value, reply, _strict, error)] = self._query_many(
            [_Query(t, {"prompt": prompt}, (), parse_questions, {"prompt": prompt}, max_tokens=1024)])
        if value is None:
            why = error or f"the reply could not be read as a JSON list of questions: {reply.text[:200] if reply else ''!r}"
            raise JudgeError(f"judge could not decompose the prompt {prompt[:80]!r} into questions ({why}); "
                             "give the questions in a questions file instead (docs/judge.md)")
        return list(value)

    def describe(self) -> dict[str, Any]:
        """How the answers were made, for the run's records (no key: only its variable's name)."""
        c = self.config
        return {"judge": c.public(), "templates": {t.id: t.digest for t in self.templates.values()},
                "frames_sent": f"{c.frames} per clip at round(linspace(0, T - 1, {c.frames})), longest side <= "
                               f"{c.frame_size} px (bilinear, antialiased), {c.image_format}",
                "usage": self.usage.as_dict()}

    # -- internals ----------------------------------------------------------------------------------
    def parallel(self, fn: Callable[[Any], Any], jobs: Sequence[Any]) -> list[Any]:
        """`[fn(job) for job in jobs]`, up to `concurrency` at once, in order."""
        if len(jobs) <= 1 or self.config.concurrency == 1:
            return [fn(j) for j in jobs]
        with ThreadPoolExecutor(max_workers=min(self.config.concurrency, len(jobs))) as pool:
            return list(pool.map(fn, jobs))

    def call_key(self, template: Template, strict: bool, text: dict[str, Any], shown: Sequence[Shown],
                 max_tokens: int | None = None) -> str:
        """The cache key of one call: everything that decides its answer, nothing operational."""
        identity = self.identity()
        if max_tokens is not None:
            identity["max_tokens"] = max_tokens
        return _key({"identity": identity, "template": template.id, "template_digest": template.digest,
                     "strict": strict, "text": text, "frames": [s.sha256 for s in shown]})

    def _query_many(self, queries: Sequence[_Query]) -> list[tuple[Any, Reply | None, bool, str | None]]:
        """Per query: (parsed value or None, the last reply, whether the strict retry was used,
        error or None). All first attempts go out together, then the strict retries of the replies
        that could not be read."""
        results: list[tuple[Any, Reply | None, bool, str | None]] = [(None, None, False, None)] * len(queries)
        todo = list(range(len(queries)))
        for strict in (False, True):
            calls = []
            for i in todo:
                q = queries[i]
                system, user = q.template.render(strict=strict, **q.fields)
                key = self.call_key(q.template, strict, q.text, q.shown, q.max_tokens)
                calls.append(_Call(key, system, user, q.shown, q.max_tokens or self.config.max_tokens))
            replies = self._cached_calls(calls)
            retry = []
            for i, reply in zip(todo, replies):
                if isinstance(reply, JudgeError):
                    results[i] = (None, None, strict, str(reply))
                    continue
                value = queries[i].parse(reply.text)
                if value is not None:
                    results[i] = (value, reply, strict, None)
                elif strict:
                    results[i] = (None, reply, True, None)
                    with self._lock:
                        self.usage.unparseable += 1
                else:
                    retry.append(i)
            todo = retry
            if not todo:
                break
        return results

    def _cached_calls(self, calls: Sequence[_Call]) -> list[Reply | JudgeError]:
        """The reply of each call, from the cache or from the backend; each reply is stored the
        moment it arrives (see cache.py); identical calls are sent once."""
        out: list[Reply | JudgeError | None] = [None] * len(calls)
        first_of: dict[str, int] = {}
        for j, c in enumerate(calls):
            entry = self.cache.get(c.key)
            if entry is not None and "text" in entry:
                with self._lock:
                    self.usage.cached += 1
                out[j] = Reply(**{k: entry[k] for k in Reply.__dataclass_fields__ if k in entry})
            else:
                first_of.setdefault(c.key, j)
        misses = [calls[j] for j in sorted(first_of.values())]
        for c in misses:
            self.cache.mark_pending(c.key, {"model": self.config.model, "frames": [s.sha256 for s in c.shown]})
        got: dict[str, Reply | JudgeError] = {}

        def arrived(call: _Call, reply: Reply | JudgeError) -> None:
            if isinstance(reply, Reply):
                self.cache.put(call.key, {**asdict(reply), "template_user": call.user,
                                          "frames": [s.sha256 for s in call.shown],
                                          "frame_indices": [list(s.indices) for s in call.shown]})
                self._count(reply)
            else:
                self.cache.clear_pending(call.key)
                with self._lock:
                    self.usage.failed_calls += 1
            got[call.key] = reply

        if misses:
            self._send_many(misses, arrived)
        return [o if o is not None else got[c.key] for o, c in zip(out, calls)]

    def _send_many(self, calls: Sequence[_Call], arrived: Callable[[_Call, Reply | JudgeError], None]) -> None:
        """Send calls, up to `concurrency` at once, handing each reply (or its JudgeError) to
        `arrived` as soon as it comes. In-process backends override this to batch."""
        def one(call: _Call) -> None:
            try:
                reply: Reply | JudgeError = self._send(call.system, call.user, call.shown,
                                                       deadline_at=self.clock() + self.config.deadline,
                                                       max_tokens=call.max_tokens)
            except JudgeError as e:
                reply = e
            arrived(call, reply)

        self.parallel(one, calls)

    def _count(self, reply: Reply) -> None:
        c = self.config
        with self._lock:
            u = self.usage
            u.calls += 1
            u.retries += reply.attempts - 1
            u.prompt_tokens += reply.prompt_tokens
            u.completion_tokens += reply.completion_tokens
            if c.cost_per_1k_input is not None or c.cost_per_1k_output is not None:
                u.cost = (u.cost or 0.0) + (reply.prompt_tokens * (c.cost_per_1k_input or 0.0)
                                            + reply.completion_tokens * (c.cost_per_1k_output or 0.0)) / 1000.0


def _verdict(forward: Choice, backward: Choice) -> Verdict:
    if forward.picked is None or backward.picked is None:
        return Verdict(None, forward, backward)
    # In the backward call clip b was shown first, so its "a" means clip b.
    first = forward.picked
    second = "b" if backward.picked == "a" else "a"
    return Verdict(first if first == second else "tie", forward, backward)
