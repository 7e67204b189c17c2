"""A float64 re-computation of pyiqa's MUSIQ and of VBench's imaging_quality, for the tests.

Written from pyiqa's musiq_arch.py / multiscale_trans_util.py and VBench's imaging_quality.py,
independently of vdmbench's code: resizes as explicit interpolation matrices (torch's bilinear and
bicubic rules), patches and hashed positions in numpy with integer arithmetic, the network as
plain functional calls on the checkpoint's tensors."""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

# -- resizing --------------------------------------------------------------------------------------


def bilinear_matrix(n_in: int, n_out: int) -> np.ndarray:
    """[n_out, n_in]: torch bilinear, align_corners=False, no antialias (source index clamped at 0)."""
    m = np.zeros((n_out, n_in))
    scale = n_in / n_out
    for i in range(n_out):
        src = max((i + 0.5) * scale - 0.5, 0.0)
        i0 = min(int(math.floor(src)), n_in - 1)
        i1 = min(i0 + 1, n_in - 1)
        lam = src - i0
        m[i, i0] += 1 - lam
        m[i, i1] += lam
    return m


def bicubic_matrix(n_in: int, n_out: int, a: float = -0.75) -> np.ndarray:
    """[n_out, n_in]: torch bicubic (Keys, A = -0.75), align_corners=False, border indices clamped."""
    def near(x: float) -> float:  # |x| <= 1
        return ((a + 2) * x - (a + 3)) * x * x + 1

    def far(x: float) -> float:  # 1 < |x| < 2
        return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a

    m = np.zeros((n_out, n_in))
    scale = n_in / n_out
    for i in range(n_out):
        src = (i + 0.5) * scale - 0.5
        i0 = int(math.floor(src))
        t = src - i0
        for off, wgt in zip((-1, 0, 1, 2), (far(t + 1), near(t), near(1 - t), far(2 - t))):
            m[i, min(max(i0 + off, 0), n_in - 1)] += wgt
    return m


def resize(image: np.ndarray, h: int, w: int, kind: str) -> np.ndarray:
    """[C, H, W] float64 -> [C, h, w] by separable interpolation matrices."""
    make = bilinear_matrix if kind == "bilinear" else bicubic_matrix
    rows, cols = make(image.shape[1], h), make(image.shape[2], w)
    return rows @ image @ cols.T  # per channel: [h, H] @ [H, W] @ [W, w]


# -- VBench's preprocessing ------------------------------------------------------------------------


def vbench_size(h: int, w: int) -> tuple[int, int]:
    """imaging_quality's "longer" mode, as VBench writes it."""
    if max(h, w) > 512:
        scale = 512. / max(h, w)
        return int(scale * h), int(scale * w)
    return h, w


def vbench_frame(frame: np.ndarray) -> np.ndarray:
    """uint8 [H, W, 3] -> float64 [3, H', W'] in [0, 1]."""
    x = frame.astype(np.float64).transpose(2, 0, 1)
    size = vbench_size(*x.shape[1:])
    if size != x.shape[1:]:
        x = resize(x, *size, "bilinear")
    return x / 255.


# -- multi-scale patches ---------------------------------------------------------------------------


def grid_cell(i: int, count: int, grid: int) -> int:
    return (i * grid) // count


