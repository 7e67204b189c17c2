"""ViCLIP (InternVid's video CLIP) as VBench vendors it, for overall_consistency and temporal_style.

Architecture (VBench `vbench/third_party/ViCLIP`, checkpoint `ViClip-InternVid-10M-FLT.pth`):
- vision: a ViT-L/14 over 8 frames of 224x224: a patch embedding with a (1, 14, 14) kernel, class
  token + spatial positional embedding (257 rows) + a learnt temporal embedding per frame, all
  8 x 256 patch tokens plus one class token through 24 pre-LN blocks (width 1024, 16 heads,
  QuickGELU), the class token's `ln_post` output times `proj` (1024 -> 768);
- text: CLIP's text transformer (width 768, 12 layers, 12 heads, causal mask) with a context of
  32 tokens (not CLIP's 77), the end-of-text token's `ln_final` output times `text_projection`.
The key names are the checkpoint's (`vision_encoder.*`, `text_encoder.*`, `temp`), stored under
`['model']`; loading is strict and names the first wrong key.

Preprocessing, as VBench's `read_frames_decord_by_fps(num_frames=8, sample="middle")` and
`clip_transform(224)`: 8 frames, the middle frame of each of 8 equal intervals of the clip
(padded with the last index when the clip has fewer); each frame, still uint8, resized with its
short side to 224 (bicubic, long side int(224 * long / short)), rounded back to uint8, centre
cropped to 224 (offsets rounded half to even, as torchvision does), then /255 and CLIP's mean/std.
VBench pins torchvision < 0.16, whose tensor resize does not antialias: that is the default here;
`antialias=True` reproduces a VBench installed with torchvision >= 0.17 (which does).

Text: the CLIP BPE tokenizer that open_clip bundles (the same bpe_simple_vocab_16e6.txt.gz VBench
downloads into its cache), start and end tokens, truncated to 32 with the end token kept last.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from vdmbench.core.errors import ConfigError, MetricInputError, WeightsError
from vdmbench.features.weights import WeightSpec, check_state_dict, load_state_dict, resolve

# No sha256 is published for this file (VBench downloads it without a check; Hugging Face shows
# the LFS object id only on its web page, which was not reachable here): not pinned, so it is never
# downloaded automatically; a local copy or VBench's cache is used and its sha256 recorded.
VICLIP_SPEC = WeightSpec(
    "viclip", "ViClip-InternVid-10M-FLT.pth",
    "https://huggingface.co/OpenGVLab/VBench_Used_Models/resolve/main/ViClip-InternVid-10M-FLT.pth", None,
    "ViCLIP ViT-L/14 trained on InternVid-10M-FLT (VBench's overall_consistency and temporal_style)",
    vbench_path="ViCLIP/ViClip-InternVid-10M-FLT.pth",
)

# sha256 of OpenAI CLIP's bpe_simple_vocab_16e6.txt.gz (1,356,917 bytes), the file VBench downloads
# from github.com/openai/CLIP into its cache; keras-hub pins this hash for that URL. open_clip
# bundles the same file; the tokenizer refuses a copy with any other hash.
CLIP_BPE_SHA256 = "924691ac288e54409236115652ad4aa250f48203de50a9e4722a6ecd48d6804a"

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


@dataclass(frozen=True)
class ViclipConfig:
    """Sizes of the model; the defaults are the published ViT-L/14 (what VBench builds)."""

    image_size: int = 224
    patch_size: int = 14
    num_frames: int = 8
    vision_width: int = 1024
    vision_layers: int = 24
    vision_heads: int = 16
    embed_dim: int = 768  # both projections end here
    text_width: int = 768
    text_layers: int = 12
    text_heads: int = 12
    context_length: int = 32
    vocab_size: int = 49408

    @classmethod
    def from_options(cls, options: dict[str, int] | None) -> ViclipConfig:
        """The defaults with some sizes replaced (other ViCLIP sizes, small test models)."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(options or {}) - known)
        if unknown:
            raise ConfigError(f"viclip: unknown architecture keys {unknown}; known: {sorted(known)}")
        cfg = cls(**{k: int(v) for k, v in (options or {}).items()})
        if cfg.image_size % cfg.patch_size or cfg.vision_width % cfg.vision_heads or cfg.text_width % cfg.text_heads:
            raise ConfigError(f"viclip: inconsistent architecture {asdict(cfg)} (image size must be a multiple of "
                              "the patch size, widths multiples of their heads)")
        return cfg


# --- the network -------------------------------------------------------------------------------


