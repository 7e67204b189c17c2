"""A fake OpenAI-compatible chat server on 127.0.0.1 for the judge tests, and the tests of the
server itself. Each request is recorded (JSON body and headers); a `respond(body, n)` function
decides the answer: a reply text (with logprobs), an HTTP status with headers, a delay, or raw bytes."""

from __future__ import annotations

import base64
import io
import json
import math
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable

import numpy as np


@dataclass
class Out:
    text: str | None = None  # a chat completion with this content
    logprobs: dict[str, float] | None = None  # first token's top_logprobs {token: logprob}
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    raw: bytes | None = None  # sent as it is (malformed JSON)
    delay: float = 0.0


def completion(text: str, logprobs: dict[str, float] | None, model: str) -> dict[str, Any]:
    choice: dict[str, Any] = {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
    if logprobs is not None:
        first = max(logprobs, key=lambda k: logprobs[k])
        choice["logprobs"] = {"content": [{"token": first, "logprob": logprobs[first],
                                           "top_logprobs": [{"token": t, "logprob": lp} for t, lp in logprobs.items()]}]}
    return {"id": "x", "object": "chat.completion", "model": model, "choices": [choice],
            "system_fingerprint": "fp-test", "usage": {"prompt_tokens": 100, "completion_tokens": 1, "total_tokens": 101}}


def user_text(body: dict[str, Any]) -> str:
    return next(p["text"] for p in body["messages"][-1]["content"] if p["type"] == "text")


def images(body: dict[str, Any]) -> list[np.ndarray]:
    """The frames a request carries, decoded."""
    from PIL import Image

    out = []
    for p in body["messages"][-1]["content"]:
        if p["type"] == "image_url":
            header, data = p["image_url"]["url"].split(",", 1)
            assert header in ("data:image/png;base64", "data:image/jpeg;base64")
            out.append(np.asarray(Image.open(io.BytesIO(base64.b64decode(data))).convert("RGB")))
    return out


def question(body: dict[str, Any]) -> str:
    return user_text(body).split("Question: ", 1)[1].split("\n", 1)[0]


class FakeServer:
    def __init__(self, respond: Callable[[dict[str, Any], int], Out], model: str = "fake-vlm") -> None:
        self.respond, self.model = respond, model
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", 0))
                body = json.loads(self.rfile.read(length))
                with server._lock:
                    server.requests.append(body)
                    server.headers.append(dict(self.headers))
                    n = len(server.requests)
                out = server.respond(body, n)
                if out.delay:
                    time.sleep(out.delay)
                if out.raw is not None:
                    payload = out.raw
                elif out.status == 200:
                    payload = json.dumps(completion(out.text or "", out.logprobs, server.model)).encode()
                else:
                    payload = json.dumps({"error": {"message": out.text or "error"}}).encode()
                try:
                    self.send_response(out.status)
                    for k, v in out.headers.items():
                        self.send_header(k, v)
                    self.send_header("content-type", "application/json")
                    self.send_header("content-length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up (deadline tests)
                    pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def __enter__(self) -> FakeServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def yes(p: float = 0.9) -> Out:
    return Out("Yes", {"Yes": math.log(p), "No": math.log(1 - p)})


def no(p_yes: float = 0.2) -> Out:
    return Out("No", {"No": math.log(1 - p_yes), "Yes": math.log(p_yes)})


def test_the_fake_server_answers_like_a_chat_endpoint():
    import httpx

    with FakeServer(lambda body, n: yes(0.75)) as srv:
        r = httpx.post(srv.base_url + "/chat/completions", json={"model": "m", "messages": []})
    choice = r.json()["choices"][0]
    assert choice["message"]["content"] == "Yes"
    tops = {t["token"]: t["logprob"] for t in choice["logprobs"]["content"][0]["top_logprobs"]}
    assert math.isclose(math.exp(tops["Yes"]), 0.75) and len(srv.requests) == 1
