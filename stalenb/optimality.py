"""How far each late-gradient policy is from the optimal time (notebook 09; issue 24).

The gauge: on a problem with known smoothness L, initial gap Δ = f(x₀) − f* and gradient variance
σ², the time a run takes to reach the target, divided by T*(ε) of
:func:`stalenb.theory.optimal_time` (Tyurin & Richtárik, NeurIPS 2023).

- :class:`Landscape`: the quadratic of notebook 09 — f(x) = ½ Σ a_i x_i², a_i log-spaced on
  [μ, L], d ≥ 100, x₀ scaled so that Δ = 1, Gaussian gradient noise of total variance σ² per
  stochastic gradient. Its problem reports the exact ‖∇f(x)‖² = Σ a_i² x_i² as ``train_loss``
  (and f − f* as ``test_loss``), so a run stops at the first evaluation with ‖∇f(x_t)‖² ≤ ε: the
  quantity T*(ε) is stated for, on the run's path (T* bounds its expectation; a first passage of a
  noisy path comes earlier, which favours no policy in particular).
- :data:`POLICIES`: every late-gradient policy of stalenb as Config settings, with the parameter
  tuned beside the step size (Ringmaster's R, Rennala's B, k of k-of-n).
- :func:`laws`: the worker-time laws — fixed τ_i = √i (Tyurin & Richtárik's example) and
  homogeneous workers with Pareto job times of tail index 1.5 (infinite variance, mean 1).
- :func:`measure`: runs configurations (in parallel, cached) and returns the time to target,
  ``inf`` when a run stops at its time limit or diverges first. A cached result is keyed on the
  configuration, the landscape and the source of the code that makes a run (``_run_code``), so
  an edit of the analysis functions below keeps it, an edit of a run's code does not.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import math
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from . import cache as _cache
from . import theory
from .sim.config import Config
from .sim.engine import run as _run
from .sim.gradients import Quadratic
from .sim.timing import NoSlowdown, Pareto, Timing, sqrt_factors


@dataclass(frozen=True)
class Landscape:
    """The quadratic of notebook 09 and its target (see the module docstring)."""

    d: int = 100
    L: float = 1.0
    mu: float = 0.05
    sigma2: float = 1.0
    eps: float = 0.1

    def __post_init__(self):
        if not (isinstance(self.d, int) and self.d >= 1):
            raise ValueError(f"d must be an integer >= 1, got {self.d!r}")
        if not (0 < self.mu <= self.L and self.sigma2 >= 0 and self.eps > 0):
            raise ValueError(f"need 0 < mu <= L, sigma2 >= 0, eps > 0; got mu={self.mu}, L={self.L}, "
                             f"sigma2={self.sigma2}, eps={self.eps}")

    delta = 1.0  #: Δ = f(x₀) − f*

    def problem(self, seed: int = 0) -> Quadratic:
        """The quadratic: curvatures log-spaced on [μ, L], x* = 0, x₀ = c·1 with ½ Σ a_i c² = Δ, noise
        N(0, σ²/d) per entry (one-sample gradients); it evaluates ‖∇f‖² as ``train_loss``."""
        a = torch.logspace(math.log10(self.mu), math.log10(self.L), self.d, dtype=torch.float64)
        c = math.sqrt(2 * self.delta / float(a.sum()))
        return GradientNormQuadratic(a, x0=torch.full((self.d,), c, dtype=torch.float64),
                                     noise=math.sqrt(self.sigma2 / self.d), seed=seed)

    def optimal(self, times) -> theory.OptimalTime:
        """T*(ε) for workers of (mean) times ``times``."""
        return theory.optimal_time(times, self.L, self.delta, self.sigma2, self.eps)


class GradientNormQuadratic(Quadratic):
    """A :class:`~stalenb.sim.gradients.Quadratic` whose evaluation reports ``train_loss`` = ‖∇f(x)‖²
    (what T*(ε) is stated for) and ``test_loss`` = f(x) − f*."""

    def evaluate(self, x) -> dict:
        g = self._curvature(x - self.x_star)
        return {"train_loss": float(g.dot(g)), "test_loss": self.value(x), "test_acc": float("nan")}


#: name → (Config settings, the parameter tuned besides the step size or None). "k" is the k of
#: k-of-n or Rennala's B; R is Ringmaster's max_delay.
POLICIES = {
    "async": ({"protocol": "async"}, None),
    "delay-adaptive": ({"protocol": "async", "rule": "delay-adaptive"}, None),
    "ringmaster": ({"protocol": "ringmaster"}, "max_delay"),  # discard on arrival (the cancelling variant
    # restarts every slow worker each R updates: O(n/R) events per update, out of reach at n = 10,000)
    "rennala": ({"protocol": "rennala"}, "k"),
    "k-of-n drop": ({"protocol": "k-of-n", "late": "drop"}, "k"),
    "k-of-n reuse": ({"protocol": "k-of-n", "late": "reuse"}, "k"),
    "gradient-table": ({"protocol": "gradient-table"}, None),
    "async top-k+EF": ({"protocol": "async", "compressor": "topk", "density": 0.1, "error_feedback": True}, None),
}
LAWS = ("sqrt", "pareto")


def laws(name: str, n: int) -> tuple[Timing, np.ndarray]:
    """The :class:`Timing` of ``n`` workers under law ``name`` (free communication: only compute
    counts, as in the fixed computation model) and the workers' mean job times (for T*)."""
    free = dict(per_sample=1.0, latency=0.0, bandwidth=math.inf)
    if name == "sqrt":
        factors = sqrt_factors(n)
        return Timing(slowdown=NoSlowdown(), factors=factors, **free), np.array(factors)
    if name == "pareto":  # scale 1/3, index 1.5: mean 1.5·(1/3)/0.5 = 1, infinite variance
        return Timing(slowdown=Pareto(shape=1.5, scale=1 / 3), **free), np.ones(n)
    raise ValueError(f"law must be one of {LAWS}, got {name!r}")