def patches(image: np.ndarray, scale_id: int, patch: int = 32, grid: int = 10, max_len: int | None = None):
    """[C, H, W] -> (pixels [L, C*p*p], position [L], scale [L], mask [L]) for one scale."""
    c, h, w = image.shape
    ch, cw = -(-h // patch), -(-w // patch)
    top, left = (ch * patch - h) // 2, (cw * patch - w) // 2
    padded = np.zeros((c, ch * patch, cw * patch))
    padded[:, top:top + h, left:left + w] = image
    pix, pos = [], []
    for r in range(ch):
        for q in range(cw):
            pix.append(padded[:, r * patch:(r + 1) * patch, q * patch:(q + 1) * patch].reshape(-1))
            pos.append(grid_cell(r, ch, grid) * grid + grid_cell(q, cw, grid))
    pix_a, pos_a = np.stack(pix), np.array(pos)
    n = len(pos)
    scale, mask = np.full(n, scale_id), np.ones(n, dtype=bool)
    if max_len is not None:
        extra = max(max_len - n, 0)
        pix_a = np.concatenate([pix_a, np.zeros((extra, pix_a.shape[1]))])[:max_len]
        pos_a = np.concatenate([pos_a, np.zeros(extra, int)])[:max_len]
        scale = np.concatenate([scale, np.zeros(extra, int)])[:max_len]
        mask = np.concatenate([mask, np.zeros(extra, bool)])[:max_len]
    return pix_a, pos_a, scale, mask


def multiscale(image01: np.ndarray, longer_sides=(224, 384)):
    """[3, H, W] in [0, 1] -> the tokens of every scale, as pyiqa's get_multiscale_patches."""
    x = (image01 - 0.5) * 2
    _, h, w = x.shape
    parts = []
    for sid, longer in enumerate(sorted(longer_sides)):
        ratio = longer / max(h, w)
        rh, rw = round(h * ratio), round(w * ratio)
        parts.append(patches(resize(x, rh, rw, "bicubic"), sid, max_len=math.ceil(longer / 32) ** 2))
    parts.append(patches(x, len(longer_sides)))
    return tuple(np.concatenate([p[k] for p in parts]) for k in range(4))


# -- the network -----------------------------------------------------------------------------------


def _same(x: torch.Tensor, k: int, s: int) -> torch.Tensor:
    pads = []
    for n in (x.shape[-1], x.shape[-2]):
        total = max((-(-n // s) - 1) * s + k - n, 0)
        pads += [total // 2, total - total // 2]
    return F.pad(x, pads)


def _std_conv(x: torch.Tensor, w: torch.Tensor, stride: int = 1) -> torch.Tensor:
    w = w - w.mean(dim=(1, 2, 3), keepdim=True)
    w = w / (w.std(dim=(1, 2, 3), keepdim=True) + 1e-5)  # unbiased std, as torch.std by default
    return F.conv2d(_same(x, w.shape[-1], stride), w, stride=stride)


def musiq_score(sd: dict[str, torch.Tensor], image01: np.ndarray, heads: int) -> float:
    """MOS of one [3, H, W] image in [0, 1], in float64."""
    p = {k: v.detach().to(torch.float64) for k, v in sd.items()}
    pix, pos, scale, mask = multiscale(image01)
    n = len(pos)
    # The per-patch network sees each padding token as the same zero patch: run it once for them.
    real = np.flatnonzero(mask)
    x = torch.from_numpy(np.concatenate([pix[real], np.zeros((1, pix.shape[1]))])).reshape(-1, 3, 32, 32)
    x = F.group_norm(_std_conv(x, p["conv_root.weight"], 2), 32, p["gn_root.weight"], p["gn_root.bias"], 1e-6)
    x = F.max_pool2d(_same(F.relu(x), 3, 2), 3, 2)

    def gn(t, name):
        return F.group_norm(t, 32, p[f"block1.{name}.weight"], p[f"block1.{name}.bias"], 1e-4)

    proj = gn(_std_conv(x, p["block1.conv_proj.weight"]), "gn_proj")
    y = F.relu(gn(_std_conv(x, p["block1.conv1.weight"]), "gn1"))
    y = F.relu(gn(_std_conv(y, p["block1.conv2.weight"]), "gn2"))
    x = F.relu(gn(_std_conv(y, p["block1.conv3.weight"]), "gn3") + proj)
    x = x.permute(0, 2, 3, 1).reshape(len(real) + 1, -1)
    tokens = x[-1].repeat(n, 1)
    tokens[torch.from_numpy(real)] = x[:-1]
    x = tokens
    x = x @ p["embedding.weight"].T + p["embedding.bias"]
    enc = "transformer_encoder."
    x = x + p[enc + "posembed_input.position_emb"][0][torch.from_numpy(pos)]
    x = x + p[enc + "scaleembed_input.scale_emb"][torch.from_numpy(scale)]
    x = torch.cat([p[enc + "cls"][0], x])
    m = torch.cat([torch.ones(1, dtype=torch.bool), torch.from_numpy(mask)])
    allowed = m[:, None] & m[None, :]
    d = x.shape[1]
    hd = d // heads
    i = 0
    while f"{enc}transformer.encoderblock_{i}.norm1.weight" in p:
        b = f"{enc}transformer.encoderblock_{i}."

        def lin(t, name, b=b):
            return t @ p[b + name + ".weight"].T + p[b + name + ".bias"]

        y = F.layer_norm(x, (d,), p[b + "norm1.weight"], p[b + "norm1.bias"], 1e-6)
        q, k, v = (lin(y, f"attention.{nm}").reshape(-1, heads, hd).transpose(0, 1) for nm in ("query", "key", "value"))
        logits = (q @ k.transpose(1, 2)) * hd ** -0.5
        logits = torch.where(allowed, logits, torch.tensor(-1e3, dtype=torch.float64))
        att = (logits.softmax(-1) @ v).transpose(0, 1).reshape(-1, d)
        x = x + lin(att, "attention.out")
        y = F.layer_norm(x, (d,), p[b + "norm2.weight"], p[b + "norm2.bias"], 1e-6)
        x = x + lin(F.gelu(lin(y, "mlp.fc1")), "mlp.fc2")
        i += 1
    x = F.layer_norm(x, (d,), p[enc + "encoder_norm.weight"], p[enc + "encoder_norm.bias"], 1e-6)
    return float(x[0] @ p["head.weight"][0] + p["head.bias"][0])


def vbench_video_value(sd: dict[str, torch.Tensor], clip: np.ndarray, heads: int) -> float:
    """VBench's per-video imaging_quality (MUSIQ's scale): mean over all frames."""
    return float(np.mean([musiq_score(sd, vbench_frame(f), heads) for f in clip]))
