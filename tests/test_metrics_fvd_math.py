"""Fréchet distance and polynomial MMD: exact against reference formulas (no I3D involved)."""

import numpy as np
import pytest
import scipy.linalg
import torch

from vdmbench.metrics.fvd import (
    _sqrt_eigenvalues,
    bootstrap_fvd,
    frechet_distance,
    polynomial_mmd,
    stats_from_sums,
    trace_sqrt_product,
)


def _gaussians(n, d, seed, shift=0.0):
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(d, d)) / np.sqrt(d)
    return rng.normal(size=(n, d)) @ a + shift


def _stats(x, ddof=1):
    return x.mean(0), np.cov(x, rowvar=False, ddof=ddof)


def _scipy_fd(mu1, s1, mu2, s2):
    covmean = scipy.linalg.sqrtm(s1 @ s2)
    covmean = covmean.real
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_frechet_matches_scipy_sqrtm(seed):
    x, y = _gaussians(500, 32, seed), _gaussians(400, 32, seed + 10, shift=0.3)
    ours = frechet_distance(*_stats(x), *_stats(y))
    ref = _scipy_fd(*_stats(x), *_stats(y))
    assert abs(ours - ref) / ref < 1e-6


def test_frechet_identical_sets_is_zero_and_symmetric():
    x, y = _gaussians(300, 24, 3), _gaussians(300, 24, 4, shift=0.1)
    sx, sy = _stats(x), _stats(y)
    assert frechet_distance(*sx, *sx) == pytest.approx(0.0, abs=1e-9)
    assert frechet_distance(*sx, *sy) == pytest.approx(frechet_distance(*sy, *sx), rel=1e-10)


def test_frechet_rank_deficient_is_stable():
    # 10 clips in 64 dimensions: singular covariances (rank 9), where sqrtm(s1 @ s2) goes complex.
    x, y = _gaussians(10, 64, 5), _gaussians(12, 64, 6, shift=0.2)
    sx, sy = _stats(x), _stats(y)
    v = frechet_distance(*sx, *sy)
    assert np.isfinite(v) and v > 0
    assert frechet_distance(*sx, *sx) == pytest.approx(0.0, abs=1e-9)
    # Independent route: tr sqrt(sx sy) from the eigenvalues of the small Gram matrix Xc Sy Xc'/(n-1).
    xc = x - x.mean(0)
    w = np.linalg.eigvalsh(xc @ sy[1] @ xc.T / (len(x) - 1))
    assert trace_sqrt_product(sx[1], sy[1]) == pytest.approx(_sqrt_eigenvalues(w).sum(), rel=1e-8)
    assert frechet_distance(*sx, *sy) == pytest.approx(frechet_distance(*sy, *sx), rel=1e-8)
    # Exactly zero covariance (one repeated clip) is fine too.
    z = np.zeros((64, 64))
    assert frechet_distance(np.zeros(64), z, np.ones(64), z) == pytest.approx(64.0)


@pytest.mark.parametrize("ddof", [1, 0])
def test_stats_from_sums_match_numpy_cov(ddof):
    x = _gaussians(50, 8, 7, shift=3.0)
    t = torch.from_numpy(x)
    mu, cov = stats_from_sums(t.sum(0).numpy(), (t.T @ t).numpy(), len(x), ddof)
    np.testing.assert_allclose(mu, x.mean(0), rtol=1e-12)
    np.testing.assert_allclose(cov, np.cov(x, rowvar=False, ddof=ddof), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("n,d", [(20, 8), (6, 16)])  # n >= d and the Gram-matrix shortcut n < d
def test_bootstrap_replicates_equal_direct_fvd(n, d):
    fake, real = _gaussians(n, d, 8), _gaussians(40, d, 9)
    mu_r, cov_r = _stats(real)
    boot = bootstrap_fvd(fake, mu_r, cov_r, 1, 3, seed=42)
    rng = np.random.default_rng(42)
    for b in range(3):
        x = fake[rng.integers(0, n, n)]
        assert boot[b] == pytest.approx(frechet_distance(*_stats(x), mu_r, cov_r), rel=1e-7, abs=1e-10)


def test_polynomial_mmd_matches_torchmetrics_kid():
    from torchmetrics.image.kid import poly_mmd

    x, y = _gaussians(40, 16, 10), _gaussians(40, 16, 11, shift=0.5)  # KID: equal sizes
    ref = float(poly_mmd(torch.from_numpy(x), torch.from_numpy(y), degree=3, gamma=None, coef=1.0))
    assert polynomial_mmd(y, x) == pytest.approx(ref, rel=1e-9)
