"""Real runs against simulated twins: a Monte-Carlo test that can fail, and its power.

A twin's staleness and round times are functions of its timing model and seed alone (a schedule
never reads gradient values, :mod:`stalenb.sim.schedule`), so :func:`schedule_updates` gives a
twin's per-gradient record — the rows of ``stalenb.run(config).updates`` — in milliseconds,
without computing a gradient. That makes a proper null distribution affordable.

A :class:`Twin` is the timing model fitted to one real run (:func:`twin_of`:
:func:`stalenb.distributed.fit_timing`, i.e. median compute, round-trip latency, the run's
slowdown law and per-worker factors) **plus its compute-time noise**: the run's measured compute
times over their median, resampled per job. Processes that share cores compute at uneven speeds;
a twin without that noise moves in lockstep (its round times take a handful of values), which a
test would reject for a reason that has nothing to do with stragglers.

The test (notebook 08). Given R real runs and their twins:

- a **statistic** D between two sets of runs pooled: :func:`staleness_tv` (total-variation
  distance between the staleness distributions of the applied gradients) or :func:`round_time_ks`
  (Kolmogorov–Smirnov distance between the distributions of the time between server updates, each
  run's times in units of its twin's nominal job time, so runs of different speeds pool alike);
- the **observed** value: D(real runs, twins run with seeds of their own) — independent straggler
  draws on the two sides, compared in distribution;
- the **null**: D(twins, twins) with fresh seeds on both sides, ``draws`` times: what D looks like
  when the model is right (it carries the statistic's upward bias and the sampling noise);
- the Monte-Carlo **p-value** p = (1 + #{D₀ ≥ D}) / (draws + 1) (Davison & Hinkley 1997, §4.2).
  The model's parameters are estimated from the same real runs and not re-estimated inside each
  null draw, which makes the test approximately conservative (as a goodness-of-fit test with
  fitted parameters is; not a proven bound).

:func:`power` asks whether the test could have failed: a stand-in for reality (the twins, fresh
seeds) against a deliberately wrong twin model, ``sets`` times; the share with p < α is the power.
:func:`tracking` compares a real run gradient by gradient with the twin that shares its straggler
draws. Seeds of the different roles (observed twins, null sides, power sets, tracking) come from
disjoint ranges (:func:`seed_base`).

Example:
    >>> import stalenb as sn
    >>> cfg = sn.Config(protocol="async", workers=3, steps=200, timing=sn.Timing(
    ...     per_sample=1e-3, latency=1e-4, bandwidth=float("inf"), slowdown=sn.timing.Straggler(0.25, 4.0)))
    >>> null = null_distribution([Twin(cfg, noise=(0.8, 1.0, 1.3))] * 2, staleness_tv, draws=50)
    >>> len(null), bool((null >= 0).all())
    (50, True)
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
from scipy import stats

from ..sim.config import Config
from ..sim.engine import Run
from ..sim.schedule import Schedule
from ..sim.timing import Slowdowns, TraceSlowdown
from .measure import fit_timing

SEED_STRIDE = 1_000_003  # seeds used by one role never reach the next role's range
ROLES = {"observed": 1, "null": 2, "power-null": 3, "power": 4, "tracking": 5, "noise": 6}


def seed_base(role: str, seed: int = 0) -> int:
    """First seed of ``role``'s range for the test seeded with ``seed`` (ranges never overlap)."""
    return (ROLES[role] + 8 * int(seed)) * SEED_STRIDE


@dataclasses.dataclass(frozen=True)
class Twin:
    """A simulated twin: ``config`` (the fitted timing, :func:`stalenb.distributed.fit_timing`) and
    ``noise``, relative compute times resampled per job (``None``: every job at the model's time)."""

    config: Config
    noise: tuple | None = None

    def __post_init__(self):
        if self.noise is not None:
            noise = np.asarray(self.noise, dtype=float)
            if noise.ndim != 1 or not len(noise) or not np.all(np.isfinite(noise) & (noise > 0)):
                raise ValueError(f"noise must be a non-empty sequence of finite numbers > 0, got {self.noise!r}")
            object.__setattr__(self, "noise", tuple(float(v) for v in noise))

    @property
    def job_time(self) -> float:
        """Nominal seconds of one job: per_sample × push batch."""
        return self.config.timing.per_sample * self.config.push_batch

    def with_timing(self, **changes) -> "Twin":
        """This twin with ``timing`` fields changed (a wrong model for :func:`power`)."""
        return Twin(self.config.replace(timing=dataclasses.replace(self.config.timing, **changes)), self.noise)

    def without_noise(self) -> "Twin":
        return Twin(self.config, None)


