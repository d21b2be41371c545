"""The statistics behind the ledger's intervals (notebooks 05–06): t-intervals, paired differences,
intersection–union over levels, and the fair-comparison helpers of notebook 05.

- :func:`ci95` — mean and 95 % t-interval of a sample;
- :func:`paired_difference` — method a − method b, paired on the same seed (same initial model,
  same mini-batches, same delays: common random numbers), with a 95 % t-interval; its result is
  what :meth:`stalenb.claims.Ledger.record_difference` records;
- :func:`as_ratio` — a paired difference of logarithms read as a geometric-mean ratio;
- :func:`intersection_union` — one interval for "the claim holds at every level" (Berger 1982);
- :func:`best_checkpoint` — test accuracy at the best-validation evaluation (early stopping);
- :func:`binomial_margin` — a non-inferiority margin tied to what the test set can resolve;
- :func:`censored_median` — the median of times-to-target where some runs never got there.

Example:
    >>> table = pd.DataFrame({"method": ["a", "b"] * 3, "seed": [0, 0, 1, 1, 2, 2],
    ...                       "test_acc": [0.91, 0.90, 0.93, 0.90, 0.92, 0.90]})
    >>> d = paired_difference(table, "a", "b")
    >>> round(d["diff"], 3), d["n"]
    (0.02, 3)
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats


def ci95(values, level: float = 0.95) -> tuple[float, float, float, int]:
    """(mean, half-width of the t-interval of coverage ``level`` (95 % by default), std, n) of the
    finite ``values`` (NaN half-width and std for n < 2; NaN mean for n = 0)."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    n = len(v)
    if n == 0:
        return math.nan, math.nan, math.nan, 0
    mean = float(v.mean())
    if n < 2:
        return mean, math.nan, math.nan, n
    sd = float(v.std(ddof=1))
    return mean, float(stats.t.ppf(0.5 + level / 2, n - 1) * sd / math.sqrt(n)), sd, n


def paired_difference(table: pd.DataFrame, a: str, b: str, *, column: str = "method", pair_on=("seed",),
                      metric: str = "test_acc") -> dict:
    """``metric`` of ``a`` minus that of ``b`` (rows where ``column`` is ``a`` / ``b``), paired on the
    ``pair_on`` columns (default: the seed), with a 95 % t-interval (:func:`ci95`).

    Each value of ``pair_on`` must occur at most once per side (else the pairing is ambiguous);
    pairs with a missing side or a non-finite difference are left out.

    Returns a dict with ``a``, ``b``, ``diff`` (mean of the paired differences), ``ci_low``,
    ``ci_high``, ``n`` (pairs) and ``p`` (two-sided paired t-test; NaN for fewer than 2 pairs or
    identical differences).

    Raises:
        ValueError: a column is missing, ``a`` or ``b`` has no rows, or a pair is not unique.
    """
    pair_on = list(pair_on)
    missing = [col for col in dict.fromkeys([column, metric, *pair_on]) if col not in table.columns]
    if missing:
        raise ValueError(f"paired_difference needs the column(s) {missing}; the table has {list(table.columns)}")
    sides = []
    for name in (a, b):
        rows = table[table[column] == name]
        if rows.empty:
            raise ValueError(f"{column}={name!r} has no rows; available: {sorted(table[column].unique())}")
        side = rows.set_index(pair_on)[metric]
        if side.index.duplicated().any():
            twice = list(side.index[side.index.duplicated()].unique()[:3])
            raise ValueError(f"{column}={name!r} has several rows for {pair_on} = {twice}: select one "
                             f"condition first or pair on more columns")
        sides.append(side)
    d = (sides[0] - sides[1]).dropna()
    mean, half, _, n = ci95(d)
    p = float(stats.ttest_1samp(d, 0.0).pvalue) if n >= 2 and d.std() > 0 else math.nan
    return {"a": a, "b": b, "diff": mean, "ci_low": mean - half, "ci_high": mean + half, "n": n, "p": p}


