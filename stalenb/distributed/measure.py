"""Measured versus simulated: a timing model fitted to a real run, and its simulated twin.

:func:`fit_timing` reads the per-gradient record of a real run (``compute_s``: the worker's own
gradient + compression time; ``arrived − sent − job_s``: the round trip spent in transfer and
queueing) and returns the :class:`stalenb.timing.Timing` that the simulator needs to replay the
same cluster: ``per_sample`` = median compute time / push batch, ``latency`` = half the median
round-trip overhead, free bandwidth (loopback), and the run's own slowdown model and per-worker
speed factors (``timing.factors``: what :func:`stalenb.distributed.launch` gave each worker).
:func:`simulated_twin` runs ``stalenb.run`` with it (notebook 08's accuracy against time).
:func:`staleness_gap` compares one real run with one twin by a block bootstrap; notebook 08's
test of replicated runs against a null of twin-vs-twin draws is :mod:`stalenb.distributed.agreement`.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from ..sim.engine import Run
from ..sim.engine import run as simulate_run
from ..sim.timing import Timing


def fit_timing(run: Run) -> Timing:
    """The timing model of ``run`` (a finished :func:`stalenb.distributed.launch`)."""
    upd = run.updates
    if upd.empty:
        raise ValueError("run has no gradients to fit a timing model to")
    per_sample = float(np.median(upd["compute_s"])) / run.config.push_batch
    overhead = (upd["arrived"] - upd["sent"] - upd["job_s"]).clip(lower=0.0)
    return dataclasses.replace(run.config.timing, per_sample=per_sample, latency=float(np.median(overhead)) / 2,
                               bandwidth=float("inf"))


def simulated_twin(run: Run, cache: bool = True) -> Run:
    """``stalenb.run`` of the same configuration with the timing model fitted to ``run``."""
    return simulate_run(run.config.replace(timing=fit_timing(run)), cache=cache, progress=False)


def _block_counts(run: Run, block: int, lags: int) -> np.ndarray:
    """Counts of each staleness 0..lags−1 among the applied gradients, per block of ``block`` server steps."""
    upd = run.updates[run.updates["applied"]]
    blocks = (upd["step"].to_numpy() - 1) // block
    out = np.zeros((int(blocks.max()) + 1, lags))
    np.add.at(out, (blocks, upd["staleness"].to_numpy()), 1.0)
    return out[out.sum(1) > 0]


def _mean_and_pmf(counts: np.ndarray):
    pmf = counts / counts.sum(-1, keepdims=True)
    return pmf @ np.arange(counts.shape[-1]), pmf


def staleness_gap(real: Run, sim: Run, *, block: int = 20, resamples: int = 2000, level: float = 0.95,
                  seed: int = 0) -> dict:
    """Measured vs simulated staleness of the applied gradients, with moving-block bootstrap intervals.

    Successive gradients are not independent (one straggler delays several), so the bootstrap
    resamples whole blocks of ``block`` server steps, with replacement, in each run independently
    (Künsch 1989's block bootstrap). Two statistics, each with an interval valid for its shape:

    - ``diff``, the difference of mean staleness (measured − simulated), a smooth statistic: a normal
      interval ``diff ± z·se`` with the bootstrap's standard error (it always contains ``diff``).
      For a tolerance on the *size* of the gap, ``abs_diff`` = |diff| gets the image of that
      interval under |·| (``abs_diff_ci``: from 0 when the signed interval contains 0). "Below a
      tolerance" then means the whole signed interval lies inside (−tol, tol): the two one-sided
      tests of equivalence (Schuirmann 1987), not a percentile interval of |·|, which need not
      contain the estimate when the two means are close.
    - ``tv`` = ½ Σ_τ |p_real(τ) − p_sim(τ)|, the total-variation distance between the two staleness
      distributions: non-smooth and biased upward (sampling noise alone makes it positive), so its
      percentile interval ``tv_ci`` is that of the plug-in statistic — it need not contain ``tv`` and
      sits above the true distance when that is small; a "TV below a tolerance" verdict taken from its
      upper end is therefore conservative.

    Returns:
        ``{"mean_measured", "mean_simulated", "diff", "diff_ci", "abs_diff", "abs_diff_ci", "tv",
        "tv_ci", "blocks": (real, simulated), "gradients": (real, simulated)}``.

    Example:
        >>> gap = staleness_gap(real_run, twin_run)          # doctest: +SKIP
        >>> gap["abs_diff"], gap["abs_diff_ci"], gap["tv_ci"]  # doctest: +SKIP
    """
    from scipy import stats

    lags = int(max(r.updates.loc[r.updates["applied"], "staleness"].max() for r in (real, sim))) + 1
    a, b = _block_counts(real, block, lags), _block_counts(sim, block, lags)
    (mean_a, pmf_a), (mean_b, pmf_b) = _mean_and_pmf(a.sum(0)), _mean_and_pmf(b.sum(0))
    rng = np.random.default_rng(seed)
    boot_a = a[rng.integers(0, len(a), (resamples, len(a)))].sum(1)
    boot_b = b[rng.integers(0, len(b), (resamples, len(b)))].sum(1)
    (ma, pa), (mb, pb) = _mean_and_pmf(boot_a), _mean_and_pmf(boot_b)
    diff = float(mean_a - mean_b)
    half = float(stats.norm.ppf((1 + level) / 2) * np.std(ma - mb, ddof=1))
    diff_ci = (diff - half, diff + half)
    q = [(1 - level) / 2, (1 + level) / 2]
    return {"mean_measured": float(mean_a), "mean_simulated": float(mean_b), "diff": diff, "diff_ci": diff_ci,
            "abs_diff": abs(diff), "abs_diff_ci": abs_interval(*diff_ci),
            "tv": float(0.5 * np.abs(pmf_a - pmf_b).sum()),
            "tv_ci": tuple(float(v) for v in np.quantile(0.5 * np.abs(pa - pb).sum(1), q)),
            "blocks": (len(a), len(b)), "gradients": (int(a.sum()), int(b.sum()))}


def abs_interval(low: float, high: float) -> tuple[float, float]:
    """The image of the interval [low, high] under |·|: the interval for |θ| given one for θ.

    Example:
        >>> abs_interval(-0.2, 0.5), abs_interval(-0.5, -0.2)
        ((0.0, 0.5), (0.2, 0.5))
    """
    if not low <= high:
        raise ValueError(f"need low <= high, got [{low}, {high}]")
    if low <= 0.0 <= high:
        return 0.0, float(max(-low, high))
    return float(min(abs(low), abs(high))), float(max(abs(low), abs(high)))


def staleness_summary(real: Run, sim: Run) -> pd.DataFrame:
    """Mean, max and share of zero staleness over the applied gradients, measured vs simulated."""
    rows = {}
    for name, r in (("measured", real), ("simulated", sim)):
        s = r.updates.loc[r.updates["applied"], "staleness"]
        rows[name] = {"mean": float(s.mean()), "max": int(s.max()), "share_zero": float((s == 0).mean()),
                      "dropped": int((~r.updates["applied"]).sum()), "gradients": int(len(s))}
    return pd.DataFrame(rows).T