def twin_of(run: Run) -> Twin:
    """The twin of a real run: its fitted timing and its measured compute times over their median."""
    compute = run.updates["compute_s"].to_numpy(dtype=float)
    compute = compute[np.isfinite(compute) & (compute > 0)]
    if not len(compute):
        raise ValueError("run has no measured compute times (compute_s) to take the noise from")
    return Twin(run.config.replace(timing=fit_timing(run)), tuple(compute / np.median(compute)))


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


def law_draws(config: Config) -> np.ndarray:
    """The slowdown draws (jobs × workers) of ``config.seed`` exactly as the simulator and the real
    workers make them (:class:`stalenb.timing.Slowdowns`, common random numbers), for more jobs
    than any worker of the run can start (2·steps + workers + 10)."""
    jobs = 2 * config.steps + config.workers + 10
    slow = Slowdowns(config.timing.slowdown, config.workers, np.random.default_rng(config.seed))
    slow(0, jobs - 1)
    return np.array(slow.rows[:jobs])


def draw(twin: Twin, seed: int) -> pd.DataFrame:
    """One run of ``twin`` with ``seed``: its slowdown law's draws for that seed times compute noise
    resampled from ``twin.noise`` (from a stream of its own), replayed as a
    :class:`stalenb.timing.TraceSlowdown`. Without noise this is ``schedule_updates`` of the config."""
    cfg = twin.config.replace(seed=int(seed))
    if twin.noise is None:
        return schedule_updates(cfg)
    values = law_draws(cfg)
    values = values * np.random.default_rng([int(seed), ROLES["noise"]]).choice(np.asarray(twin.noise), values.shape)
    return schedule_updates(cfg.replace(timing=dataclasses.replace(cfg.timing, slowdown=TraceSlowdown(values.T))))


def _draws(twins: list[Twin], seed: int) -> list[pd.DataFrame]:
    """One run per twin, the i-th with seed ``seed + i``."""
    return [draw(t, seed + i) for i, t in enumerate(twins)]


def _scaled(frames: list[pd.DataFrame], twins: list[Twin]) -> list[pd.DataFrame]:
    """Each frame's ``time`` in units of its twin's nominal job time (index-matched)."""
    return [f.assign(time=f["time"] / t.job_time) for f, t in zip(frames, twins)]


def staleness_tv(a: list[pd.DataFrame], b: list[pd.DataFrame]) -> float:
    """Total-variation distance ½ Σ_τ |p_a(τ) − p_b(τ)| between the staleness distributions of the
    applied gradients of the runs ``a`` (updates frames, pooled) and of the runs ``b``."""
    sa, sb = (np.concatenate([u.loc[u["applied"], "staleness"].to_numpy() for u in side]) for side in (a, b))
    lags = int(max(sa.max(), sb.max())) + 1
    pa, pb = (np.bincount(s, minlength=lags) / len(s) for s in (sa, sb))
    return float(0.5 * np.abs(pa - pb).sum())


def round_times(updates: pd.DataFrame) -> np.ndarray:
    """Time between successive server updates: the differences of the latest ``time`` of the
    gradients each update applied (simulated: ready times; real: measured arrivals at the server,
    so a real round also holds the server's queueing, which the model lacks)."""
    last = updates[updates["applied"]].groupby("step")["time"].max().sort_index().to_numpy()
    return np.diff(last)


def round_time_ks(a: list[pd.DataFrame], b: list[pd.DataFrame]) -> float:
    """Kolmogorov–Smirnov distance sup_t |F_a(t) − F_b(t)| between the pooled round times
    (:func:`round_times`) of the runs ``a`` and of the runs ``b``."""
    ra, rb = (np.concatenate([round_times(u) for u in side]) for side in (a, b))
    return float(stats.ks_2samp(ra, rb).statistic)


def null_distribution(twins: list[Twin], statistic, *, draws: int = 200, seed: int = 0,
                      role: str = "null") -> np.ndarray:
    """``draws`` values of ``statistic`` between two independent sets of runs of ``twins``."""
    if draws < 1:
        raise ValueError(f"draws must be >= 1, got {draws!r}")
    base, r = seed_base(role, seed), len(twins)
    return np.array([statistic(_scaled(_draws(twins, base + 2 * d * r), twins),
                               _scaled(_draws(twins, base + (2 * d + 1) * r), twins)) for d in range(draws)])


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


def agreement(real: list[pd.DataFrame], twins: list[Twin], statistic, *, draws: int = 200, seed: int = 0) -> dict:
    """Test real runs (their ``updates`` frames) against their twins with ``statistic``.

    Returns ``{"statistic", "p", "p_ci", "null", "null_q95", "null_mean", "draws", "twins"}``:
    ``p_ci`` is the Clopper–Pearson interval of the Monte-Carlo p-value (its uncertainty from
    ``draws``), ``null`` the twin-vs-twin values, ``twins`` the observed side's twin runs.
    """
    if len(real) != len(twins) or not real:
        raise ValueError(f"need one twin per real run, got {len(real)} runs and {len(twins)} twins")
    observed_twins = _draws(twins, seed_base("observed", seed))
    observed = statistic(_scaled(real, twins), _scaled(observed_twins, twins))
    null = null_distribution(twins, statistic, draws=draws, seed=seed)
    exceed = int(np.sum(null >= observed))
    return {"statistic": observed, "p": p_value(observed, null), "p_ci": clopper_pearson(exceed, draws),
            "null": null, "null_q95": float(np.quantile(null, 0.95)), "null_mean": float(null.mean()),
            "draws": draws, "twins": observed_twins}