def config(policy: str, n: int, law: str, lr: float, param: int | None, seed: int, landscape: Landscape,
           limit: float) -> Config:
    """The run of ``policy`` with ``n`` workers, step ``lr`` and its tuned parameter ``param``,
    stopped at the target or at ``limit`` simulated seconds."""
    settings, tuned = POLICIES[policy]
    timing, _ = laws(law, n)
    split = settings["protocol"] in ("k-of-n", "sync")
    out = Config(workers=n, batch_size=n if split else 1, lr=lr, seed=seed, timing=timing, steps=10**7,
                 eval_every=1 if split or settings["protocol"] == "rennala" else 4, eval_size=None,
                 stop_loss=landscape.eps, time_limit=limit, diverge_loss=1e6, **settings)
    return out.replace(**{tuned: param}) if tuned else out


@functools.lru_cache(maxsize=1)
def _run_code() -> str:
    """SHA-256 of the source of what makes a run here (the simulator's own hash is in every key)."""
    parts = [inspect.getsource(obj) for obj in (Landscape, GradientNormQuadratic, laws, config, measure_one)]
    return hashlib.sha256("\n".join(parts + [repr(POLICIES)]).encode()).hexdigest()[:16]


def _key(cfg: Config, landscape: Landscape) -> str:
    return _cache.key(cfg, extra={"landscape": asdict(landscape), "run_code": _run_code()}, data=False)


def measure_one(cfg: Config, landscape: Landscape) -> dict:
    """Time to target of one run (``inf`` if not reached), its updates and whether it diverged; cached."""
    key = _key(cfg, landscape)
    hit = _cache.load(key)
    if hit is not None:
        return hit[1]["result"]
    torch.set_num_threads(1)
    h = _run(cfg, landscape.problem(cfg.seed), cache=False, progress=False).history
    reached = h["train_loss"] <= landscape.eps
    result = {"time": float(h.loc[reached, "sim_time"].iloc[0]) if reached.any() else math.inf,
              "updates": int(h["step"].iloc[-1]), "diverged": bool(h["diverged"].any()),
              "final_loss": float(h["train_loss"].iloc[-1])}
    _cache.save(key, {}, {"result": result})
    return result


def measure(rows: list[dict], landscape: Landscape, jobs: int = 1, progress: bool | None = None) -> pd.DataFrame:
    """Run every row (a dict of :func:`config`'s arguments) and return them with ``time``,
    ``updates``, ``diverged``, ``final_loss``; runs not in the cache go to ``jobs`` processes."""
    from .experiments import pool

    configs = [config(**row, landscape=landscape) for row in rows]
    results = {c: _cached(c, landscape) for c in dict.fromkeys(configs)}  # each cache file read once
    missing = [c for c, result in results.items() if result is None]
    bar = dict(desc="optimality runs", leave=False, **({} if progress is None else {"disable": not progress}))
    if missing and jobs > 1:
        executor = pool(jobs)
        futures = [executor.submit(measure_one, c, landscape) for c in missing]
        results.update(zip(missing, (f.result() for f in tqdm(futures, **bar))))
    else:
        results.update((c, measure_one(c, landscape)) for c in tqdm(missing, **bar))
    return pd.DataFrame([{**row, **results[c]} for row, c in zip(rows, configs)])


def _cached(cfg: Config, landscape: Landscape) -> dict | None:
    hit = _cache.load(_key(cfg, landscape))
    return None if hit is None else hit[1]["result"]


