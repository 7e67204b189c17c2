"""The bundled reference models (vdmbench/reference) as an adapter.

    # adapters/reference-unet3d.yaml
    name: reference-unet3d
    adapter: reference
    params: {weights: unet3d.safetensors, steps: 25, guidance: 3.0}

`weights` is a file name under vdmbench/reference/weights/, or a path; safetensors only. With
`weights: null` the architecture is built with seeded random weights (arch/net_config/seed
params) and the adapter says so in `info["label"]`: useful as the "untrained" floor of a table.

A cascade (`arch: cascade`) chains a low-resolution base model and a spatial super-resolution
stage (`base_weights`, `sr_weights`), both VideoDiffusion checkpoints, behind one adapter.

Determinism: each request seeds its own CPU torch.Generator from its seed, draws all its noise
from it on the CPU (then moves it to `device`), and DDIM runs with eta = 0, so the same request
and seed give a bit-identical clip on the same machine regardless of what ran before. Requests
run one at a time (batching could change floating-point summation order).
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from vdmbench.adapters.base import TASKS, AdapterContext, BaseAdapter, Capabilities, GenerationRequest
from vdmbench.core.errors import AdapterError, ConfigError, WeightsError
from vdmbench.core.paths import weights_dir
from vdmbench.core.video import Video
from vdmbench.reference.diffusion import (
    VideoDiffusion,
    load_weights,
    sample,
    to_model,
    to_pixels,
)

DEFAULT_NET: dict[str, dict[str, Any]] = {
    "unet3d": {},  # the defaults of UNet3DConfig
    "temporal_attention": {},
}


def resolve_weights(weights: str | Path) -> Path:
    """A path as given if it exists, else a file name under the bundled weights folder."""
    p = Path(weights).expanduser()
    if p.is_file():
        return p
    bundled = weights_dir() / p.name
    if bundled.is_file():
        return bundled
    have = sorted(x.name for x in weights_dir().glob("*.safetensors"))
    raise WeightsError(
        f"reference weights {str(weights)!r} not found (as a path or under {weights_dir()}); "
        f"bundled: {', '.join(have) or 'none'}"
    )


def random_model(arch: str, seed: int = 0, net_config: dict[str, Any] | None = None,
                 resolution: tuple[int, int, int] = (8, 32, 32), lowres: bool = False) -> VideoDiffusion:
    """An untrained model with seeded weights. The zero-initialized output layers of the
    denoiser are re-drawn too, otherwise an untrained model would predict exactly zero."""
    from vdmbench.data.shapes import vocabulary

    g = torch.Generator().manual_seed(seed)
    model = VideoDiffusion(arch, net_config or DEFAULT_NET[arch], vocabulary(), lowres=lowres, resolution=resolution)
    with torch.no_grad():
        for p in model.parameters():
            if p.ndim >= 2 and float(p.abs().max()) == 0.0:
                p.copy_(torch.randn(p.shape, generator=g) * 0.02)
    return model.eval()


class ReferenceAdapter(BaseAdapter):
    def __init__(
        self,
        name: str,
        arch: str = "unet3d",
        weights: str | None = None,
        steps: int = 25,
        guidance: float = 3.0,
        num_frames: int | None = None,
        height: int | None = None,
        width: int | None = None,
        fps: float = 8.0,
        strength: float = 0.6,
        device: str = "cpu",
        seed: int = 0,
        net_config: dict[str, Any] | None = None,
        base_weights: str | None = None,
        sr_weights: str | None = None,
        sr_factor: int = 2,
        tasks: list[str] | None = None,
        *,
        context: AdapterContext | None = None,
    ) -> None:
        super().__init__(name, context=context)
        self.steps, self.guidance, self.strength, self.fps = int(steps), float(guidance), float(strength), fps
        self.device = torch.device(device)
        self.unknown_words: dict[str, int] = {}  # words of prompts outside the vocabulary, counted
        self.sr_factor = int(sr_factor)
        self.base: VideoDiffusion | None = None
        if arch == "cascade":
            if not (base_weights and sr_weights):
                raise ConfigError(f"model {name!r}: a cascade needs base_weights and sr_weights")
            self.base, _ = load_weights(resolve_weights(base_weights), self.device)
            self.sr, _ = load_weights(resolve_weights(sr_weights), self.device)
            if not self.sr.lowres:
                raise ConfigError(f"model {name!r}: sr_weights {sr_weights!r} is not a super-resolution stage")
            self.model = self.sr
            label = f"cascade: {Path(base_weights).name} -> x{self.sr_factor} {Path(sr_weights).name}"
            self.files = [str(resolve_weights(base_weights)), str(resolve_weights(sr_weights))]
        else:
            if weights:
                path = resolve_weights(weights)
                self.model, meta = load_weights(path, self.device)
                label = f"{self.model.arch} from {path.name} ({meta.get('train', '{}')})"
                self.files = [str(path)]
            else:
                if arch not in DEFAULT_NET:
                    raise ConfigError(f"model {name!r}: unknown arch {arch!r}; known: {', '.join([*DEFAULT_NET, 'cascade'])}")
                self.model = random_model(arch, seed, net_config).to(self.device)
                label = f"{arch} with RANDOM weights (seed {seed}): untrained, a floor only"
                self.files = []
        t, h, w = self.model.resolution
        self.num_frames, self.height, self.width = num_frames or t, height or h, width or w
        self.info = {"label": label, "resolution": [self.num_frames, self.height, self.width],
                     "params": sum(p.numel() for p in self.model.parameters()) +
                               (sum(p.numel() for p in self.base.parameters()) if self.base else 0)}
        self.capabilities = Capabilities(
            tasks=tuple(tasks or TASKS), max_frames=self._net_cfg.max_frames, batch_size=1, deterministic=True
        )

    @property
    def _net_cfg(self) -> Any:
        return self.model.net.cfg

    def check(self, request: GenerationRequest) -> None:
        super().check(request)
        net = self._net_cfg
        mult = net.patch * 2 ** (len(net.channels) - 1) * (self.sr_factor if self.base is not None else 1)
        if request.height % mult or request.width % mult:
            raise AdapterError(f"height and width must be multiples of {mult}, got {request.height}x{request.width}")

    def generate_one(self, r: GenerationRequest) -> Video:
        steps = int(r.steps or self.steps)
        guidance = float(self.guidance if r.guidance is None else r.guidance)
        g = torch.Generator(device="cpu").manual_seed(int(r.seed))
        shape = (1, 3, r.num_frames, r.height, r.width)
        known, mask, init, strength = self._conditioning(r, shape)
        if self.base is None:
            noise = torch.randn(shape, generator=g).to(self.device)
            x, unknown = sample(self.model, [r.prompt], noise, steps=steps, guidance=guidance, known=known,
                                known_mask=mask, init=init, strength=strength)
        else:
            f = self.sr_factor
            low_shape = (1, 3, r.num_frames, r.height // f, r.width // f)
            noise_low = torch.randn(low_shape, generator=g).to(self.device)
            noise = torch.randn(shape, generator=g).to(self.device)

            def down(v: torch.Tensor | None) -> torch.Tensor | None:
                return None if v is None else F.avg_pool3d(v, (1, f, f))

            low, unknown = sample(self.base, [r.prompt], noise_low, steps=steps, guidance=guidance,
                                  known=down(known), known_mask=mask, init=down(init), strength=strength)
            x, _ = sample(self.sr, [r.prompt], noise, steps=steps, guidance=guidance, known=known,
                          known_mask=mask, lowres=low)
        for w in unknown[0]:
            self.unknown_words[w] = self.unknown_words.get(w, 0) + 1
        if unknown[0]:
            warnings.warn(f"{self.name}: words outside the model's vocabulary were read as <unk>: "
                          f"{', '.join(unknown[0])} (prompt {r.prompt!r})", stacklevel=2)
        # Stored with the sample (samples.notes), so which prompts the model could not read is data.
        notes = {"unknown_words": list(unknown[0])} if unknown[0] else {}
        return Video(to_pixels(x.cpu())[0], float(r.fps or self.fps), notes)

    def _conditioning(self, r: GenerationRequest, shape: tuple[int, ...]) -> tuple[Any, Any, Any, Any]:
        """known frames [1,3,T,H,W] + mask [1,T] for i2v/prediction/interpolation; init for editing."""
        if r.task == "t2v":
            return None, None, None, None
        if r.cond_frames is None:
            raise AdapterError(f"task {r.task!r} needs cond_frames")
        cond = r.cond_frames
        if cond.dtype != torch.uint8 or cond.ndim != 4 or tuple(cond.shape[1:]) != (r.height, r.width, 3):
            raise AdapterError(f"cond_frames must be uint8 [K, {r.height}, {r.width}, 3], got "
                               f"{cond.dtype} {list(cond.shape)}")
        if r.task == "editing":
            if cond.shape[0] != r.num_frames:
                raise AdapterError(f"editing needs the whole source clip ({r.num_frames} frames), got {cond.shape[0]}")
            return None, None, to_model(cond[None]).to(self.device), (r.strength or self.strength)
        idx = list(r.cond_indices) or ([0] if r.task == "i2v" else [])
        if len(idx) != cond.shape[0] or any(not 0 <= i < r.num_frames for i in idx):
            raise AdapterError(f"cond_indices {idx} do not match {cond.shape[0]} cond_frames "
                               f"within {r.num_frames} frames")
        known = torch.zeros(shape)
        mask = torch.zeros(1, r.num_frames, dtype=torch.bool)
        known[0, :, idx] = to_model(cond[None])[0]
        mask[0, idx] = True
        return known.to(self.device), mask.to(self.device), None, None


ADAPTER = ReferenceAdapter
