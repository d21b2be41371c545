"""Grids of runs, aggregation over seeds, and verdicts with confidence intervals (notebooks 05–06).

An *experiment* is a list of ``(labels, config)`` pairs: ``labels`` is a dict of the grid
coordinates (``{"method": "vanilla", "tau": 8, "seed": 0}``) that become columns of the tidy
result frames. :func:`product` builds such a list from named axes, :func:`run_all` runs it through
:func:`stalenb.run` (so every run is cached on disk by its config; with ``jobs > 1`` on loky's
reusable pool of worker processes, :func:`pool`, fed longest run first,
:func:`estimated_cost`), and the remaining functions turn the histories into tables:

- :func:`final` — the final value of a metric per run (mean of the last evaluation rows);
- :func:`summarize` — mean, std and a 95 % t-interval over seeds;
- :func:`paired_difference` — method a − method b, paired on the same seed (same initial model,
  same mini-batches, same delays: common random numbers) and condition, with a 95 % t-interval;
- :func:`verdict` — "holds" / "does not hold" for a claim of improvement or of non-inferiority;
- :func:`time_to_accuracy` — first simulated time (or step) at which a run reaches a target.

Method sets of the two sources live here too: :func:`sparsification_methods` (paper 1's
sparsifiers and the staleness remedies it compares against, ``docs/research.md`` §3) and
:func:`backup_arms` (sync, k-of-n drop / reuse, async; the poster's experiment) with
:func:`schedule_until` / :func:`at_horizon` (runs cut at a simulated-time horizon, gradient mass per
update) and :func:`value_at` (a metric at fixed simulated times).
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import itertools
import math
import os

import numpy as np
import pandas as pd
from scipy import stats
from tqdm.auto import tqdm

from .sim.config import Config
from .sim.engine import run


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
            process; ``$STALENB_MAX_JOBS`` caps it). Finished runs land in the cache, which this
            process then reads. Every run is computed with one torch thread (:func:`single_thread`),
            so results do not depend on ``jobs``. The missing runs are handed out longest first
            (:func:`estimated_cost`), at most ``jobs`` at a time.
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

    The local processes are loky's reusable pool (:func:`pool`), kept between calls (a notebook
    calls ``run_all`` many times; each new worker would pay an interpreter, ``import torch`` and
    the MNIST load, seconds each); a call that finds it broken (a killed worker) retries its
    missing runs once on a new one. :func:`close_pool` shuts it down before its idle timeout.
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


def _run_one(config: Config, cache_dir: str | None = None, data_dir: str | None = None) -> bool:
    """Compute one run into the cache: ``cache_dir`` and ``data_dir`` are the caller's folders
    (``$STALENB_CACHE``, ``$STALENB_DATA``), set for the run, so that a long-lived worker started
    under another environment computes the same cache key and writes where the caller reads."""
    folders = {"STALENB_CACHE": cache_dir, "STALENB_DATA": data_dir}
    before = {name: os.environ.get(name) for name in folders}
    os.environ.update({name: value for name, value in folders.items() if value is not None})
    try:
        with single_thread():
            return run(config, progress=False).diverged
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


#: Estimated milliseconds per training sample (forward + backward, one thread) by model, and per
#: gradient whatever its batch (Python, bookkeeping, the server step); evaluation is a forward
#: pass, a third of a training sample. Rough values measured here with ``python -m stalenb.repro.bench``'s
#: thread setting; only their ratios matter (they order the runs, nothing else).
SAMPLE_MS = {"lenet": 0.7, "lenet5": 0.2, "mlp": 0.2}
GRADIENT_MS = 4.0


def estimated_cost(config: Config) -> float:
    """A run's rough cost in milliseconds: gradients × (push batch × per-sample cost + per-gradient
    cost) + evaluated digits × a third of the per-sample cost (:data:`SAMPLE_MS`, :data:`GRADIENT_MS`).

    Gradients per update: 1 (async), n (sync, and k-of-n with reuse, which applies the late ones
    too), k (k-of-n with drop). Evaluations: one at step 0, one every ``eval_every`` updates and
    one at the end, each on ``eval_size`` test digits, as many training digits and the validation
    split. :func:`run_all` hands out the missing runs in decreasing order of this estimate, so
    that a long run does not start last and leave the other workers idle.

    Example:
        >>> base = Config(steps=100, eval_every=50, eval_size=100)
        >>> estimated_cost(base)  # 100 × (32 × 0.7 + 4) + 3 × 200 × 0.7 / 3
        2780.0
        >>> estimated_cost(base.replace(protocol="sync", workers=4, batch_size=128)) > estimated_cost(base)
        True
    """
    if config.protocol == "async":
        gradients = 1
    elif config.protocol == "k-of-n" and config.late == "drop":
        gradients = config.k_eff
    else:
        gradients = config.workers
    evals = 1 + config.steps // config.eval_every + (config.steps % config.eval_every != 0)
    digits = 2 * (config.eval_size if config.eval_size is not None else 10_000) + config.validation
    per_sample = SAMPLE_MS[config.model]
    return float(config.steps * gradients * (config.push_batch * per_sample + GRADIENT_MS)
                 + evals * digits * per_sample / 3)


def _missing(specs) -> list[Config]:
    """The distinct configs of ``specs`` that the cache does not hold yet, longest first
    (:func:`estimated_cost`; ties keep the order of ``specs``)."""
    from . import cache

    missing = {cache.key(cfg): cfg for _, cfg in specs if not cache.path_for(cache.key(cfg)).is_file()}
    return sorted(missing.values(), key=estimated_cost, reverse=True)


def _compute(executor, missing, bar, desc, at_once: int | None = None) -> None:
    """Run ``missing`` in order on ``executor`` (``submit`` → ``result``) into this process's cache
    folder, at most ``at_once`` submitted and unfinished at a time (all at once when ``None``)."""
    from . import paths

    folders = (str(paths.cache_dir()), str(paths.data_dir()))
    todo = list(missing)[::-1]
    limit = len(todo) if at_once is None else max(1, at_once)
    running = []
    with tqdm(total=len(todo), desc=desc, leave=False, **bar) as progress:
        try:
            while todo or running:
                while todo and len(running) < limit:
                    running.append(executor.submit(_run_one, todo.pop(), *folders))
                done, running = _wait(running)
                for future in done:
                    future.result()
                    progress.update()
        except BaseException:
            for future in running:
                future.cancel()
            raise


def _wait(futures: list) -> tuple[list, list]:
    """The finished futures and the others: ``concurrent.futures.wait`` (first completed) for
    standard futures; for others (submitit's jobs) the first one, after its ``result``."""
    if all(isinstance(f, concurrent.futures.Future) for f in futures):
        done, _ = concurrent.futures.wait(futures, return_when=concurrent.futures.FIRST_COMPLETED)
    else:
        futures[0].result()
        done = {futures[0]}
    return [f for f in futures if f in done], [f for f in futures if f not in done]


def _prefill(specs, jobs, bar, desc) -> None:
    """Compute the uncached runs on this process's reusable pool (:func:`pool`), ``jobs`` at a time.

    A pool found broken (a worker died: ``BrokenProcessPool``) is replaced by loky on the next
    request, and the runs still missing are tried once more on the new one."""
    from concurrent.futures.process import BrokenProcessPool

    jobs = min(jobs, int(os.environ.get("STALENB_MAX_JOBS") or jobs))  # set by stalenb.repro.reproduce
    for attempt in range(2):
        missing = _missing(specs)
        if len(missing) < 2 or jobs < 2:
            return
        try:
            _compute(pool(jobs), missing, bar, f"{desc} ({jobs} jobs)", at_once=min(jobs, len(missing)))
            return
        except BrokenProcessPool:
            if attempt:
                raise


#: Seconds an idle worker of :func:`pool` waits for the next run before it exits (loky's timeout):
#: long enough to span the cells of a notebook between two grids, short enough to give the memory
#: back (each idle worker holds torch and MNIST, a few hundred MB).
IDLE_TIMEOUT = 600


def pool(jobs: int):
    """This process's reusable pool of ``jobs`` worker processes: ``loky.get_reusable_executor``
    (joblib's executor), which keeps its workers between calls, starts them on demand, resizes the
    pool when ``jobs`` changes and replaces it when a worker died. Workers are fresh interpreters
    (never a plain ``fork`` of a process whose torch has started threads) and receive their tasks
    through cloudpickle, so configurations holding classes defined in a notebook travel too."""
    from loky import get_reusable_executor

    executor = get_reusable_executor(max_workers=int(jobs), timeout=IDLE_TIMEOUT)
    _HANDED_OUT[:] = [executor]
    return executor


_HANDED_OUT: list = []  # the executor :func:`pool` returned last, for :func:`close_pool`


def close_pool() -> bool:
    """Shut down the pool :func:`pool` handed out last (waiting for its workers to exit) instead of
    after :data:`IDLE_TIMEOUT` idle seconds; ``True`` if there was one. The next :func:`run_all` with
    ``jobs > 1`` starts a new one."""
    if not _HANDED_OUT:
        return False
    _HANDED_OUT.pop().shutdown(wait=True, kill_workers=True)
    return True


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
    """Three-valued verdict (:func:`stalenb.claims.verdict`) of a paired difference a − b.

    - ``"improves"``: a is better than b — the threshold is 0;
    - ``"does not harm"``: a is not worse than b by more than ``margin`` (non-inferiority) — the
      threshold is −margin.

    ``"holds"`` when the whole 95 % interval is above the threshold, ``"fails"`` when it is wholly
    below, ``"inconclusive"`` otherwise (also with fewer than 2 pairs: no interval).
    """
    from .claims import verdict as three_valued

    if claim not in ("improves", "does not harm"):
        raise ValueError(f"claim must be 'improves' or 'does not harm', got {claim!r}")
    bound = 0.0 if claim == "improves" else -abs(margin)
    return three_valued(diff["ci_low"], diff["ci_high"], bound, "above")


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


# -- notebook 06: k-of-n backup workers at equal simulated time ----------------------------------------
def backup_arms(base: Config, pairs, stale_mass: float = 0.5, asynchronous: bool = True) -> dict:
    """The poster's protocols for each (n, k) of ``pairs`` as ``{arm: (labels, config)}``.

    Per n: ``sync`` (wait for all n) and, if ``asynchronous``, ``async`` (each gradient of B / n
    samples applied on arrival); per (n, k) with k < n: ``drop`` (k-of-n, late jobs cancelled; backup
    workers, Chen et al. 2016) and ``reuse`` (late gradients cached and applied in the next update,
    each with lag weight w = :func:`stale_weight` (``stale_mass``, n, k); ``docs/research.md`` §2).
    Arm names read ``"reuse n=8 k=2"``; labels are ``arm``, ``family``, ``n``, ``k`` (k = n for
    sync, 1 for async) and ``c`` (the reuse weight, NaN elsewhere). ``base.batch_size`` is the
    global batch B.

    Example:
        >>> arms = backup_arms(Config(batch_size=256), [(8, 2)])
        >>> sorted(arms), arms["reuse n=8 k=2"][1].lag_weights
        (['async n=8', 'drop n=8 k=2', 'reuse n=8 k=2', 'sync n=8'], (0.16666666666666666,))
    """
    out = {}
    for n, k in pairs:
        n, k = int(n), int(k)
        if not 1 <= k < n:
            raise ValueError(f"need 1 <= k < n for k-of-n, got (n, k) = ({n}, {k})")
        arms = [("sync", n, {"protocol": "sync", "workers": n}, math.nan),
                ("drop", k, {"protocol": "k-of-n", "workers": n, "k": k, "late": "drop"}, math.nan),
                ("reuse", k, {"protocol": "k-of-n", "workers": n, "k": k, "late": "reuse",
                              "lag_weights": (stale_weight(stale_mass, n, k),)}, float(stale_mass))]
        if asynchronous:
            arms.append(("async", 1, {"protocol": "async", "workers": n, "batch_size": base.batch_size // n}, math.nan))
        for family, kk, changes, c in arms:
            name = f"{family} n={n}" + (f" k={kk}" if family in ("drop", "reuse") else "")
            out[name] = ({"arm": name, "family": family, "n": n, "k": kk, "c": c}, base.replace(**changes))
    return out


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


# -- notebook 06: simulated-time horizons, values at times, crossing times -------------------------
def schedule_until(config: Config, dim: int, horizon: float) -> pd.DataFrame:
    """The updates of ``config``'s schedule completed by simulated time ``horizon`` (no training).

    Columns: ``step``, ``time`` and ``mass`` = Σ_i w(lag_i) / K, the gradient mass of the update (its
    step length relative to one averaged fresh gradient; 1 for sync, drop and async; above 1 for
    reuse, whose late gradients add to the k fresh ones). ``dim`` is the model's parameter count
    (dense pushes and pulls of 4·d bytes). ``config.steps`` is ignored: the schedule runs to ``horizon``.
    """
    from .sim.compress import Compressor
    from .sim.schedule import Schedule

    cfg = config.replace(steps=10**9)
    sched = Schedule(cfg, Compressor(cfg.compressor, cfg.density, int(dim)).push_bytes, 4 * int(dim),
                     np.random.default_rng(cfg.seed))
    rows = []
    for u in sched:
        if u.time > horizon:
            break
        rows.append((u.step, u.time, sum(cfg.lag_weight(u.step - p.version) for p in u.pushes) / cfg.k_eff))
    return pd.DataFrame(rows, columns=["step", "time", "mass"])


def at_horizon(config: Config, dim: int, horizon: float, evals: int) -> Config:
    """``config`` running exactly the updates completed by simulated time ``horizon`` (at least one),
    evaluated about ``evals`` times (every ⌈steps / evals⌉ updates, and at the end)."""
    steps = max(1, len(schedule_until(config, dim, horizon)))
    return config.replace(steps=steps, eval_every=max(1, math.ceil(steps / int(evals))))


def value_at(history: pd.DataFrame, by, points, x: str = "sim_time", metric: str = "test_acc",
             interpolate: bool = False) -> pd.DataFrame:
    """Per run (``by``) and point p of ``points``: ``metric`` at ``x`` = p.

    By default the value of the last evaluation with ``x`` ≤ p (what the system holds at simulated time
    or update p; NaN before the first evaluation); with ``interpolate``, linear between the two
    evaluations around p (constant past the last one). A diverged run keeps the value of its last
    evaluation (the broken model's; a non-finite value counts as 0). Columns: ``by``, ``at``, ``metric``.

    Example:
        >>> h = pd.DataFrame({"run": 0, "step": [0, 1, 2], "sim_time": [0.0, 1.0, 2.0], "test_acc": [0.1, 0.5, 0.9]})
        >>> value_at(h, ["run"], [1.5]).test_acc.item(), value_at(h, ["run"], [1.5], interpolate=True).test_acc.item()
        (0.5, 0.7)
    """
    rows = []
    for key, grp in history.sort_values(["step"]).groupby(list(by), sort=False):
        key = key if isinstance(key, tuple) else (key,)
        xs, vals = grp[x].to_numpy(dtype=float), np.nan_to_num(grp[metric].to_numpy(dtype=float), nan=0.0)
        for p in points:
            i = np.searchsorted(xs, p, side="right") - 1
            v = float(np.interp(p, xs, vals)) if interpolate else (float(vals[i]) if i >= 0 else math.nan)
            rows.append({**dict(zip(by, key)), "at": p, metric: v})
    return pd.DataFrame(rows)


def crossing_time(history: pd.DataFrame, by, target: float, horizon=None, metric: str = "test_acc",
                  x: str = "sim_time") -> pd.DataFrame:
    """Per run: when ``metric`` first reaches ``target``, linear between the evaluation below and the
    first one at or above it (the evaluations are sparse; :func:`time_to_accuracy` reports the
    evaluation's own time instead). Runs that never reach it (or diverge first) are *censored*:
    ``reached`` False and the time set to ``horizon`` (a number, or a dict keyed by the first column
    of ``by``), or NaN without one. Columns: ``by``, ``x``, ``reached``.

    Example:
        >>> h = pd.DataFrame({"run": 0, "step": [0, 1, 2], "sim_time": [0.0, 1.0, 2.0], "test_acc": [0.1, 0.5, 0.9],
        ...                   "diverged": False})
        >>> crossing_time(h, ["run"], 0.7)[["sim_time", "reached"]].to_dict("records")
        [{'sim_time': 1.5, 'reached': True}]
    """
    rows = []
    for key, grp in history.sort_values("step").groupby(list(by), sort=False):
        key = key if isinstance(key, tuple) else (key,)
        xs, vals = grp[x].to_numpy(dtype=float), grp[metric].to_numpy(dtype=float)
        ok = np.flatnonzero((vals >= target) & ~grp["diverged"].to_numpy(dtype=bool))
        if len(ok):
            i = int(ok[0])
            t = xs[i] if i == 0 else xs[i - 1] + (target - vals[i - 1]) / (vals[i] - vals[i - 1]) * (xs[i] - xs[i - 1])
        else:
            t = horizon.get(key[0], math.nan) if isinstance(horizon, dict) else (math.nan if horizon is None else horizon)
        rows.append({**dict(zip(by, key)), x: float(t), "reached": bool(len(ok))})
    return pd.DataFrame(rows)
