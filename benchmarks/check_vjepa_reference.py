"""Cross-check vdmbench's V-JEPA features (JEDi) against the `vjepa` package's own modules.

Not a test (vdmbench does not depend on vjepa, which pins pandas, decord, opencv ...): a script to
rerun when either side changes. Needs the package importable, e.g. `pip install --no-deps vjepa==0.1.2`
or PYTHONPATH pointing at its unpacked wheel.
1. The 3-d sine-cosine table with uniform_power (JEDi's config) equals vjepa's get_3d_sincos_pos_embed.
2. vjepa's vit_huge / AttentiveClassifier have exactly vdmbench's keys and shapes (2 of the 32 blocks).
3. One random state dict in both (small width, the real 16 x 224 x 224 layout): vjepa's encoder +
   attentive pooler on ImageNet-normalized clips against vdmbench's extractor, for 16 frames at
   224 x 224, 12 frames at 240 x 320 and 20 frames at 160 x 160 (position table resampled).

Usage: OMP_NUM_THREADS=1 python benchmarks/check_vjepa_reference.py [--threads 1]
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace
from functools import partial

import numpy as np
import torch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    from vjepa.models.attentive_pooler import AttentiveClassifier as TheirProbe
    from vjepa.models.utils.pos_embs import get_3d_sincos_pos_embed
    from vjepa.models.vision_transformer import VisionTransformer

    from vdmbench.features.vjepa import (
        VIT_H,
        AttentiveClassifier,
        VJEPAEncoder,
        build_vjepa_features,
        init_random_,
        sincos_3d_table,
        vjepa_preprocess,
    )

    theirs_table = get_3d_sincos_pos_embed(1280, 14, 8, cls_token=False, uniform_power=True)
    ours_table = sincos_3d_table(1280, (8, 14, 14))[0].double().numpy()
    print(f"3-d sincos table (1280, 8x14x14): max diff {np.abs(theirs_table - ours_table).max():.2e} "
          "(ours stored in float32, as vjepa's pos_embed)")

    def their_encoder(**kw):
        base = dict(img_size=224, patch_size=16, num_frames=16, tubelet_size=2, embed_dim=1280, depth=32, num_heads=16,
                    mlp_ratio=4, qkv_bias=True, norm_layer=partial(torch.nn.LayerNorm, eps=1e-6), uniform_power=True)
        return VisionTransformer(**{**base, **kw})

    cfg2 = replace(VIT_H, depth=2)
    for name, theirs, ours in (("encoder", their_encoder(depth=2), VJEPAEncoder(cfg2)),
                               ("probe", TheirProbe(embed_dim=1280, num_heads=16, depth=1, num_classes=174),
                                AttentiveClassifier(cfg2))):
        a = {k: tuple(v.shape) for k, v in theirs.state_dict().items()}
        b = {k: tuple(v.shape) for k, v in ours.state_dict().items()}
        print(f"{name} keys: vjepa {len(a)}, vdmbench {len(b)}, identical: {a == b}")

    cfg = replace(VIT_H, embed_dim=96, depth=2, num_heads=4, mlp_hidden=384, probe_mlp_hidden=384)
    enc_state = init_random_(VJEPAEncoder(cfg), 3).state_dict()
    probe_state = init_random_(AttentiveClassifier(cfg), 4).state_dict()
    enc = their_encoder(embed_dim=96, depth=2, num_heads=4).eval()
    enc.load_state_dict(enc_state, strict=True)
    probe = TheirProbe(embed_dim=96, num_heads=4, depth=1, num_classes=174).eval()
    probe.load_state_dict(probe_state, strict=True)
    # Saved as the published files are: DDP / wrapper prefixes, under their checkpoint keys.
    torch.save({"target_encoder": {f"module.backbone.{k}": v for k, v in enc_state.items()}, "epoch": 300},
               "/tmp/vdmbench_vjepa_check_enc.pth.tar")
    torch.save({"classifier": {f"module.{k}": v for k, v in probe_state.items()}, "epoch": 20},
               "/tmp/vdmbench_vjepa_check_probe.pth.tar")
    extractor, _ = build_vjepa_features("vjepa", weights="/tmp/vdmbench_vjepa_check_enc.pth.tar",
                                        probe_weights="/tmp/vdmbench_vjepa_check_probe.pth.tar", config=cfg)
    gen = torch.Generator().manual_seed(0)
    for t, h, w in ((16, 224, 224), (12, 240, 320), (20, 160, 160)):
        videos = torch.randint(0, 256, (2, t, h, w, 3), generator=gen, dtype=torch.uint8)
        t0 = time.perf_counter()
        with torch.no_grad():
            want = probe.pooler(enc(vjepa_preprocess(videos))).squeeze(1).double()
        t1 = time.perf_counter()
        got = extractor(videos)
        t2 = time.perf_counter()
        print(f"{t}x{h}x{w}: max |vdmbench - vjepa| = {float((got - want).abs().max()):.3e} "
              f"(feature scale {float(want.abs().max()):.2f}); vjepa {t1 - t0:.2f} s, vdmbench {t2 - t1:.2f} s")


if __name__ == "__main__":
    main()
