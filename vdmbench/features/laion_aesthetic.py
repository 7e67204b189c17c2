"""The LAION aesthetic predictor's linear head, as VBench's aesthetic_quality loads it.

VBench (vbench/aesthetic_quality.py, get_aesthetic_model) builds `nn.Linear(768, 1)` and loads
`sa_0_4_vit_l_14_linear.pth` into it: a torch state dict {"weight": [1, 768], "bias": [1]} that
maps an L2-normalized CLIP ViT-L/14 image embedding to a score of about 1..10. VBench keeps it in
its cache at `aesthetic_model/emb_reader/sa_0_4_vit_l_14_linear.pth` and downloads it from LAION's
GitHub repository. No sha256 is published for it (LAION-AI/aesthetic-predictor publishes none, and
VBench checks none), so it is not pinned: never downloaded automatically; a local copy is accepted
and its sha256 recorded with the results (pin one with the metric's `weights_sha256`).
"""

from __future__ import annotations

import os
from typing import Any

import torch
from torch import nn

from vdmbench.core.errors import WeightsError
from vdmbench.features.weights import WeightSpec, load_state_dict, resolve

AESTHETIC_HEAD = WeightSpec(
    "laion-aesthetic-vit-l-14-linear", "sa_0_4_vit_l_14_linear.pth",
    "https://github.com/LAION-AI/aesthetic-predictor/blob/main/sa_0_4_vit_l_14_linear.pth?raw=true", None,
    "LAION aesthetic predictor v1: linear head (768 -> 1) on normalized CLIP ViT-L/14 image embeddings",
    vbench_path="aesthetic_model/emb_reader/sa_0_4_vit_l_14_linear.pth",
)
EMBED_DIM = 768  # CLIP ViT-L/14's image embedding: the published head's input


def head_from_state_dict(state: dict[str, torch.Tensor], source: str, in_features: int = EMBED_DIM) -> nn.Linear:
    """nn.Linear(in_features, 1) holding `state` (strict: exactly `weight` [1, in] and `bias` [1])."""
    expected = {"weight": (1, in_features), "bias": (1,)}
    for key in state:
        if key not in expected:
            raise WeightsError(f"{source}: not a LAION aesthetic head: unexpected key {key!r} (expected exactly "
                               f"'weight' [1, {in_features}] and 'bias' [1], as in {AESTHETIC_HEAD.filename})")
    for key, shape in expected.items():
        if key not in state:
            raise WeightsError(f"{source}: not a LAION aesthetic head: missing key {key!r}")
        if tuple(state[key].shape) != shape:
            raise WeightsError(f"{source}: not a LAION aesthetic head for {in_features}-d embeddings: {key!r} has "
                               f"shape {list(state[key].shape)}, expected {list(shape)}")
    head = nn.Linear(in_features, 1)
    head.load_state_dict({k: v.to(torch.float32) for k, v in state.items()}, strict=True)
    return head.eval()


def load_aesthetic_head(weights: str | os.PathLike | None = None, weights_sha256: str | None = None,
                        in_features: int = EMBED_DIM) -> tuple[nn.Linear, dict[str, Any]]:
    """The published head, found by the weights resolver (explicit path > $VDMBENCH_WEIGHTS >
    ~/.cache/vdmbench > VBench's cache), and what was loaded."""
    found = resolve(AESTHETIC_HEAD, weights, sha256=weights_sha256)
    head = head_from_state_dict(load_state_dict(found.path), str(found.path), in_features)
    return head, {"head_weights": str(found.path), "head_sha256": found.sha256, "head_source": found.source}


def random_aesthetic_head(seed: int, in_features: int = EMBED_DIM) -> nn.Linear:
    """A head with seeded random weights (for runs that asked for `pretrained: random`): weights
    scaled so normalized embeddings give scores of order 1..10, like the published head's."""
    g = torch.Generator().manual_seed(seed)
    head = nn.Linear(in_features, 1)
    with torch.no_grad():
        head.weight.copy_(torch.randn(1, in_features, generator=g) * (2.0 / in_features ** 0.5))
        head.bias.fill_(5.0)
    return head.eval()
