"""JEDi, the JEPA Embedding Distance (Luo et al., ICLR 2025; PyPI `videojedi`).

JEDi = 100 * MMD^2 between the V-JEPA features (attentive-probe pooled, vdmbench.features.vjepa)
of generated and real clips, with the polynomial kernel k(x, y) = (<x, y> / d)^2 (degree 2,
gamma 1/d, coef 0: scikit-learn's polynomial_kernel defaults as videojedi calls it) and the biased
estimate: mean K_xx + mean K_yy - 2 mean K_xy over all pairs, diagonals included.

For this kernel the estimate has a closed form that streams: sum_ij (x_i . x_j)^2 = ||X^T X||_F^2,
so JEDi = 100 / d^2 * ||S_fake - S_real||_F^2 with S = (1/n) sum x x^T, the second-moment matrix.
The states are those sums (float64 d x d, constant in the number of clips, reduced across processes
by summation), exactly equal to videojedi's pairwise formula up to rounding (videojedi computes it
in float32 from float32 features; here float64).

Real clips come from `update_real(...)` or, when none were given, from the suite's reference set
(`context.reference`), cached on disk by reference id and extractor; generated clips' features are
cached by their sha256. The 95% CI is a bootstrap over generated clips (reference fixed); it keeps
each clip's features (d float32 per clip, exact: the extractor's outputs are float32).

Sample efficiency (`ladder: true`, the default; vdmbench.core.ladder): JEDi is also computed, with
its CI, on nested subsets of 64, 128, 256, ... generated clips (prefixes of one permutation drawn
with the context seed; the reference set always in full), stored in `describe()["ladder"]`, each
exactly what a fresh JEDi fed those clips (in that order, as one batch) computes, from the kept
features. `settled` follows the rule in `ladder_rule`: the value at n may differ from the value at
the largest size <= n/2 by at most half the 95% CI at n (without a CI, 5% of the value). The
ladder keeps the features even with `ci: false`; `ladder: false` and `ci: false` together keep the
state constant in n.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from vdmbench.core.errors import ConfigError, MetricInputError
from vdmbench.core.ladder import Interval, build_ladder, ladder_details
from vdmbench.features.cache import FeatureCache
from vdmbench.features.memory import extract
from vdmbench.features.vjepa import build_vjepa_features
from vdmbench.metrics.base import ClipBatch, MetricContext, Output, VideoMetric, check_uint8_videos

SCALE = 100.0  # videojedi's compute_metric multiplies the MMD^2 by 100
NOT_COMPARABLE = "not comparable with published JEDi"
MAX_BOOT_CLIPS = 20_000  # the bootstrap keeps an n x n kernel matrix (n^2 float64)

# `features:` backends: what each measures; weights files; protocol source; published numbers it matches.
FEATURE_BACKENDS = {
    "vjepa": "V-JEPA ViT-H/16 (self-supervised feature prediction) pooled by its SSv2 attentive probe (1280-d): "
             "motion-aware video features; vith16.pth.tar + ssv2-probe.pth.tar (facebookresearch/jepa); "
             "videojedi (PyPI, Luo et al. ICLR 2025: /255, ImageNet mean/std, all frames, no resize); comparable "
             "with JEDi numbers from videojedi on the same frames and size",
    "random-vjepa": "V-JEPA layout at width 192, depth 4, seeded random weights (offline); not comparable with "
                    "published numbers",
}


# --- the math (float64 numpy) --------------------------------------------------------------------

def jedi_from_moments(s_fake: np.ndarray, s_real: np.ndarray, d: int) -> float:
    """100 * MMD^2 (biased) for k(x, y) = (<x, y> / d)^2, from the second-moment matrices E[x x^T]."""
    diff = np.asarray(s_fake, np.float64) - np.asarray(s_real, np.float64)
    return SCALE * float(np.sum(diff * diff)) / d**2


def jedi_pairwise(fake: np.ndarray, real: np.ndarray) -> float:
    """The same number from the kernel matrices, as videojedi computes it (for checks, O(n^2) memory)."""
    fake, real = np.asarray(fake, np.float64), np.asarray(real, np.float64)
    d = fake.shape[1]

    def k(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return (a @ b.T / d) ** 2

    return SCALE * float(k(fake, fake).mean() + k(real, real).mean() - 2 * k(fake, real).mean())


def bootstrap_jedi(fake: np.ndarray, s_real: np.ndarray, n_boot: int, seed: int) -> np.ndarray:
    """JEDi of `n_boot` resamples (with replacement) of the generated clips, reference fixed.

    With counts w of a resample: ||S* - S_r||^2 = w^T G w / n^2 - 2 w . q / n + ||S_r||^2, where
    G_ij = (x_i . x_j)^2 and q_i = x_i^T S_r x_i: one n x n matrix instead of n_boot d x d ones."""
    fake = np.asarray(fake, np.float64)
    n, d = fake.shape
    gram = (fake @ fake.T) ** 2
    q = np.einsum("ij,jk,ik->i", fake, s_real, fake)
    rr = float(np.sum(s_real * s_real))
    rng = np.random.default_rng(seed)
    out = np.empty(n_boot)
    for b in range(n_boot):
        w = np.bincount(rng.integers(0, n, n), minlength=n).astype(np.float64)
        out[b] = SCALE * (w @ gram @ w / n**2 - 2 * (w @ q) / n + rr) / d**2
    return out


# --- the metric ----------------------------------------------------------------------------------

class JEDi(VideoMetric):
    """JEPA Embedding Distance: 100 x polynomial MMD^2 on V-JEPA ViT-H/16 features (SSv2 attentive probe).

    Options: features (FEATURE_BACKENDS), pooling, resize, weights, probe_weights, weights_sha256,
    probe_sha256, n_boot, ci, ladder."""

    name = "jedi"
    per_sample = False
    feature_backends = FEATURE_BACKENDS
    inputs = frozenset({"reference"})
    min_frames = 2  # one tubelet
    outputs = (Output("jedi", higher_is_better=False, range=(0.0, float("inf")),
                      description="100 x polynomial-kernel MMD^2 between V-JEPA features of generated and real clips"),)
    fake_moment: torch.Tensor
    fake_n: torch.Tensor
    real_moment: torch.Tensor
    real_n: torch.Tensor
    fake_feats: list[torch.Tensor]  # a tensor after a distributed sync

    def __init__(self, context: MetricContext | None = None, *, features: str = "vjepa", pooling: str = "attentive",
                 resize: int | list[int] | None = None, weights: str | None = None, probe_weights: str | None = None,
                 weights_sha256: str | None = None, probe_sha256: str | None = None, n_boot: int = 200,
                 ci: bool = True, ladder: bool = True, **kwargs: Any) -> None:
        super().__init__(context, **kwargs)
        ctx = self.context
        if int(n_boot) != n_boot or n_boot < 0:
            raise ConfigError(f"jedi: n_boot must be a whole number >= 0, got {n_boot!r}")
        if not isinstance(ladder, bool):
            raise ConfigError(f"jedi: ladder must be true or false, got {ladder!r}")
        self.n_boot, self.ci, self.ladder = int(n_boot), bool(ci), ladder
        weights = weights or ctx.weights_path.get(features)
        probe_weights = probe_weights or ctx.weights_path.get("vjepa-ssv2-probe")
        size_key = tuple(resize) if isinstance(resize, list) else resize  # hashable
        key = ("vjepa", features, pooling, size_key, weights, probe_weights, weights_sha256, probe_sha256, ctx.seed,
               ctx.device, ctx.batch_size, ctx.precision)
        self.extractor, info = ctx.shared.model(key, lambda: build_vjepa_features(
            features, pooling=pooling, resize=resize, weights=weights, probe_weights=probe_weights,
            weights_sha256=weights_sha256, probe_sha256=probe_sha256, seed=ctx.seed, device=ctx.device,
            batch_size=ctx.batch_size, precision=ctx.precision,
        ))
        self.info = dict(info)
        self.cache = FeatureCache(ctx.cache_dir, f"vjepa-{self.extractor.id}")
        self.summary: dict[str, Any] = {}
        d = self.extractor.dim
        for side in ("fake", "real"):
            self.add_state(f"{side}_moment", torch.zeros(d, d, dtype=torch.float64), dist_reduce_fx="sum")
            self.add_state(f"{side}_n", torch.zeros((), dtype=torch.float64), dist_reduce_fx="sum")
        self.keep_feats = self.ci or self.ladder  # the bootstrap and the ladder need each clip's features
        if self.keep_feats:
            self.add_state("fake_feats", [], dist_reduce_fx="cat")

    @property
    def comparable(self) -> bool:
        return bool(self.info.get("comparable", False))

    def describe(self) -> dict[str, Any]:
        d = {**super().describe(), **self.info, "reference_id": self.context.reference_id, **self.summary}
        d["kernel"] = "polynomial degree 2, gamma 1/d, coef 0; biased MMD^2 x 100"
        if not self.comparable:
            d["label"] = NOT_COMPARABLE
        return d

    # -- features ------------------------------------------------------------------------------

    def _videos(self, data: ClipBatch | torch.Tensor) -> tuple[torch.Tensor, list[str]]:
        if isinstance(data, ClipBatch):
            videos = self.check_batch(data)
            return videos, data.sha256 if len(data.sha256) == len(data) else []
        videos = check_uint8_videos(data, self.name)
        if videos.shape[1] < self.min_frames:
            raise MetricInputError(f"jedi: needs at least {self.min_frames} frames per clip, got {videos.shape[1]}")
        return videos, []

    def _extract(self, videos: torch.Tensor) -> torch.Tensor:
        return extract(self.extractor, videos, str(self.info.get("features", "vjepa")))

    def features(self, data: ClipBatch | torch.Tensor) -> torch.Tensor:
        """float64 [B, d] features of uint8 clips, read from / written to the cache by sha256."""
        videos, shas = self._videos(data)
        if not (self.cache.enabled and shas):
            return self._extract(videos)
        keys = [f"clip|{s}|{tuple(videos.shape[1:])}" for s in shas]
        found = [self.cache.get(k) for k in keys]
        todo = [i for i, f in enumerate(found) if f is None]
        if todo:
            for i, f in zip(todo, self._extract(videos[todo])):
                found[i] = arr = f.numpy()
                self.cache.put(keys[i], arr)
        return torch.from_numpy(np.stack([f for f in found if f is not None])).to(torch.float64)

    def reference_features(self) -> np.ndarray:
        """The suite's reference clips' features, cached on disk by (reference id, extractor)."""
        ctx = self.context
        if ctx.reference is None:
            raise MetricInputError("jedi: no real clips: give the suite a 'reference' set, or call update_real() "
                                   "with real videos")
        key = f"reference|{ctx.reference_id}" if ctx.reference_id else None
        if key is not None:
            hit = self.cache.get(key)
            if hit is not None:
                return hit
        parts = [self._extract(self._videos(b)[0]).numpy() for b in ctx.reference()]
        feats = np.concatenate(parts) if parts else np.zeros((0, self.extractor.dim))
        if key is not None and len(feats):
            self.cache.put(key, feats)
        return feats

    # -- states --------------------------------------------------------------------------------

    def _add(self, side: str, f: torch.Tensor) -> None:
        f = f.to(torch.float64)
        setattr(self, f"{side}_moment", getattr(self, f"{side}_moment") + f.T @ f)
        setattr(self, f"{side}_n", getattr(self, f"{side}_n") + len(f))

    def update(self, batch: ClipBatch | torch.Tensor) -> None:
        """Add generated clips (a ClipBatch or uint8 [B, T, H, W, 3])."""
        f = self.features(batch).to(self.fake_moment.device)
        self._add("fake", f)
        if self.keep_feats:
            self.fake_feats.append(f.to(torch.float32))

    def update_real(self, batch: ClipBatch | torch.Tensor) -> None:
        """Add real clips (instead of the suite's reference set)."""
        self._add("real", self.features(batch).to(self.real_moment.device))

    def _jedi(self, moment: np.ndarray, n: int, feats: np.ndarray | None, s_real: np.ndarray) -> Interval:
        """JEDi of generated clips given by sum x x^T (and float32 features for the CI) against the
        fixed real second moment: value, ci_low, ci_high (None, None without a CI)."""
        value = jedi_from_moments(moment / n, s_real, self.extractor.dim)
        if not (self.ci and self.n_boot > 0 and 2 <= n <= MAX_BOOT_CLIPS) or feats is None:
            return value, None, None
        boot = bootstrap_jedi(feats, s_real, self.n_boot, self.context.seed)
        low, high = (float(q) for q in np.quantile(boot, [0.025, 0.975]))
        return value, low, high

    def _ladder(self, n: int, feats: np.ndarray, full: Interval, s_real: np.ndarray) -> dict[str, Any]:
        d = feats.shape[1]

        def on_subset(idx: np.ndarray) -> Interval:
            f = torch.from_numpy(feats[idx]).to(torch.float64)  # a fresh JEDi's state after update() with these
            moment = torch.zeros(d, d, dtype=torch.float64) + f.T @ f
            return self._jedi(moment.numpy(), len(idx), feats[idx], s_real)

        return ladder_details("JEDi", build_ladder(n, self.context.seed, full, on_subset))

    def compute(self) -> dict[str, float]:
        n = int(self.fake_n)
        if n < 1:
            raise MetricInputError("jedi: no generated clips were scored")
        if float(self.real_n) > 0:
            n_real = int(self.real_n)
            s_real = self.real_moment.cpu().numpy() / n_real
        else:
            ref = self.reference_features().astype(np.float64)
            if len(ref) < 1:
                raise MetricInputError("jedi: the reference set has no clips")
            n_real, s_real = len(ref), ref.T @ ref / len(ref)
        feats = None
        if self.keep_feats:
            state: Any = self.fake_feats
            feats = (torch.cat(state) if isinstance(state, list) else state).cpu().numpy()  # a tensor after a sync
        full = self._jedi(self.fake_moment.cpu().numpy(), n, feats, s_real)
        value, low, high = full
        result: dict[str, float] = {"jedi": value}
        self.summary = {"n": n, "n_reference": n_real}
        if low is not None and high is not None:
            result["jedi_ci_low"], result["jedi_ci_high"] = low, high
            self.summary.update(ci_low=low, ci_high=high,
                                ci=f"bootstrap over generated clips ({self.n_boot} resamples, reference fixed), 95%")
        elif self.ci and self.n_boot > 0 and n > MAX_BOOT_CLIPS:
            self.summary["note"] = f"no CI: the bootstrap keeps an n x n matrix and n = {n} > {MAX_BOOT_CLIPS}"
        if self.ladder and feats is not None:
            self.summary.update(self._ladder(n, feats, full, s_real))
        return result


METRICS = [JEDi]
