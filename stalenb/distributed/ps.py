"""The parameter server process (rank 0): the simulator's :class:`stalenb.server.Server`, fed by
real workers ("one server, two drivers", docs/design.md §S7).

Protocols, as in :mod:`stalenb.schedule` but with measured arrival order:

- ``async``: apply each gradient on arrival (K = 1), send the worker the new model at once;
- ``sync``: send x_t to all n workers, apply when all n gradients of x_t are in (K = n);
- ``k-of-n`` (K = k): a round ends when k gradients *of x_t* have arrived.
  ``drop``: the round's other jobs are cancelled (CANCEL; a worker still sleeping its injected
  delay stops at once, one still computing finishes and its gradient is discarded) and every
  worker restarts on x_{t+1}. ``reuse``: a gradient of an older version is cached, applied at the
  end of the current round with weight ``config.lag_weight(lag)``, and its worker gets the current
  model at once.

Staleness is measured: lag = server updates applied between the version a worker read and the
update that applies its gradient. Batches come from one :class:`stalenb.data.BatchStream` seeded
with ``config.seed``, drawn when a job is sent, in rank order for each broadcast — so with one
worker and ``sync`` the run is ``stalenb.simulate``'s, step for step.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch
from tqdm.auto import tqdm

from ..sim import history
from ..sim.compress import Compressor
from ..sim.data import BatchStream
from ..sim.schedule import Push, Update
from ..sim.server import Server, diverging
from . import wire
from .worker import decode

EXTRA_COLUMNS = ("rank", "sent", "arrived", "compute_s", "job_s", "slowdown")


@dataclass
class _Item:
    """A received GRAD or CANCELLED message, with its measured times."""

    rank: int
    version: int
    g: torch.Tensor | None
    read: torch.Tensor | None
    loss: float
    compute_s: float
    job_s: float
    slowdown: float
    sent: float
    arrived: float

    def push(self) -> Push:
        return Push(self.rank - 1, self.version, self.arrived)

    def extras(self) -> tuple:
        return (self.rank, self.sent, self.arrived, self.compute_s, self.job_s, self.slowdown)


class _Clock:
    """Seconds since the start, not counting the server's own evaluations."""

    def __init__(self):
        self.t0, self.paused = time.perf_counter(), 0.0

    def __call__(self) -> float:
        return time.perf_counter() - self.t0 - self.paused


