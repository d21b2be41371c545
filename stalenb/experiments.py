"""Grids of runs and the generic tables of their histories (notebooks 05–06).

An *experiment* is a list of ``(labels, config)`` pairs: ``labels`` is a dict of the grid
coordinates (``{"method": "vanilla", "tau": 8, "seed": 0}``) that become columns of the tidy
result frames. :func:`product` builds such a list from named axes, :func:`run_all` runs it through
:func:`stalenb.run` (so every run is cached on disk by its config; with ``jobs > 1`` on loky's
reusable pool of worker processes, :func:`pool`, fed longest run first,
:func:`estimated_cost`), and two generic tables read the histories:

- :func:`final` — the final value of a metric per run (mean of the last evaluation rows);
- :func:`time_to_accuracy` — first simulated time (or step) at which a run reaches a target.

Paper 1's method set is :func:`sparsification_methods` (its sparsifiers and the staleness remedies
it compares against, ``docs/research.md`` §3). The statistics on top of the tables (paired
differences, t-intervals, intersection–union) are in :mod:`stalenb.stats`, beside the ledger
(:mod:`stalenb.claims`); notebook 06's equal-time protocol (backup-worker arms, simulated-time
horizons, values at fixed times) is :mod:`stalenb.backup`.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import dataclasses
import itertools
import math
import multiprocessing
import os
import pickle

import numpy as np
import pandas as pd
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

    def __repr__(self) -> str:
        """One line: ``Results(4 runs over ['method', 'seed'], 2 from the cache, 1 diverged; .history: 44 rows)``."""
        diverged = sum(r.diverged for r in self.runs)
        return (f"Results({len(self)} runs over {self.labels}, {self.from_cache} from the cache, {diverged} diverged; "
                f".history: {len(self.history)} rows, .updates: {len(self.updates)} rows)")


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

    Classes of your own (a delay model subclassing :class:`stalenb.Constant`, a slowdown, …)
    defined in a notebook or a script (``__main__``) travel to the workers by value (cloudpickle,
    :class:`_ByValue`), on loky's pool and on any ``executor``. ``jobs > 1`` needs no
    ``if __name__ == "__main__":`` guard in a script (loky's workers never import the script); an
    ``executor`` that starts workers with *spawn* or *forkserver* (a ``ProcessPoolExecutor`` with
    that context, Dask's ``LocalCluster``) re-runs an unguarded script's top level in each worker:
    there ``run_all`` stops the worker with one line saying so, and this call raises
    ``RuntimeError`` with one line naming the cure (guard the script, or use ``jobs``).
    """
    if getattr(multiprocessing.current_process(), "_inheriting", False):
        raise SystemExit(_REIMPORTED)
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
        from concurrent.futures.process import BrokenProcessPool

        try:
            _compute(executor, _missing(specs), bar, f"{desc} (executor)")
        except BrokenProcessPool:
            raise RuntimeError(_BROKEN) from None
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


_REIMPORTED = ("stalenb.experiments.run_all was called while this worker process re-ran the script's top level "
               "(a spawn/forkserver executor imports __main__ again): put the script's code under "
               "`if __name__ == \"__main__\":`, or use run_all(jobs=n), whose workers never import the script")
_BROKEN = ("a worker process of the executor died (BrokenProcessPool; its stderr above says why): a script run "
           "with a spawn/forkserver executor needs its code under `if __name__ == \"__main__\":`; "
           "run_all(jobs=n) needs no guard")


def _local_class(cls: type) -> bool:
    """True for a class that a plain pickle finds by name only in the process that defined it: one of
    ``__main__`` (a notebook's or a script's) or one defined inside a function."""
    return cls.__module__ in ("__main__", "__mp_main__") or "<locals>" in cls.__qualname__