class QuickGELU(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(1.702 * x)


class _Mlp(nn.Module):
    def __init__(self, width: int) -> None:
        super().__init__()
        self.c_fc = nn.Linear(width, 4 * width)
        self.gelu = QuickGELU()
        self.c_proj = nn.Linear(4 * width, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.c_proj(self.gelu(self.c_fc(x)))


class ResidualAttentionBlock(nn.Module):
    """Pre-LN block; sequence-first tensors [L, B, C] as nn.MultiheadAttention's default."""

    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        self.attn = nn.MultiheadAttention(width, heads)
        self.ln_1 = nn.LayerNorm(width)
        self.mlp = _Mlp(width)
        self.ln_2 = nn.LayerNorm(width)

    def forward(self, x: torch.Tensor, attn_mask: torch.Tensor | None = None) -> torch.Tensor:
        h = self.ln_1(x)
        x = x + self.attn(h, h, h, need_weights=False, attn_mask=attn_mask)[0]
        return x + self.mlp(self.ln_2(x))


class Transformer(nn.Module):
    def __init__(self, width: int, layers: int, heads: int) -> None:
        super().__init__()
        self.resblocks = nn.ModuleList(ResidualAttentionBlock(width, heads) for _ in range(layers))

    def forward(self, x: torch.Tensor, attn_mask: torch.Tensor | None = None) -> torch.Tensor:
        for block in self.resblocks:
            x = block(x, attn_mask)
        return x


class VisionEncoder(nn.Module):
    """Video -> embedding: [B, 3, T, S, S] normalized pixels -> [B, embed_dim]."""

    def __init__(self, cfg: ViclipConfig) -> None:
        super().__init__()
        w, p = cfg.vision_width, cfg.patch_size
        self.patch_size = p
        self.conv1 = nn.Conv3d(3, w, (1, p, p), (1, p, p), bias=False)
        self.class_embedding = nn.Parameter(torch.empty(w))
        self.positional_embedding = nn.Parameter(torch.empty((cfg.image_size // p) ** 2 + 1, w))
        self.ln_pre = nn.LayerNorm(w)
        self.temporal_positional_embedding = nn.Parameter(torch.zeros(1, cfg.num_frames, w))
        self.transformer = Transformer(w, cfg.vision_layers, cfg.vision_heads)
        self.ln_post = nn.LayerNorm(w)
        self.proj = nn.Parameter(torch.empty(w, cfg.embed_dim))
        # True: the patch embedding as a convolution, as VBench runs it (on CUDA, cuDNN may use
        # TF32 for it); False: the same product as a float32 matrix multiplication, which no
        # backend rounds to TF32 unless asked, so the number does not depend on the GPU.
        self.conv_patch_embed = False

    def _patches(self, x: torch.Tensor) -> torch.Tensor:
        """[B, 3, T, H, W] -> [B, T, gh*gw, C]: the kernel equals the stride, so a product of matrices."""
        if self.conv_patch_embed:
            y = self.conv1(x)  # [B, C, T, gh, gw]
            return y.permute(0, 2, 3, 4, 1).flatten(2, 3)
        b, c, t, h, w = x.shape
        p = self.patch_size
        tiles = x.reshape(b, c, t, h // p, p, w // p, p).permute(0, 2, 3, 5, 1, 4, 6)
        tiles = tiles.reshape(b, t, (h // p) * (w // p), c * p * p)
        return tiles @ self.conv1.weight.reshape(self.conv1.out_channels, -1).t()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tokens = self._patches(x)  # [B, T, N, C]
        b, t, n, c = tokens.shape
        tokens = tokens + self.positional_embedding[1:]
        if t == 1:  # a single image: VBench adds the mean temporal embedding
            tokens = tokens + self.temporal_positional_embedding.mean(1)
        else:
            tokens = tokens + self.temporal_positional_embedding[0, :t, None, :]
        # Token order as VBench's: patch-major, frame-minor (the order of the attention's sums).
        tokens = tokens.permute(0, 2, 1, 3).reshape(b, n * t, c)
        cls = (self.class_embedding + self.positional_embedding[0]).expand(b, 1, c)
        h = self.ln_pre(torch.cat([cls, tokens], dim=1)).permute(1, 0, 2)  # [L, B, C]
        h = self.ln_post(self.transformer(h))
        return h[0] @ self.proj


class TextEncoder(nn.Module):
    """Token ids [B, context] -> [B, embed_dim] (the end-of-text token's features)."""

    def __init__(self, cfg: ViclipConfig) -> None:
        super().__init__()
        self.context_length = cfg.context_length
        self.transformer = Transformer(cfg.text_width, cfg.text_layers, cfg.text_heads)
        self.token_embedding = nn.Embedding(cfg.vocab_size, cfg.text_width)
        self.positional_embedding = nn.Parameter(torch.empty(cfg.context_length, cfg.text_width))
        self.ln_final = nn.LayerNorm(cfg.text_width)
        self.text_projection = nn.Parameter(torch.empty(cfg.text_width, cfg.embed_dim))

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        n = tokens.shape[1]
        x = self.token_embedding(tokens) + self.positional_embedding[:n]
        mask = torch.full((n, n), float("-inf"), dtype=x.dtype, device=x.device).triu_(1)  # causal
        x = self.transformer(x.permute(1, 0, 2), mask).permute(1, 0, 2)
        x = self.ln_final(x)
        # The end-of-text token has the highest id in the vocabulary.
        return x[torch.arange(x.shape[0], device=x.device), tokens.argmax(dim=-1)] @ self.text_projection


class ViCLIP(nn.Module):
    def __init__(self, cfg: ViclipConfig | None = None) -> None:
        super().__init__()
        self.config = cfg or ViclipConfig()
        self.vision_encoder = VisionEncoder(self.config)
        self.text_encoder = TextEncoder(self.config)
        self.temp = nn.Parameter(torch.tensor(1 / 100.0))  # training temperature; unused here

    def encode_vision(self, video: torch.Tensor) -> torch.Tensor:
        """[B, T, 3, S, S] (VBench's layout) -> [B, embed_dim], not normalized."""
        return self.vision_encoder(video.permute(0, 2, 1, 3, 4))

    def encode_text(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.text_encoder(tokens)


def init_random(model: ViCLIP, seed: int) -> ViCLIP:
    """Seeded random weights at CLIP-like scales (tests and offline smoke runs; not comparable).

    The temporal embedding gets random values too (training starts it at zero), so that a random
    model is sensitive to the order of the frames."""
    gen = torch.Generator().manual_seed(int(seed))

    def randn(shape: torch.Size, std: float) -> torch.Tensor:
        return torch.randn(shape, generator=gen) * std

    with torch.no_grad():
        for name, p in model.named_parameters():
            leaf = name.rsplit(".", 1)[-1]
            if name == "temp":
                p.fill_(1 / 100.0)
            elif ".ln_" in name or leaf.startswith("ln_"):  # LayerNorms: near identity
                p.copy_((1.0 if leaf == "weight" else 0.0) + randn(p.shape, 0.1))
            elif leaf == "bias" or leaf.endswith("_bias"):
                p.copy_(randn(p.shape, 0.02))
            elif leaf in ("proj", "text_projection"):  # used as x @ p: fan-in is the first dimension
                p.copy_(randn(p.shape, p.shape[0] ** -0.5))
            elif leaf.endswith("weight"):  # Linear, attention, conv, token embedding: [out, in, ...]
                p.copy_(randn(p.shape, math.prod(p.shape[1:]) ** -0.5))
            else:  # class, positional and temporal embeddings
                p.copy_(randn(p.shape, p.shape[-1] ** -0.5))
    return model


def load_viclip_state(model: ViCLIP, state: dict[str, torch.Tensor], source: str) -> None:
    """Strict load that names what is wrong: missing, unexpected or misshapen keys."""
    check_state_dict(model.state_dict(), state, source, "a ViCLIP checkpoint of this architecture",
                     f"Use VBench's {VICLIP_SPEC.filename} ({VICLIP_SPEC.url}), or set the metric's architecture "
                     "option for another model size")
    model.load_state_dict(state, strict=True)


def build_viclip(cfg: ViclipConfig, *, pretrained: str = "vbench", weights: str | None = None,
                 weights_sha256: str | None = None, seed: int = 0) -> tuple[ViCLIP, dict[str, Any]]:
    """The model in eval mode on the CPU, float32, and how it was made (for describe())."""
    with torch.random.fork_rng(devices=[]):  # no effect on the caller's RNG
        torch.manual_seed(int(seed))
        model = ViCLIP(cfg)
    info: dict[str, Any] = {"model": "ViCLIP", "architecture": asdict(cfg)}
    if pretrained == "random":
        init_random(model, seed)
        info.update(pretrained="random", weights=f"random (seed {seed})")
    elif pretrained == "vbench":
        found = resolve(VICLIP_SPEC, weights, sha256=weights_sha256)
        load_viclip_state(model, load_state_dict(found.path), str(found.path))
        info.update(pretrained="vbench", weights=str(found.path), weights_sha256=found.sha256,
                    weights_source=found.source)
    else:
        raise ConfigError(f"viclip: pretrained must be 'vbench' (VBench's checkpoint) or 'random', got {pretrained!r}")
    return model.eval().float(), info


# --- what VBench does to frames and text -------------------------------------------------------


def middle_frame_indices(num_frames: int, vlen: int) -> list[int]:
    """VBench's get_frame_indices(sample="middle"): the middle of each of `num_frames` equal
    intervals (integer bounds), padded with the last index when the clip is shorter."""
    if vlen < 1:
        raise MetricInputError("viclip: a clip with no frames cannot be scored")
    n = min(num_frames, vlen)
    bounds = np.linspace(0, vlen, n + 1).astype(int)  # interval i is [bounds[i], bounds[i+1] - 1]
    idx = [int(bounds[i] + bounds[i + 1] - 1) // 2 for i in range(n)]
    return idx + [idx[-1]] * (num_frames - n)


def short_side_size(h: int, w: int, size: int) -> tuple[int, int]:
    """torchvision's Resize(size) output for an (h, w) image: short side `size`, long side truncated."""
    if w <= h:
        return int(size * h / w), size
    return size, int(size * w / h)


def clip_transform(frames: torch.Tensor, size: int, *, antialias: bool = False) -> torch.Tensor:
    """VBench's clip_transform(size) on uint8 frames [T, H, W, 3] -> float32 [T, 3, size, size].

    Resize (bicubic) on the uint8 tensor, which torchvision computes in float32, clamps to
    [0, 255] and rounds back to uint8; centre crop; /255; CLIP's mean and std."""
    x = frames.permute(0, 3, 1, 2).to(torch.float32)
    h, w = x.shape[-2:]
    nh, nw = short_side_size(h, w, size)
    x = F.interpolate(x, size=(nh, nw), mode="bicubic", align_corners=False, antialias=antialias)
    x = x.clamp(0, 255).round().to(torch.uint8)
    top, left = int(round((nh - size) / 2.0)), int(round((nw - size) / 2.0))  # round half to even
    x = x[..., top:top + size, left:left + size].to(torch.float32).div(255.0)
    mean = torch.tensor(CLIP_MEAN, dtype=torch.float32).view(1, 3, 1, 1)
    std = torch.tensor(CLIP_STD, dtype=torch.float32).view(1, 3, 1, 1)
    return (x - mean) / std


def clip_tokenizer() -> Any:
    """CLIP's BPE tokenizer with open_clip's copy of the vocabulary file (no download)."""
    from open_clip.tokenizer import SimpleTokenizer, default_bpe

    from vdmbench.core.hashing import sha256_file

    digest = sha256_file(default_bpe())
    if digest != CLIP_BPE_SHA256:
        raise WeightsError(f"viclip: open_clip's vocabulary {default_bpe()} has sha256 {digest}, not CLIP's "
                           f"{CLIP_BPE_SHA256}: the tokens would differ from VBench's; reinstall open-clip-torch")
    return SimpleTokenizer(default_bpe())


def tokenize(tokenizer: Any, texts: list[str], context_length: int) -> torch.Tensor:
    """[len(texts), context_length] int64 ids: start token, BPE, end token; truncated with the end kept."""
    return tokenizer(list(texts), context_length=context_length)


class ViclipEncoder:
    """A loaded ViCLIP with VBench's preprocessing; unit-norm float32 embeddings as VBench makes them."""

    def __init__(self, model: ViCLIP, *, device: str = "cpu", batch_size: int = 8, antialias: bool = False,
                 gpu_compat: bool = False) -> None:
        self.model = model.to(device)
        self.model.vision_encoder.conv_patch_embed = bool(gpu_compat)
        self.config = model.config
        self.device = device
        self.batch_size = max(1, int(batch_size))
        self.antialias = bool(antialias)
        self.tokenizer = clip_tokenizer()
        self._texts: dict[str, torch.Tensor] = {}  # VBench memoizes text features by prompt as well

    def frames(self, video: torch.Tensor) -> torch.Tensor:
        """One uint8 clip [T, H, W, 3] -> the model's input [num_frames, 3, S, S]."""
        idx = middle_frame_indices(self.config.num_frames, int(video.shape[0]))
        return clip_transform(video[idx], self.config.image_size, antialias=self.antialias)

    @torch.no_grad()
    def videos(self, videos: torch.Tensor) -> torch.Tensor:
        """uint8 [B, T, H, W, 3] -> [B, embed_dim] float32, L2-normalized."""
        out = []
        for chunk in videos.split(self.batch_size):
            x = torch.stack([self.frames(v) for v in chunk.cpu()]).to(self.device)
            emb = self.model.encode_vision(x).float()
            out.append((emb / emb.norm(dim=-1, keepdim=True)).cpu())
        return torch.cat(out)

    @torch.no_grad()
    def texts(self, prompts: list[str]) -> torch.Tensor:
        """[len(prompts), embed_dim] float32, L2-normalized; each distinct prompt encoded once."""
        todo = [p for p in dict.fromkeys(prompts) if p not in self._texts]
        if todo:
            tokens = tokenize(self.tokenizer, todo, self.config.context_length).to(self.device)
            emb = self.model.encode_text(tokens).float()
            emb = (emb / emb.norm(dim=-1, keepdim=True)).cpu()
            self._texts.update(zip(todo, emb))
        return torch.stack([self._texts[p] for p in prompts])