def as_ratio(diff: dict) -> dict:
    """A :func:`paired_difference` of logarithms as a ratio: ``diff``, ``ci_low`` and ``ci_high``
    exponentiated (the geometric-mean ratio a / b and its 95 % interval); ``n`` and ``p`` kept.

    Example:
        >>> r = as_ratio({"diff": 0.0, "ci_low": math.log(0.5), "ci_high": math.log(2.0), "n": 3})
        >>> [round(float(r[k]), 6) for k in ("diff", "ci_low", "ci_high")], r["n"]
        ([1.0, 0.5, 2.0], 3)
    """
    return {**diff, **{k: np.exp(diff[k]) for k in ("diff", "ci_low", "ci_high")}}


def intersection_union(statistics, lows, highs) -> tuple[float, float, float]:
    """One interval for "the claim holds at every level" (an intersection–union test).

    The claim holds everywhere iff the smallest per-level effect clears the threshold. With each
    level's interval ``[low_i, high_i]``, returns ``(min statistic, min low, min high)``: against a
    threshold with ``better="above"`` its verdict is *holds* iff every level holds (min low above),
    *fails* iff some level fails (its high, hence min high, below), else *inconclusive*. No
    multiplicity correction is needed for *holds* (Berger 1982: each level tested at 5 % gives a
    5 % test of the intersection). A level without a finite interval makes both ends NaN.

    Example:
        >>> intersection_union([0.02, 0.01], [0.01, -0.01], [0.03, 0.03])
        (0.01, -0.01, 0.03)
    """
    s, lo, hi = (np.asarray(v, dtype=float) for v in (statistics, lows, highs))
    if not len(s) or not len(s) == len(lo) == len(hi):
        raise ValueError("need one statistic, low and high per level (at least one level)")
    if not (np.isfinite(lo).all() and np.isfinite(hi).all()):
        return float(np.min(s)), math.nan, math.nan
    return float(np.min(s)), float(np.min(lo)), float(np.min(hi))


def best_checkpoint(history: pd.DataFrame, by, select: str = "val_acc", report: str = "test_acc") -> pd.DataFrame:
    """Per run: ``report`` at the evaluation row where ``select`` is largest (early stopping on the
    validation split; the test digits never choose the checkpoint). Ties go to the earliest row;
    rows with a NaN ``select`` (a diverged last row) are never chosen unless all are NaN.

    Example:
        >>> h = pd.DataFrame({"run": ["a"] * 3, "val_acc": [0.5, 0.9, 0.8], "test_acc": [0.4, 0.85, 0.9]})
        >>> best_checkpoint(h, ["run"]).test_acc.item()
        0.85
    """
    rows = []
    for key, grp in history.groupby(list(by), sort=False):
        sel = grp[select].to_numpy(dtype=float)
        i = int(np.nanargmax(sel)) if np.isfinite(sel).any() else len(sel) - 1
        key = key if isinstance(key, tuple) else (key,)
        rows.append({**dict(zip(by, key)), report: float(grp[report].iloc[i]), select: float(sel[i])})
    return pd.DataFrame(rows)


def binomial_margin(accuracy: float, n: int, multiple: float = 2.0) -> float:
    """``multiple`` standard errors of an accuracy measured on ``n`` test digits:
    ``multiple · sqrt(p (1 − p) / n)`` — a non-inferiority margin tied to what the test set can resolve.

    Example:
        >>> round(binomial_margin(0.97, 2000), 5)
        0.00763
    """
    if not 0 < accuracy < 1 or int(n) < 1 or not multiple > 0:
        raise ValueError(f"need 0 < accuracy < 1, n >= 1, multiple > 0; got {accuracy}, {n}, {multiple}")
    return float(multiple * math.sqrt(accuracy * (1 - accuracy) / int(n)))


def censored_median(values, limit: float) -> float:
    """Median of times-to-target where NaN means "not reached by ``limit``" (right-censored).

    Censored runs count as later than every observed time; the median is ``inf`` when half or more
    of the runs never reached the target.

    Example:
        >>> censored_median([100, 200, float("nan")], 660)
        200.0
        >>> censored_median([100, float("nan"), float("nan")], 660)
        inf
    """
    v = np.asarray(values, dtype=float)
    if not len(v):
        return math.nan
    v = np.where(np.isfinite(v) & (v <= limit), v, np.inf)
    v.sort()
    n = len(v)
    mid = v[(n - 1) // 2] if n % 2 else 0.5 * (v[n // 2 - 1] + v[n // 2])
    return float(mid)
