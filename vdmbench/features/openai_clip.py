"""OpenAI's CLIP checkpoints (`ViT-B-32.pt`, `ViT-L-14.pt`) run through open_clip, as VBench uses them.

VBench loads CLIP with the `openai-clip` package (`clip.load`); vdmbench reads the same files and
builds open_clip's CLIP from their state dict (`open_clip.build_model_from_openai_state_dict`: the
same architecture, key names and QuickGELU). The files are TorchScript archives holding fp16
tensors; a plain state-dict file (.pt/.pth/.safetensors) in OpenAI's key format is accepted too.

Precision: `clip.load` keeps the fp16 weights on CUDA and converts them to fp32 on CPU, so VBench's
numbers depend on the device. vdmbench computes in fp32 everywhere (the fp16 weights upcast
exactly); `vbench_gpu_compat=True` on a CUDA device keeps fp16 as VBench-on-GPU does.

Preprocessing, from VBench's vbench/utils.py:
- `vbench_clip_transform` = `clip_transform(n_px)`: applied to the float32 [T, C, H, W] tensor in
  [0, 255] that VBench's `load_video` returns (`torch.Tensor(uint8 array)` is float32: no rounding
  after the resize); bicubic resize of the short side to n_px WITHOUT antialiasing (VBench pins
  torchvision < 0.16, where tensor resizes do not antialias; newer torchvision would), center crop,
  /255, CLIP's mean/std.
- `vbench_clip_transform_image` = `clip_transform_Image(n_px)`: the PIL path (PIL's bicubic
  resize, which antialiases, center crop, ToTensor, mean/std), used by appearance_style.

Weights are found by `vdmbench.features.weights.resolve` (explicit path > $VDMBENCH_WEIGHTS >
~/.cache/vdmbench > VBench's cache `clip_model/<file>`), then openai-clip's own download folder
~/.cache/clip (where VBench's default, non-local mode keeps them), then a sha256-checked download.
The sha256 values are the ones OpenAI publishes in the download URLs (openai/CLIP clip.py `_MODELS`;
its loader checks the file against that URL segment).
"""

from __future__ import annotations

import math
import os
import warnings
import zipfile
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from vdmbench.core.errors import ConfigError, MetricInputError, WeightsError
from vdmbench.core.hashing import sha256_file
from vdmbench.features.weights import ResolvedWeights, WeightSpec, check_state_dict, load_state_dict, resolve

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)

_URL = "https://openaipublic.azureedge.net/clip/models/{sha}/{file}"
_SHA = {
    "ViT-B-32": "40d365715913c9da98579312b702a82c18be219cc2a73407c4526f58eba950af",
    "ViT-L-14": "b8cca3fd41ae0c99ba7e8951adf17d267cdb84cd88be6f7c2e0eca1737a03836",
}
SPECS: dict[str, WeightSpec] = {
    name: WeightSpec(f"openai-clip-{name}", f"{name}.pt", _URL.format(sha=sha, file=f"{name}.pt"), sha,
                     f"OpenAI CLIP {name} (TorchScript archive, fp16 tensors)",
                     vbench_path=f"clip_model/{name}.pt")
    for name, sha in _SHA.items()
}
# Entries of a CLIP archive that are not weights: OpenAI's metadata (openai-clip's build_model drops
# them too) and the causal text mask, a buffer that TorchScript archives of open_clip models keep.
_META_KEYS = ("input_resolution", "context_length", "vocab_size", "attn_mask")
RANDOM = "random"


def openai_clip_download_dir() -> Path:
    """Where `clip.load("ViT-B/32")` (openai-clip, VBench's default mode) keeps its downloads."""
    return Path("~/.cache/clip").expanduser()


