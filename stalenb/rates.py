"""Paper 1's convergence rate, measured: ergodic ‖∇f‖² of async sparsified SGD against the horizon.

Paper 1 (Candela et al. 2019, ``docs/research.md`` §1) claims that asynchronous SGD with bounded
staleness and sparsified gradients keeps the non-convex SGD rate

    (1/T) Σ_{t=0}^{T−1} E‖∇f(x_t)‖² = O(1/√T)   for the step α = lr_scale/√T
(``lr_scale``: the constant in front of 1/√T, the same for every horizon).

:func:`ergodic_grad_norm` runs one horizon T through the simulator (:func:`stalenb.run` with a
callback that records the exact ‖∇f(x_t)‖² after every update) and :func:`rate_sweep` repeats that
over horizons, staleness levels and compression cases; :func:`rate_table` fits the log-log slope
of the ergodic mean against T (:func:`stalenb.theory.loglog_slope`), which the claim puts at
−1/2 (steeper at short horizons, where O(1/T) transients still count).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from . import cache as _cache
from . import theory
from .sim.config import Config
from .sim.engine import run as _run
from .sim.staleness import Uniform

#: Paper 1's cases: (label, compressor, density, error feedback).
CASES = (
    ("dense", "none", 1.0, False),
    ("top-k 0.1 + EF", "topk", 0.1, True),
    ("top-k 0.1", "topk", 0.1, False),
    ("random-k 0.1 + EF", "randomk", 0.1, True),
    ("random-k 0.1", "randomk", 0.1, False),
    ("top-k 0.01 + EF", "topk", 0.01, True),
    ("top-k 0.01", "topk", 0.01, False),
    ("random-k 0.01 + EF", "randomk", 0.01, True),
    ("random-k 0.01", "randomk", 0.01, False),
)


def horizons(lo: int, hi: int, num: int) -> np.ndarray:
    """``num`` log-spaced integer horizons from ``lo`` to ``hi`` (distinct, increasing)."""
    if not (1 <= lo < hi) or num < 2:
        raise ValueError(f"need 1 <= lo < hi and num >= 2, got lo={lo}, hi={hi}, num={num}")
    T = np.unique(np.round(np.geomspace(lo, hi, num)).astype(int))
    if T.size != num:
        raise ValueError(f"lo={lo}, hi={hi} too close for num={num} distinct horizons")
    return T


def ergodic_grad_norm(problem, config: Config, cache: bool = True) -> tuple[float, np.ndarray]:
    """(1/T) Σ_{t<T} ‖∇f(x_t)‖² for one run of ``config`` on ``problem`` (T = ``config.steps``).

    ``problem`` needs ``grad_norm2(x)`` (the exact squared gradient norm), e.g.
    :class:`stalenb.objectives.NonconvexLogistic`. Returns the ergodic mean and the whole sequence
    ‖∇f(x_0)‖², …, ‖∇f(x_T)‖² (shorter, and the mean ``inf``, if the run diverged). With ``cache``
    and a problem that carries a ``spec`` dict (its constructor arguments), the sequence is kept in
    the results cache (:mod:`stalenb.cache`) keyed by config + spec.
    """
    spec = getattr(problem, "spec", None)
    key = _cache.key(config, extra={"problem": spec}, code=("rates.py",), data=False) if cache and spec is not None else None
    hit = _cache.load(key) if key else None
    if hit is not None:
        seq, diverged = hit[0]["seq"]["grad_norm2"].to_numpy(), bool(hit[1]["diverged"])
    else:
        seq = [problem.grad_norm2(problem.x0)]
        res = _run(config, problem=problem, callback=lambda step, x: seq.append(problem.grad_norm2(x)),
                   progress=False)
        seq, diverged = np.asarray(seq, dtype=float), res.diverged
        if key:
            _cache.save(key, {"seq": pd.DataFrame({"grad_norm2": seq})}, {"diverged": bool(diverged)})
    if diverged or len(seq) < config.steps + 1 or not np.all(np.isfinite(seq)):
        return math.inf, seq
    return float(seq[: config.steps].mean()), seq


def base_config(lr_scale: float, batch_size: int = 8, workers: int = 4, seed: int = 0) -> Config:
    """The async configuration of the rate experiment (staleness and compression set per case).

    Its one step (T = 1) has lr = ``lr_scale``/√1; :func:`rate_sweep` sets lr and steps per horizon.
    """
    return Config(protocol="async", workers=workers, staleness=Uniform(0), lr=lr_scale, batch_size=batch_size,
                  steps=1, eval_every=1, seed=seed, diverge_loss=1e6)


def rate_sweep(problem, lr_scale: float, T, taus, cases=CASES, seeds=(0,), batch_size: int = 8,
               workers: int = 4, progress: bool | None = None) -> pd.DataFrame:
    """One run per (case, τ_max, T, seed) with α = lr_scale/√T; a tidy frame of ergodic means.

    Columns: ``case``, ``compressor``, ``density``, ``error_feedback``, ``tau_max``, ``T``,
    ``seed``, ``lr``, ``ergodic`` ((1/T) Σ ‖∇f(x_t)‖²), ``final`` (‖∇f(x_T)‖²).
    """
    rows = []
    jobs = [(case, tau, t, s) for case in cases for tau in taus for t in T for s in seeds]
    for (label, comp, dens, ef), tau, t, s in tqdm(jobs, desc="rate sweep", leave=False,
                                                    **({} if progress is None else {"disable": not progress})):
        cfg = base_config(lr_scale, batch_size, workers, s).replace(
            staleness=Uniform(tau), compressor=comp, density=dens, error_feedback=ef,
            lr=lr_scale / math.sqrt(t), steps=t, eval_every=t)
        erg, seq = ergodic_grad_norm(problem, cfg)
        rows.append({"case": label, "compressor": comp, "density": dens, "error_feedback": ef,
                     "tau_max": cfg.staleness.tau_max, "T": cfg.steps, "seed": s, "lr": cfg.lr,
                     "ergodic": erg, "final": float(seq[-1])})
    return pd.DataFrame(rows)


def rate_table(df: pd.DataFrame, n_boot: int = 2000, level: float = 0.95) -> pd.DataFrame:
    """Per (case, τ_max): fitted log-log slope of the ergodic mean vs T with a bootstrap interval.

    Columns: ``case``, ``error_feedback``, ``tau_max``, ``slope``, ``low``, ``high``, ``final``
    (the ergodic mean at the longest horizon, mean over seeds). A diverged run gives NaN slopes.
    """
    out = []
    for (label, tau), g in df.groupby(["case", "tau_max"], sort=False):
        wide = g.pivot_table(index="T", columns="seed", values="ergodic").sort_index()
        vals = wide.to_numpy()
        try:
            s, lo, hi = theory.loglog_slope(wide.index.to_numpy(), vals[:, 0] if vals.shape[1] == 1 else vals,
                                            n_boot=n_boot, level=level)
        except ValueError:
            s = lo = hi = math.nan
        out.append({"case": label, "error_feedback": bool(g["error_feedback"].iloc[0]), "tau_max": tau,
                    "slope": s, "low": lo, "high": hi, "final": float(vals[-1].mean())})
    return pd.DataFrame(out)