def ratios(table: pd.DataFrame, landscape: Landscape) -> pd.DataFrame:
    """``table`` with ``optimal`` (T*(ε) of its n and law) and ``ratio`` = time / T*."""
    opt = {(n, law): landscape.optimal(laws(law, n)[1]).time for n, law in set(zip(table["n"], table["law"]))}
    out = table.copy()
    out["optimal"] = [opt[(n, law)] for n, law in zip(out["n"], out["law"])]
    out["ratio"] = out["time"] / out["optimal"]
    return out


def grid(policies, ns, law: str, lrs, params, seeds, landscape: Landscape, limit_factor: float) -> list[dict]:
    """The rows of a tuning or evaluation grid: every policy × n × step size × its tuned parameter
    (``params``; k of k-of-n at most n) × seed, each stopped at ``limit_factor`` · T*(ε)."""
    rows = []
    for n in ns:
        limit = limit_factor * landscape.optimal(laws(law, n)[1]).time
        for policy in policies:
            tuned = POLICIES[policy][1]
            values = [None] if tuned is None else [p for p in params if not (policy.startswith("k-of-n") and p > n)]
            rows += [dict(policy=policy, n=n, law=law, lr=lr, param=p, seed=s, limit=limit)
                     for p in values for lr in lrs for s in seeds]
    return rows


def best(table: pd.DataFrame) -> pd.DataFrame:
    """Per (policy, n, law): the step size and parameter with the shortest time on the tuning runs;
    among runs that never reached ε, one that did not diverge and ended closest to it (then the
    larger step, the smaller parameter); ``reached`` False when none reached ε."""
    t = table.assign(_p=table["param"].fillna(0)).sort_values(
        ["time", "diverged", "final_loss", "lr", "_p"], ascending=[True, True, True, False, True])
    out = t.groupby(["policy", "n", "law"], sort=False).head(1).drop(columns="_p")
    return out.assign(reached=np.isfinite(out["time"])).reset_index(drop=True)


def growth_interval(table: pd.DataFrame, policy: str, law: str, small: int, large: int,
                    cap: float) -> tuple[float, float, float]:
    """g = (time/T*) at ``large`` workers ÷ (time/T*) at ``small``, from the evaluation seeds of each
    (independent runs, not paired): (point, low, high) with low = min ratio at ``large`` ÷ max at
    ``small`` and high = max at ``large`` ÷ min at ``small``. A censored ratio is only known to
    exceed ``cap``: it enters low as ``cap`` at ``large`` and as ∞ at ``small``, and high as ∞ at
    ``large`` and ``cap`` at ``small``. The point is the ratio of medians (NaN if either is censored)."""
    t = table[(table["policy"] == policy) & (table["law"] == law)]
    big, ref = (t.loc[t["n"] == n, "ratio"].to_numpy(dtype=float) for n in (large, small))
    lower = lambda r: np.where(np.isfinite(r), r, cap)  # noqa: E731 - the two bounds of a censored ratio
    upper = lambda r: np.where(np.isfinite(r), r, np.inf)  # noqa: E731
    low = float(lower(big).min() / upper(ref).max())
    high = float(upper(big).max() / lower(ref).min())
    point = float(np.median(big) / np.median(ref)) if np.isfinite([big, ref]).all() else math.nan
    return point, low, high


def log_speedups(table: pd.DataFrame, faster: str, slower: str, n: int, law: str) -> tuple[np.ndarray, bool, bool]:
    """Per seed: ln(time of ``slower`` ÷ time of ``faster``), a censored time taken at its limit;
    and whether ``slower`` / ``faster`` was censored on some seed (the value is then a lower / an
    upper bound of the true one: :func:`bounded_interval` opens that side)."""
    t = table[(table["n"] == n) & (table["law"] == law)]
    a, b = (t[t["policy"] == p].set_index("seed").sort_index() for p in (faster, slower))
    ta, tb = (np.minimum(x["time"], x["limit"]) for x in (a, b))
    censored = [bool((~np.isfinite(x["time"])).any()) for x in (b, a)]
    return np.log(tb / ta).to_numpy(dtype=float), *censored


def bounded_interval(values, level: float, *, open_above: bool, open_below: bool) -> tuple[float, float, float]:
    """:func:`interval` of ``values`` with a side opened to ±∞ where censored values only bound it."""
    mean, low, high = interval(values, level)
    return mean, (-math.inf if open_below else low), (math.inf if open_above else high)


def interval(values, level: float = 0.95) -> tuple[float, float, float]:
    """Mean and t-interval (:func:`stalenb.stats.ci95` at ``level``) of the finite ``values`` (NaN
    dropped); (−inf, inf) around the mean with fewer than 2."""
    from .stats import ci95

    v = np.asarray(values, dtype=float)
    if np.isinf(v).any():
        raise ValueError("interval needs finite values (take censored times at their limit first)")
    mean, half, _, n = ci95(v, level)
    return (mean, -math.inf, math.inf) if n < 2 else (mean, mean - half, mean + half)
