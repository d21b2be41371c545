"""Grids of runs, aggregation over seeds, and verdicts with confidence intervals (notebooks 05–06).

An *experiment* is a list of ``(labels, config)`` pairs: ``labels`` is a dict of the grid
coordinates (``{"method": "vanilla", "tau": 8, "seed": 0}``) that become columns of the tidy
result frames. :func:`product` builds such a list from named axes, :func:`run_all` runs it through
:func:`stalenb.run` (so every run is cached on disk by its config), and the remaining functions
turn the histories into tables:

- :func:`final` — the final value of a metric per run (mean of the last evaluation rows);
- :func:`summarize` — mean, std and a 95 % t-interval over seeds;
- :func:`paired_difference` — method a − method b, paired on the same seed (same initial model,
  same mini-batches, same delays: common random numbers) and condition, with a 95 % t-interval;
- :func:`verdict` — "holds" / "does not hold" for a claim of improvement or of non-inferiority;
- :func:`time_to_accuracy` — first simulated time (or step) at which a run reaches a target.

Method sets of the two sources live here too: :func:`sparsification_methods` (paper 1's
sparsifiers and the staleness remedies it compares against, ``docs/research.md`` §3) and
:func:`backup_variants` (sync, k-of-n drop / reuse, async; the poster's experiment).
"""

from __future__ import annotations

import contextlib
import itertools
import math
import os

import numpy as np
import pandas as pd
from scipy import stats
from tqdm.auto import tqdm

from .config import Config
from .engine import run


# -- building grids -------------------------------------------------------------------------------
def product(base: Config, **axes) -> list[tuple[dict, Config]]:
    """The Cartesian product of named axes applied to ``base``.

    Each axis is either a dict ``{label: changes}`` (``changes`` a dict of Config fields) or a list
    of values for the field of the same name (``seed=[0, 1, 2]``). Labels become the columns of
    the result frames.

    Example:
        >>> specs = product(Config(), method={"plain": {}, "sa": {"rule": "staleness-aware"}},
        ...                 seed=[0, 1])
        >>> [labels for labels, _ in specs][:2]
        [{'method': 'plain', 'seed': 0}, {'method': 'plain', 'seed': 1}]
    """
    names, choices = [], []
    for name, axis in axes.items():
        if isinstance(axis, dict):
            items = list(axis.items())
        else:
            items = [(v, {name: v}) for v in axis]
        if not items:
            raise ValueError(f"axis {name!r} is empty")
        names.append(name)
        choices.append(items)
    specs = []
    for combo in itertools.product(*choices):
        changes = {}
        for _, ch in combo:
            changes.update(ch)
        specs.append(({n: label for n, (label, _) in zip(names, combo)}, base.replace(**changes)))
    return specs


def sparsification_methods(densities=(0.001, 0.01, 0.1), randomk_density: float = 0.01,
                           dc_lambda: float = 0.04) -> dict[str, dict]:
    """Paper 1's methods as Config changes: vanilla, top-k ± EF, random-k ± EF, the two remedies.

    Update rules as in ``docs/research.md`` §3: vanilla async SGD (Dean et al. 2012); top-k / random-k
    with or without error feedback (Stich et al. 2018); staleness-aware lr α / max(1, τ) (Zhang
    et al. 2016); DC-ASGD with λ (Zheng et al. 2017).
    """
    out = {"vanilla": {}}
    for rho in densities:
        out[f"top-k {_pct(rho)}"] = {"compressor": "topk", "density": rho}
        out[f"top-k {_pct(rho)} +EF"] = {"compressor": "topk", "density": rho, "error_feedback": True}
    if randomk_density:
        out[f"random-k {_pct(randomk_density)}"] = {"compressor": "randomk", "density": randomk_density}
        out[f"random-k {_pct(randomk_density)} +EF"] = {"compressor": "randomk", "density": randomk_density,
                                                        "error_feedback": True}
    out["staleness-aware"] = {"rule": "staleness-aware"}
    out["DC-ASGD"] = {"rule": "dc-asgd", "dc_lambda": dc_lambda}
    return out


