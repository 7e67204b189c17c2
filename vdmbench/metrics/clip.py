"""CLIP similarity and CLIP temporal consistency (open_clip).

clip_similarity: per frame 100 x cosine(image embedding, prompt embedding), averaged over the
frames, clamped at 0 — torchmetrics' CLIPScore per frame. clip_temporal_consistency: mean cosine
between consecutive frames' image embeddings (1 for a static clip).

Model and pretrained tag come from options (default ViT-B-32 / "openai", the CLIPScore paper's
model); images go through open_clip's own preprocessing for that model (bicubic resize of the
short side, center crop, normalization). `pretrained: random` (or None) builds the same
architecture with seeded random weights for offline use; such results are labelled as not
comparable. Weights: explicit `weights` path (or context.weights_path["clip"]) > $VDMBENCH_WEIGHTS
> ~/.cache/vdmbench > open_clip's cache > open_clip's own download, tried only when the host
answers (offline, the clear error comes in seconds); open_clip's tokenizer is bundled and works
offline.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from vdmbench.core.errors import ConfigError, WeightsError
from vdmbench.core.paths import user_cache_dir
from vdmbench.metrics.base import ClipBatch, MetricContext, Output, PerSampleMetric
from vdmbench.metrics.random_weights import RandomWeightsMark

DEFAULT_MODEL = "ViT-B-32"
DEFAULT_PRETRAINED = "openai"
RANDOM = ("random", "none", None)


@dataclass
class ClipEncoder:
    """open_clip model + its image transform + tokenizer; embeddings are L2-normalized float64."""

    model: Any
    transform: Any
    tokenizer: Any
    device: str
    batch_size: int
    precision: str

    def _autocast(self):
        dtype = {"fp16": torch.float16, "bf16": torch.bfloat16}.get(self.precision)
        return torch.autocast(torch.device(self.device).type, dtype=dtype, enabled=dtype is not None)

    @torch.no_grad()
    def images(self, frames: torch.Tensor) -> torch.Tensor:
        """uint8 [N, H, W, 3] -> [N, D]."""
        from PIL import Image

        out = []
        for chunk in frames.split(max(1, self.batch_size * 4)):
            pix = torch.stack([self.transform(Image.fromarray(f.numpy())) for f in chunk.cpu()])
            with self._autocast():
                out.append(self.model.encode_image(pix.to(self.device)).float().cpu())
        return F.normalize(torch.cat(out).to(torch.float64), dim=-1)

    @torch.no_grad()
    def texts(self, texts: list[str]) -> torch.Tensor:
        tokens = self.tokenizer(texts).to(self.device)
        with self._autocast():
            emb = self.model.encode_text(tokens).float().cpu()
        return F.normalize(emb.to(torch.float64), dim=-1)


def _weights_file(model: str, pretrained: str) -> str:
    return f"open_clip_{model}_{pretrained}.safetensors".replace("/", "_")


def build_clip_encoder(model: str, pretrained: str | None, *, weights: str | None, context: MetricContext
                       ) -> tuple[ClipEncoder, dict[str, Any]]:
    import open_clip

    if model not in open_clip.list_models():
        raise ConfigError(f"clip: unknown open_clip model {model!r} (see open_clip.list_models())")
    random_weights = pretrained in RANDOM or (isinstance(pretrained, str) and pretrained.lower() in ("random", "none"))
    info: dict[str, Any] = {"model": model, "pretrained": "random" if random_weights else pretrained}
    cfg = {} if random_weights else (open_clip.get_pretrained_cfg(model, pretrained) or {})
    if not random_weights and not cfg and not weights:
        raise ConfigError(f"clip: open_clip has no pretrained tag {pretrained!r} for {model}; "
                          f"known: {', '.join(open_clip.list_pretrained_tags_by_model(model))}")
    quick_gelu = bool(cfg.get("quick_gelu", False))
    with torch.random.fork_rng(devices=[]):  # seeded init without touching the caller's RNG
        torch.manual_seed(context.seed)
        net = open_clip.create_model(model, pretrained=None, force_quick_gelu=quick_gelu)
    if random_weights:
        info["weights"] = f"random (seed {context.seed})"
    else:
        path = _local_weights(model, str(pretrained), weights)
        if path is not None:
            from vdmbench.features.weights import load_state_dict, sha256_file

            state = load_state_dict(path)
            try:
                net.load_state_dict(state, strict=True)
            except RuntimeError as e:
                raise WeightsError(f"{path}: not open_clip {model} weights ({str(e).splitlines()[0]})") from e
            info.update(weights=str(path), weights_sha256=sha256_file(path))
        else:
            net = _open_clip_download(model, str(pretrained), cfg, quick_gelu)
            info["weights"] = f"open_clip download ({cfg.get('hf_hub') or cfg.get('url')})"
    net = net.eval().to(context.device)
    transform = open_clip.image_transform(net.visual.image_size, is_train=False,
                                          mean=cfg.get("mean"), std=cfg.get("std"),
                                          interpolation=cfg.get("interpolation"), resize_mode=cfg.get("resize_mode"))
    tokenizer = open_clip.get_tokenizer(model)
    return ClipEncoder(net, transform, tokenizer, context.device, context.batch_size, context.precision), info


def _open_clip_cache() -> str:
    return str(user_cache_dir() / "open_clip")


def _open_clip_download(model: str, pretrained: str, cfg: dict[str, Any], quick_gelu: bool) -> Any:
    """The model with open_clip's published weights: from open_clip's cache without any network
    call, else downloaded, but only after a quick check that the host answers; offline,
    huggingface_hub would retry with back-off for about a minute before failing."""
    import open_clip

    from vdmbench.features.weights import unreachable

    cache = _open_clip_cache()
    source = _download_source(cfg)
    cached = _cached_download(source, cache)
    if cached is not None:
        pretrained_arg, problem = cached, None
    elif _truthy(os.environ.get("HF_HUB_OFFLINE")) and source.hub:
        pretrained_arg, problem = pretrained, "HF_HUB_OFFLINE is set"
    else:
        pretrained_arg, problem = pretrained, unreachable(source.urls[0]) if source.urls else None
        problem = f"no network: {problem}" if problem else None
    if problem is None:
        try:
            return open_clip.create_model(model, pretrained=pretrained_arg, cache_dir=cache,
                                          force_quick_gelu=quick_gelu)
        except Exception as e:
            problem = f"{type(e).__name__}: {e}"
    raise WeightsError(
        f"clip: could not get {model}/{pretrained} weights ({problem}). Download "
        f"{source.urls[0] if source.urls else 'the weights'} and pass the file as weights:, or save it as "
        f"{_weights_file(model, pretrained)} in the folder named by $VDMBENCH_WEIGHTS or in "
        f"{os.path.dirname(cache)}; or use pretrained: random (not comparable)."
    )


@dataclass(frozen=True)
class _Source:
    """Where open_clip downloads a tag's weights from: a Hugging Face repo (files in the order
    open_clip tries them, safetensors first) or a plain URL."""

    hub: str | None
    files: tuple[str, ...]
    urls: tuple[str, ...]


def _download_source(cfg: dict[str, Any]) -> _Source:
    import importlib.util

    hub = (cfg.get("hf_hub") or "") if importlib.util.find_spec("huggingface_hub") else ""
    if hub:  # open_clip prefers the hub where huggingface_hub is installed
        repo, name = os.path.split(hub)
        name = name or "open_clip_pytorch_model.bin"
        files = (("open_clip_model.safetensors",) if name == "open_clip_pytorch_model.bin" else
                 (name[:-4] + ".safetensors",) if name.endswith((".bin", ".pth")) else ()) + (name,)
        endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co").rstrip("/")
        return _Source(repo, files, tuple(f"{endpoint}/{repo}/resolve/main/{f}" for f in files))
    url = cfg.get("url") or ""
    return _Source(None, (os.path.basename(url),) if url else (), (url,) if url else ())


def _cached_download(source: _Source, cache: str) -> str | None:
    """The file of an earlier open_clip download of these weights, if there is one."""
    if source.hub:
        from huggingface_hub import try_to_load_from_cache

        for name in source.files:
            hit = try_to_load_from_cache(source.hub, name, cache_dir=cache)
            if isinstance(hit, str) and os.path.isfile(hit):
                return hit
        return None
    path = os.path.join(cache, source.files[0]) if source.files else ""
    return path if path and os.path.isfile(path) else None


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


def _local_weights(model: str, pretrained: str, explicit: str | None):
    from pathlib import Path

    if explicit:
        p = Path(explicit).expanduser()
        if not p.is_file():
            raise WeightsError(f"clip: weights file {p} does not exist (given explicitly)")
        return p
    name = _weights_file(model, pretrained)
    for folder in (os.environ.get("VDMBENCH_WEIGHTS"), str(user_cache_dir())):
        if folder and (Path(folder) / name).is_file():
            return Path(folder) / name
    return None


class _ClipMetric(RandomWeightsMark, PerSampleMetric):
    network = "CLIP"

    def __init__(self, context: MetricContext | None = None, *, model: str = DEFAULT_MODEL,
                 pretrained: str | None = DEFAULT_PRETRAINED, weights: str | None = None, **kwargs: Any) -> None:
        super().__init__(context, **kwargs)
        ctx = self.context
        weights = weights or ctx.weights_path.get("clip")
        # clip_similarity and clip_temporal of one run share the model and the frame embeddings.
        key = ("clip", model, pretrained, weights, ctx.seed, ctx.device, ctx.batch_size, ctx.precision)
        self.encoder, info = ctx.shared.model(
            key, lambda: build_clip_encoder(model, pretrained, weights=weights, context=ctx))
        self.info = dict(info)
        self._kind = "clip-frames|" + "|".join(map(str, key[1:]))
        self._reader = ctx.shared.register(self._kind)

    def frame_embeddings(self, videos: torch.Tensor) -> torch.Tensor:
        """uint8 [B, T, H, W, 3] -> unit-norm float64 [B, T, D], computed once per clip and run."""
        def compute(idx: list[int]) -> list[torch.Tensor]:
            sub = videos[idx] if len(idx) < len(videos) else videos
            b, t = sub.shape[:2]
            return list(self.encoder.images(sub.reshape(b * t, *sub.shape[2:])).reshape(b, t, -1))

        return torch.stack(self.context.shared.per_clip(self._kind, self._reader, videos, compute))


class ClipSimilarity(_ClipMetric):
    name = "clip_similarity"
    outputs = (Output("clip_similarity", higher_is_better=True, range=(0.0, 100.0),
                      description="100 x cosine(frame, prompt) of CLIP embeddings, mean over frames, clamped at 0"),)
    inputs = frozenset({"prompts"})

    def sample_values(self, batch: ClipBatch) -> dict[str, torch.Tensor]:
        videos = self.check_batch(batch)
        img = self.frame_embeddings(videos)  # [B, T, D]
        txt = self.encoder.texts(list(batch.prompts))  # [B, D]
        per_frame = 100.0 * torch.einsum("btd,bd->bt", img, txt)
        return {"clip_similarity": per_frame.mean(dim=1).clamp(min=0.0)}


class ClipTemporalConsistency(_ClipMetric):
    name = "clip_temporal"
    outputs = (Output("clip_temporal_consistency", higher_is_better=True, range=(-1.0, 1.0),
                      description="mean cosine of consecutive frames' CLIP image embeddings"),)
    min_frames = 2  # needs at least one pair of frames

    def sample_values(self, batch: ClipBatch) -> dict[str, torch.Tensor]:
        videos = self.check_batch(batch)
        img = self.frame_embeddings(videos)
        cos = (img[:, 1:] * img[:, :-1]).sum(-1)  # embeddings are unit vectors
        return {"clip_temporal_consistency": cos.mean(dim=1)}


METRICS = [ClipSimilarity, ClipTemporalConsistency]
