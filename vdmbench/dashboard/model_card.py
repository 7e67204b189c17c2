"""A model card: what made a leaderboard row (adapter, its config with secrets redacted, the
generation settings) and where it ran (runs.env), as plain data the page lays out."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from vdmbench.core.provenance import redact_config
from vdmbench.store import Store

# The suite settings that change what a generator is asked for, in the order a reader wants them.
GENERATION_KEYS = ("num_frames", "height", "width", "fps", "steps", "guidance", "strength")
# runs.env keys worth a line on the card; the package list goes in its own table.
ENV_KEYS = ("python", "platform", "machine", "cpu_count", "torch_threads", "device", "gpu", "cuda",
            "command_overrides")


@dataclass(frozen=True)
class ModelCard:
    run_id: str
    model: str
    adapter: str
    config: dict[str, Any]  # the model config with every secret-named value redacted
    generation: dict[str, Any]  # frames, size, fps, steps, guidance of the run's effective suite
    environment: dict[str, Any]
    packages: dict[str, str] = field(default_factory=dict)
    git_sha: str | None = None


def model_card(store: Store, run_id: str) -> ModelCard:
    """The card of one run. Configs are redacted again here: files from older versions (or
    imported runs) may hold a key the runner of the time did not redact."""
    run = store.get_run(run_id)
    config = redact_config(dict(run.model_config or {}))
    suite = run.suite_config or {}
    env = redact_config(dict(run.env or {}))
    generation = {k: suite.get(k) for k in GENERATION_KEYS if k in suite}
    environment = {k: env[k] for k in ENV_KEYS if k in env and env[k] not in (None, [], "")}
    packages = env.get("packages") if isinstance(env.get("packages"), dict) else {}
    return ModelCard(run_id=run.run_id, model=run.model, adapter=str(config.get("adapter", "?")), config=config,
                     generation=generation, environment=environment,
                     packages={str(k): str(v) for k, v in packages.items()}, git_sha=run.git_sha)


def size_text(generation: dict[str, Any]) -> str:
    """`16 frames · 32x32 · 8 fps · steps 25 · guidance 7.5` (what is not set is left out)."""
    parts = []
    if generation.get("num_frames") is not None:
        parts.append(f"{generation['num_frames']} frames")
    if generation.get("height") is not None and generation.get("width") is not None:
        parts.append(f"{generation['width']}x{generation['height']}")
    if generation.get("fps") is not None:
        parts.append(f"{generation['fps']:g} fps")
    for k in ("steps", "guidance", "strength"):
        parts.append(f"{k} {generation[k]:g}" if generation.get(k) is not None else f"{k} default")
    return " · ".join(parts)
