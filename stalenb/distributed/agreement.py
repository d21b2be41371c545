"""Real runs against simulated twins: a Monte-Carlo test that can fail, and its power.

A twin's staleness and round times are functions of its timing model and seed alone (a schedule
never reads gradient values, :mod:`stalenb.sim.schedule`), so :func:`schedule_updates` gives a
twin's per-gradient record — the rows of ``stalenb.run(config).updates`` — in milliseconds,
without computing a gradient. That makes a proper null distribution affordable.

The test (notebook 08). Given R real runs and their fitted timing models (``twins``: one
``Config`` per real run, :func:`stalenb.distributed.fit_timing`):

- a **statistic** D between two sets of runs pooled: :func:`staleness_tv` (total-variation
  distance between the staleness distributions of the applied gradients) or :func:`round_time_ks`
  (Kolmogorov–Smirnov distance between the distributions of the time between server updates);
- the **observed** value: D(real runs, twins run with seeds of their own) — independent straggler
  draws on the two sides, compared in distribution;
- the **null**: D(twins, twins) with fresh seeds on both sides, ``draws`` times: what D looks like
  when the model is right (it carries the statistic's upward bias and the sampling noise);
- the Monte-Carlo **p-value** p = (1 + #{D₀ ≥ D}) / (draws + 1) (Davison & Hinkley 1997, §4.2).

:func:`power` asks whether the test could have failed: a stand-in for reality (the fitted models,
fresh seeds) against a deliberately wrong twin model (another slowdown law, compute × 2), ``sets``
times; the share with p < α is the power.

Example:
    >>> import stalenb as sn
    >>> cfg = sn.Config(protocol="async", workers=3, steps=200, timing=sn.Timing(
    ...     per_sample=1e-3, latency=1e-4, bandwidth=float("inf"), slowdown=sn.timing.Straggler(0.25, 4.0)))
    >>> null = null_distribution([cfg] * 2, staleness_tv, draws=50, seed=0)
    >>> len(null), bool((null >= 0).all())
    (50, True)
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from ..sim.config import Config
from ..sim.schedule import Schedule

SEED_STRIDE = 1_000_003  # seeds of different roles (observed twins, null sides, power sets) never meet


def schedule_updates(config: Config, push_bytes: int = 0, pull_bytes: int = 0) -> pd.DataFrame:
    """The per-gradient record of ``stalenb.run(config)`` (``step, worker, version, staleness, time,
    applied``) from the schedule alone: no gradient is computed.

    Exact when message sizes do not matter (``timing.bandwidth`` infinite, as in the twins of
    :func:`stalenb.distributed.fit_timing`); otherwise pass the run's ``push_bytes`` / ``pull_bytes``.
    """
    if not isinstance(config, Config):
        raise TypeError(f"config must be a stalenb.Config, got {type(config).__name__}")
    rows = []
    for upd in Schedule(config, push_bytes, pull_bytes, np.random.default_rng(config.seed)):
        rows += [(upd.step, p.worker, p.version, upd.step - p.version, p.time, True) for p in upd.pushes]
        rows += [(upd.step, p.worker, p.version, upd.step - p.version, p.time, False) for p in upd.dropped]
    return pd.DataFrame(rows, columns=["step", "worker", "version", "staleness", "time", "applied"])


def staleness_tv(a: list[pd.DataFrame], b: list[pd.DataFrame]) -> float:
    """Total-variation distance ½ Σ_τ |p_a(τ) − p_b(τ)| between the staleness distributions of the
    applied gradients of the runs ``a`` (updates frames, pooled) and of the runs ``b``."""
    sa, sb = (np.concatenate([u.loc[u["applied"], "staleness"].to_numpy() for u in side]) for side in (a, b))
    lags = int(max(sa.max(), sb.max())) + 1
    pa, pb = (np.bincount(s, minlength=lags) / len(s) for s in (sa, sb))
    return float(0.5 * np.abs(pa - pb).sum())


def round_times(updates: pd.DataFrame) -> np.ndarray:
    """Seconds between successive server updates: the differences of the latest ``time`` of the
    gradients each update applied (simulated: ready times; real: measured arrivals)."""
    last = updates[updates["applied"]].groupby("step")["time"].max().sort_index().to_numpy()
    return np.diff(last)


def round_time_ks(a: list[pd.DataFrame], b: list[pd.DataFrame]) -> float:
    """Kolmogorov–Smirnov distance sup_t |F_a(t) − F_b(t)| between the pooled round times
    (:func:`round_times`) of the runs ``a`` and of the runs ``b``."""
    ra, rb = (np.concatenate([round_times(u) for u in side]) for side in (a, b))
    return float(stats.ks_2samp(ra, rb).statistic)


def _draw(configs: list[Config], seed: int) -> list[pd.DataFrame]:
    """One twin per config, the i-th with seed ``seed + i``."""
    return [schedule_updates(c.replace(seed=seed + i)) for i, c in enumerate(configs)]


def null_distribution(configs: list[Config], statistic, *, draws: int = 200, seed: int = 0) -> np.ndarray:
    """``draws`` values of ``statistic`` between two independent sets of twins of ``configs``."""
    if draws < 1:
        raise ValueError(f"draws must be >= 1, got {draws!r}")
    base = (seed + 1) * SEED_STRIDE
    return np.array([statistic(_draw(configs, base + (2 * d) * len(configs)),
                               _draw(configs, base + (2 * d + 1) * len(configs))) for d in range(draws)])


def p_value(observed: float, null: np.ndarray) -> float:
    """Monte-Carlo p-value (1 + #{null ≥ observed}) / (len(null) + 1): never 0, valid for any draws."""
    null = np.asarray(null)
    return float((1 + np.sum(null >= observed)) / (len(null) + 1))


def clopper_pearson(successes: int, trials: int, level: float = 0.95) -> tuple[float, float]:
    """Exact binomial interval for a proportion (Clopper & Pearson 1934)."""
    a = (1 - level) / 2
    low = stats.beta.ppf(a, successes, trials - successes + 1) if successes > 0 else 0.0
    high = stats.beta.ppf(1 - a, successes + 1, trials - successes) if successes < trials else 1.0
    return float(low), float(high)


def agreement(real: list[pd.DataFrame], twins: list[Config], statistic, *, draws: int = 200,
              seed: int = 0) -> dict:
    """Test real runs (their ``updates`` frames) against their twins' model with ``statistic``.

    Returns ``{"statistic", "p", "p_ci", "null", "null_q95", "null_mean", "draws"}``: ``p_ci`` is the
    Clopper–Pearson interval of the Monte-Carlo p-value (its uncertainty from ``draws``), ``null`` the
    twin-vs-twin values.
    """
    if len(real) != len(twins) or not real:
        raise ValueError(f"need one twin config per real run, got {len(real)} runs and {len(twins)} twins")
    observed = statistic(real, _draw(twins, (seed + 1) * SEED_STRIDE - len(twins)))
    null = null_distribution(twins, statistic, draws=draws, seed=seed)
    exceed = int(np.sum(null >= observed))
    return {"statistic": observed, "p": p_value(observed, null), "p_ci": clopper_pearson(exceed, draws),
            "null": null, "null_q95": float(np.quantile(null, 0.95)), "null_mean": float(null.mean()), "draws": draws}


def power(truth: list[Config], wrong: list[Config], statistic, *, sets: int = 100, draws: int = 200,
          alpha: float = 0.05, seed: int = 0) -> dict:
    """How often the test detects a wrong twin model: reality played by twins of ``truth`` (fresh
    seeds), the twin model ``wrong``, ``sets`` independent repetitions at level ``alpha``.

    Returns ``{"power", "power_ci", "detected", "sets", "alpha"}`` (Clopper–Pearson interval).
    """
    if len(truth) != len(wrong):
        raise ValueError(f"truth and wrong must pair up, got {len(truth)} and {len(wrong)}")
    null = null_distribution(wrong, statistic, draws=draws, seed=seed + 1)
    base = (seed + 2) * SEED_STRIDE * 4
    detected = 0
    for s in range(sets):
        d = statistic(_draw(truth, base + 2 * s * len(truth)), _draw(wrong, base + (2 * s + 1) * len(truth)))
        detected += p_value(d, null) < alpha
    return {"power": detected / sets, "power_ci": clopper_pearson(detected, sets), "detected": detected,
            "sets": sets, "alpha": alpha}


def paired_tracking(real: pd.DataFrame, same_seed: pd.DataFrame, other_seed: pd.DataFrame) -> float:
    """How closely a twin that shares the real run's straggler draws follows it gradient by gradient.

    Gradients are paired by (worker, job index): worker w's j-th job has the same slowdown draw in
    the real run and in the same-seed twin (common random numbers). Returns the ratio
    mean |s_real − s_same| / mean |s_real − s_other| of the absolute staleness differences against
    the same-seed twin and against a twin with independent draws (the same model, another seed):
    1 when sharing the draws tells nothing about individual gradients, 0 when the twin reproduces
    each gradient's staleness.
    """
    def keyed(u):
        u = u.sort_values(["worker", "version", "step"])
        return u.assign(job=u.groupby("worker").cumcount()).set_index(["worker", "job"])["staleness"]

    r, s, o = keyed(real), keyed(same_seed), keyed(other_seed)
    common = r.index.intersection(s.index).intersection(o.index)
    if common.empty:
        raise ValueError("no gradient pairs up between the runs")
    r, s, o = r[common].to_numpy(), s[common].to_numpy(), o[common].to_numpy()
    return float(np.abs(r - s).mean() / max(np.abs(r - o).mean(), 1e-12))
