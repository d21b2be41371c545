"""Decision rules that can fail, fixed before the runs (issue 22; ``docs/preregistration.md``).

A claim's answer comes from a confidence interval of the effect θ (method − baseline, paired on
seeds) and a **smallest effect of interest** δ > 0, named with its reason before any data:

- :func:`improves` — "A improves over B": *supports* when the lower end clears 0; *refutes* when the
  upper end lies below δ (any gain is smaller than the smallest that matters — with enough seeds a
  true effect of 0 is refuted, which a threshold of 0 alone can never do); otherwise *undecided*.
  A refutation takes precedence when the interval lies in (0, δ): a real but negligible gain.
- :func:`equivalent` — "negligible effect" / "does not harm" read as equivalence, the two one-sided
  tests (Schuirmann 1987): *supports* when the 90 % interval lies inside (−δ, δ), *refutes* when it
  lies wholly outside, otherwise *undecided*.
- :func:`holm` — Holm's (1979) step-down adjustment of p-values across levels (the "refutes" side of
  an "at every level" claim; its "supports" side is an intersection–union test, which needs none:
  :func:`stalenb.stats.intersection_union`).
- :func:`seeds_for_power` — the number of paired seeds for a given power at δ from a pilot's paired
  standard deviation (exact, with the noncentral t distribution); :func:`seeds_for_equivalence`,
  the same for TOST at a true difference of 0.
- :func:`valid_arm` — the validity gate: an arm with a diverged run, or below a sanity accuracy,
  gets no accuracy verdict (its divergence is a finding of its own).

Example:
    >>> improves(0.004, 0.021, delta=0.01), improves(-0.003, 0.006, delta=0.01)
    ('supports', 'refutes')
    >>> equivalent(-0.004, 0.006, delta=0.01)
    'supports'
    >>> seeds_for_power(sd=0.02, delta=0.01)
    34
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats

ANSWERS = ("supports", "refutes", "undecided")


def _interval(low, high, delta) -> tuple[float, float, float]:
    low, high, delta = float(low), float(high), float(delta)
    if not (math.isfinite(delta) and delta > 0):
        raise ValueError(f"delta must be a finite number > 0 (the smallest effect of interest), got {delta!r}")
    if math.isfinite(low) and math.isfinite(high) and low > high:
        raise ValueError(f"need low <= high, got [{low}, {high}]")
    return low, high, delta


def improves(low: float, high: float, *, delta: float) -> str:
    """The answer to "improves" from an interval [low, high] of the gain (see the module doc).

    Example:
        >>> improves(0.002, 0.008, delta=0.01)   # significant but below δ: negligible
        'refutes'
    """
    low, high, delta = _interval(low, high, delta)
    if math.isfinite(high) and high < delta:
        return "refutes"
    if math.isfinite(low) and low > 0:
        return "supports"
    return "undecided"


def equivalent(low: float, high: float, *, delta: float) -> str:
    """The answer to "negligible" / "does not harm" from the 90 % interval [low, high] (TOST)."""
    low, high, delta = _interval(low, high, delta)
    if low >= delta or high <= -delta:  # wholly outside, also with an infinite far end
        return "refutes"
    if -delta < low and high < delta:
        return "supports"
    return "undecided"


def holm(pvalues) -> np.ndarray:
    """Holm's step-down adjusted p-values (reject where adjusted < α; family-wise error ≤ α).

    Example:
        >>> holm([0.01, 0.04, 0.03]).round(2).tolist()
        [0.03, 0.06, 0.06]
    """
    p = np.asarray(pvalues, dtype=float)
    if p.ndim != 1 or not len(p) or np.any((p < 0) | (p > 1) | ~np.isfinite(p)):
        raise ValueError(f"pvalues must be a non-empty list of numbers in [0, 1], got {pvalues!r}")
    order = np.argsort(p, kind="stable")
    m = len(p)
    adjusted = np.maximum.accumulate((m - np.arange(m)) * p[order]).clip(max=1.0)
    out = np.empty(m)
    out[order] = adjusted
    return out


def power_paired(n: int, *, sd: float, delta: float, alpha: float = 0.05) -> float:
    """Power of the two-sided paired t-test with ``n`` pairs to detect a mean difference ``delta``
    when the paired differences have standard deviation ``sd`` (noncentral t, exact)."""
    if n < 2:
        raise ValueError(f"n must be >= 2 pairs, got {n!r}")
    df = n - 1
    crit = stats.t.ppf(1 - alpha / 2, df)
    nc = delta / sd * math.sqrt(n)
    return float(stats.nct.sf(crit, df, nc) + stats.nct.cdf(-crit, df, nc))


def seeds_for_power(*, sd: float, delta: float, alpha: float = 0.05, power: float = 0.8,
                    cap: int = 100_000) -> int:
    """Smallest number of paired seeds whose two-sided paired t-test at level ``alpha`` has ``power``
    at an effect of ``delta``, given a paired standard deviation ``sd`` (from a pilot). The same n
    makes the 95 % interval's upper end fall below δ with that probability when the true effect is
    0, which is what :func:`improves` needs to refute.

    Example (Cohen's d = δ/sd = 0.5 and 0.2: the textbook 34 and 199 pairs):
        >>> seeds_for_power(sd=1.0, delta=0.5), seeds_for_power(sd=1.0, delta=0.2)
        (34, 199)
    """
    for name, value in (("sd", sd), ("delta", delta)):
        if not (math.isfinite(value) and value > 0):
            raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    if not (0 < alpha < 1 and 0 < power < 1):
        raise ValueError(f"alpha and power must lie in (0, 1), got alpha={alpha!r}, power={power!r}")
    z = stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(power)
    n = max(2, int(math.floor((z * sd / delta) ** 2)))  # the normal approximation, from below
    while power_paired(n, sd=sd, delta=delta, alpha=alpha) < power:
        n += 1
        if n > cap:
            raise ValueError(f"more than cap={cap} seeds needed (sd={sd}, delta={delta})")
    return n


def power_equivalence(n: int, *, sd: float, delta: float, alpha: float = 0.05) -> float:
    """Power of TOST at level ``alpha`` (the 1 − 2α interval inside (−δ, δ)) with ``n`` paired seeds
    when the true difference is 0 and the paired SD is ``sd``: exact, integrating over the sample SD
    s (χ² with n − 1 degrees of freedom) the normal probability that |mean| < δ − t·s/√n."""
    from scipy import integrate

    if n < 2:
        raise ValueError(f"n must be >= 2 pairs, got {n!r}")
    df, t = n - 1, stats.t.ppf(1 - alpha, n - 1)

    def given(u):  # u = (n − 1)·s²/σ²
        room = delta - t * sd * math.sqrt(u / df) / math.sqrt(n)
        return max(0.0, 2 * stats.norm.cdf(room * math.sqrt(n) / sd) - 1) * stats.chi2.pdf(u, df)

    top = df * (delta * math.sqrt(n) / (t * sd)) ** 2  # beyond it the interval cannot fit inside
    return float(integrate.quad(given, 0, top, limit=200)[0])


def seeds_for_equivalence(*, sd: float, delta: float, alpha: float = 0.05, power: float = 0.8,
                          cap: int = 100_000) -> int:
    """Smallest number of paired seeds for which TOST (:func:`equivalent` on the 90 % interval) supports
    "negligible" with ``power`` when the true difference is 0 — more than :func:`seeds_for_power`
    asks at the same σ and δ (about (z₀.₉₅ + z₀.₉₀)² against (z₀.₉₇₅ + z₀.₈₀)²).

    Example:
        >>> seeds_for_equivalence(sd=1.0, delta=0.5) > seeds_for_power(sd=1.0, delta=0.5)
        True
    """
    for name, value in (("sd", sd), ("delta", delta)):
        if not (math.isfinite(value) and value > 0):
            raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    z = stats.norm.ppf(1 - alpha) + stats.norm.ppf(1 - (1 - power) / 2)
    n = max(2, int(math.floor((z * sd / delta) ** 2)) - 2)
    while power_equivalence(n, sd=sd, delta=delta, alpha=alpha) < power:
        n += 1
        if n > cap:
            raise ValueError(f"more than cap={cap} seeds needed (sd={sd}, delta={delta})")
    return n


def valid_arm(final_accuracy, diverged, *, sanity: float) -> bool:
    """The validity gate: True when no run of the arm diverged and every run ends at or above the
    ``sanity`` accuracy (e.g. twice chance); otherwise the arm gets no accuracy verdict."""
    acc = np.asarray(final_accuracy, dtype=float)
    div = np.asarray(diverged, dtype=bool)
    if acc.shape != div.shape or not acc.size:
        raise ValueError("need one final accuracy and one diverged flag per run (at least one run)")
    return bool(not div.any() and np.all(np.isfinite(acc)) and np.all(acc >= sanity))


__all__ = ["ANSWERS", "improves", "equivalent", "holm", "power_paired", "seeds_for_power", "power_equivalence",
           "seeds_for_equivalence", "valid_arm"]
