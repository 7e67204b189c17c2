"""Cross-check vdmbench's VideoMAE-v2 features against cd-fvd's own code (needs `pip install cd-fvd`).

Not a test (vdmbench does not depend on cd-fvd): a script to rerun when either side changes.
1. cd-fvd's vit_giant_patch14_224(num_classes=174) has exactly vdmbench's ViT-g keys and shapes
   (at 2 blocks of the 40).
2. With one synthesized state dict loaded strictly into both (cd-fvd's VisionTransformer at a small
   width, the real 224 x 224 / patch 14 / tubelet 2 / 16-frame layout), cd-fvd's
   preprocess_videomae + forward_features and vdmbench's extractor agree, for 16 frames (the
   protocol), 12 frames (position table resampled in time) and 17 frames (odd count).

Usage: OMP_NUM_THREADS=1 python benchmarks/check_videomae_cdfvd.py [--threads 1]
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace
from functools import partial

import torch


def giant(ref, **overrides):
    """cd-fvd's VisionTransformer with vit_giant_patch14_224's arguments (and load_videomae_model's),
    some overridden (that function takes no depth or width of its own)."""
    kw = dict(img_size=224, patch_size=14, embed_dim=1408, depth=40, num_heads=16, mlp_ratio=48 / 11, qkv_bias=True,
              norm_layer=partial(torch.nn.LayerNorm, eps=1e-6), num_classes=174, all_frames=16, tubelet_size=2,
              use_mean_pooling=True)
    return ref.VisionTransformer(**{**kw, **overrides})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    from cdfvd.third_party.VideoMAEv2 import videomaev2_finetune as ref
    from cdfvd.third_party.VideoMAEv2.utils import preprocess_videomae

    from vdmbench.features.videomae import VIT_G, VideoMAEv2, build_videomae_features, init_random_

    # cd-fvd's model cannot be built on the meta device (it calls .item()), and 40 blocks take 4 GB:
    # ViT-g's width with 2 blocks shows every key and shape (the blocks are all alike).
    theirs = giant(ref, depth=2)
    ours = VideoMAEv2(replace(VIT_G, depth=2))
    their_keys = {k: tuple(v.shape) for k, v in theirs.state_dict().items()}
    our_keys = {k: tuple(v.shape) for k, v in ours.state_dict().items()}
    print(f"ViT-g keys (2 blocks): cd-fvd {len(their_keys)}, vdmbench {len(our_keys)}, "
          f"identical: {their_keys == our_keys}")

    cfg = replace(VIT_G, embed_dim=64, depth=2, num_heads=4, mlp_hidden=int(64 * 48 / 11))
    model = init_random_(VideoMAEv2(cfg), seed=7)
    state = model.state_dict()
    theirs = giant(ref, depth=2, embed_dim=64, num_heads=4).eval()
    theirs.load_state_dict(state, strict=True)
    path = "/tmp/vdmbench_videomae_check.pth"
    torch.save({"module": state}, path)
    extractor, _ = build_videomae_features("videomae-v2", weights=path, config=cfg)
    gen = torch.Generator().manual_seed(0)
    for frames in (16, 12, 17):
        videos = torch.randint(0, 256, (2, frames, 120, 160, 3), generator=gen, dtype=torch.uint8)
        t0 = time.perf_counter()
        with torch.no_grad():
            want = theirs.forward_features(preprocess_videomae(videos.numpy())).double()
        t1 = time.perf_counter()
        got = extractor(videos)
        t2 = time.perf_counter()
        print(f"T={frames}: max |vdmbench - cd-fvd| = {float((got - want).abs().max()):.3e} "
              f"(feature scale {float(want.abs().max()):.2f}); cd-fvd {t1 - t0:.2f} s, vdmbench {t2 - t1:.2f} s")


if __name__ == "__main__":
    main()