def find_weights(name: str, weights: str | os.PathLike | None = None, weights_sha256: str | None = None
                 ) -> ResolvedWeights:
    """The checkpoint file of `name`: the resolver's order, with openai-clip's folder before downloading."""
    spec = _spec(name)
    if weights is not None:
        return resolve(spec, weights, sha256=weights_sha256)
    try:
        return resolve(spec, sha256=weights_sha256, download=False)
    except WeightsError:
        local = openai_clip_download_dir() / spec.filename
        if not local.is_file():
            return resolve(spec, sha256=weights_sha256)  # download, or the resolver's clear error
    digest = sha256_file(local)
    expected = (weights_sha256 or spec.sha256 or "").lower()
    if not digest.startswith(expected):
        raise WeightsError(f"{spec.name}: {local} has sha256 {digest}, expected {expected}; the file is "
                           f"corrupt or a different release. Delete it or download {spec.url} again.")
    return ResolvedWeights(local, digest, "openai-clip-cache", True)


def _spec(name: str) -> WeightSpec:
    if name not in SPECS:
        raise ConfigError(f"openai clip: unknown model {name!r}; known: {', '.join(SPECS)}")
    return SPECS[name]


def _is_torchscript(path: Path) -> bool:
    # A TorchScript archive is a zip holding compiled code (…/code/…) and constants.pkl.
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as z:
        return any(n.endswith("constants.pkl") or "/code/" in n for n in z.namelist())


def read_openai_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """The tensors of an OpenAI CLIP checkpoint: its TorchScript archive or a plain state dict.

    The archive is read with `torch.jit.load` (TorchScript graphs, no Python code runs); only its
    state dict is kept: the model itself is rebuilt by open_clip."""
    path = Path(path)
    if _is_torchscript(path):
        try:
            with warnings.catch_warnings():  # torch marks TorchScript as deprecated; the format is OpenAI's
                warnings.simplefilter("ignore", FutureWarning)
                state = torch.jit.load(str(path), map_location="cpu").state_dict()
        except Exception as e:
            raise WeightsError(f"{path}: not a readable TorchScript archive ({type(e).__name__}: {e})") from e
        return {k: v for k, v in state.items()}
    return load_state_dict(path)


def _clip_skeleton(name: str, fp16: bool) -> Any:
    """open_clip's CLIP for OpenAI's `name` on the meta device: the architecture and key names that
    `build_model_from_openai_state_dict` infers from OpenAI's file (same config, QuickGELU, LayerNorm
    computed in fp32 for fp16 weights), without the seconds a random initialisation costs."""
    import open_clip
    from open_clip.model import CLIP

    cfg = open_clip.get_model_config(name)
    with torch.device("meta"):
        return CLIP(**cfg, quick_gelu=True, cast_dtype=torch.float16 if fp16 else None)


def causal_text_mask(context_length: int) -> torch.Tensor:
    """CLIP's additive causal mask for the text transformer (-inf above the diagonal), as open_clip builds it."""
    return torch.full((context_length, context_length), float("-inf")).triu_(1)


def check_openai_keys(name: str, state: dict[str, torch.Tensor], source: str,
                      skeleton: Any | None = None) -> dict[str, torch.Tensor]:
    """`state` without its non-weight entries, refused with the first wrong key if it is not `name`'s."""
    state = {k: v for k, v in state.items() if k not in _META_KEYS}
    skeleton = _clip_skeleton(name, fp16=False) if skeleton is None else skeleton
    check_state_dict(skeleton.state_dict(), state, source, f"OpenAI CLIP {name} weights",
                     f"Use OpenAI's {name}.pt ({SPECS[name].url}) or a state dict with the same keys")
    return state


def build_openai_clip(name: str, state: dict[str, torch.Tensor], source: str, *, fp16: bool = False) -> Any:
    """open_clip's CLIP holding OpenAI's `state` (strict), on the CPU: fp32, or with `fp16` the weights
    held as OpenAI's fp16 model holds them (open_clip's load_openai_model with precision fp16)."""
    from open_clip.model import convert_weights_to_lp

    skeleton = _clip_skeleton(name, fp16)
    state = check_openai_keys(name, state, source, skeleton)
    model = skeleton.to_empty(device="cpu")
    with torch.no_grad():
        model.attn_mask.copy_(causal_text_mask(model.attn_mask.shape[0]))  # not in the checkpoint
    if fp16:
        convert_weights_to_lp(model, dtype=torch.float16)
    # Strict; each tensor is copied into the parameter's dtype: fp16 -> fp32 is exact.
    model.load_state_dict(state, strict=True)
    return model.eval()


