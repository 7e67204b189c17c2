"""What the judge layer itself costs, apart from the model: preparing a clip's frames, asking a
local fake OpenAI-compatible server with a fixed latency at several concurrency limits, and a
rerun answered entirely from the cache.

    python benchmarks/bench_judge.py [--clips 8] [--questions 6] [--latency 0.05] [--threads 1]

The fake server is the tests' (tests/test_judge_fakeserver.py); it answers "Yes" after `latency`
seconds, so calls/s measure the harness and its concurrency, not a VLM.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.test_judge_fakeserver import FakeServer, Out
from vdmbench.judges import build_judge
from vdmbench.judges.frames import show


def clip(seed: int, t: int = 16, h: int = 320, w: int = 512) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    base = torch.randint(0, 256, (1, h // 8, w // 8, 3), generator=g, dtype=torch.uint8)
    frames = base.repeat_interleave(8, 1).repeat_interleave(8, 2).repeat(t, 1, 1, 1)  # blocky, like video
    return frames.roll(shifts=seed, dims=2)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--clips", type=int, default=8)
    ap.add_argument("--questions", type=int, default=6)
    ap.add_argument("--latency", type=float, default=0.05)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    clips = [clip(i) for i in range(args.clips)]
    questions = [f"Is there object {k}?" for k in range(args.questions)]

    start = time.perf_counter()
    for c in clips:
        show(c, count=8, frame_size=448)
    per = (time.perf_counter() - start) / len(clips)
    print(f"frames: 16x320x512 clip -> 8 frames resized to 448 px and hashed (a cache lookup): {per * 1000:.1f} ms per clip")
    for fmt in ("png", "jpeg"):
        start = time.perf_counter()
        for c in clips:
            _ = show(c, count=8, frame_size=448, image_format=fmt).data_urls
        per = (time.perf_counter() - start) / len(clips)
        print(f"frames: the same, encoded as {fmt} data URLs (a call): {per * 1000:.1f} ms per clip")

    with FakeServer(lambda body, n: Out("Yes", delay=args.latency)) as srv:
        for concurrency in (1, 4, 8):
            with tempfile.TemporaryDirectory() as cache:
                judge = build_judge({"base_url": srv.base_url, "model": "fake", "concurrency": concurrency,
                                     "logprobs": "off"}, cache_dir=cache)
                items = [(c, questions) for c in clips]
                start = time.perf_counter()
                judge.ask_batch(items)
                cold = time.perf_counter() - start
                n = judge.usage.calls
                again = build_judge({"base_url": srv.base_url, "model": "fake", "concurrency": concurrency,
                                     "logprobs": "off"}, cache_dir=cache)
                start = time.perf_counter()
                again.ask_batch(items)
                warm = time.perf_counter() - start
                assert again.usage.calls == 0
                print(f"concurrency {concurrency}: {n} calls at {args.latency * 1000:.0f} ms latency in {cold:.2f} s "
                      f"({n / cold:.1f} calls/s; latency bound {concurrency / args.latency:.0f}/s); "
                      f"rerun from the cache {warm:.2f} s ({n / warm:.0f} answers/s, 0 calls)")


if __name__ == "__main__":
    main()