def _holds_local_class(value) -> bool:
    """True when ``value`` (a Config and its nested dataclasses and tuples) holds an instance of a
    :func:`_local_class`."""
    if _local_class(type(value)):
        return True
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return any(_holds_local_class(getattr(value, f.name)) for f in dataclasses.fields(value))
    if isinstance(value, (tuple, list)):
        return any(_holds_local_class(v) for v in value)
    return False


class _ByValue:
    """A config pickled by value (cloudpickle: its ``__main__`` / local classes' code travels with it),
    for workers that never saw the notebook's or script's definitions, with the user's rule and
    protocol it names (:func:`_plugins`); :func:`_run_one` unwraps it and registers them.
    Plain pickle reads it back (cloudpickle is a dependency of loky, so importable in every worker)."""

    __slots__ = ("blob",)

    def __init__(self, config, plugins=()):
        import cloudpickle

        self.blob = cloudpickle.dumps((config, tuple(plugins)))

    def load(self):
        try:
            return pickle.loads(self.blob)
        except Exception as exc:  # noqa: BLE001 - one line instead of a screen of pickle internals
            raise RuntimeError(f"a worker could not rebuild the run's Config ({type(exc).__name__}: {exc}); "
                               "define its classes in the notebook/script or in a module the workers "
                               "can import") from None


def _plugins(config: Config) -> list[tuple]:
    """The user's (not built-in) rule and protocol ``config`` names, as (kind, name, entry, source):
    a worker registers them under the source its parent read, so both compute the same cache key."""
    from .sim.rules import RULES
    from .sim.schedule import PROTOCOLS

    return [(kind, name, registry[name], registry.source(name))
            for kind, registry, name in (("rule", RULES, config.rule), ("protocol", PROTOCOLS, config.protocol))
            if not registry.builtin(name)]


def _ship(config: Config):
    """What :func:`_compute` submits for ``config``: the config itself, or :class:`_ByValue` when it
    holds a class a worker cannot import (:func:`_holds_local_class`) or names a user's rule or
    protocol (:func:`_plugins`)."""
    plugins = _plugins(config)
    return _ByValue(config, plugins) if plugins or _holds_local_class(config) else config


def _run_one(config: Config, cache_dir: str | None = None, data_dir: str | None = None) -> bool:
    """Compute one run into the cache: ``cache_dir`` and ``data_dir`` are the caller's folders
    (``$STALENB_CACHE``, ``$STALENB_DATA``), set for the run, so that a long-lived worker started
    under another environment computes the same cache key and writes where the caller reads.
    ``config`` may come as a :class:`_ByValue` (:func:`_ship`)."""
    if isinstance(config, _ByValue):
        config, plugins = config.load()
        from .sim import rules, schedule

        for kind, name, entry, source in plugins:
            registry = rules.RULES if kind == "rule" else schedule.PROTOCOLS
            registry.register(name, entry, replace=True, source=source)
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
#: pass, a third of a training sample. Rough one-thread magnitudes (``python -m stalenb.repro.bench``
#: measures the real ones on a machine); only their ratios matter (they order the runs, nothing else).
SAMPLE_MS = {"lenet": 0.7, "lenet5": 0.2, "mlp": 0.2}
GRADIENT_MS = 4.0


