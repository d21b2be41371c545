"""Who pushes which gradient when: the protocols as event schedules (docs/design.md §S3, "Protocols").

A schedule depends only on the configuration and the seed, never on gradient values (compute time
depends on batch size and random slowdowns; communication on bytes, fixed by the compressor). So
it is generated first and the engine only does the arithmetic; the same schedule therefore drives
the reference path and the fast path.

Each server update is an :class:`Update`: the gradients (:class:`Push`) it applies, each tagged
with the worker and the model version it read, plus the jobs the protocol dropped. Protocols:

- **async, synthetic staleness**: update t applies one gradient computed at x_{t−τ_t} with τ_t from
  the staleness model (or replayed from a :class:`stalenb.staleness.Trace`), clipped to t; worker
  ids go round-robin (they index error-feedback memories). Simulated time is a throughput
  approximation: each update costs one job's compute time / n plus the push's transfer (the job of
  the round-robin worker, with its speed factor: factors scale the clock, not who pushes).
- **async, timing**: n workers loop read → compute → push; the server applies each push on arrival
  (FIFO through the shared uplink); the worker then pulls the new model and starts again.
  Staleness = server updates between the read and the push. Workers given different speeds
  (``Timing.factors``) on a link that sets the pace get a
  :class:`stalenb.timing.LinkBoundWarning` (:func:`stalenb.timing.warn_if_link_bound`).
- **sync / k-of-n**: rounds. All idle workers receive x_t; the round ends when k gradients *of x_t*
  have arrived (k = n for sync). ``drop``: the other jobs of the round are cancelled (backup
  workers; Chen et al. 2016) and every worker restarts on x_{t+1}. ``reuse``: late jobs run on;
  their gradients arrive during a later round, are cached and applied at the end of that round
  with lag = update index − version read (the poster's rule). A worker that delivered a fresh
  gradient waits for the next broadcast; one that delivered a late one pulls the current model and
  starts at once. :class:`Round` holds these rules; the real parameter server
  (:mod:`stalenb.distributed.ps`) runs the same class on measured arrivals.

Slowdowns use common random numbers (:class:`stalenb.sim.timing.Slowdowns`): worker w's j-th job
has the same draw in every protocol.
"""

from __future__ import annotations

import heapq
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from .staleness import Trace
from .timing import Link, Slowdowns, warn_if_link_bound


@dataclass(frozen=True)
class Push:
    """One gradient: computed by ``worker`` at model version ``version``, ready at ``time``."""

    worker: int
    version: int
    time: float = 0.0


@dataclass
class Update:
    """Server update ``step`` (it creates x_{step+1}) at simulated ``time``."""

    step: int
    time: float
    pushes: list
    dropped: list = field(default_factory=list)


FRESH, LATE, DROPPED = "fresh", "late", "dropped"


class Round:
    """One round of ``sync`` / ``k-of-n``: the rules both drivers share, the simulated schedule
    (:meth:`Schedule._rounds`) and the real parameter server (:mod:`stalenb.distributed.ps`).

    Round t collects the gradients that arrive while the server holds x_t (any objects with
    ``worker`` and ``version`` attributes: a :class:`Push`, or the real server's messages).

    - An arrival is **fresh** when it read the current version t, **late** otherwise. A late one
      is dropped under ``drop`` (backup workers, Chen et al. 2016: the round's other jobs are
      cancelled) and cached under ``reuse`` (the poster's k-of-n rule: applied at the end of this
      round, with lag t − version; its worker pulls x_t and computes again at once).
    - The round closes when k fresh gradients are in (k = n for ``sync``).
    - It then applies the fresh gradients by worker, then the cached late ones by (version, worker),
      and round t + 1 begins. Under ``drop`` every worker restarts on x_{t+1} (a busy one is
      cancelled first); under ``reuse`` the workers that delivered a fresh gradient do.
    """

    def __init__(self, k: int, reuse: bool, version: int = 0):
        self.k, self.reuse, self.version = int(k), bool(reuse), int(version)
        self.fresh: list = []
        self.late: list = []

    @classmethod
    def of(cls, config) -> Round:
        """The first round of ``config`` (``sync``, or ``k-of-n`` with its ``late`` policy)."""
        return cls(config.k_eff, config.protocol == "k-of-n" and config.late == "reuse")

    def arrive(self, item) -> str:
        """Classify ``item`` and keep it if it counts: ``FRESH``, ``LATE`` (cached) or ``DROPPED``."""
        if item.version == self.version:
            self.fresh.append(item)
            return FRESH
        if self.reuse:
            self.late.append(item)
            return LATE
        return DROPPED

    @property
    def full(self) -> bool:
        """k fresh gradients are in: the round closes."""
        return len(self.fresh) >= self.k

    def close(self) -> list:
        """The gradients to apply, in order (fresh by worker, then late by (version, worker));
        the next round begins."""
        pushes = (sorted(self.fresh, key=lambda p: p.worker)
                  + sorted(self.late, key=lambda p: (p.version, p.worker)))
        self.version += 1
        self.fresh, self.late = [], []
        return pushes