def _pct(rho: float) -> str:
    return f"{100 * rho:g}%"


def backup_variants(workers: int, ks, lag_weights=((1.0,),), asynchronous: bool = True) -> dict[str, dict]:
    """The poster's protocols for n = ``workers`` as Config changes.

    ``sync`` (wait for all n), ``k-of-n drop`` and ``k-of-n reuse`` for each k < n in ``ks`` (reuse
    once per entry of ``lag_weights``), and ``async`` (each gradient of B/n samples applied on
    arrival, the batch per gradient kept equal to the synchronous worker's share). k values are
    deduplicated and those equal to n are covered by ``sync``.
    """
    out = {"sync": {"protocol": "sync", "workers": workers}}
    for k in sorted({int(k) for k in ks}):
        if not 1 <= k <= workers:
            raise ValueError(f"k must satisfy 1 <= k <= workers ({workers}), got k={k}")
        if k == workers:
            continue
        out[f"drop k={k}"] = {"protocol": "k-of-n", "workers": workers, "k": k, "late": "drop"}
        for w in lag_weights:
            out[f"reuse k={k} w={_weights(w)}"] = {"protocol": "k-of-n", "workers": workers, "k": k,
                                                   "late": "reuse", "lag_weights": tuple(w)}
    if asynchronous:
        out["async"] = {"protocol": "async", "workers": workers}
    return out


def _weights(w) -> str:
    return ",".join(f"{x:g}" for x in w)


# -- running ----------------------------------------------------------------------------------------
class Results:
    """The runs of an experiment as two tidy frames with the label columns in front."""

    def __init__(self, specs, runs):
        self.specs, self.runs = specs, runs
        self.labels = list(specs[0][0]) if specs else []
        self.history = _concat([r.history for r in runs], specs)
        self.updates = _concat([r.updates for r in runs], specs)

    @property
    def from_cache(self) -> int:
        """How many runs were loaded from the cache."""
        return sum(r.from_cache for r in self.runs)

    def __len__(self) -> int:
        return len(self.runs)


def _concat(frames, specs) -> pd.DataFrame:
    parts = []
    for df, (labels, _) in zip(frames, specs):
        df = df.copy()
        clash = sorted(set(labels) & set(df.columns))
        if clash:
            raise ValueError(f"label name(s) {clash} clash with result columns; rename the axis")
        for i, (k, v) in enumerate(labels.items()):
            df.insert(i, k, v)
        parts.append(df)
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def run_all(specs, *, jobs: int = 1, progress: bool | None = None, desc: str = "runs",
            executor=None) -> Results:
    """Run (or load from the cache) every config of ``specs``; return :class:`Results`.

    Args:
        specs: ``(labels, config)`` pairs, e.g. from :func:`product`.
        jobs: worker processes for the runs missing from the cache (``1`` runs everything in this
            process). Finished runs land in the cache, which this process then reads. Every run is
            computed with one torch thread (:func:`single_thread`), so results do not depend on
            ``jobs``.
        progress: progress bar over the runs (tqdm's default when ``None``).
        executor: an existing engine for the missing runs instead of ``jobs`` local processes: any
            ``concurrent.futures.Executor`` (a Dask cluster's ``Client(...).get_executor()``, a
            ``ProcessPoolExecutor``) or an object with the same ``submit(fn, *args)`` →
            ``future.result()`` (submitit's ``AutoExecutor`` for SLURM). Each task computes one run
            single-threaded and writes it into this process's cache folder, which the workers
            must therefore see (a shared filesystem on a cluster); this process then reads them.
            Default: a Dask cluster when ``$STALENB_DASK`` holds its scheduler's address (so
            ``STALENB_DASK=tcp://host:8786 make reproduce`` spreads every notebook's grid), else
            ``jobs`` local processes.
    """
    if not isinstance(jobs, int) or jobs < 1:
        raise ValueError(f"jobs must be an integer >= 1, got {jobs!r}")
    if executor is not None and not callable(getattr(executor, "submit", None)):
        raise TypeError(f"executor must have a submit(fn, *args) method, got {executor!r}")
    bar = {} if progress is None else {"disable": not progress}
    if executor is None and os.environ.get("STALENB_DASK"):
        from distributed import Client

        with Client(os.environ["STALENB_DASK"]) as client:
            _compute(client.get_executor(), _missing(specs), bar, f"{desc} (Dask)")
    elif executor is not None:
        _compute(executor, _missing(specs), bar, f"{desc} (executor)")
    elif jobs > 1:
        _prefill(specs, jobs, bar, desc)
    with single_thread():
        runs = [run(cfg, progress=False) for _, cfg in tqdm(specs, desc=desc, leave=False, **bar)]
    return Results(specs, runs)