def estimated_cost(config: Config) -> float:
    """A run's rough cost in milliseconds: gradients × (push batch × per-sample cost + per-gradient
    cost) + evaluated digits × a third of the per-sample cost (:data:`SAMPLE_MS`, :data:`GRADIENT_MS`).

    Gradients per update: 1 (async), n (sync, and k-of-n with reuse, which applies the late ones
    too), k (k-of-n with drop). Evaluations: one at step 0, one every ``eval_every`` updates and
    one at the end, each on the splits of ``eval_splits``: ``eval_size`` test digits, as many
    training digits, the validation split. :func:`run_all` hands out the missing runs in decreasing order of this estimate, so
    that a long run does not start last and leave the other workers idle.

    Example:
        >>> base = Config(steps=100, eval_every=50, eval_size=100)
        >>> estimated_cost(base)  # 100 × (32 × 0.7 + 4) + 3 × 200 × 0.7 / 3
        2780.0
        >>> estimated_cost(base.replace(eval_splits=("test",)))  # 100 × (32 × 0.7 + 4) + 3 × 100 × 0.7 / 3
        2710.0
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
    size = config.eval_size if config.eval_size is not None else 10_000
    digits = sum({"train": size, "test": size, "val": config.validation}[s] for s in config.eval_splits)
    per_sample = SAMPLE_MS[config.model]
    return float(config.steps * gradients * (config.push_batch * per_sample + GRADIENT_MS)
                 + evals * digits * per_sample / 3)


def _missing(specs) -> list[Config]:
    """The distinct configs of ``specs`` that the cache does not hold yet, longest first
    (:func:`estimated_cost`; ties keep the order of ``specs``)."""
    from . import cache

    keyed = {cache.key(cfg): cfg for _, cfg in specs}  # one key per spec (each reads the data's fingerprint)
    missing = [cfg for k, cfg in keyed.items() if not cache.path_for(k).is_file()]
    return sorted(missing, key=estimated_cost, reverse=True)


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
                    running.append(executor.submit(_run_one, _ship(todo.pop()), *folders))
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


#: The time column of a history: simulated seconds (``stalenb.run``) or measured ones (a real run,
#: :func:`stalenb.distributed.launch`).
TIME_COLUMNS = ("sim_time", "wall_time")


def time_column(history: pd.DataFrame) -> str:
    """The name of ``history``'s time column (:data:`TIME_COLUMNS`); ``ValueError`` naming the
    columns when it has none."""
    for name in TIME_COLUMNS:
        if name in history.columns:
            return name
    raise ValueError(f"the history has no time column ({' or '.join(TIME_COLUMNS)}); "
                     f"its columns: {list(history.columns)}")


def _need(history: pd.DataFrame, columns, what: str) -> None:
    missing = [c for c in dict.fromkeys(columns) if c not in history.columns]
    if missing:
        raise ValueError(f"{what} needs the column(s) {missing}; the frame has {list(history.columns)}")


def final(history: pd.DataFrame, by, metric: str = "test_acc", tail: int = 1) -> pd.DataFrame:
    """Per run (``by`` = the label columns, seed included): the mean of ``metric`` over its last
    ``tail`` evaluation rows, plus ``bytes_sent``, the time (``sim_time``, or ``wall_time`` for a
    real run: :func:`time_column`) and ``diverged`` at the end.

    A diverged run keeps its last (non-finite or poor) value and ``diverged=True``; callers decide
    whether to count it (it *is* the outcome of that method at that setting).
    """
    by = list(by)
    _need(history, [*by, "step", metric, "bytes_sent", "samples", "diverged"], "final")
    g = history.sort_values("step").groupby(by, sort=False)
    out = g[metric].apply(lambda s: float(np.mean(s.to_numpy()[-tail:]))).rename(metric).to_frame()
    last = g[["step", "bytes_sent", time_column(history), "samples"]].last()
    out = out.join(last).join(g["diverged"].any())
    return out.reset_index()


def time_to_accuracy(history: pd.DataFrame, by, target: float, x: str | None = None) -> pd.DataFrame:
    """Per run: the first ``x`` (default: the time column, ``sim_time`` or a real run's ``wall_time``,
    :func:`time_column`; or ``step``, ``samples``) at which ``test_acc`` ≥ target (NaN when never
    reached or the run diverged first)."""
    x = time_column(history) if x is None else x
    _need(history, [*by, "step", x, "test_acc", "diverged"], "time_to_accuracy")
    rows = []
    for key, grp in history.sort_values("step").groupby(list(by), sort=False):
        hit = grp[(grp["test_acc"] >= target) & ~grp["diverged"]]
        key = key if isinstance(key, tuple) else (key,)
        rows.append({**dict(zip(by, key)), x: float(hit[x].iloc[0]) if len(hit) else math.nan})
    return pd.DataFrame(rows)
