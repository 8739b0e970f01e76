"""BOHB's kernel density estimator, in numpy: product kernels over continuous and categorical coordinates.

The facts follow HpBandSter's BOHB (which uses statsmodels' ``KDEMultivariate``): bandwidths by the normal reference
rule 1.06 * std * n^(-1 / (4 + d)) for every coordinate, categorical codes included, floored at a minimum
bandwidth; a Gaussian kernel for continuous coordinates in [0, 1] and the Aitchison-Aitken kernel for a categorical
one with c values (weight 1 - h for the same value, h / (c - 1) for another); densities as the mean over the data
of the product of the kernels. Two deliberate differences:

- c is the hyperparameter's number of values, not (as in statsmodels) the number of values present in the data,
  which divides by zero when all points share a value;
- ``categorical_cap``: the categorical bandwidth is capped at ``categorical_cap * (c - 1) / c``. Above (c - 1) / c
  the Aitchison-Aitken kernel weighs a matching value *less* than a non-matching one, and late in a run the normal
  reference rule puts most of NAS-Bench-201's edges there (../shared/FINDINGS.md); the default 0.625 caps five-way
  choices at 0.5, the cap measured to make BOHB work, and makes a matching value weigh at least 1 + 0.6 c times a
  non-matching one. ``None`` keeps HpBandSter's uncapped bandwidths.

Sampling (HpBandSter's): pick a point of the data; draw each continuous coordinate from a normal truncated to
[0, 1] around it with the bandwidth times ``bandwidth_factor``; keep each categorical value with probability 1 - h,
else draw one uniformly.
"""
from dataclasses import dataclass

import numpy as np
from scipy.special import ndtr, ndtri

_SQRT_2PI = np.sqrt(2 * np.pi)


def normal_reference_bandwidth(data: np.ndarray) -> np.ndarray:
    """Scott's rule as statsmodels computes it: 1.06 * std (ddof 0) * n^(-1 / (4 + d)), per coordinate."""
    n, d = data.shape
    return 1.06 * data.std(axis=0) * n ** (-1.0 / (4 + d))


def impute_inactive(data: np.ndarray, levels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """HpBandSter's imputation of inactive (NaN) coordinates: for each point, take its first NaN coordinate, copy
    all its NaN coordinates from a random point where that coordinate is active, and repeat until none is left;
    where no point has the coordinate active, draw a random legal value."""
    out = np.array(data, dtype=float)
    active = ~np.isnan(data)
    for row in np.flatnonzero(np.isnan(out).any(axis=1)):
        missing = np.flatnonzero(np.isnan(out[row]))
        while missing.size:
            first = missing[0]
            donors = np.flatnonzero(active[:, first])
            if donors.size:
                out[row, missing] = data[rng.choice(donors), missing]
            else:
                out[row, first] = rng.integers(levels[first]) if levels[first] else rng.random()
            missing = np.flatnonzero(np.isnan(out[row]))
    return out


@dataclass(frozen=True)
class KDE:
    """A fitted density: ``data`` (n x d, no NaN), per-coordinate ``bandwidth``, ``levels`` (0 = continuous)."""

    data: np.ndarray
    bandwidth: np.ndarray
    levels: np.ndarray

    @classmethod
    def fit(cls, data: np.ndarray, levels: np.ndarray, min_bandwidth: float = 1e-3,
            categorical_cap: float | None = 0.625) -> "KDE":
        """Normal reference bandwidths, floored at ``min_bandwidth``, categorical ones capped (module docstring)."""
        levels = np.asarray(levels, dtype=int)
        bandwidth = np.maximum(normal_reference_bandwidth(data), min_bandwidth)
        categorical = levels > 0
        if categorical_cap is not None and categorical.any():
            cap = categorical_cap * (levels[categorical] - 1) / np.maximum(levels[categorical], 1)
            bandwidth[categorical] = np.minimum(bandwidth[categorical], np.maximum(cap, min_bandwidth))
        return cls(np.asarray(data, dtype=float), bandwidth, levels)

    def pdf(self, points: np.ndarray) -> np.ndarray:
        """Density at each row of ``points``: mean over the data of the product of the per-coordinate kernels."""
        points = np.atleast_2d(points)
        diff = points[:, None, :] - self.data[None, :, :]  # points x data x coordinates
        categorical = self.levels > 0
        h = self.bandwidth
        kernel = np.empty(diff.shape)
        cont = ~categorical
        kernel[..., cont] = np.exp(-0.5 * (diff[..., cont] / h[cont]) ** 2) / (_SQRT_2PI * h[cont])
        if categorical.any():
            hc = h[categorical]
            other = hc / np.maximum(self.levels[categorical] - 1, 1)
            kernel[..., categorical] = np.where(diff[..., categorical] == 0, 1 - hc, other)
        return kernel.prod(axis=2).mean(axis=1)

    def sample(self, n: int, rng: np.random.Generator, bandwidth_factor: float = 3.0,
               min_bandwidth: float = 1e-3) -> np.ndarray:
        """``n`` points drawn around random data points (HpBandSter's sampler, module docstring)."""
        centres = self.data[rng.integers(len(self.data), size=n)]
        out = centres.copy()
        categorical = self.levels > 0
        h = np.maximum(self.bandwidth, min_bandwidth)
        cont = np.flatnonzero(~categorical)
        if cont.size:
            scale = bandwidth_factor * h[cont]
            m = centres[:, cont]
            # inverse-CDF draw from N(m, scale) truncated to [0, 1]; the bounds straddle m, so this is stable
            low, high = ndtr((0 - m) / scale), ndtr((1 - m) / scale)
            u = low + rng.random(m.shape) * (high - low)
            out[:, cont] = np.clip(m + scale * ndtri(u), 0.0, 1.0)
        cat = np.flatnonzero(categorical)
        if cat.size:
            keep = rng.random((n, cat.size)) < 1 - h[cat]
            redrawn = np.floor(rng.random((n, cat.size)) * self.levels[cat])
            out[:, cat] = np.where(keep, centres[:, cat], redrawn)
        return out
