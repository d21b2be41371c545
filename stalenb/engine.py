"""The simulated driver: runs a :class:`stalenb.Config` in one process, deterministically.

``run(config)`` walks the protocol's :class:`stalenb.schedule.Schedule`; for each server update it
computes the gradients of the pushes (grouped by the model version they read, one pass per group
when nothing per-worker is needed), compresses them per worker, and hands them to the
:class:`stalenb.server.Server`. Model versions still to be read by in-flight jobs are kept as flat
snapshots and dropped as soon as no job can read them.

A run whose mini-batch loss exceeds ``config.diverge_loss`` (or is not finite), or whose model
stops being finite, ends at once with a last history row flagged ``diverged``; no exception.
Results are cached on disk (:mod:`stalenb.cache`) unless a custom ``problem`` is given.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import groupby

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from . import cache as _cache
from . import gradients, history
from .compress import Compressor
from .config import Config
from .data import BatchStream
from .schedule import Schedule
from .server import Server


@dataclass
class Run:
    """A finished run: ``history`` (one row per evaluation), ``updates`` (one row per gradient)."""

    config: Config
    history: pd.DataFrame
    updates: pd.DataFrame
    from_cache: bool = False

    @property
    def diverged(self) -> bool:
        return bool(self.history["diverged"].any())


def run(config: Config, problem=None, *, cache: bool = True, progress: bool | None = None,
        callback=None) -> Run:
    """Simulate ``config``; load it from the cache when it was run before.

    Args:
        config: the run.
        problem: a custom :mod:`stalenb.gradients` problem instead of MNIST (never cached).
        cache: read and write the results cache.
        progress: show a progress bar (default: tqdm's default, off with ``TQDM_DISABLE=1``).
        callback: ``callback(step, x)`` after every update (for tests and theory notebooks).
    """
    if not isinstance(config, Config):
        raise TypeError(f"config must be a stalenb.Config, got {type(config).__name__}")
    use_cache = cache and problem is None and callback is None
    if use_cache:
        k = _cache.key(config)
        hit = _cache.load(k)
        if hit is not None:
            frames, _ = hit
            return Run(config, frames["history"], frames["updates"], from_cache=True)
    result = _simulate(config, problem if problem is not None else gradients.from_config(config),
                       progress, callback)
    if use_cache:
        _cache.save(k, {"history": result.history, "updates": result.updates}, {"steps": config.steps})
    return result


def simulate(config: Config, problem=None, **kwargs) -> pd.DataFrame:
    """The history frame of :func:`run` (spec §S3: ``stalenb.simulate(config) -> DataFrame``)."""
    return run(config, problem, **kwargs).history


def _bad(loss: float, limit: float) -> bool:
    return not math.isfinite(loss) or loss > limit


def _simulate(c: Config, problem, progress, callback) -> Run:
    server = Server(problem.x0, c.rule, c.lr, c.momentum, c.dc_lambda)
    comp = Compressor(c.compressor, c.density, problem.dim, c.workers, c.error_feedback,
                      problem.layer_sizes if c.granularity == "layer" else None, c.seed,
                      device=problem.x0.device)
    comp.memory = None if comp.memory is None else comp.memory.to(problem.x0.dtype)
    sched = Schedule(c, comp.push_bytes, 4 * problem.dim, np.random.default_rng(c.seed))
    stream = BatchStream(problem.n_train, c.seed)
    rec = history.Recorder(c.push_batch, comp.push_bytes)
    per_push = comp.active or c.rule == "dc-asgd"
    snapshots = {0: server.x.clone()}
    rec.evaluate(0, 0.0, problem.evaluate(server.x))
    bar_args = {} if progress is None else {"disable": not progress}
    now, diverged = 0.0, False
    for upd in tqdm(sched, total=c.steps, desc="simulate", leave=False, **bar_args):
        grads, lags, weights, reads, losses = [], [], [], [], []
        for version, group in groupby(upd.pushes, key=lambda p: p.version):
            group = list(group)
            x_v, lag = snapshots[version], upd.step - version
            batches = [stream.next(c.push_batch) for _ in group]
            group_losses, g = problem.loss_grads(x_v, batches, each=per_push)
            losses.extend(group_losses)
            if per_push:
                grads.extend(comp(gi, p.worker) for gi, p in zip(g, group))
                lags.extend([lag] * len(group))
                weights.extend([c.lag_weight(lag)] * len(group))
                reads.extend([x_v] * len(group))
            else:  # one pass: the gradient of the union is the mean of equal-size pushes
                grads.append(g * len(group))
                lags.append(lag)
                weights.append(c.lag_weight(lag))
                reads.append(x_v)
        now = upd.time
        if any(_bad(l, c.diverge_loss) for l in losses):
            diverged = True
        else:
            server.apply(grads, lags, weights, reads, c.k_eff)
            diverged = not bool(torch.isfinite(server.x).all())
        push_lags = [upd.step - p.version for p in upd.pushes]
        rec.update(upd, push_lags, [c.lag_weight(l) for l in push_lags], losses)
        if callback is not None and not diverged:
            callback(upd.step, server.x)
        step = upd.step + 1
        if diverged:
            rec.evaluate(step, now, problem.evaluate(server.x), diverged=True)
            break
        snapshots[step] = server.x.clone()
        for v in [v for v in snapshots if v < sched.oldest_needed()]:
            del snapshots[v]
        if step % c.eval_every == 0 or step == c.steps:
            rec.evaluate(step, now, problem.evaluate(server.x))
    return Run(c, rec.history(), rec.update_frame())