def load_openai_clip(
    name: str,
    *,
    weights: str | os.PathLike | None = None,
    weights_sha256: str | None = None,
    pretrained: str | None = "openai",
    device: str = "cpu",
    seed: int = 0,
    vbench_gpu_compat: bool = False,
) -> tuple[Any, dict[str, Any]]:
    """An open_clip CLIP model (eval mode, fp32; fp16 only with `vbench_gpu_compat` on CUDA) and its info.

    `pretrained="random"` (or None) builds the same architecture with weights seeded by `seed`:
    results are then not comparable with published numbers (`info["comparable"]` is False)."""
    import open_clip
    from open_clip.model import convert_weights_to_lp

    _spec(name)  # a known name, before any work
    fp16 = bool(vbench_gpu_compat) and torch.device(device).type == "cuda"
    info: dict[str, Any] = {"model": name, "precision": "fp16" if fp16 else "fp32",
                            "vbench_gpu_compat": bool(vbench_gpu_compat)}
    if pretrained is None or str(pretrained).lower() in (RANDOM, "none"):
        with torch.random.fork_rng(devices=[]):  # seeded init without touching the caller's RNG
            torch.manual_seed(seed)
            model = open_clip.create_model(name, pretrained=None, force_quick_gelu=True)
        if fp16:
            convert_weights_to_lp(model, dtype=torch.float16)
        info.update(pretrained=RANDOM, weights=f"random (seed {seed})", comparable=False,
                    label="not comparable with published numbers (random CLIP weights)")
        return model.to(device).eval(), info
    if str(pretrained).lower() != "openai":
        raise ConfigError(f"openai clip: pretrained must be 'openai' or 'random', got {pretrained!r}")
    found = find_weights(name, weights, weights_sha256)
    model = build_openai_clip(name, read_openai_state_dict(found.path), str(found.path), fp16=fp16)
    info.update(pretrained="openai", weights=str(found.path), weights_sha256=found.sha256,
                weights_source=found.source, weights_pinned=found.pinned, comparable=True)
    return model.to(device).eval(), info


def frames_nchw_float(frames: torch.Tensor) -> torch.Tensor:
    """uint8 or float frames in [0, 255], [N, H, W, 3] or [N, 3, H, W] -> float32 [N, 3, H, W]."""
    if not isinstance(frames, torch.Tensor) or frames.ndim != 4:
        raise MetricInputError("vbench clip transform: expected frames [N, H, W, 3] or [N, 3, H, W] (a tensor)")
    if frames.shape[-1] == 3 and frames.shape[1] != 3:
        frames = frames.permute(0, 3, 1, 2)
    elif frames.shape[1] != 3:
        raise MetricInputError(f"vbench clip transform: expected 3 channels, got shape {list(frames.shape)}")
    if torch.is_floating_point(frames) and frames.numel() and float(frames.max()) <= 1.0 and float(frames.max()) > 0:
        raise MetricInputError("vbench clip transform: frames look like floats in [0, 1]; pass uint8 or [0, 255]")
    return frames.to(torch.float32)


def short_side_size(height: int, width: int, n_px: int) -> tuple[int, int]:
    """torchvision's Resize(int): the short side becomes n_px, the long side int(n_px * long / short)."""
    if width <= height:
        return int(n_px * height / width), n_px
    return n_px, int(n_px * width / height)


def center_crop_box(height: int, width: int, n_px: int) -> tuple[int, int]:
    """(top, left) of torchvision's CenterCrop: int(round(excess / 2)) (Python's round: half to even)."""
    return int(round((height - n_px) / 2.0)), int(round((width - n_px) / 2.0))


