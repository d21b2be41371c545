"""Paper 1's convergence rate, measured: ergodic ‖∇f‖² of async sparsified SGD against the horizon.

Paper 1 (Candela et al. 2019, ``docs/research.md`` §1) claims that asynchronous SGD with bounded
staleness and sparsified gradients keeps the non-convex SGD rate

    (1/T) Σ_{t=0}^{T−1} E‖∇f(x_t)‖² = O(1/√T)   for the step α = lr_scale/√T
(``lr_scale``: the constant in front of 1/√T, the same for every horizon).

:func:`rate_run` runs one horizon T through the simulator (:func:`stalenb.run` with a callback
that keeps every iterate) and returns the exact ‖∇f(x_t)‖² after every update, the largest
staleness met, and the Hessian's extreme eigenvalues at points of the run's last half;
:func:`rate_sweep` repeats that over horizons, staleness levels and compression cases;
:func:`rate_table` fits the log-log slope of the ergodic mean against T
(:func:`stalenb.theory.loglog_slope`), which the claim puts at −1/2 (steeper at short horizons, where
O(1/T) transients still count), over the horizons it is given — in notebook 04 those that meet the
step condition α·L·(τ+1) ≤ 1 (:func:`step_condition`, :func:`min_horizon`).
:func:`slope_difference` compares two cases' slopes with a bootstrap paired by seed, and
:func:`matched_horizon` says at which horizon a run with a smaller step constant has made as much
progress as a reference run.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from . import cache as _cache
from . import theory
from .sim.config import Config
from .sim.engine import run as _run
from .sim.objectives import NonconvexLogistic
from .sim.staleness import Uniform

#: Paper 1's cases: (label, compressor, density, error feedback[, step factor]). An optional fifth
#: entry multiplies the step constant of that case (a dense control with step ρ·c: factor ρ).
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
#: Hessian checks per run in its last half (:func:`rate_run`).
PATH_POINTS = 20


def horizons(lo: int, hi: int, num: int) -> np.ndarray:
    """``num`` log-spaced integer horizons from ``lo`` to ``hi`` (distinct, increasing)."""
    if not (1 <= lo < hi) or num < 2:
        raise ValueError(f"need 1 <= lo < hi and num >= 2, got lo={lo}, hi={hi}, num={num}")
    T = np.unique(np.round(np.geomspace(lo, hi, num)).astype(int))
    if T.size != num:
        raise ValueError(f"lo={lo}, hi={hi} too close for num={num} distinct horizons")
    return T


def step_condition(lr_scale: float, L: float, tau: int, T) -> np.ndarray:
    """α·L·(τ+1) for α = ``lr_scale``/√T, per horizon T (the step condition asks it to be ≤ 1).

    Asynchronous SGD analyses bound the drift of a gradient that is up to τ updates old by
    requiring α·L·τ to be at most a constant of order one (Lian et al. 2015, paper 1's reference
    [9]; the constants differ between analyses, and paper 1's own condition is not available);
    notebook 04 uses the form α·L·(τ+1) ≤ 1, with L a smoothness constant of f and τ the staleness
    bound.

    Example:
        >>> float(step_condition(1.0, 1.0, 9, 100))
        1.0
    """
    T = np.asarray(T, dtype=float)
    if lr_scale <= 0 or L <= 0 or tau < 0 or np.any(T <= 0):
        raise ValueError(f"need lr_scale > 0, L > 0, tau >= 0, T > 0; got {lr_scale}, {L}, {tau}, {T}")
    return lr_scale * L * (tau + 1) / np.sqrt(T)


def min_horizon(lr_scale: float, L: float, tau: int) -> int:
    """The smallest integer horizon T with α·L·(τ+1) ≤ 1 for α = ``lr_scale``/√T: ⌈(lr_scale·L·(τ+1))²⌉.

    Example:
        >>> min_horizon(1.0, 1.0, 9)
        100
    """
    step_condition(lr_scale, L, tau, 1)  # validates the arguments
    T = max(1, math.ceil((lr_scale * L * (tau + 1)) ** 2 - 1e-9))
    return T if step_condition(lr_scale, L, tau, T) <= 1 + 1e-12 else T + 1


def matched_horizon(T: float, step_ratio: float) -> float:
    """The horizon T' at which a run with step constant ``step_ratio``·c has made the progress of a run
    with constant c at horizon ``T``: T' = T/step_ratio².

    Both runs take constant steps within a run, so they travel the same total step Σα when
    step_ratio·c·√T' = c·√T (and the ergodic mean of a step-average is a time-average along the
    path); the smaller-step run then also carries less noise (Σα² = step_ratio²·c² vs c²), so T' is
    where its transient is over at the latest as far as the drift is concerned — an estimate, not a bound.

    Example:
        >>> matched_horizon(1000, 0.1)
        100000.0
    """
    if T <= 0 or not (0 < step_ratio):
        raise ValueError(f"need T > 0 and step_ratio > 0, got {T}, {step_ratio}")
    return float(T) / step_ratio**2


def pre_asymptotic(n_T: int, high: float, threshold: float, control_high: float | None = None,
                   min_horizons: int = 3) -> str | None:
    """Why a rate claim (slope below ``threshold``) cannot be decided on the horizons fitted, or None.

    ``"horizons"``: fewer than ``min_horizons`` horizons meet the step condition (no in-regime fit).
    ``"control"``: the case has a dense control (``control_high`` given: the upper end of the control's
    slope interval), its own interval is not wholly below the threshold (upper end ``high``), and
    neither is the control's — dense SGD, whose O(1/√T) rate is a theorem, does not show it at that
    step on these horizons, so a slope above the threshold says nothing about the rate. A slope wholly
    below the threshold is evidence whatever the control shows (None).

    Example:
        >>> pre_asymptotic(4, -0.28, -0.4, control_high=-0.29)
        'control'
    """
    if n_T < min_horizons:
        return "horizons"
    if control_high is not None and not high < threshold and not control_high < threshold:
        return "control"
    return None


def _grad_norm2_many(problem, X: torch.Tensor) -> np.ndarray:
    """‖∇f(x)‖² for every row x of ``X`` (shape (m, d)).

    For :class:`~stalenb.sim.objectives.NonconvexLogistic` (exactly that class) in chunks with one
    matrix product: ∇f(x) = −Aᵀ(y ⊙ σ(−y ⊙ Ax))/n + 2λx/(1 + x²)² (the formula of its ``full_grad``);
    otherwise ``problem.grad_norm2`` row by row.
    """
    if type(problem) is not NonconvexLogistic:
        return np.array([problem.grad_norm2(x) for x in X], dtype=float)
    out = []
    for chunk in torch.split(X, 2048):
        M = problem.y[:, None] * (problem.A @ chunk.T)                      # (n, m) margins
        G = -(problem.At @ (problem.y[:, None] * torch.sigmoid(-M))) / problem.n_train
        G = G + 2 * problem.lam * chunk.T / (1 + chunk.T * chunk.T) ** 2       # (d, m)
        out.append(G.square().sum(dim=0))
    return torch.cat(out).numpy().astype(float)


def late_checks(T: int, points: int = PATH_POINTS) -> np.ndarray:
    """Iterate indices t in the last half (T/2, T] of a run of T updates at which :func:`rate_run` takes
    the Hessian: ``points`` evenly spaced, ending at T (fewer if T/2 has fewer integers).

    Example:
        >>> late_checks(100, 5).tolist()
        [60, 70, 80, 90, 100]
    """
    if points < 1 or T < 1:
        raise ValueError(f"need T >= 1 and points >= 1, got {T}, {points}")
    t = np.unique(np.round(T / 2 + np.arange(1, points + 1) * (T / 2) / points).astype(int))
    return t[(t > T / 2) & (t <= T)]


def rate_run(problem, config: Config, cache: bool = True, path_points: int = PATH_POINTS) -> dict:
    """One run of ``config`` on ``problem``: what the rate experiment keeps of it.

    Returns a dict with ``ergodic`` = (1/T) Σ_{t<T} ‖∇f(x_t)‖² (T = ``config.steps``; ``inf`` if the
    run diverged), ``seq`` = ‖∇f(x_0)‖², …, ‖∇f(x_T)‖² (shorter if diverged), ``diverged``,
    ``staleness_max`` (the largest staleness of an applied gradient) and ``path``, a frame with
    columns ``t``, ``lambda_min``, ``lambda_max``: the extreme eigenvalues of the exact Hessian at
    x_t for t in :func:`late_checks` (empty when ``problem`` has no ``hessian`` or ``path_points``
    is 0). ``problem`` needs ``grad_norm2(x)``, e.g. :class:`stalenb.objectives.NonconvexLogistic`.
    With ``cache`` and a problem that carries a ``spec`` dict (its constructor arguments), the result
    is kept in the results cache (:mod:`stalenb.cache`) keyed by config + spec + ``path_points``.
    """
    spec = getattr(problem, "spec", None)
    key = (_cache.key(config, extra={"problem": spec, "path_points": path_points}, code=("rates.py",),
                      data=False) if cache and spec is not None else None)
    hit = _cache.load(key) if key else None
    if hit is not None:
        frames, meta = hit
        seq, path = frames["seq"]["grad_norm2"].to_numpy(), frames["path"]
        diverged, staleness_max = bool(meta["diverged"]), int(meta["staleness_max"])
    else:
        xs = [problem.x0.detach().clone()]
        res = _run(config, problem=problem, callback=lambda step, x: xs.append(x.detach().clone()), progress=False)
        X = torch.stack(xs)
        seq = _grad_norm2_many(problem, X)
        diverged = bool(res.diverged)
        applied = res.updates[res.updates["applied"]] if "applied" in res.updates else res.updates
        staleness_max = int(applied["staleness"].max()) if len(applied) else 0
        rows = []
        if path_points and hasattr(problem, "hessian"):
            for t in late_checks(config.steps, path_points):
                if t < len(X):
                    ev = torch.linalg.eigvalsh(problem.hessian(X[t]))
                    rows.append({"t": int(t), "lambda_min": float(ev[0]), "lambda_max": float(ev[-1])})
        path = pd.DataFrame(rows, columns=["t", "lambda_min", "lambda_max"]).astype(
            {"t": "int64", "lambda_min": "float64", "lambda_max": "float64"})
        if key:
            _cache.save(key, {"seq": pd.DataFrame({"grad_norm2": seq}), "path": path},
                        {"diverged": diverged, "staleness_max": staleness_max})
    ok = not diverged and len(seq) >= config.steps + 1 and bool(np.all(np.isfinite(seq)))
    return {"ergodic": float(seq[: config.steps].mean()) if ok else math.inf, "seq": seq, "diverged": not ok,
            "staleness_max": staleness_max, "path": path}


def ergodic_grad_norm(problem, config: Config, cache: bool = True) -> tuple[float, np.ndarray]:
    """(1/T) Σ_{t<T} ‖∇f(x_t)‖² and the sequence ‖∇f(x_0)‖², …, ‖∇f(x_T)‖² of :func:`rate_run`."""
    out = rate_run(problem, config, cache=cache)
    return out["ergodic"], out["seq"]


def base_config(lr_scale: float, batch_size: int = 8, workers: int = 4, seed: int = 0) -> Config:
    """The async configuration of the rate experiment (staleness and compression set per case).

    Its one step (T = 1) has lr = ``lr_scale``/√1; :func:`rate_sweep` sets lr and steps per horizon.
    """
    return Config(protocol="async", workers=workers, staleness=Uniform(0), lr=lr_scale, batch_size=batch_size,
                  steps=1, eval_every=1, seed=seed, diverge_loss=1e6)


def case_config(lr_scale: float, case, tau: int, T: int, seed: int, batch_size: int = 8, workers: int = 4) -> Config:
    """The run of ``case`` = (label, compressor, density, error_feedback[, step_factor]) at staleness
    Uniform(``tau``), horizon ``T`` and ``seed``, with lr = step_factor·``lr_scale``/√T (what
    :func:`rate_sweep` runs; call :func:`rate_run` on it to load a run of the sweep from the cache)."""
    _, comp, dens, ef = case[:4]
    factor = float(case[4]) if len(case) > 4 else 1.0
    return base_config(lr_scale, batch_size, workers, seed).replace(
        staleness=Uniform(tau), compressor=comp, density=dens, error_feedback=ef,
        lr=factor * lr_scale / math.sqrt(T), steps=int(T), eval_every=int(T))


def rate_sweep(problem, lr_scale: float, T, taus, cases=CASES, seeds=(0,), batch_size: int = 8,
               workers: int = 4, progress: bool | None = None, path_points: int = PATH_POINTS) -> pd.DataFrame:
    """One run per (case, τ_max, T, seed) with α = factor·lr_scale/√T; a tidy frame of ergodic means.

    A case is ``(label, compressor, density, error_feedback[, step_factor])`` (factor 1 by default).
    Columns: ``case``, ``compressor``, ``density``, ``error_feedback``, ``step_factor``, ``tau_max``,
    ``T``, ``seed``, ``lr``, ``ergodic`` ((1/T) Σ ‖∇f(x_t)‖²), ``final`` (‖∇f(x_T)‖²),
    ``staleness_max`` (measured), and over the Hessian checks of the run's last half
    (:func:`late_checks`; NaN without them): ``late_lambda_min_low`` / ``late_lambda_min_high`` (the
    smallest / largest λ_min), ``late_negative`` (share of checks with λ_min < 0), ``late_lambda_max``
    (the largest λ_max).
    """
    rows = []
    jobs = [(case, tau, t, s) for case in cases for tau in taus for t in T for s in seeds]
    for case, tau, t, s in tqdm(jobs, desc="rate sweep", leave=False,
                                **({} if progress is None else {"disable": not progress})):
        label, comp, dens, ef = case[:4]
        cfg = case_config(lr_scale, case, tau, t, s, batch_size, workers)
        factor = float(case[4]) if len(case) > 4 else 1.0
        out = rate_run(problem, cfg, path_points=path_points)
        lam = out["path"]
        rows.append({"case": label, "compressor": comp, "density": dens, "error_feedback": ef, "step_factor": factor,
                     "tau_max": cfg.staleness.tau_max, "T": cfg.steps, "seed": s, "lr": cfg.lr,
                     "ergodic": out["ergodic"], "final": float(out["seq"][-1]), "staleness_max": out["staleness_max"],
                     "late_lambda_min_low": float(lam.lambda_min.min()) if len(lam) else math.nan,
                     "late_lambda_min_high": float(lam.lambda_min.max()) if len(lam) else math.nan,
                     "late_negative": float((lam.lambda_min < 0).mean()) if len(lam) else math.nan,
                     "late_lambda_max": float(lam.lambda_max.max()) if len(lam) else math.nan})
    return pd.DataFrame(rows)


def _wide(df: pd.DataFrame, T_fit=None) -> pd.DataFrame:
    wide = df.pivot_table(index="T", columns="seed", values="ergodic", aggfunc="first", dropna=False).sort_index()
    return wide if T_fit is None else wide.loc[wide.index.isin(np.asarray(T_fit))]


def rate_table(df: pd.DataFrame, n_boot: int = 2000, level: float = 0.95, T_fit=None) -> pd.DataFrame:
    """Per (case, τ_max): fitted log-log slope of the ergodic mean vs T with a bootstrap interval.

    ``T_fit``: fit only these horizons (default: all). Fewer than 3 horizons, or a diverged run among
    them, give NaN slopes. Columns: ``case``, ``error_feedback``, ``tau_max``, ``slope``, ``low``,
    ``high``, ``n_T`` (horizons fitted), ``final`` (the ergodic mean at the longest horizon fitted,
    mean over seeds).
    """
    out = []
    for (label, tau), g in df.groupby(["case", "tau_max"], sort=False):
        wide = _wide(g, T_fit)
        vals = wide.to_numpy()
        try:
            s, lo, hi = theory.loglog_slope(wide.index.to_numpy(), vals[:, 0] if vals.shape[1] == 1 else vals,
                                            n_boot=n_boot, level=level)
        except ValueError:
            s = lo = hi = math.nan
        out.append({"case": label, "error_feedback": bool(g["error_feedback"].iloc[0]), "tau_max": tau,
                    "slope": s, "low": lo, "high": hi, "n_T": int(len(wide)),
                    "final": float(vals[-1].mean()) if len(vals) else math.nan})
    return pd.DataFrame(out)


def slope_difference(T, a, b, n_boot: int = 2000, level: float = 0.95, seed: int = 0) -> tuple[float, float, float]:
    """Slope of log(mean a) minus slope of log(mean b) against log T, with a bootstrap paired by seed.

    ``a``, ``b``: shape (m, s), one row per horizon, one column per seed; column j of both comes
    from seed j (same batches and delays), so each bootstrap replicate resamples the seeds once and
    uses the same draw for both — the interval of the difference then keeps what the two share
    (the least-squares slope of :func:`stalenb.theory.loglog_slope` applied to both).

    Returns:
        (difference, low, high); NaN if fewer than 3 horizons or a value is not finite and > 0.
    """
    x = np.log(np.asarray(T, dtype=float))
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape or a.ndim != 2 or a.shape[0] != x.size:
        raise ValueError(f"a and b must both have shape (len(T), seeds), got {a.shape}, {b.shape}, {x.shape}")
    if x.size < 3 or not (np.all(np.isfinite(a)) and np.all(np.isfinite(b)) and np.all(a > 0) and np.all(b > 0)):
        return math.nan, math.nan, math.nan
    xc = x - x.mean()

    def fit(v):  # slope of log(mean over seeds), last axis = seeds
        y = np.log(v.mean(axis=-1))
        return (xc * (y - y.mean(axis=-1, keepdims=True))).sum(axis=-1) / (xc**2).sum()

    diff = float(fit(a) - fit(b))
    pick = np.random.default_rng(seed).integers(0, a.shape[1], (n_boot, a.shape[1]))
    boot = fit(a[:, pick].transpose(1, 0, 2)) - fit(b[:, pick].transpose(1, 0, 2))
    lo, hi = np.quantile(boot, [(1 - level) / 2, (1 + level) / 2])
    return diff, float(lo), float(hi)


def case_slope_difference(df: pd.DataFrame, case: str, control: str, tau: int, T_fit=None, **kw):
    """:func:`slope_difference` of two cases of a :func:`rate_sweep` frame (``case`` minus ``control``) at
    staleness ``tau`` over ``T_fit`` (default: all horizons), on the seeds both share."""
    wa = _wide(df[(df.case == case) & (df.tau_max == tau)], T_fit)
    wb = _wide(df[(df.case == control) & (df.tau_max == tau)], T_fit)
    seeds = sorted(set(wa.columns) & set(wb.columns))
    if list(wa.index) != list(wb.index):
        raise ValueError(f"{case!r} and {control!r} were run at different horizons")
    return slope_difference(wa.index.to_numpy(), wa[seeds].to_numpy(), wb[seeds].to_numpy(), **kw)