def power(truth: list[Twin], wrong: list[Twin], statistic, *, sets: int = 100, draws: int = 200,
          alpha: float = 0.05, seed: int = 0) -> dict:
    """How often the test detects a wrong twin model: reality played by ``truth`` (fresh seeds), the
    twin model ``wrong``, ``sets`` independent repetitions at level ``alpha``. Both sides' times are
    in units of the wrong twin's job time (what the tester, believing it, would use).

    Returns ``{"power", "power_ci", "detected", "sets", "alpha"}`` (Clopper–Pearson interval; it
    leaves out the Monte-Carlo error of the one null that all repetitions share).
    """
    if len(truth) != len(wrong):
        raise ValueError(f"truth and wrong must pair up, got {len(truth)} and {len(wrong)}")
    null = null_distribution(wrong, statistic, draws=draws, seed=seed, role="power-null")
    base, r = seed_base("power", seed), len(truth)
    detected = 0
    for s in range(sets):
        reality, twin = _draws(truth, base + 2 * s * r), _draws(wrong, base + (2 * s + 1) * r)
        d = statistic(_scaled(reality, wrong), _scaled(twin, wrong))
        detected += p_value(d, null) < alpha
    return {"power": detected / sets, "power_ci": clopper_pearson(detected, sets), "detected": detected,
            "sets": sets, "alpha": alpha}


def by_job(u: pd.DataFrame) -> pd.DataFrame:
    """Rows indexed by (worker, job index): a worker's jobs in the order it read its models."""
    u = u.sort_values(["worker", "version", "step"])
    return u.assign(job=u.groupby("worker").cumcount()).set_index(["worker", "job"])


def tracking(real: Run, twin: Twin, *, others: int = 50, seed: int = 0) -> dict:
    """How closely the twin that shares a real run's straggler draws follows it gradient by gradient.

    Jobs pair up by (worker, job index): worker w's j-th job has the same slowdown draw in the
    real run (``updates["slowdown"]`` = draw × the worker's factor) and in the same-seed twin
    (common random numbers; ``pairing_error`` = the largest |real − twin| slowdown over the pairs, 0
    when the pairing is right). Staleness compares on the gradients applied on both sides (a
    cancelled job is recorded at a different step by the two drivers). Returns ``ratio`` = mean
    |s_real − s_same| / mean |s_real − s_other|, both over the pairs each of ``others``
    independent-seed twins shares with the real run (1: sharing the draws tells nothing about
    individual gradients; 0: the twin reproduces each one), ``exact`` (the share of pairs whose
    staleness is equal), ``pairs``.
    """
    if others < 1:
        raise ValueError(f"others must be >= 1, got {others!r}")
    r = by_job(real.updates)  # every job numbers the jobs; only gradients applied on both sides compare
    twin_jobs = by_job(draw(twin, real.config.seed))
    same = twin_jobs["staleness"]
    common = r.index[r["applied"].to_numpy(bool)].intersection(twin_jobs.index[twin_jobs["applied"].to_numpy(bool)])
    if common.empty:
        raise ValueError("no applied gradient pairs up between the real run and its twin")
    factors = np.array([twin.config.timing.factor(w) for w, _ in common])
    shared = law_draws(twin.config.replace(seed=real.config.seed))
    expected = np.array([shared[j, w] for w, j in common]) * factors
    pairing_error = float(np.max(np.abs(r.loc[common, "slowdown"].to_numpy() - expected))) \
        if "slowdown" in r else float("nan")
    s_real, s_same = r.loc[common, "staleness"].to_numpy(), same[common].to_numpy()
    base = seed_base("tracking", seed)
    near, away = [], []
    for i in range(others):  # each independent twin on the pairs it shares with the real run
        o = by_job(draw(twin, base + i))
        other = o["staleness"].where(o["applied"].astype(bool)).reindex(common)
        ok = other.notna().to_numpy()
        near.append(np.abs(s_real[ok] - s_same[ok]).mean())
        away.append(np.abs(s_real[ok] - other.to_numpy()[ok]).mean())
    return {"ratio": float(np.mean(near)) / max(float(np.mean(away)), 1e-12), "exact": float(np.mean(s_real == s_same)),
            "pairs": int(len(common)), "pairing_error": pairing_error}