def normalize(pixels: torch.Tensor, mean: tuple[float, ...], std: tuple[float, ...]) -> torch.Tensor:
    """torchvision's Normalize: (x - mean) / std per channel of [N, 3, H, W]."""
    m = torch.tensor(mean, dtype=pixels.dtype, device=pixels.device).view(1, -1, 1, 1)
    s = torch.tensor(std, dtype=pixels.dtype, device=pixels.device).view(1, -1, 1, 1)
    return (pixels - m) / s


def vbench_clip_transform(frames: torch.Tensor, n_px: int = 224, *, antialias: bool = False) -> torch.Tensor:
    """VBench's `clip_transform(n_px)` on frames in [0, 255] (uint8 or float): float32 [N, 3, n_px, n_px].

    As in VBench, the resize works on float32 values in [0, 255] (no rounding, no clamping of the
    bicubic overshoot); `antialias=True` reproduces VBench run with torchvision >= 0.17 instead."""
    x = frames_nchw_float(frames)
    h, w = x.shape[-2:]
    new_h, new_w = short_side_size(h, w, n_px)
    if (new_h, new_w) != (h, w):
        x = F.interpolate(x, size=(new_h, new_w), mode="bicubic", align_corners=False, antialias=antialias)
    top, left = center_crop_box(new_h, new_w, n_px)
    x = x[..., top:top + n_px, left:left + n_px]
    return normalize(x.div(255.0), CLIP_MEAN, CLIP_STD)


def vbench_clip_transform_image(frames: torch.Tensor, n_px: int = 224) -> torch.Tensor:
    """VBench's `clip_transform_Image(n_px)` (PIL path) on uint8 frames [N, H, W, 3]: float32 [N, 3, n_px, n_px]."""
    import numpy as np
    from PIL import Image

    if not isinstance(frames, torch.Tensor) or frames.dtype != torch.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
        raise MetricInputError("vbench clip transform (PIL): expected uint8 frames [N, H, W, 3]")
    out = []
    for frame in frames.cpu().numpy():
        h, w = frame.shape[:2]
        new_h, new_w = short_side_size(h, w, n_px)
        img = Image.fromarray(frame)
        if (new_h, new_w) != (h, w):
            img = img.resize((new_w, new_h), Image.Resampling.BICUBIC)
        top, left = center_crop_box(new_h, new_w, n_px)
        img = img.crop((left, top, left + n_px, top + n_px))
        # ToTensor: uint8 HWC -> float CHW / 255
        out.append(torch.from_numpy(np.asarray(img, dtype=np.uint8).copy()).permute(2, 0, 1))
    x = torch.stack(out).to(torch.float32).div(255.0)
    return normalize(x, CLIP_MEAN, CLIP_STD)


@torch.no_grad()
def encode_image(model: Any, pixels: torch.Tensor) -> torch.Tensor:
    """Image embeddings (float32, not normalized) of preprocessed pixels [N, 3, H, W], in the model's dtype
    (as openai-clip's encode_image casts its input to the model's dtype)."""
    dtype = model.visual.conv1.weight.dtype
    device = model.visual.conv1.weight.device
    return model.encode_image(pixels.to(device=device, dtype=dtype)).float()


@torch.no_grad()
def encode_text(model: Any, texts: list[str]) -> torch.Tensor:
    """Text embeddings (float32, not normalized), tokenized as openai-clip's `clip.tokenize` does
    (CLIP's BPE, lower-cased, 77 tokens)."""
    import open_clip

    tokens = open_clip.tokenize(texts).to(model.token_embedding.weight.device)
    return model.encode_text(tokens).float()


def logit_scale(model: Any) -> float:
    """exp(logit_scale): CLIP's forward multiplies cosines by it (100.0 only approximately in the
    fp16 checkpoint: ln(100) is not an fp16 number)."""
    return float(math.exp(float(model.logit_scale.detach().float().cpu())))