class Schedule:
    """Iterates over the updates of a run; ``oldest_needed()`` bounds the model versions to keep."""

    def __init__(self, config, push_bytes: int, pull_bytes: int, rng: np.random.Generator):
        self.cfg = config
        self.push_bytes, self.pull_bytes = int(push_bytes), int(pull_bytes)
        self.rng = rng
        self.timing = config.timing
        self.slow = Slowdowns(config.timing.slowdown, config.workers, rng)
        self._oldest = 0
        if config.protocol == "async" and config.staleness is None:
            warn_if_link_bound(config.timing, config.workers, config.push_batch, push_bytes, pull_bytes)

    def oldest_needed(self) -> int:
        """No push yet to come reads a version older than this."""
        return self._oldest

    def __iter__(self):
        cfg = self.cfg
        if cfg.protocol == "async" and cfg.staleness is not None:
            return self._async_synthetic()
        if cfg.protocol == "async":
            return self._async_timing()
        return self._rounds()

    # -- async ---------------------------------------------------------------------------------
    def _async_synthetic(self):
        cfg, tm, n = self.cfg, self.timing, self.cfg.workers
        now = 0.0
        jobs = [0] * n
        replay = isinstance(cfg.staleness, Trace)
        for t in range(cfg.steps):
            tau = min(cfg.staleness.delay(t) if replay else cfg.staleness.sample(self.rng), t)
            w = t % n
            now += tm.compute_time(cfg.push_batch, self.slow(w, jobs[w]), w) / n
            now += tm.transfer_time(self.push_bytes) + tm.latency
            jobs[w] += 1
            self._oldest = max(0, t + 1 - cfg.staleness.tau_max)
            yield Update(t, now, [Push(w, t - tau, now)])

    def _async_timing(self):
        cfg, tm, n = self.cfg, self.timing, self.cfg.workers
        up, down = Link(tm), Link(tm)
        jobs = [0] * n
        read = [0] * n
        heap = []
        for w in range(n):  # initial model broadcast to every worker
            start = down.send(0.0, self.pull_bytes)
            heap.append((start + tm.compute_time(cfg.push_batch, self.slow(w, 0), w), w))
            jobs[w] = 1
        heapq.heapify(heap)
        readers = Counter(read)  # version -> workers computing on it; its smallest key is min(read)
        for t in range(cfg.steps):
            ready, w = heapq.heappop(heap)
            arrive = up.send(ready, self.push_bytes)
            push = Push(w, read[w], ready)
            start = down.send(arrive, self.pull_bytes)
            readers[read[w]] -= 1
            read[w] = t + 1
            readers[t + 1] += 1
            heapq.heappush(heap, (start + tm.compute_time(cfg.push_batch, self.slow(w, jobs[w]), w), w))
            jobs[w] += 1
            while not readers[self._oldest]:  # amortised O(1) per update, not O(workers)
                readers.pop(self._oldest, None)
                self._oldest += 1
            yield Update(t, arrive, [push])

    # -- sync and k-of-n -----------------------------------------------------------------------
    def _rounds(self):
        cfg, tm, n = self.cfg, self.timing, self.cfg.workers
        rnd = Round.of(cfg)
        up, down = Link(tm), Link(tm)
        jobs = [0] * n
        read = [0] * n
        heap = []

        def start(w, at, version):
            read[w] = version
            heapq.heappush(heap, (at + tm.compute_time(cfg.push_batch, self.slow(w, jobs[w]), w), w))
            jobs[w] += 1

        for w in range(n):
            start(w, down.send(0.0, self.pull_bytes), 0)
        while rnd.version < cfg.steps:
            ready, w = heapq.heappop(heap)
            arrive = up.send(ready, self.push_bytes)
            if rnd.arrive(Push(w, read[w], ready)) == LATE:  # cached: pull the current model, go on
                start(w, down.send(arrive, self.pull_bytes), rnd.version)
            if not rnd.full:
                continue
            # (no arrival is ever late under drop: every job of a round is cancelled at its end)
            dropped = []
            if not rnd.reuse:  # cancel the round's other jobs; everybody restarts on x_{t+1}
                dropped = [Push(v, read[v], r) for r, v in sorted(heap)]
                heap.clear()
            idle = sorted({p.worker for p in rnd.fresh} | {p.worker for p in dropped})
            t = rnd.version
            pushes = rnd.close()
            for v in idle:
                start(v, down.send(arrive, self.pull_bytes), t + 1)
            self._oldest = min(read) if heap else t + 1
            yield Update(t, arrive, pushes, dropped)
