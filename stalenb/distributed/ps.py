"""The parameter server process (rank 0): the simulator's :class:`stalenb.sim.server.Server`, fed by
real workers ("one server, two drivers", docs/design.md §S7).

Protocols, as in :mod:`stalenb.sim.schedule` but with measured arrival order:

- ``async``: apply each gradient on arrival (K = 1), send the worker the new model at once;
- ``sync`` and ``k-of-n``: rounds, by the simulator's own :class:`stalenb.sim.schedule.Round`
  (fresh / late, when a round closes, the order of its pushes). ``sync`` sends x_t to all n
  workers and applies when all n gradients of x_t are in; ``k-of-n`` closes a round at k fresh
  gradients. ``drop``: the round's other jobs are cancelled (CANCEL; a worker still sleeping its
  injected delay stops at once, one still computing finishes and its gradient is discarded) and
  every worker restarts on x_{t+1}. ``reuse``: a gradient of an older version is cached, applied
  at the end of the current round with weight ``config.lag_weight(lag)``, and its worker gets the
  current model at once.

Staleness is measured: lag = server updates applied between the version a worker read and the
update that applies its gradient. Batches come from one :class:`stalenb.sim.data.BatchStream`
seeded with ``config.seed``, drawn when a job is sent, in rank order for each broadcast — so with
one worker and ``sync`` the run is ``stalenb.simulate``'s, step for step. Evaluations are taken
after training, from a copy of the model kept at each evaluation step (:meth:`ParameterServer.evaluate`).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import torch
from tqdm.auto import tqdm

from ..sim import history
from ..sim.compress import Compressor
from ..sim.data import BatchStream
from ..sim.rules import RULES
from ..sim.schedule import DROPPED, LATE, Push, Round, Update
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

    @property
    def worker(self) -> int:
        return self.rank - 1

    def push(self) -> Push:
        return Push(self.worker, self.version, self.arrived)

    def extras(self) -> tuple:
        return (self.rank, self.sent, self.arrived, self.compute_s, self.job_s, self.slowdown)


class _Clock:
    """Seconds since the start (the server's evaluations run after training: nothing to leave out)."""

    def __init__(self):
        self.t0 = time.perf_counter()

    def __call__(self) -> float:
        return time.perf_counter() - self.t0


_METRICS = ("train_loss", "test_loss", "test_acc", "val_loss", "val_acc")
LOST_EVAL_S = 2.0  # seconds of deferred evaluations a run ended by a lost worker may still spend


class ParameterServer:
    """One real run, server side: send jobs, receive gradients, close rounds, log (see the module doc)."""

    def __init__(self, cfg, problem, timeout: float, progress=None):
        self.cfg, self.problem, self.timeout = cfg, problem, timeout
        self.ranks = list(range(1, cfg.workers + 1))
        self.server = Server(problem.x0, cfg.rule, cfg.lr, cfg.momentum, cfg)
        push_bytes = Compressor(cfg.compressor, cfg.density, problem.dim, workers=1, error_feedback=False,
                                layer_sizes=problem.layer_sizes if cfg.granularity == "layer" else None).push_bytes
        self.stream = BatchStream(problem.n_train, cfg.seed)
        self.rec = history.Recorder(cfg.push_batch, push_bytes)
        self.extras: list[tuple] = []
        self.clock = _Clock()
        self.pending: list[tuple[int, torch.Tensor]] = []  # (history row, x) evaluated after training
        self.inbox = wire.Inbox(self.ranks, last=wire.BYE)
        self.jobs: dict[int, tuple] = {}  # job id -> (rank, version, sent)
        self.next_job = 0
        self.dc = not RULES[cfg.rule].linear  # the rule reads x_read (DC-ASGD, a user's rule)
        self.snapshots: dict[int, torch.Tensor] = {}  # a non-linear rule: version -> x read by a job out
        self.round = None if cfg.protocol == "async" else Round.of(cfg)
        self.dropped: list[_Item] = []  # cancelled or discarded since the last update
        self.bar = tqdm(total=cfg.steps, desc=f"distributed {cfg.protocol}", leave=False) if progress else None

    def run(self, on_start=None) -> wire.PeerLost | None:
        """Train to ``cfg.steps`` (or divergence), stop the workers; the error that ended it, if any."""
        error = None
        try:
            self.evaluate(0)
            if on_start is not None:
                on_start()
            for r in self.ranks:
                self.dispatch(r)
            while self.server.version < self.cfg.steps:
                pushes = self.receive(self.next_message())
                if pushes is not None and not self.update(pushes):
                    break
        except wire.PeerLost as exc:
            error = exc
        finally:
            if self.bar is not None:
                self.bar.close()
            _shutdown(self.inbox, [r for r in self.ranks if error is None or r != error.rank],
                      self.timeout if error is None else min(self.timeout, 5.0))
        # a run ended by a lost worker reports within the launcher's grace period: its partial log
        # gets the metrics that fit in LOST_EVAL_S, the rest stay NaN
        self.finish_evaluations(None if error is None else LOST_EVAL_S)
        return error

    def dispatch(self, rank: int) -> None:
        """Send ``rank`` a job: the current model and the next batch."""
        version = self.server.version
        if self.dc and version not in self.snapshots:
            self.snapshots[version] = self.server.x.clone()
        self.jobs[self.next_job] = (rank, version, self.clock())
        idx = self.stream.next(self.cfg.push_batch).to(torch.int32)
        wire.send(wire.Message(wire.JOB, version, self.next_job, self.server.x.float(), idx), rank)
        self.next_job += 1

    def busy(self, rank: int) -> list[int]:
        """The jobs ``rank`` has not answered."""
        return [j for j, (r, _, _) in self.jobs.items() if r == rank]

    def evaluate(self, step: int, diverged: bool = False) -> None:
        """Log x_step's row now (time, counters) and keep a copy of x_step; its metrics are computed
        after training (:meth:`finish_evaluations`). The workers never wait while the server
        evaluates: an evaluation during training would stall the server for a while, its queue would
        then empty back to back (rounds of ~0 s) and the workers would fall into step, an artefact
        of measuring, not of the protocol. Memory: one copy of the model per evaluation."""
        self.rec.evaluate(step, self.clock(), dict.fromkeys(_METRICS, math.nan), diverged=diverged)
        self.pending.append((len(self.rec.rows) - 1, self.server.x.clone()))

    def finish_evaluations(self, budget_s: float | None = None) -> None:
        """Fill in the metrics of the evaluation rows from their kept copies of the model, the last
        rows first; with ``budget_s``, stop once that many seconds are spent (the rest stay NaN)."""
        end = None if budget_s is None else time.perf_counter() + budget_s
        for row, x in reversed(self.pending):
            if end is not None and time.perf_counter() > end:
                break
            metrics = self.problem.evaluate(x)
            self.rec.rows[row].update({m: metrics.get(m, math.nan) for m in _METRICS})
        self.pending = []

    def next_message(self) -> wire.Message:
        """The next message; :class:`wire.PeerLost` naming the rank whose oldest job is ``timeout`` s old."""
        while True:
            oldest = min(self.jobs.items(), key=lambda kv: kv[1][2], default=None)
            if oldest is None:
                return self.inbox.get(self.timeout)
            job, (rank, _, sent) = oldest
            left = sent + self.timeout - self.clock()
            msg = self.inbox.poll(left) if left > 0 else None
            if msg is not None:
                return msg
            if self.clock() >= sent + self.timeout:
                raise wire.PeerLost(rank, f"worker rank {rank} has not answered job {job} for {self.timeout:g} s "
                                          f"(stopped answering or hung); the run was ended instead of waiting")

    def receive(self, msg: wire.Message) -> list[_Item] | None:
        """Take in an answer to a job; the gradients to apply now, or None."""
        if msg.kind not in (wire.GRAD, wire.CANCELLED) or msg.job not in self.jobs:
            return None
        rank, version, sent = self.jobs.pop(msg.job)
        loss, compute_s, job_s, slowdown = (float(v) for v in msg.f64)
        g = decode(msg, self.problem.dim, self.server.x) if msg.kind == wire.GRAD else None
        item = _Item(rank, version, g, self.snapshots.get(version), loss, compute_s, job_s, slowdown,
                     sent, self.clock())
        if g is None:  # the answer to a CANCEL
            self.dropped.append(item)
            return None
        if self.round is None:  # async
            return [item]
        kind = self.round.arrive(item)
        if kind == LATE:  # reuse: cached; the worker pulls x_t and goes on
            self.dispatch(rank)
        elif kind == DROPPED:  # drop: a late gradient is discarded
            self.dropped.append(item)
        return self.round.close() if self.round.full else None

    def update(self, pushes: list[_Item]) -> bool:
        """Apply ``pushes`` (unless a loss is bad), log, restart workers, evaluate; False when the run stops."""
        cfg, server = self.cfg, self.server
        t = server.version
        lags = [t - i.version for i in pushes]
        weights = [cfg.lag_weight(l) for l in lags]
        losses = [i.loss for i in pushes]
        diverged = diverging(losses, cfg.diverge_loss)
        if not diverged:
            server.apply([i.g for i in pushes], lags, weights, [i.read for i in pushes] if self.dc else None,
                         cfg.k_eff)
            diverged = not server.finite()
        self.rec.update(Update(t, self.clock(), [i.push() for i in pushes], [i.push() for i in self.dropped]),
                        lags, weights, losses)
        self.extras.extend(i.extras() for i in pushes + self.dropped)
        self.dropped = []
        if self.bar is not None:
            self.bar.update(1)
        step = server.version
        if diverged:
            self.evaluate(step, diverged=True)
            return False
        if step < cfg.steps:
            self.restart_workers()
        if self.dc:
            needed = {v for _, v, _ in self.jobs.values()}
            for v in [v for v in self.snapshots if v not in needed]:
                del self.snapshots[v]
        if step % cfg.eval_every == 0 or step == cfg.steps:
            self.evaluate(step)
        return True

    def restart_workers(self) -> None:
        """After an update: async, or a round under ``reuse``, sends the idle workers x_{t+1}; a round
        under ``drop`` cancels the busy ones' jobs and sends every worker x_{t+1}."""
        drop = self.round is not None and not self.round.reuse
        for r in self.ranks:
            busy = self.busy(r)
            if drop:
                for j in busy:
                    wire.send(wire.Message(wire.CANCEL, job=j), r)
            if drop or not busy:
                self.dispatch(r)

    def frames(self):
        """The history and updates (with :data:`EXTRA_COLUMNS`) frames. The history's time column is
        ``wall_time`` (measured seconds), in the place of the simulator's ``sim_time``: one column,
        named for what it holds (the two were identical copies)."""
        hist = self.rec.history().rename(columns={"sim_time": "wall_time"})
        upd = self.rec.update_frame()
        cols = zip(*self.extras) if self.extras else [()] * len(EXTRA_COLUMNS)
        for name, col in zip(EXTRA_COLUMNS, cols):
            upd[name] = list(col)
        upd = upd.astype({"rank": "int64"} | {n: "float64" for n in EXTRA_COLUMNS[1:]})
        return hist, upd


def serve(config, problem, timeout: float, progress=None, on_start=None):
    """Run the server for ``config`` against workers 1..n.

    Returns:
        ``(history, updates, error)``: the two frames of :class:`stalenb.Run` (history with
        ``wall_time``, measured, where the simulator's has ``sim_time``; updates with the measured ``rank, sent, arrived, compute_s, job_s,
        slowdown`` columns) and ``None``, or the :class:`wire.PeerLost` that ended the run (the
        frames are then the partial log up to that moment).
    """
    ps = ParameterServer(config, problem, timeout, progress)
    error = ps.run(on_start)
    return (*ps.frames(), error)


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
