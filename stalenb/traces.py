"""Measured traces, read into the simulator's replay objects.

Three layouts, each with a reader (the numbers, checked) and a builder (the object a
:class:`stalenb.Config` takes):

1. **Delay-data** — delays logged from real asynchronous runs (MPI4py, 8 workers on a 10-core
   machine) of PIAG and Async-BCD, Wu et al., "Delay-adaptive step-sizes for asynchronous
   learning", ICML 2022; public at https://github.com/xuyangwu/Delay-data (files
   ``{algorithm}_{stepsize}_{dataset}.csv`` and ``{stepsize}_Delay.csv``). Headerless CSV, one row
   per iteration, one column per worker (PIAG: the delay of each worker's stored gradient at that
   iteration) or a single column (Async-BCD: the delay of the iteration's update); integer delays
   written as floats (``3.000000000000000000e+00``). :func:`read_delay_csv` → array (iterations ×
   columns); :func:`delay_trace` → :class:`stalenb.staleness.Trace`.
2. **Alibaba PAI mini-batch time** — per-worker mini-batch times of distributed training jobs,
   https://github.com/alibaba/clusterdata, folder ``cluster-trace-gpu-v2020/mini-batch-time/data``
   (``job_1_norm.csv`` … ``job_4_norm.csv``, 10 workers each). Header ``,worker,gpu,time,batch_time_norm``:
   an unnamed row index, the worker id, its GPU share (%), the iteration (logged every 10th) and the
   mini-batch time normalised to 0–1000 — only ratios between values mean anything. :func:`read_minibatch_times`
   → one array per worker, in iteration order; :func:`minibatch_slowdown` →
   :class:`stalenb.timing.TraceSlowdown` (divided by the overall mean: mean slowdown 1, the scale
   left to ``Timing.per_sample``).
3. **stalenb's own** ``updates.csv`` — written by ``python -m stalenb.distributed --out DIR``
   (notebook 08), or a run's ``updates`` frame: the columns of :data:`stalenb.history.UPDATE_COLUMNS`
   plus, for real runs, ``rank, sent, arrived, compute_s, job_s, slowdown``. :func:`updates_trace` →
   the staleness of the applied gradients, step by step, as a ``Trace`` (asynchronous runs: one
   gradient per step); :func:`updates_times` → each worker's job seconds in order;
   :func:`updates_timing` → a ``Timing`` replaying them (:func:`stalenb.timing.replay`).

Nothing here downloads: fetch a public file yourself and pass its path.

Example:
    >>> import stalenb as sn
    >>> from stalenb import traces
    >>> trace = traces.delay_trace("tests/data/delay_bcd.csv")            # doctest: +SKIP
    >>> run = sn.run(sn.Config(workers=8, staleness=trace, steps=len(trace.delays)))  # doctest: +SKIP
    >>> (run.updates["staleness"] == list(trace.delays)).all()            # doctest: +SKIP
    True
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .sim import checks
from .sim.staleness import Trace
from .sim.timing import Timing, TraceSlowdown, replay

#: Columns an Alibaba ``mini-batch-time`` file must have.
MINIBATCH_COLUMNS = ("worker", "time", "batch_time_norm")


# --- Delay-data ------------------------------------------------------------------------------------

def read_delay_csv(path) -> np.ndarray:
    """The delays of a Delay-data file as an ``int64`` array (iterations × columns).

    ``ValueError`` (naming the file, row and column) for an entry that is not an integer >= 0.
    """
    path = checks.path("path", path)
    a = np.loadtxt(path, delimiter=",", ndmin=2, dtype=float)
    if a.size == 0:
        raise ValueError(f"{path}: no delays (expected one row per iteration)")
    bad = np.argwhere(~(np.isfinite(a) & (a >= 0) & (a == np.round(a))))
    if bad.size:
        r, c = (int(v) for v in bad[0])
        raise ValueError(f"{path}: delays must be integers >= 0, got {float(a[r, c])!r} at row {r}, column {c}")
    return a.astype(np.int64)


def delay_trace(path, column: int | str | None = None, cycle: bool = False) -> Trace:
    """A :class:`~stalenb.staleness.Trace` from a Delay-data file.

    Args:
        path: the CSV file.
        column: which delay per iteration: ``None`` for a one-column file (Async-BCD); for a file
            with one column per worker (PIAG), a column index (that worker's delays) or ``"max"``
            (the largest delay of the iteration, the bound that delay-adaptive step sizes track).
        cycle: repeat the trace for runs longer than it (:class:`~stalenb.staleness.Trace`).
    """
    a = read_delay_csv(path)
    cols = a.shape[1]
    if column is None:
        if cols != 1:
            raise ValueError(f"column must be a column index 0..{cols - 1} or 'max' for this file "
                             f"({cols} delays per row), got None")
        return Trace(a[:, 0], cycle=cycle)
    if isinstance(column, str):
        if column != "max":
            raise ValueError(f"column must be None, a column index or 'max', got {column!r}")
        return Trace(a.max(axis=1), cycle=cycle)
    column = checks.integer("column", column, minimum=0, maximum=cols - 1, note=f"the file has {cols} columns")
    return Trace(a[:, column], cycle=cycle)


# --- Alibaba mini-batch time -----------------------------------------------------------------------

def read_minibatch_times(path, workers=None, hold: int = 1) -> list[np.ndarray]:
    """Each worker's mini-batch times, in iteration order (one array per worker, by worker id).

    Args:
        path: an Alibaba ``mini-batch-time`` CSV (or a DataFrame with :data:`MINIBATCH_COLUMNS`).
        workers: ``None`` (every worker in the file), an int n (the n smallest worker ids) or a
            sequence of worker ids (in the order wanted).
        hold: use each logged value for this many consecutive jobs (the files log every 10th
            iteration; ``hold=10`` keeps that spacing, 1 replays the logged values back to back).
    """
    df = path if isinstance(path, pd.DataFrame) else pd.read_csv(checks.path("path", path))
    missing = [c for c in MINIBATCH_COLUMNS if c not in df.columns]
    if missing:
        raise ValueError(f"a mini-batch-time file needs columns {list(MINIBATCH_COLUMNS)}; missing {missing}")
    hold = checks.integer("hold", hold, minimum=1)
    ids = sorted(int(w) for w in df["worker"].unique())
    if workers is None:
        chosen = ids
    elif isinstance(workers, (int, np.integer)) and not isinstance(workers, bool):
        n = checks.integer("workers", workers, minimum=1, maximum=len(ids), note=f"the file has {len(ids)} workers")
        chosen = ids[:n]
    else:
        chosen = [int(w) for w in workers]
        unknown = sorted(set(chosen) - set(ids))
        if unknown or not chosen:
            raise ValueError(f"workers must be ids among {ids}, got {list(workers)!r}")
    out = []
    for w in chosen:
        rows = df[df["worker"] == w].sort_values("time", kind="stable")
        times = rows["batch_time_norm"].to_numpy(dtype=float)
        bad = np.flatnonzero(~(np.isfinite(times) & (times > 0)))
        if bad.size:
            raise ValueError(f"batch_time_norm of worker {w} must be finite and > 0, got {float(times[bad[0]])!r} "
                             f"at time {rows['time'].iloc[bad[0]]!r}")
        out.append(np.repeat(times, hold))
    return out


def minibatch_slowdown(path, workers=None, hold: int = 1) -> TraceSlowdown:
    """A :class:`~stalenb.timing.TraceSlowdown` of an Alibaba file's times over their overall mean.

    The slowdowns have mean 1 over all workers and jobs (the published times are normalised, so
    only their ratios carry over); ``Timing.per_sample`` sets the seconds. Arguments as
    :func:`read_minibatch_times`.
    """
    times = read_minibatch_times(path, workers, hold)
    mean = float(np.mean(np.concatenate(times)))
    return TraceSlowdown(tuple(tuple(t / mean) for t in times))


# --- stalenb's updates.csv ---------------------------------------------------------------------------

def read_updates(source) -> pd.DataFrame:
    """The per-gradient frame of a run: a path to an ``updates.csv`` or the frame itself (copied)."""
    if isinstance(source, pd.DataFrame):
        return source.copy()
    return pd.read_csv(checks.path("path", source))


def updates_trace(source, cycle: bool = False) -> Trace:
    """The staleness of the applied gradients of an asynchronous run, step by step, as a ``Trace``.

    ``source``: an ``updates.csv`` path or a run's ``updates`` frame (columns ``step``,
    ``staleness``, ``applied``). ``ValueError`` when a step has more or fewer than one applied
    gradient (a ``sync`` / ``k-of-n`` run, or a truncated file).
    """
    df = read_updates(source)
    missing = [c for c in ("step", "staleness", "applied") if c not in df.columns]
    if missing:
        raise ValueError(f"updates need columns step, staleness, applied; missing {missing}")
    applied = df[df["applied"].astype(bool)].sort_values("step", kind="stable")
    steps = applied["step"].to_numpy()
    if len(steps) == 0 or not np.array_equal(steps, np.arange(steps[0], steps[0] + len(steps))):
        dup = applied["step"][applied["step"].duplicated()]
        why = f"step {int(dup.iloc[0])} applies several gradients" if len(dup) else "steps are missing"
        raise ValueError(f"updates_trace replays asynchronous runs (one applied gradient per step): {why}")
    return Trace(applied["staleness"].to_numpy(dtype=np.int64), cycle=cycle)


def updates_times(source, column: str = "job_s", applied_only: bool = True) -> list[np.ndarray]:
    """Each worker's job seconds, in the order its jobs were sent (one array per worker id 0..n−1).

    Args:
        source: an ``updates.csv`` path or a real run's ``updates`` frame.
        column: ``"job_s"`` (compute + injected straggler sleep: the whole job) or ``"compute_s"``
            (the gradient and compression alone).
        applied_only: leave out dropped jobs (``applied`` False: cancelled jobs have truncated times).
    """
    df = read_updates(source)
    if column not in ("job_s", "compute_s"):
        raise ValueError(f"column must be one of 'job_s', 'compute_s'; got {column!r}")
    order = "sent" if "sent" in df.columns else "time"
    missing = [c for c in ("worker", column, order) if c not in df.columns]
    if missing:
        raise ValueError(f"updates need columns worker, {column}, {order} (a real run's updates.csv); "
                         f"missing {missing}")
    if applied_only and "applied" in df.columns:
        df = df[df["applied"].astype(bool)]
    n = int(df["worker"].max()) + 1 if len(df) else 0
    out = []
    for w in range(n):
        rows = df[df["worker"] == w].sort_values(order, kind="stable")
        if rows.empty:
            raise ValueError(f"worker {w} has no jobs in these updates (need at least one per worker)")
        out.append(rows[column].to_numpy(dtype=float))
    return out


def updates_timing(source, batch: int, column: str = "job_s", **changes) -> Timing:
    """A ``Timing`` that replays each worker's measured job seconds (:func:`stalenb.timing.replay`).

    ``batch``: the samples per job (the run's ``Config.push_batch``); ``changes``: the other
    ``Timing`` fields (``latency``, ``bandwidth``). The job seconds already hold any injected
    slowdown, so no ``factors`` are added.
    """
    return replay(updates_times(source, column), batch, **changes)


__all__ = ["read_delay_csv", "delay_trace", "read_minibatch_times", "minibatch_slowdown", "read_updates",
           "updates_trace", "updates_times", "updates_timing", "MINIBATCH_COLUMNS"]