@contextlib.contextmanager
def single_thread():
    """Run torch on one thread inside the block (restored after).

    Floating-point reductions depend on the thread count, and a few ulps grow into visibly
    different trajectories over hundreds of SGD steps. :func:`run_all` therefore computes every
    run single-threaded, in this process or in its workers, so that a cached result does not
    depend on ``jobs`` or on the kernel's thread setting.
    """
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _run_one(config: Config, cache_dir: str | None = None) -> bool:
    """Compute one run into the cache (``cache_dir``: the caller's folder, seen by this worker)."""
    before = os.environ.get("STALENB_CACHE")
    if cache_dir is not None:
        os.environ["STALENB_CACHE"] = cache_dir
    try:
        with single_thread():
            return run(config, progress=False).diverged
    finally:
        if cache_dir is not None:
            if before is None:
                os.environ.pop("STALENB_CACHE", None)
            else:
                os.environ["STALENB_CACHE"] = before


def _missing(specs) -> list[Config]:
    """The distinct configs of ``specs`` that the cache does not hold yet."""
    from . import cache

    return list({cache.key(cfg): cfg for _, cfg in specs if not cache.path_for(cache.key(cfg)).is_file()}.values())


def _compute(executor, missing, bar, desc) -> None:
    """Run ``missing`` on ``executor`` (``submit`` → ``result``) into this process's cache folder."""
    from . import paths

    folder = str(paths.cache_dir())
    futures = [executor.submit(_run_one, cfg, folder) for cfg in missing]
    for future in tqdm(futures, total=len(futures), desc=desc, leave=False, **bar):
        future.result()


def _prefill(specs, jobs, bar, desc) -> None:
    """Compute the uncached runs in ``jobs`` spawned processes (they write the cache)."""
    import multiprocessing as mp
    import os
    from concurrent.futures import ProcessPoolExecutor

    jobs = min(jobs, int(os.environ.get("STALENB_MAX_JOBS") or jobs))  # set by stalenb.reproduce
    missing = _missing(specs)
    if len(missing) < 2 or jobs < 2:
        return
    with ProcessPoolExecutor(min(jobs, len(missing)), mp_context=mp.get_context("spawn")) as pool:
        _compute(pool, missing, bar, f"{desc} ({jobs} jobs)")


def final(history: pd.DataFrame, by, metric: str = "test_acc", tail: int = 1) -> pd.DataFrame:
    """Per run (``by`` = the label columns, seed included): the mean of ``metric`` over its last
    ``tail`` evaluation rows, plus ``bytes_sent``, ``sim_time`` and ``diverged`` at the end.

    A diverged run keeps its last (non-finite or poor) value and ``diverged=True``; callers decide
    whether to count it (it *is* the outcome of that method at that setting).
    """
    by = list(by)
    g = history.sort_values("step").groupby(by, sort=False)
    out = g[metric].apply(lambda s: float(np.mean(s.to_numpy()[-tail:]))).rename(metric).to_frame()
    last = g[["step", "bytes_sent", "sim_time", "samples"]].last()
    out = out.join(last).join(g["diverged"].any())
    return out.reset_index()