def serve(config, problem, timeout: float, progress=None, on_start=None):
    """Run the server for ``config`` against workers 1..n.

    Returns:
        ``(history, updates, error)``: the two frames of :class:`stalenb.Run` (history with a
        ``wall_time`` column; updates with the measured ``rank, sent, arrived, compute_s, job_s,
        slowdown`` columns) and ``None``, or the :class:`wire.PeerLost` that ended the run (the
        frames are then the partial log up to that moment).
    """
    c, ranks = config, list(range(1, config.workers + 1))
    server = Server(problem.x0, c.rule, c.lr, c.momentum, c.dc_lambda)
    push_bytes = Compressor(c.compressor, c.density, problem.dim, 1, False,
                            problem.layer_sizes if c.granularity == "layer" else None).push_bytes
    stream = BatchStream(problem.n_train, c.seed)
    rec = history.Recorder(c.push_batch, push_bytes)
    extras: list[tuple] = []
    clock = _Clock()
    inbox = wire.Inbox(ranks, last=wire.BYE)
    jobs: dict[int, tuple] = {}  # job id -> (rank, version, sent)
    snapshots: dict[int, torch.Tensor] = {}
    dc = c.rule == "dc-asgd"
    next_job = [0]

    def dispatch(rank):
        version = server.version
        if dc and version not in snapshots:
            snapshots[version] = server.x.clone()
        jobs[next_job[0]] = (rank, version, clock())
        idx = stream.next(c.push_batch).to(torch.int32)
        wire.send(wire.Message(wire.JOB, version, next_job[0], server.x.float(), idx), rank)
        next_job[0] += 1

    def busy(rank):
        return [j for j, (r, _, _) in jobs.items() if r == rank]

    def evaluate(step, diverged=False):
        t = time.perf_counter()
        metrics = problem.evaluate(server.x)
        clock.paused += time.perf_counter() - t
        rec.evaluate(step, clock(), metrics, diverged=diverged)

    rounds = c.protocol != "async"
    drop = c.protocol == "k-of-n" and c.late == "drop"
    fresh, late, dropped = [], [], []
    error = None
    bar = tqdm(total=c.steps, desc=f"distributed {c.protocol}", leave=False) if progress else None
    try:
        evaluate(0)
        if on_start is not None:
            on_start()
        for r in ranks:
            dispatch(r)
        while server.version < c.steps:
            msg = _next(inbox, jobs, clock, timeout)
            if msg.kind not in (wire.GRAD, wire.CANCELLED) or msg.job not in jobs:
                continue
            rank, version, sent = jobs.pop(msg.job)
            loss, compute_s, job_s, slowdown = (float(v) for v in msg.f64)
            g = decode(msg, problem.dim, server.x) if msg.kind == wire.GRAD else None
            item = _Item(rank, version, g, snapshots.get(version), loss, compute_s, job_s, slowdown,
                         sent, clock())
            t = server.version
            if g is None or (drop and version < t):
                dropped.append(item)
                continue
            if not rounds:
                ready = [item]
            elif version == t:
                fresh.append(item)
                ready = fresh if len(fresh) == c.k_eff else None
            else:  # reuse: cache the late gradient, the worker pulls x_t and goes on
                late.append(item)
                dispatch(rank)
                ready = None
            if ready is None:
                continue
            if rounds:
                pushes = sorted(fresh, key=lambda i: i.rank) + sorted(late, key=lambda i: (i.version, i.rank))
            else:
                pushes = ready
            lags = [t - i.version for i in pushes]
            weights = [c.lag_weight(l) for l in lags]
            losses = [i.loss for i in pushes]
            diverged = diverging(losses, c.diverge_loss)
            if not diverged:
                server.apply([i.g for i in pushes], lags, weights, [i.read for i in pushes] if dc else None,
                             c.k_eff)
                diverged = not server.finite()
            rec.update(Update(t, clock(), [i.push() for i in pushes], [i.push() for i in dropped]),
                       lags, weights, losses)
            extras.extend(i.extras() for i in pushes + dropped)
            fresh, late, dropped = [], [], []
            if bar is not None:
                bar.update(1)
            step = server.version
            if diverged:
                evaluate(step, diverged=True)
                break
            if step < c.steps:
                for r in ranks:
                    if drop and busy(r):
                        for j in busy(r):
                            wire.send(wire.Message(wire.CANCEL, job=j), r)
                    if drop or not busy(r):
                        dispatch(r)
            if dc:
                needed = {v for _, v, _ in jobs.values()}
                for v in [v for v in snapshots if v not in needed]:
                    del snapshots[v]
            if step % c.eval_every == 0 or step == c.steps:
                evaluate(step)
    except wire.PeerLost as exc:
        error = exc
    finally:
        if bar is not None:
            bar.close()
        _shutdown(inbox, [r for r in ranks if error is None or r != error.rank],
                  timeout if error is None else min(timeout, 5.0))
    hist = rec.history()
    hist["wall_time"] = hist["sim_time"]
    upd = rec.update_frame()
    for name, col in zip(EXTRA_COLUMNS, zip(*extras) if extras else [()] * len(EXTRA_COLUMNS)):
        upd[name] = list(col)
    upd = upd.astype({"rank": "int64"} | {n: "float64" for n in EXTRA_COLUMNS[1:]})
    return hist, upd, error


def _next(inbox: wire.Inbox, jobs: dict, clock, timeout: float) -> wire.Message:
    """The next message; :class:`wire.PeerLost` naming the rank whose oldest job is ``timeout`` s old."""
    while True:
        oldest = min(jobs.items(), key=lambda kv: kv[1][2], default=None)
        if oldest is None:
            return inbox.get(timeout)
        job, (rank, _, sent) = oldest
        left = sent + timeout - clock()
        msg = inbox.poll(left) if left > 0 else None
        if msg is not None:
            return msg
        if clock() >= sent + timeout:
            raise wire.PeerLost(rank, f"worker rank {rank} has not answered job {job} for {timeout:g} s "
                                      f"(stopped answering or hung); the run was ended instead of waiting")


def _shutdown(inbox: wire.Inbox, ranks, timeout: float) -> None:
    """STOP every live worker and wait (at most ``timeout`` s) for their BYE; never raises."""
    live, posted = [r for r in ranks if r not in inbox.closed], []
    for r in live:
        try:
            posted.append(wire.send(wire.Message(wire.STOP), r, wait=False))
        except Exception:
            inbox.closed.add(r)
    waiting = {r for r in live if r not in inbox.closed}
    end = time.perf_counter() + timeout
    while waiting and time.perf_counter() < end:
        try:
            msg = inbox.poll(end - time.perf_counter())
        except wire.PeerLost as exc:
            waiting.discard(exc.rank)
            continue
        if msg is None:
            break
        if msg.kind == wire.BYE:
            waiting.discard(msg.source)
