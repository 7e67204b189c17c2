"""Random-weight CLIP checkpoints in OpenAI's published format, made once per test session.

OpenAI's `ViT-B-32.pt` is a TorchScript archive of the CLIP model with fp16 weights; here an
open_clip ViT-B-32 with seeded random weights is converted to fp16 the same way (linear, conv and
attention weights, the projections) and saved with `torch.jit.script` + `torch.jit.save`.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import torch

SEED = 1234


def _session_dir() -> Path:
    # One folder per test process, shared by every test module that asks, removed at exit.
    import atexit
    import shutil
    import tempfile

    root = Path(tempfile.mkdtemp(prefix="vdmbench-test-openai-clip-"))
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    return root


def fp16_clip_model(seed: int = SEED):
    """open_clip ViT-B-32 (QuickGELU) with seeded random weights, held in fp16 as OpenAI's file holds them.

    The weights are drawn directly (scaled normals; LayerNorm gains near 1) instead of open_clip's
    initialisation, which takes seconds on a busy CPU; the architecture and keys are open_clip's."""
    import open_clip
    from open_clip.model import CLIP

    with torch.device("meta"):
        model = CLIP(**open_clip.get_model_config("ViT-B-32"), quick_gelu=True)
    model = model.to_empty(device="cpu")
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        model.attn_mask.copy_(torch.full(model.attn_mask.shape, float("-inf")).triu_(1))
        for name, p in model.named_parameters():
            if name == "logit_scale":
                p.fill_(4.6052)  # ln(100), like OpenAI's
            elif name.endswith(".bias") or (p.ndim == 1 and "ln" not in name):
                p.copy_(torch.randn(p.shape, generator=g) * 0.02)
            elif "ln" in name:  # LayerNorm gains
                p.copy_(1.0 + torch.randn(p.shape, generator=g) * 0.05)
            else:
                fan_in = p[0].numel() if p.ndim > 1 else p.numel()
                p.copy_(torch.randn(p.shape, generator=g) / fan_in ** 0.5)
    open_clip.model.convert_weights_to_lp(model, dtype=torch.float16)
    with torch.no_grad():  # stored at fp16's resolution, as in OpenAI's file
        model.logit_scale.copy_(model.logit_scale.half().float())
    return model.eval()


_CACHE: dict[str, Any] = {}


def vit_b32_archive() -> tuple[Path, dict[str, torch.Tensor]]:
    """(path of a TorchScript archive like OpenAI's ViT-B-32.pt, its state dict) — built once per process."""
    if "archive" not in _CACHE:
        path = _session_dir() / "ViT-B-32.pt"
        model = fp16_clip_model()
        state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        if not path.is_file():
            # OpenAI's archive holds no causal-mask entry: keep the mask as a plain attribute, not a buffer.
            mask = model.attn_mask
            del model._buffers["attn_mask"]
            model.attn_mask = mask
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", FutureWarning)
                torch.jit.save(torch.jit.script(model), str(path))
        _CACHE["archive"] = (path, state)
    return _CACHE["archive"]


def float64_reference():
    """The archive's weights (fp16, upcast) in an open_clip ViT-B-32 run in float64: the tests' reference
    network, built without vdmbench's loader. Built once per process."""
    if "float64" not in _CACHE:
        import open_clip
        from open_clip.model import CLIP

        _, state = vit_b32_archive()
        with torch.device("meta"):
            model = CLIP(**open_clip.get_model_config("ViT-B-32"), quick_gelu=True)
        model = model.to_empty(device="cpu")
        with torch.no_grad():
            model.attn_mask.copy_(torch.full(model.attn_mask.shape, float("-inf")).triu_(1))
        model.load_state_dict({k: v.float() for k, v in state.items()})
        _CACHE["float64"] = (model.double().eval(), {})
    return _CACHE["float64"][0]


def clip_metric_context():
    """One MetricContext for the tests that build CLIP metrics from the archive: the run-wide model
    sharing (context.shared) then loads the checkpoint once per process, as in a real run."""
    if "context" not in _CACHE:
        from vdmbench.metrics import MetricContext

        _CACHE["context"] = MetricContext(seed=0)
    return _CACHE["context"]