def ci95(values) -> tuple[float, float, float, int]:
    """(mean, half-width of the 95 % t-interval, std, n) of ``values`` (NaN half-width for n < 2)."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    n = len(v)
    if n == 0:
        return math.nan, math.nan, math.nan, 0
    mean = float(v.mean())
    if n < 2:
        return mean, math.nan, math.nan, n
    sd = float(v.std(ddof=1))
    return mean, float(stats.t.ppf(0.975, n - 1) * sd / math.sqrt(n)), sd, n


def summarize(table: pd.DataFrame, by, metric: str = "test_acc") -> pd.DataFrame:
    """Mean, std, n and 95 % interval of ``metric`` over the rows of each ``by`` group (the seeds)."""
    rows = []
    for key, grp in table.groupby(list(by), sort=False):
        mean, half, sd, n = ci95(grp[metric])
        key = key if isinstance(key, tuple) else (key,)
        rows.append({**dict(zip(by, key)), "mean": mean, "std": sd, "n": n,
                     "ci_low": mean - half, "ci_high": mean + half})
    return pd.DataFrame(rows)


def paired_difference(table: pd.DataFrame, a: str, b: str, *, column: str = "method",
                      pair_on=("tau", "seed"), metric: str = "test_acc") -> dict:
    """``metric`` of ``a`` minus that of ``b``, paired on the ``pair_on`` columns, with a 95 % t-interval.

    Returns a dict with ``a``, ``b``, ``diff`` (mean of the paired differences), ``ci_low``,
    ``ci_high``, ``n`` (pairs) and ``p`` (two-sided paired t-test; NaN for fewer than 2 pairs).
    """
    pair_on = list(pair_on)
    left = table[table[column] == a].set_index(pair_on)[metric]
    right = table[table[column] == b].set_index(pair_on)[metric]
    if left.empty or right.empty:
        missing = a if left.empty else b
        raise ValueError(f"{column}={missing!r} has no rows; available: {sorted(table[column].unique())}")
    d = (left - right).dropna()
    mean, half, _, n = ci95(d)
    p = float(stats.ttest_1samp(d, 0.0).pvalue) if n >= 2 and d.std() > 0 else math.nan
    return {"a": a, "b": b, "diff": mean, "ci_low": mean - half, "ci_high": mean + half, "n": n, "p": p}


def verdict(diff: dict, claim: str, margin: float = 0.01) -> str:
    """Whether a paired difference (a − b, from :func:`paired_difference`) supports a claim.

    - ``"improves"``: a is better than b — holds if the whole 95 % interval is above 0;
    - ``"does not harm"``: a is not worse than b by more than ``margin`` (non-inferiority) — holds
      if the whole interval is above −margin.

    Returns ``"holds"`` or ``"does not hold"`` (with fewer than 2 pairs: ``"undecided"``).
    """
    if claim not in ("improves", "does not harm"):
        raise ValueError(f"claim must be 'improves' or 'does not harm', got {claim!r}")
    low = diff["ci_low"]
    if not np.isfinite(low):
        return "undecided"
    bound = 0.0 if claim == "improves" else -abs(margin)
    return "holds" if low > bound else "does not hold"


def time_to_accuracy(history: pd.DataFrame, by, target: float, x: str = "sim_time") -> pd.DataFrame:
    """Per run: the first ``x`` (``sim_time``, ``step`` or ``samples``) at which ``test_acc`` ≥ target
    (NaN when never reached or the run diverged first)."""
    rows = []
    for key, grp in history.sort_values("step").groupby(list(by), sort=False):
        hit = grp[(grp["test_acc"] >= target) & ~grp["diverged"]]
        key = key if isinstance(key, tuple) else (key,)
        rows.append({**dict(zip(by, key)), x: float(hit[x].iloc[0]) if len(hit) else math.nan})
    return pd.DataFrame(rows)


def stale_weight(stale_mass: float, workers: int, k: int) -> float:
    """Lag weight w that gives the late gradients of a k-of-n reuse round a total weight of about
    ``stale_mass`` times the fresh ones: w = c · k / (n − k).

    Up to n − k late gradients arrive per round, each weighted w / k against the k fresh ones
    (weight 1 / k each), so their total relative weight is at most w (n − k) / k = c. This is the
    lag-indexed reading of the poster's condition Σ_{j≥1} β_j ≤ (a / 2b) β_0 (``docs/research.md`` §2):
    the stale gradients together weigh at most a fixed fraction of the fresh one.
    """
    if not workers > k >= 1:
        raise ValueError(f"need workers > k >= 1 for late gradients, got workers={workers}, k={k}")
    if not stale_mass >= 0:
        raise ValueError(f"stale_mass must be >= 0, got {stale_mass!r}")
    return float(stale_mass) * k / (workers - k)


def backup_specs(base: Config, workers, k_fractions=(0.0, 0.25, 0.5), stale_mass: float = 0.5,
                 sweep_at=None, sweep_masses=(), seeds=(0,), asynchronous: bool = True):
    """The poster's grid: for each n, sync, k-of-n drop / reuse for k = max(1, ⌊f·n⌋), and async.

    Reuse weighs every late gradient by w = :func:`stale_weight` (``stale_mass``, n, k), the same for
    all lags. Labels: ``n``, ``variant`` (e.g. ``"reuse k=2"``), ``family`` (``sync``, ``drop``,
    ``reuse``, ``async``), ``k``, ``stale_mass`` (c, NaN outside reuse), ``lag_weight`` (w) and
    ``seed``. ``base.batch_size`` is the global batch B (each worker computes B / n). The async
    variant applies single gradients of B / n samples and runs ``steps · n`` updates (evaluating
    every ``eval_every · n``), so that it computes as many gradients as sync. ``sweep_at = (n, k)``
    adds reuse runs with each c of ``sweep_masses`` at that one setting (the lag-weight sweep).
    """
    specs = []
    for n in workers:
        ks = sorted({max(1, int(f * n)) for f in k_fractions} - {n})
        variants = [("sync", "sync", {"protocol": "sync", "workers": n}, math.nan)]
        for k in ks:
            variants.append((f"drop k={k}", "drop", {"protocol": "k-of-n", "workers": n, "k": k, "late": "drop"}, math.nan))
            masses = [stale_mass]
            if sweep_at is not None and (n, k) == tuple(sweep_at):
                masses += [c for c in sweep_masses if c != stale_mass]
            for c in masses:
                name = f"reuse k={k}" if c == stale_mass else f"reuse k={k} c={c:g}"
                variants.append((name, "reuse", {"protocol": "k-of-n", "workers": n, "k": k, "late": "reuse",
                                                 "lag_weights": (stale_weight(c, n, k),)}, c))
        if asynchronous:
            variants.append(("async", "async", {"protocol": "async", "workers": n, "batch_size": base.batch_size // n,
                                                "steps": base.steps * n, "eval_every": base.eval_every * n}, math.nan))
        for name, family, changes, c in variants:
            cfg = base.replace(**changes)
            for seed in seeds:
                labels = {"n": n, "variant": name, "family": family, "k": cfg.k_eff, "stale_mass": c,
                          "lag_weight": cfg.lag_weights[0] if family == "reuse" else math.nan, "seed": seed}
                specs.append((labels, cfg.replace(seed=seed)))
    return specs


# -- fair-comparison helpers (notebook 05) ------------------------------------------------------------
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


def intersection_union(statistics, lows, highs) -> tuple[float, float, float]:
    """One interval for "the claim holds at every level" (an intersection–union test).

    The claim holds everywhere iff the smallest per-level effect clears the threshold. With each
    level's interval ``[low_i, high_i]``, returns ``(min statistic, min low, min high)``: against a
    threshold with ``better="above"`` its verdict is *holds* iff every level holds (min low above),
    *fails* iff some level fails (its high, hence min high, below), else *inconclusive*. No
    multiplicity correction is needed for *holds* (Berger 1982: each level tested at 5 % gives a
    5 % test of the intersection).

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
