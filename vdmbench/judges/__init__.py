"""VLM judges: yes/no questions about a clip and pairwise verdicts, every call cached.

The layer sits between features and metrics: a metric uses a judge; a judge knows no database,
no generator and no run. Backends: `openai` (any OpenAI-compatible chat endpoint), `transformers` (a local
VLM in this process). See docs/judge.md.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from vdmbench.judges.base import Answer, Choice, Judge, JudgeError, Reply, Usage, Verdict
from vdmbench.judges.config import BACKENDS, JudgeConfig

__all__ = ["Answer", "Choice", "Judge", "JudgeConfig", "JudgeError", "Reply", "Usage", "Verdict", "build_judge"]


def build_judge(config: JudgeConfig | dict[str, Any], cache_dir: str | Path | None = None, **backend_options: Any,
                ) -> Judge:
    """The judge a `judge:` mapping describes; `cache_dir` is used unless the mapping names one."""
    cfg = JudgeConfig.parse(config)
    if cfg.backend == "openai":
        from vdmbench.judges.openai import OpenAIJudge

        return OpenAIJudge(cfg, cache_dir, **backend_options)
    if cfg.backend == "transformers":
        from vdmbench.judges.local import TransformersJudge

        return TransformersJudge(cfg, cache_dir, **backend_options)
    raise AssertionError(f"backend {cfg.backend!r} passed validation but is not one of {BACKENDS}")
