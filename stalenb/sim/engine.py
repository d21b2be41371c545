"""The simulated driver: runs a :class:`stalenb.Config` in one process, deterministically.

``run(config)`` walks the protocol's :class:`stalenb.schedule.Schedule`; for each server update it
computes the gradients of the pushes at the model versions they read, compresses them per worker
and hands them to the :class:`stalenb.server.Server`. Two paths do this (docs/design.md §S7, "fast batched
path + small reference path"), with the same iterates up to float rounding:

- ``path="reference"``: one plain gradient per push, ``Server.apply`` — short enough to read;
- ``path="fast"`` (default): one forward/backward per model version read (per push only when
  compression, error feedback or DC-ASGD need each push's gradient), flat-buffer gradients,
  snapshots in recycled flat buffers; ``python -m stalenb.repro.bench`` measures it against plain
  PyTorch loops.

Model versions still to be read by in-flight jobs are kept as flat snapshots and dropped as soon
as no job can read them.

A run whose mini-batch loss exceeds ``config.diverge_loss`` (or is not finite), or whose model
stops being finite, ends at once with a last history row flagged ``diverged``; no exception.
A run also ends early, with an ordinary last row, at the first evaluation whose ``train_loss`` is
at most ``config.stop_loss`` or at the first update at or after ``config.time_limit`` simulated
seconds (evaluated there): time-to-target and equal-time comparisons stop when they have their answer.
Results are cached on disk (:mod:`stalenb.cache`) unless a custom ``problem`` is given.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from itertools import groupby, takewhile

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from .. import cache as _cache
from . import gradients, history, rules
from .compress import Compressor
from .config import Config
from .data import BatchStream
from .schedule import PROTOCOLS, Schedule
from .server import Server, diverging


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

    def __repr__(self) -> str:
        """A few lines, not the frames: the settings that differ from ``Config()`` and the outcome.

        Example:
            >>> Run(Config(protocol="sync", steps=2), pd.DataFrame(), pd.DataFrame())
            Run(protocol='sync', steps=2)
              no evaluations; 0 gradients
        """
        default, mine = Config().to_dict(), self.config.to_dict()
        changed = ", ".join(f"{k}={getattr(self.config, k)!r}" for k in mine
                            if k != "data_root" and mine[k] != default.get(k))
        lines = [f"Run({changed})"]
        h, u = self.history, self.updates
        if h.empty:
            lines.append("  no evaluations")
        else:
            last = h.iloc[-1]
            clock = next((c for c in ("wall_time", "sim_time") if c in h), None)
            shown = [f"{c} {last[c]:.4g}" for c in ("test_acc", "train_loss") if c in h]
            lines.append(f"  {len(h)} evaluations; last" + (f" at step {int(last['step'])}" if "step" in h else "")
                         + (f", {clock} {last[clock]:.4g} s" if clock else "") + (": " + ", ".join(shown) if shown else "")
                         + ("; DIVERGED" if "diverged" in h and self.diverged else ""))
        applied = u[u["applied"]] if "applied" in u else u
        lines[-1] += f"; {len(applied)} gradients" + (
            f" ({len(u) - len(applied)} dropped), staleness mean {applied['staleness'].mean():.3g}, "
            f"max {int(applied['staleness'].max())}" if len(applied) and "staleness" in applied else "")
        if self.from_cache:
            lines.append("  (loaded from the results cache)")
        return "\n".join(lines)


PATHS = ("fast", "reference")


def run(config: Config, problem=None, *, cache: bool = True, progress: bool | None = None,
        callback=None, path: str = "fast") -> Run:
    """Simulate ``config``; load it from the cache when it was run before.

    Args:
        config: the run.
        problem: a custom :mod:`stalenb.gradients` problem instead of MNIST (never cached).
        cache: read and write the results cache.
        progress: show a progress bar (default: tqdm's default, off with ``TQDM_DISABLE=1``).
        callback: ``callback(step, x)`` after every update (for tests and theory notebooks).
        path: ``"fast"`` (batched, the default) or ``"reference"`` (one plain gradient per push);
            both give the same iterates up to float rounding, and share one cache entry.
    """
    if not isinstance(config, Config):
        raise TypeError(f"config must be a stalenb.Config, got {type(config).__name__}")
    if path not in PATHS:
        raise ValueError(f"path must be one of {PATHS}, got {path!r}")
    use_cache = cache and problem is None and callback is None
    plugins = _plugin_sources(config) if use_cache else {}
    if use_cache and None in plugins.values():
        unread = [name for name, source in plugins.items() if source is None]
        warnings.warn(f"not cached: the source of {', '.join(unread)} cannot be read (define it in a file to "
                      "cache its runs)", stacklevel=2)
        use_cache = False
    if use_cache:
        key = _cache.key(config, extra={"plugins": plugins} if plugins else None)
        hit = _cache.load(key)
        if hit is not None:
            frames, _ = hit
            return Run(config, frames["history"], frames["updates"], from_cache=True)
    simulate_path = _simulate_fast if path == "fast" else _simulate_reference
    result = simulate_path(config, problem if problem is not None else gradients.from_config(config),
                           progress, callback)
    if use_cache:
        _cache.save(key, {"history": result.history, "updates": result.updates}, {"steps": config.steps})
    return result


def _plugin_sources(config: Config) -> dict:
    """The sources of the user's rule and protocol that ``config`` names (built-ins: none; they are
    keyed by the simulator's hash); a value ``None`` where the source cannot be read."""
    entries = {f"rule {config.rule!r}": (rules.RULES, config.rule),
               f"protocol {config.protocol!r}": (PROTOCOLS, config.protocol)}
    return {label: registry.source(name) for label, (registry, name) in entries.items()
            if not registry.builtin(name)}


def simulate(config: Config, problem=None, **kwargs) -> pd.DataFrame:
    """The history frame of :func:`run` (docs/design.md §S3: ``stalenb.simulate(config) -> DataFrame``)."""
    return run(config, problem, **kwargs).history


class _Loop:
    """What both paths share: the setup, and the bookkeeping after each update."""

    def __init__(self, cfg: Config, problem, progress, callback):
        self.cfg, self.problem, self.callback = cfg, problem, callback
        self.server = Server(problem.x0, cfg.rule, cfg.lr, cfg.momentum, cfg)
        self.comp = Compressor(cfg.compressor, cfg.density, problem.dim, workers=cfg.workers,
                               error_feedback=cfg.error_feedback,
                               layer_sizes=problem.layer_sizes if cfg.granularity == "layer" else None,
                               seed=cfg.seed, device=problem.x0.device)
        if self.comp.memory is not None:
            self.comp.memory = self.comp.memory.to(problem.x0.dtype)
        self.sched = Schedule(cfg, self.comp.push_bytes, 4 * problem.dim, np.random.default_rng(cfg.seed))
        self.table = PROTOCOLS[cfg.protocol].table
        self.stream = BatchStream(problem.n_train, cfg.seed)
        self.rec = history.Recorder(cfg.push_batch, self.comp.push_bytes)
        self.rec.evaluate(0, 0.0, problem.evaluate(self.server.x))
        self.bar_args = {} if progress is None else {"disable": not progress}

    def updates(self):
        return tqdm(self.sched, total=self.cfg.steps, desc="simulate", leave=False, **self.bar_args)

    def finish(self, upd, losses, apply) -> bool:
        """Apply the update unless a loss is bad, record it, evaluate; False when the run stops."""
        cfg, server = self.cfg, self.server
        diverged = diverging(losses, cfg.diverge_loss)
        if not diverged:
            apply()
            diverged = not server.finite()
        lags = [upd.step - p.version for p in upd.pushes]
        self.rec.update(upd, lags, [cfg.lag_weight(l) for l in lags], losses)
        if self.callback is not None and not diverged:
            self.callback(upd.step, server.x)
        step = upd.step + 1
        if diverged:
            self.rec.evaluate(step, upd.time, self.problem.evaluate(server.x), diverged=True)
            return False
        out_of_time = cfg.time_limit is not None and upd.time >= cfg.time_limit
        if step % cfg.eval_every == 0 or step == cfg.steps or out_of_time:
            metrics = self.problem.evaluate(server.x)
            self.rec.evaluate(step, upd.time, metrics)
            if cfg.stop_loss is not None and metrics["train_loss"] <= cfg.stop_loss:
                return False
        return not out_of_time

    def result(self) -> Run:
        return Run(self.cfg, self.rec.history(), self.rec.update_frame())


def _simulate_reference(cfg: Config, problem, progress, callback) -> Run:
    """The plain path: one ``problem.loss_grad`` per push at the version it read, ``Server.apply``
    (a ``table`` protocol: each push's direction replaces its worker's entry, the step is their mean)."""
    loop = _Loop(cfg, problem, progress, callback)
    snapshots = {0: loop.server.x.clone()}
    table = {}
    for upd in loop.updates():
        grads, lags, weights, reads, losses = [], [], [], [], []
        for p in upd.pushes:
            x_read, lag = snapshots[p.version], upd.step - p.version
            loss, g = problem.loss_grad(x_read, loop.stream.next(cfg.push_batch))
            losses.append(loss)
            grads.append(loop.comp(g, p.worker))
            lags.append(lag)
            weights.append(cfg.lag_weight(lag))
            reads.append(x_read)
        if loop.table:
            for p, g, lag, x_read in zip(upd.pushes, grads, lags, reads):
                table[p.worker] = loop.server.combine([g], [lag], None, [x_read])

            def apply():
                loop.server.step(torch.stack(list(table.values())).sum(0) / cfg.k_eff)
        else:
            def apply():
                loop.server.apply(grads, lags, weights, reads, cfg.k_eff)
        if not loop.finish(upd, losses, apply):
            break
        snapshots[upd.step + 1] = loop.server.x.clone()
        for v in [v for v in snapshots if v < loop.sched.oldest_needed()]:
            del snapshots[v]
    return loop.result()


class _Versions:
    """Past model versions still to be read, as flat snapshots in recycled buffers (a ring)."""

    def __init__(self):
        self.slots: dict[int, torch.Tensor] = {}
        self.free: list[torch.Tensor] = []

    def buffer(self, like: torch.Tensor) -> torch.Tensor:
        """A free buffer shaped like ``like`` (a recycled one when there is one)."""
        return self.free.pop() if self.free else torch.empty_like(like)

    def keep(self, version: int, x: torch.Tensor) -> None:
        """Hold ``x`` itself (not a copy) as version ``version``; the caller stops writing to it."""
        self.slots[version] = x

    def release_before(self, oldest: int) -> None:
        """Recycle the versions older than ``oldest`` (kept in increasing order: stops at the first
        one still readable, so a run with a thousand readable versions pays nothing per update)."""
        for v in list(takewhile(lambda v: v < oldest, self.slots)):
            self.free.append(self.slots.pop(v))

    def release(self, version: int) -> None:
        """Recycle ``version`` if it is held (so the snapshots held never outnumber the jobs in flight)."""
        if version in self.slots:
            self.free.append(self.slots.pop(version))

    def __getitem__(self, version: int) -> torch.Tensor:
        return self.slots[version]


class _Table:
    """The gradient table of IA²SGD: each worker's latest direction and their running sum."""

    def __init__(self, workers: int, like: torch.Tensor):
        self.rows = torch.zeros((workers, like.numel()), dtype=like.dtype, device=like.device)
        self.sum = torch.zeros_like(like)

    def replace(self, worker: int, d: torch.Tensor) -> None:
        """S ← S + d − G[w]; G[w] ← d (O(d) per arrival, whatever the number of workers)."""
        self.sum.add_(d).sub_(self.rows[worker])
        self.rows[worker].copy_(d)


def _simulate_fast(cfg: Config, problem, progress, callback) -> Run:
    """The batched path; same iterates as :func:`_simulate_reference` up to float rounding.

    - pushes that read the same version are one forward/backward over the union of their
      batches (the mean of equal-size push gradients is the gradient of the union), unless
      compression, error feedback or DC-ASGD need each push's own gradient;
    - gradients come from ``problem.loss_grad_buffer`` (for :class:`~stalenb.gradients.NeuralNet`
      a flat-buffer module: zero-copy ``backward``) and are folded into one direction buffer
      with their weight w(lag)·count / K at once;
    - the version being replaced is kept only when the schedule says a later push reads it, and
      kept without a copy: the server writes x_{t+1} into a recycled buffer instead
      (:meth:`stalenb.server.Server.step` ``out=``).
    """
    loop = _Loop(cfg, problem, progress, callback)
    server, comp, stream, sched = loop.server, loop.comp, loop.stream, loop.sched
    total = torch.zeros_like(server.x)
    versions = _Versions()
    per_push = comp.active or comp.memory is not None or not rules.RULES[cfg.rule].linear or loop.table
    table = _Table(cfg.workers, server.x) if loop.table else None
    grad = problem.loss_grad_buffer
    for upd in loop.updates():
        t, losses, x = upd.step, [], server.x
        single = len(upd.pushes) == 1 and table is None  # async: step with the one direction, no accumulation
        if not single:
            total.zero_()
        for version, group in groupby(upd.pushes, key=lambda p: p.version):
            group = list(group)
            x_read, lag = (x if version == t else versions[version]), t - version
            scale = cfg.lag_weight(lag) / cfg.k_eff
            batches = [stream.next(cfg.push_batch) for _ in group]
            if per_push:
                for p, idx in zip(group, batches):
                    loss, g = grad(x_read, idx)
                    losses.append(loss)
                    d = rules.direction(cfg.rule, comp(g, p.worker), lag, x, x_read, cfg)
                    if table is not None:
                        table.replace(p.worker, d)
                    elif not single and scale:
                        total.add_(d, alpha=scale)
            else:
                loss, g = grad(x_read, batches[0] if len(batches) == 1 else torch.cat(batches))
                losses.extend([loss] * len(group))
                d = rules.direction(cfg.rule, g, lag, config=cfg)
                scale *= len(group)
                if not single and scale:
                    total.add_(d, alpha=scale)
        if table is not None:
            direction = torch.div(table.sum, cfg.k_eff, out=total)
        else:
            direction = total if not single else (d if scale == 1.0 else d * scale)

        def apply():
            if sched.reads(t):  # a job in flight reads x_t: keep it, step into a new buffer
                versions.keep(t, server.x)
                server.step(direction, out=versions.buffer(server.x))
            else:
                server.step(direction)

        if not loop.finish(upd, losses, apply):
            break
        versions.release_before(sched.oldest_needed())
        for v in sched.take_freed():  # read by nobody any more: recycled at once, whatever its age
            versions.release(v)
    return loop.result()
