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

- **rennala** (Tyurin & Richtárik, NeurIPS 2023): an update averages B = ``k`` gradients computed at
  the current x_t (a fast worker may send several; B may exceed n); a gradient of an older x
  arriving is discarded; every worker restarts at the current x after each send. With
  ``cancel_stale=True`` every worker restarts at x_{t+1} at each update (in-flight jobs cancelled;
  the Ringmaster authors' ``RennalaSGD``); without, stale jobs finish and are discarded on arrival
  (Tyurin's ``AsynchronousMiniBatchSGD``).
- **ringmaster** (Maranjyan, Tyurin & Richtárik, ICML 2025): asynchronous steps, but a gradient
  of delay δ ≥ R = ``max_delay`` is discarded and its worker restarts at the current x. With
  ``cancel_stale=True`` a job is cancelled as soon as its delay reaches R (its worker restarts at
  the new x at once: the authors' ``RingmasterASGD``), so no gradient of delay ≥ R is ever finished.
- **gradient-table** (IA²SGD; Wang et al. 2024, "Incremental aggregated asynchronous SGD"; the
  authors' ``IAASGD``): the server keeps every worker's latest gradient and, at each arrival, steps
  on the mean of the table. Arrivals before every worker has reported once only fill the table; the
  first update comes with the next arrival (so it carries one entry per worker).

Protocols are entries of :data:`PROTOCOLS` (a :class:`Protocol`: the event generator and how the
update averages); a user's own late-gradient policy registers the same way (:func:`register`) and
writes its generator with :class:`Jobs`, as the last three built-ins do.

Slowdowns use common random numbers (:class:`stalenb.sim.timing.Slowdowns`): worker w's j-th job
has the same draw in every protocol.
"""

from __future__ import annotations

import heapq
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from .registry import Registry
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
        self._jobs: Jobs | None = None  # set by a protocol that keeps its jobs in a Jobs
        if config.protocol == "async" and config.staleness is None:
            warn_if_link_bound(config.timing, config.workers, config.push_batch, push_bytes, pull_bytes)

    def oldest_needed(self) -> int:
        """No push yet to come reads a version older than this."""
        return self._jobs.oldest() if self._jobs is not None else self._oldest

    def reads(self, version: int) -> bool:
        """A job in flight (or, for the round protocols, possibly one to come) reads ``version``."""
        return version in self._jobs.by_version if self._jobs is not None else self._oldest <= version

    def take_freed(self) -> list[int]:
        """The versions whose last reader finished or was cancelled since the last call (a
        :class:`Jobs` protocol; the engine recycles their snapshots at once)."""
        if self._jobs is None:
            return []
        freed, self._jobs.freed = self._jobs.freed, []
        return freed

    def __iter__(self):
        return iter(PROTOCOLS[self.cfg.protocol].events(self))

    def _async(self):
        return self._async_synthetic() if self.cfg.staleness is not None else self._async_timing()

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
        jobs = Jobs(self)
        for w in range(self.cfg.workers):  # initial model broadcast to every worker
            jobs.start(w, 0.0, 0)
        for t in range(self.cfg.steps):
            push, arrive = jobs.next()  # applied on arrival (FIFO through the uplink) ...
            jobs.start(push.worker, arrive, t + 1)  # ... then its worker pulls x_{t+1} and computes again
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


# -- the protocol registry and the toolkit of event-driven protocols ----------------------------
class Jobs:
    """The n workers' jobs on the simulated clock: the toolkit of an event-driven protocol.

    A worker runs one job at a time: it pulls the model version it reads through the shared
    downlink, computes (its fixed factor × its slowdown draw: common random numbers, so worker w's
    j-th job has the same draw in every protocol) and pushes through the shared uplink. Ties in
    finish time go to the lower worker index, as in the public reference code.

    - :meth:`start` (w idle) and :meth:`cancel` (w busy: its job is abandoned) start a job;
    - :meth:`next` returns the next finished job as a :class:`Push` and its arrival time at the
      server; the worker is then idle until the protocol starts it again;
    - :meth:`reading` lists the busy workers that read a version; the schedule's
      ``oldest_needed()`` is the oldest version a busy worker read (so the engine keeps exactly the
      model versions that jobs in flight will need).
    """

    def __init__(self, schedule: Schedule):
        self.cfg, self.timing, self.slow = schedule.cfg, schedule.timing, schedule.slow
        self.push_bytes, self.pull_bytes = schedule.push_bytes, schedule.pull_bytes
        n = schedule.cfg.workers
        self.up, self.down = Link(self.timing), Link(self.timing)
        self.jobs, self.read, self.ready, self.ticket = [0] * n, [0] * n, [0.0] * n, [0] * n
        self.busy = [False] * n
        self.freed: list[int] = []  # versions left without a reader (Schedule.take_freed)
        self.heap: list = []
        self.by_version: dict[int, set] = defaultdict(set)
        self._oldest = self._newest = 0
        schedule._jobs = self

    def start(self, w: int, at: float, version: int) -> None:
        """Idle worker ``w`` pulls ``version`` at time ``at`` and computes on it."""
        if self.busy[w]:
            raise RuntimeError(f"worker {w} is busy; cancel its job first")
        begin = self.down.send(at, self.pull_bytes)
        self.ready[w] = begin + self.timing.compute_time(self.cfg.push_batch, self.slow(w, self.jobs[w]), w)
        self.jobs[w] += 1
        self.ticket[w] += 1
        self.read[w], self.busy[w] = version, True
        self.by_version[version].add(w)
        self._newest = max(self._newest, version)
        heapq.heappush(self.heap, (self.ready[w], w, self.ticket[w]))

    def _idle(self, w: int) -> Push:
        version = self.read[w]
        self.by_version[version].discard(w)
        if not self.by_version[version]:
            del self.by_version[version]
            self.freed.append(version)
        self.busy[w] = False
        return Push(w, version, self.ready[w])

    def next(self) -> tuple[Push, float]:
        """The next finished job and its arrival time at the server (after the uplink)."""
        while True:
            ready, w, ticket = heapq.heappop(self.heap)
            if ticket == self.ticket[w] and self.busy[w]:  # else: a cancelled job's stale entry
                break
        return self._idle(w), self.up.send(ready, self.push_bytes)

    def cancel(self, w: int, at: float, version: int) -> Push:
        """Abandon busy worker ``w``'s job (returned, for the record) and restart it on ``version``."""
        abandoned = self._idle(w)
        self.start(w, at, version)
        return abandoned

    def reading(self, version: int) -> list[int]:
        """The busy workers whose job read ``version``, in increasing order."""
        return sorted(self.by_version.get(version, ()))

    def oldest(self) -> int:
        """The oldest version a busy worker read (the newest one started when all are idle)."""
        while self._oldest < self._newest and self._oldest not in self.by_version:
            self._oldest += 1  # amortised O(1): versions only grow
        return self._oldest


def _one(config) -> int:
    return 1


@dataclass(frozen=True)
class Protocol:
    """A late-gradient policy: the event generator and how an update averages its gradients.

    Attributes:
        events: ``events(schedule) -> iterator of Update``; reads ``schedule.cfg`` (the
            :class:`stalenb.Config`) and, for event-driven protocols, makes a :class:`Jobs`.
        averaged_over: ``K(config)``, the number the sum of an update's directions is divided by.
        split_batch: ``batch_size`` is the global batch, split over the workers (sync, k-of-n);
            otherwise it is the batch of each gradient.
        table: the server keeps each worker's latest direction and steps on their mean (IA²SGD).
        k_above_workers: ``k`` may exceed ``workers`` (Rennala's B).
        uses: which of the optional Config fields ``max_delay`` and ``cancel_stale`` the protocol
            reads; setting one for a protocol that ignores it is an error.
    """

    events: Callable
    averaged_over: Callable = _one
    split_batch: bool = False
    table: bool = False
    k_above_workers: bool = False
    uses: tuple = ()


#: Every protocol by name: the built-ins, then the user's (:func:`register`).
PROTOCOLS = Registry("protocol")


def register(name: str, protocol: Protocol, *, replace: bool = False, source: str | None = None) -> Protocol:
    """Make ``protocol`` available as ``Config(protocol=name)`` (see :class:`Protocol`, :class:`Jobs`;
    ``source``: see :meth:`stalenb.sim.registry.Registry.register`)."""
    if not isinstance(protocol, Protocol):
        raise TypeError(f"protocol must be a stalenb.schedule.Protocol, got {protocol!r}")
    return PROTOCOLS.register(name, protocol, replace=replace, source=source)


def _rennala(s: Schedule):
    cfg, n = s.cfg, s.cfg.workers
    jobs, fresh, dropped, t = Jobs(s), [], [], 0
    for w in range(n):
        jobs.start(w, 0.0, 0)
    while t < cfg.steps:
        push, arrive = jobs.next()
        if push.version != t:  # computed at an older point: discarded (only without cancel_stale)
            dropped.append(push)
            jobs.start(push.worker, arrive, t)
            continue
        fresh.append(push)
        if len(fresh) < cfg.k_eff:
            jobs.start(push.worker, arrive, t)
            continue
        jobs.start(push.worker, arrive, t + 1)
        if cfg.cancel_stale:  # every worker restarts at x_{t+1} now
            dropped += [jobs.cancel(w, arrive, t + 1) for w in range(n) if w != push.worker]
        yield Update(t, arrive, fresh, dropped)
        fresh, dropped, t = [], [], t + 1


def _ringmaster(s: Schedule):
    cfg, n = s.cfg, s.cfg.workers
    limit = cfg.max_delay if cfg.max_delay is not None else n
    jobs, dropped, t = Jobs(s), [], 0
    for w in range(n):
        jobs.start(w, 0.0, 0)
    while t < cfg.steps:
        push, arrive = jobs.next()
        if t - push.version >= limit:  # too stale: discarded, restart at the current point
            dropped.append(push)
            jobs.start(push.worker, arrive, t)
            continue
        jobs.start(push.worker, arrive, t + 1)
        if cfg.cancel_stale:  # after this update the jobs that read x_{t+1−R} have delay R: cancel them
            dropped += [jobs.cancel(w, arrive, t + 1) for w in jobs.reading(t + 1 - limit)]
        yield Update(t, arrive, [push], dropped)
        dropped, t = [], t + 1


def _gradient_table(s: Schedule):
    cfg, n = s.cfg, s.cfg.workers
    jobs, latest, dropped = Jobs(s), {}, []
    for w in range(n):
        jobs.start(w, 0.0, 0)
    while len(latest) < n:  # warm-up: fill the table, no update
        push, arrive = jobs.next()
        if push.worker in latest:
            dropped.append(latest[push.worker])
        latest[push.worker] = push
        jobs.start(push.worker, arrive, 0)
    for t in range(cfg.steps):
        push, arrive = jobs.next()
        jobs.start(push.worker, arrive, t + 1)
        pushes = [push]
        if t == 0:  # the first update brings the whole table, this arrival replacing its worker's entry
            dropped.append(latest.pop(push.worker))
            pushes = [latest[w] for w in sorted(latest)] + [push]
        yield Update(t, arrive, pushes, dropped)
        dropped = []


def _workers(config) -> int:
    return config.workers


def _k(config) -> int:
    return config.k if config.k is not None else config.workers


for _name, _protocol in {
    "sync": Protocol(Schedule._rounds, _workers, split_batch=True),
    "async": Protocol(Schedule._async),
    "k-of-n": Protocol(Schedule._rounds, _k, split_batch=True),
    "rennala": Protocol(_rennala, _k, k_above_workers=True, uses=("cancel_stale",)),
    "ringmaster": Protocol(_ringmaster, uses=("max_delay", "cancel_stale")),
    "gradient-table": Protocol(_gradient_table, _workers, table=True),
}.items():
    PROTOCOLS.register(_name, _protocol, builtin=True)
