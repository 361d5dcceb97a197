"""Small statistics the detectors share: count surprise, share bounds, and the SEISMIC memory kernel.

All pure functions of their arguments; no randomness, no clock.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np


def anscombe_z(observed: float, expected: float) -> float:
    """How many standard deviations a Poisson count sits above its expectation (variance-stabilised).

    2*(sqrt(x+3/8) - sqrt(mu+3/8)) is close to N(0, 1) for Poisson x even at small means, unlike
    (x-mu)/sqrt(mu), which overreacts when mu is tiny.
    """
    return 2.0 * (math.sqrt(observed + 0.375) - math.sqrt(expected + 0.375))


def anscombe_count(z: float, expected: float) -> float:
    """The count at which `anscombe_z(count, expected)` equals z (inverse of the above)."""
    root = z / 2.0 + math.sqrt(expected + 0.375)
    return root * root - 0.375 if root > 0 else 0.0


def wilson_bounds(successes: float, trials: float, z: float) -> tuple[float, float]:
    """Wilson score interval of a proportion: sane at small n, never outside [0, 1]."""
    if trials < 1e-9:
        return 0.0, 1.0
    p = min(max(successes / trials, 0.0), 1.0)
    z2 = z * z
    denominator = 1.0 + z2 / trials
    centre = (p + z2 / (2.0 * trials)) / denominator
    half = z * math.sqrt(max(p * (1.0 - p) / trials + z2 / (4.0 * trials * trials), 0.0)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def beta_binomial_z(successes: float, trials: float, share: float, overdispersion: float) -> float:
    """z of `successes` out of `trials` against a baseline share, allowing for over-dispersion.

    Variance n p (1-p) (1 + (n-1) rho): with rho > 0 a big brand's share may wander by a few points
    without every shift becoming "significant", which a bare binomial test would claim.
    """
    if trials <= 0:
        return 0.0
    share = min(max(share, 1e-6), 1.0 - 1e-6)
    variance = trials * share * (1.0 - share) * (1.0 + (trials - 1.0) * overdispersion)
    return (successes - trials * share) / math.sqrt(variance)


def seismic_cdf(age_s: float, s0_s: float, theta: float) -> float:
    """Integral of the SEISMIC memory kernel from 0 to age (Zhao et al., KDD 2015, eq. 2).

    phi(s) = c for s <= s0, c (s/s0)^-(1+theta) after; c normalises the integral to 1.
    """
    if age_s <= 0:
        return 0.0
    c = 1.0 / (s0_s * (1.0 + 1.0 / theta))
    if age_s <= s0_s:
        return c * age_s
    return c * s0_s + (c * s0_s / theta) * (1.0 - (age_s / s0_s) ** (-theta))


@lru_cache(maxsize=16)
def kernel_mixture(s0_s: float, theta: float, terms: int = 10) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Weights and rates of exponentials whose sum approximates the SEISMIC kernel.

    With phi(s) ~ sum_k w_k b_k exp(-b_k s), the sums sum_i n_i exp(-b_k (t - t_i)) update exactly in O(terms)
    per event and fit in a fixed-size state, where the exact power law would need every event's time.
    Fitted once per (s0, theta) by least squares on the CDF over 1 s .. 120 days, negative weights dropped;
    the weights sum to a little under 1: the rest is the power law's tail beyond months.
    """
    ages = np.geomspace(1.0, 120 * 86400.0, 400)
    target = np.array([seismic_cdf(a, s0_s, theta) for a in ages])
    rates = 1.0 / (s0_s * np.geomspace(0.05, 0.05 * 4.0 ** (terms - 1), terms))
    active = list(range(terms))
    weights = np.zeros(terms)
    for _ in range(terms):
        design = 1.0 - np.exp(-np.outer(ages, rates[active]))
        solution, *_ = np.linalg.lstsq(design, target, rcond=None)
        if (solution >= 0).all():
            weights[:] = 0.0
            weights[active] = solution
            break
        active = [k for k, w in zip(active, solution, strict=True) if w > 0]
    kept = [(float(w), float(b)) for w, b in zip(weights, rates, strict=True) if w > 0]
    return tuple(w for w, _ in kept), tuple(b for _, b in kept)
