"""Worker-timing and communication model: simulated seconds, emergent staleness, speedup.

Worker i's compute time for its j-th gradient is ``per_sample × batch × f_i × s_ij``: ``f_i`` is the
worker's fixed speed factor (``Timing.factors``; all 1 when not given) and the slowdown ``s_ij`` is
drawn per job from one of:

- :class:`NoSlowdown`: s = 1 (identical, deterministic workers);
- :class:`ShiftedExponential`: s = 1 + Exp(mean) (the straggler model of Dutta et al. 2018);
- :class:`LogNormal`: s = exp(σ Z), Z ~ N(0, 1);
- :class:`Straggler`: s = factor with probability p, else 1;
- :class:`Pareto`: s = scale · X with P(X > x) = x^(−shape), x ≥ 1 (heavy-tailed);

or replayed from a measured trace (:class:`TraceSlowdown`: worker i's j-th value, in order).

Fixed factors follow the time-complexity literature's shapes (Mishchenko et al. 2022, Tyurin &
Richtárik 2023, Maranjyan et al. 2025: worker i needs τ_i seconds per gradient): :func:`sqrt_factors`
(f_i = √i), :func:`linear_factors` (f_i = i), :func:`random_factors` (fixed draws from a seed).

Communication goes through the server's link, shared by all workers and FIFO in each direction
(:class:`Link`): a message of b bytes occupies the link for b / bandwidth seconds and arrives
``latency`` seconds after it leaves. Workers push gradients up (dense: 4·d bytes, sparse: 8 bytes
per kept entry) and pull the model down (4·d bytes). With many workers the link saturates, which
is what bends speedup curves (notebook 07).

:func:`calibrate` measures ``per_sample`` for a model on this machine.
"""

from __future__ import annotations

import math
import numbers
import time
import warnings
from dataclasses import dataclass, field

import numpy as np

from . import checks


@dataclass(frozen=True)
class NoSlowdown:
    """Every job runs at nominal speed (s = 1)."""

    def sample(self, rng: np.random.Generator, size) -> np.ndarray:
        return np.ones(size)


@dataclass(frozen=True)
class ShiftedExponential:
    """s = 1 + Exp(mean): a nominal time plus an exponential tail."""

    mean: float = 0.5

    def __post_init__(self):
        checks.assign(self, mean=checks.real("mean", self.mean, ge=0))

    def sample(self, rng: np.random.Generator, size) -> np.ndarray:
        return 1.0 + rng.exponential(self.mean, size) if self.mean > 0 else np.ones(size)


@dataclass(frozen=True)
class LogNormal:
    """s = exp(sigma · Z), Z standard normal."""

    sigma: float = 0.5

    def __post_init__(self):
        checks.assign(self, sigma=checks.real("sigma", self.sigma, ge=0))

    def sample(self, rng: np.random.Generator, size) -> np.ndarray:
        return np.exp(self.sigma * rng.standard_normal(size))


@dataclass(frozen=True)
class Straggler:
    """s = factor with probability p (a straggling job), else 1."""

    p: float = 0.1
    factor: float = 5.0

    def __post_init__(self):
        checks.assign(self, p=checks.real("p", self.p, ge=0, le=1, what="probability"),
                      factor=checks.real("factor", self.factor, ge=1, note="a slowdown"))

    def sample(self, rng: np.random.Generator, size) -> np.ndarray:
        return np.where(rng.random(size) < self.p, self.factor, 1.0)


@dataclass(frozen=True)
class Pareto:
    """s = scale · X with X Pareto (type I) of index ``shape``: P(s > x) = (scale / x)^shape, x ≥ scale.

    Heavy-tailed. Moments (Johnson, Kotz & Balakrishnan 1994, ch. 20): E[s] = shape·scale / (shape − 1)
    for shape > 1 (infinite for shape ≤ 1); Var[s] = scale²·shape / ((shape − 1)²(shape − 2)) for
    shape > 2 — infinite for 1 < shape ≤ 2, where the mean exists but sample means converge slowly
    (the regime of the heavy-tailed straggler literature). Drawn as scale · (1 + Lomax(shape)),
    numpy's ``Generator.pareto`` being the Lomax (Pareto II) law.
    """

    shape: float = 2.5
    scale: float = 1.0

    def __post_init__(self):
        checks.assign(self, shape=checks.real("shape", self.shape, gt=0, note="tail index"),
                      scale=checks.real("scale", self.scale, gt=0, note="the smallest slowdown"))

    def sample(self, rng: np.random.Generator, size) -> np.ndarray:
        return self.scale * (1.0 + rng.pareto(self.shape, size))


#: The random slowdown laws (each with ``sample(rng, size)``; the command line of
#: ``python -m stalenb.distributed`` offers these).
SLOWDOWNS = (NoSlowdown, ShiftedExponential, LogNormal, Straggler, Pareto)


@dataclass(frozen=True, repr=False)
class TraceSlowdown:
    """Replay measured per-worker slowdowns: worker w's j-th job gets ``times[w][j]``, in order.

    ``times`` holds one sequence per worker (the Config's ``workers`` must equal their number;
    sequences may differ in length). A worker with more jobs than its sequence starts it again
    (job j uses ``times[w][j mod len(times[w])]``): how many jobs a worker runs depends on the
    timing, so no length can be checked in advance. The values multiply ``per_sample × batch × f_w``
    like any slowdown; to replay measured seconds, divide them by a reference (their mean) and set
    ``per_sample`` = reference / batch (:func:`replay`, :mod:`stalenb.traces`). No random draw is
    used. Values are finite and > 0, stored as a tuple of tuples of ``float`` (hashable; cache key).
    """

    times: tuple

    def __post_init__(self):
        if isinstance(self.times, (str, bytes)) or not hasattr(self.times, "__len__") or not len(self.times):
            raise ValueError(f"times must be a non-empty sequence of per-worker sequences, got {self.times!r}")
        checks.assign(self, times=tuple(_positive_row(f"times[{w}]", row) for w, row in enumerate(self.times)))

    @property
    def workers(self) -> int:
        return len(self.times)

    def row(self, job: int) -> np.ndarray:
        """The n workers' slowdowns for their ``job``-th jobs (each sequence cycled)."""
        return np.array([t[job % len(t)] for t in self.times])

    def means(self) -> np.ndarray:
        """Each worker's mean slowdown over its sequence."""
        return np.array([float(np.mean(t)) for t in self.times])

    def __repr__(self) -> str:
        lengths = [len(t) for t in self.times]
        return (f"TraceSlowdown(<{self.workers} workers, {min(lengths)}..{max(lengths)} jobs each, "
                f"mean {float(np.mean(self.means())):.4g}>)")


#: Slowdowns replayed from data rather than drawn (no ``sample``; :class:`Slowdowns` asks for rows).
REPLAYS = (TraceSlowdown,)


def _positive_row(name: str, row) -> tuple:
    """``row`` as a non-empty tuple of finite floats > 0 (``ValueError`` naming the first bad entry)."""
    if isinstance(row, (str, bytes)):
        raise TypeError(f"{name} must be a sequence of finite numbers > 0, got {row!r}")
    a = np.asarray(row)
    if a.dtype.kind not in "iuf" or a.ndim != 1:
        raise TypeError(f"{name} must be a one-dimensional sequence of finite numbers > 0, got {row!r}")
    if a.size == 0:
        raise ValueError(f"{name} must be a non-empty sequence of finite numbers > 0, got {row!r}")
    a = a.astype(float)
    bad = np.flatnonzero(~(np.isfinite(a) & (a > 0)))
    if bad.size:
        raise ValueError(f"{name} entries must be finite numbers > 0, got {float(a[bad[0]])!r} at index {int(bad[0])}")
    return tuple(a.tolist())


def sqrt_factors(n: int) -> tuple:
    """f_i = √i for workers i = 1..n (the fastest runs at nominal speed; Tyurin & Richtárik 2023's example).

    Example:
        >>> sqrt_factors(4)
        (1.0, 1.4142135623730951, 1.7320508075688772, 2.0)
    """
    n = checks.integer("n", n, minimum=1)
    return tuple(math.sqrt(i) for i in range(1, n + 1))


def linear_factors(n: int) -> tuple:
    """f_i = i for workers i = 1..n (worker n is n times slower than worker 1).

    Example:
        >>> linear_factors(3)
        (1.0, 2.0, 3.0)
    """
    n = checks.integer("n", n, minimum=1)
    return tuple(float(i) for i in range(1, n + 1))


def random_factors(n: int, seed: int = 0, low: float = 1.0, high: float = 4.0) -> tuple:
    """n fixed factors drawn once, independently and uniformly on [low, high], from ``seed``.

    They are fixed for the run (a heterogeneous cluster), unlike the per-job slowdown ``s``.

    Example:
        >>> random_factors(3, seed=1) == random_factors(3, seed=1)
        True
    """
    n = checks.integer("n", n, minimum=1)
    seed = checks.integer("seed", seed, minimum=0)
    low = checks.real("low", low, gt=0)
    high = checks.real("high", high, ge=low, note="at least low")
    return tuple(np.random.default_rng(seed).uniform(low, high, n).tolist())


@dataclass(frozen=True)
class Timing:
    """Compute and communication parameters of the simulated cluster.

    Attributes:
        per_sample: seconds of forward + backward per training sample (see :func:`calibrate`).
        slowdown: random per-job slowdown (one of :data:`SLOWDOWNS`).
        latency: seconds from leaving the link to arriving, per message.
        bandwidth: bytes per second of the server's link (shared, each direction); ``inf`` for free
            communication (with ``latency=0``: communication costs nothing).
        factors: ``None`` (every worker at nominal speed) or one fixed speed factor f_i > 0 per
            worker (a tuple; its length must equal the Config's ``workers``): worker i's job takes
            ``per_sample × batch × f_i × s``. See :func:`sqrt_factors`, :func:`linear_factors`,
            :func:`random_factors`. Left out of ``Config.to_dict()`` (the cache key) when ``None``.

    The defaults (0.1 ms per sample, a 10 Gbit/s link) ignore the model; :meth:`for_model` takes the
    model's documented per-sample cost instead.
    """

    per_sample: float = 1e-4
    slowdown: NoSlowdown | ShiftedExponential | LogNormal | Straggler | Pareto | TraceSlowdown = field(
        default_factory=ShiftedExponential)
    latency: float = 1e-4
    bandwidth: float = 1.25e9  # 10 Gbit/s
    factors: tuple | None = field(default=None, metadata=checks.OMIT_DEFAULT)

    def __post_init__(self):
        checks.assign(self, per_sample=checks.real("timing.per_sample", self.per_sample, ge=0),
                      latency=checks.real("timing.latency", self.latency, ge=0),
                      bandwidth=checks.real("timing.bandwidth", self.bandwidth, gt=0, finite=False,
                                            note="bytes/s; inf allowed"))
        checks.instance("timing.slowdown", self.slowdown, SLOWDOWNS + REPLAYS)
        if self.factors is not None:
            checks.assign(self, factors=_positive_row("timing.factors", self.factors))

    @classmethod
    def for_model(cls, model: str, per_sample: float | str = "source", **changes) -> "Timing":
        """A ``Timing`` whose per-sample cost follows ``model``; the other fields as given or default.

        Args:
            model: ``"lenet"``, ``"lenet5"`` or ``"mlp"``.
            per_sample: ``"source"`` (default): :data:`PER_SAMPLE`, the model's FLOPs at the source
                cluster's measured rate (the same on every machine); ``"local"``: measured here
                (:func:`calibrate`); a number: seconds per sample.
            changes: other :class:`Timing` fields (``bandwidth``, ``factors``, ...).

        Example:
            >>> round(Timing.for_model("mlp").per_sample * 1e6, 1)
            155.4
        """
        return cls(per_sample=_per_sample(model, per_sample), **changes)

    def factor(self, worker: int) -> float:
        """Worker ``worker``'s fixed speed factor (1 without ``factors``)."""
        return 1.0 if self.factors is None else self.factors[worker]

    def compute_time(self, batch: int, slowdown: float, worker: int | None = None) -> float:
        """Seconds of worker ``worker``'s job on ``batch`` samples: per_sample × batch × f_worker × slowdown."""
        if self.factors is None:
            return self.per_sample * batch * slowdown
        if worker is None:
            raise ValueError("compute_time needs the worker when timing.factors are set")
        return self.per_sample * batch * self.factors[worker] * slowdown

    def transfer_time(self, nbytes: int) -> float:
        return nbytes / self.bandwidth


class Link:
    """A FIFO link: ``send(t, nbytes)`` returns when a message ready at ``t`` arrives."""

    def __init__(self, timing: Timing):
        self.timing = timing
        self.free = 0.0

    def send(self, t: float, nbytes: int) -> float:
        start = max(t, self.free)
        self.free = start + self.timing.transfer_time(nbytes)
        return self.free + self.timing.latency


class Slowdowns:
    """Common random numbers: the slowdown of worker w's j-th job is the same in every protocol.

    Row j holds the n workers' draws for their j-th jobs; rows are drawn in order from ``rng``, so
    sync, k-of-n drop and k-of-n reuse with the same seed see the same draws (notebook 06 compares
    their round times on that basis).
    """

    def __init__(self, model, workers: int, rng: np.random.Generator):
        self.model, self.n, self.rng = model, workers, rng
        self.rows: list[np.ndarray] = []

    def __call__(self, worker: int, job: int) -> float:
        while len(self.rows) <= job:
            if isinstance(self.model, TraceSlowdown):  # replayed: no draw from rng
                self.rows.append(self.model.row(len(self.rows)))
            else:
                self.rows.append(self.model.sample(self.rng, self.n))
        return float(self.rows[job][worker])


def calibrate(model, batch_size: int = 64, repeats: int = 5, input_shape=(1, 28, 28)) -> float:
    """Measure seconds of forward + backward per sample for ``model`` on this machine (median)."""
    import torch

    x = torch.randn(batch_size, *input_shape)
    y = torch.randint(0, 10, (batch_size,))
    loss_fn = torch.nn.CrossEntropyLoss()
    times = []
    for _ in range(repeats + 1):
        t0 = time.perf_counter()
        model.zero_grad(set_to_none=True)
        loss_fn(model(x), y).backward()
        times.append(time.perf_counter() - t0)
    return float(np.median(times[1:])) / batch_size


# --- One documented cluster: the hardware of the source (notebooks 06 and 07) -------------------

#: Where the source's numbers come from: ``hwang595/ps_pytorch`` at this commit, file
#: ``analysis/Speedup_Comparisons_LeNet.ipynb`` (cell 5, "parsing MPI output files"), the LeNet /
#: MNIST runs with global batch 8192 on AWS m4.2xlarge instances (``tools/pytorch_ec2.py``,
#: ``master_type`` and ``worker_type``); docs/research.md §2.
SOURCE_REPO = "hwang595/ps_pytorch"
SOURCE_COMMIT = "9bf38e8d902253eb51f9be3ab38b60f7d13f1649"
SOURCE_FILE = "analysis/Speedup_Comparisons_LeNet.ipynb"
#: Printed sums of the worker-side "Time Cost" (fetch weights + forward + backward; the server's
#: time is not in it) over the first 100 steps, per n = 1, 2, 4, 8, 16, 32 workers: ``time_costs``
#: (per step the slowest worker, "wait for all") and ``ideal_time_costs`` (per step the fastest).
SOURCE_TIME_COSTS = (339.826, 163.5474, 98.6374, 57.6109, 34.6886, 61.8361)
SOURCE_IDEAL_TIME_COSTS = (339.826, 153.7221, 88.1102, 46.5758, 29.9097, 48.6502)
SOURCE_STEPS, SOURCE_BATCH = 100, 8192

#: Forward + backward FLOPs per sample (cross-entropy loss), counted with
#: ``torch.utils.flop_counter.FlopCounterMode`` on a batch of 64 (tests recount them).
FLOPS_PER_SAMPLE = {"lenet": 13_182_000.0, "lenet5": 2_263_920.0, "mlp": 4_938_800.0}

#: Seconds per LeNet sample on one m4.2xlarge worker: the 1-worker run's 339.826 s over 100 steps of
#: 8192 samples (0.4148 ms). It includes that worker's weight fetch (1.7 MB, ~14 ms per 3.4 s step
#: at 1 Gbit/s: < 0.5 %), so it is the compute cost to that precision.
SOURCE_PER_SAMPLE = SOURCE_TIME_COSTS[0] / (SOURCE_STEPS * SOURCE_BATCH)
#: The attainable rate this implies, FLOPS_PER_SAMPLE["lenet"] / SOURCE_PER_SAMPLE ≈ 31.8 GFLOP/s —
#: about a tenth of the instance's 4-core AVX2 FMA peak (4 × 2.4 GHz × 32 FLOP/cycle ≈ 307 GFLOP/s),
#: typical of small convolutions in 2017 CPU PyTorch. Other models get their FLOPs at this rate.
SOURCE_FLOP_RATE = FLOPS_PER_SAMPLE["lenet"] / SOURCE_PER_SAMPLE
#: Per-sample compute seconds per model on the source's hardware (FLOPs / SOURCE_FLOP_RATE).
PER_SAMPLE = {m: f / SOURCE_FLOP_RATE for m, f in FLOPS_PER_SAMPLE.items()}

#: m4.2xlarge's network class "High", about 1 Gbit/s per instance: 1.25e8 bytes/s each direction.
CLUSTER_BANDWIDTH = 1.25e8
#: Message latency inside one EC2 placement, of the order of 100 µs.
CLUSTER_LATENCY = 1e-4


def _two_worker_slowdown_mean() -> float:
    """Mean m of s = 1 + Exp(m) that gives the source's 2-worker ratio max/min of step times.

    For two i.i.d. draws E[max] = 1 + 1.5 m and E[min] = 1 + 0.5 m, so the published ratio
    r = 163.5474 / 153.7221 of the "wait for all" to the "fastest worker" sums gives
    m = (r − 1) / (1.5 − 0.5 r) ≈ 0.066 (communication in the step times makes this a lower bound).
    """
    r = SOURCE_TIME_COSTS[1] / SOURCE_IDEAL_TIME_COSTS[1]
    return (r - 1.0) / (1.5 - 0.5 * r)


#: Default slowdown of :func:`cluster`: the shifted exponential matched to the source's 2 workers.
CLUSTER_SLOWDOWN = ShiftedExponential(round(_two_worker_slowdown_mean(), 4))


def cluster(model: str = "lenet", *, bandwidth: float = CLUSTER_BANDWIDTH, slowdown=CLUSTER_SLOWDOWN,
            latency: float = CLUSTER_LATENCY, per_sample: float | str = "source") -> Timing:
    """The simulated cluster of the source (ps_pytorch on AWS m4.2xlarge), shared by notebooks 06 and 07.

    Args:
        model: ``"lenet"``, ``"lenet5"`` or ``"mlp"`` (:mod:`stalenb.models`); picks the per-sample cost.
        bandwidth: bytes/s of the server's link each direction (default :data:`CLUSTER_BANDWIDTH`,
            1 Gbit/s).
        slowdown: per-job slowdown law (default :data:`CLUSTER_SLOWDOWN`, 1 + Exp(0.066)).
        latency: seconds per message (default :data:`CLUSTER_LATENCY`).
        per_sample: ``"source"`` (default): :data:`PER_SAMPLE` — the same on every machine;
            ``"local"``: measure it here with :func:`calibrate` (varies with the machine and its load);
            a number: seconds per sample as given.

    Example:
        >>> round(cluster("lenet").per_sample * 1e3, 4)
        0.4148
        >>> cluster("mlp", bandwidth=1.25e9).bandwidth
        1250000000.0
    """
    return Timing(per_sample=_per_sample(model, per_sample), slowdown=slowdown, latency=latency,
                  bandwidth=bandwidth)


def _per_sample(model: str, per_sample: float | str) -> float:
    """Seconds per sample of ``model``: ``"source"`` (:data:`PER_SAMPLE`), ``"local"`` or a number."""
    model = checks.choice("model", model, tuple(PER_SAMPLE))
    if per_sample == "source":
        return PER_SAMPLE[model]
    if per_sample == "local":
        from . import models

        return calibrate(models.build(model))
    if isinstance(per_sample, numbers.Real) and not isinstance(per_sample, bool):
        return float(per_sample)
    raise ValueError(f"per_sample must be 'source', 'local' or seconds, got {per_sample!r}")


def replay(times, batch: int, **changes) -> Timing:
    """A ``Timing`` whose worker w's j-th job takes ``times[w][j]`` seconds (each sequence cycled).

    ``per_sample`` = m / batch and ``slowdown`` = :class:`TraceSlowdown` of ``times / m``, with m the
    mean of all the times, so per_sample × batch × s gives the measured seconds back (up to float
    rounding). ``batch`` is the samples behind one job: the Config's ``push_batch``. ``changes``:
    the other :class:`Timing` fields (``latency``, ``bandwidth``, ``factors``).

    Example:
        >>> t = replay([[0.2, 0.4], [0.6]], batch=10)
        >>> round(t.compute_time(10, float(t.slowdown.row(1)[0])), 12)
        0.4
    """
    batch = checks.integer("batch", batch, minimum=1)
    rows = TraceSlowdown(times).times
    mean = float(np.mean(np.concatenate([np.asarray(r) for r in rows])))
    return Timing(per_sample=mean / batch, slowdown=TraceSlowdown(tuple(tuple(v / mean for v in r) for r in rows)),
                  **changes)


class LinkBoundWarning(UserWarning):
    """Workers were given different speeds, but the shared link sets the pace of the run."""


def link_pace(timing: Timing, workers: int, batch: int, push_bytes: int, pull_bytes: int) -> dict:
    """Seconds per update of asynchronous SGD as set by compute alone and by the link alone.

    With worker i taking c_i = per_sample × batch × f_i × m_i seconds per job (m_i its mean trace
    slowdown, 1 for a random law: the nominal speed), the n workers together deliver one gradient
    every ``compute`` = 1 / Σ_i 1/c_i seconds; the link (one push up, one pull down per update,
    each direction FIFO) passes one every ``link`` = max(push, pull) bytes / bandwidth seconds.
    When link ≥ compute, gradients queue at the link: each worker's cycle is stretched to about n
    link slots, every worker pushes about equally often, and the speed differences vanish from
    staleness.

    Returns:
        ``{"compute", "link", "fastest", "slowest"}`` (the last two: min and max c_i).
    """
    c = np.array([timing.per_sample * batch * timing.factor(w) for w in range(workers)])
    if isinstance(timing.slowdown, TraceSlowdown):
        c = c * timing.slowdown.means()[:workers]
    rate = float(np.sum(1.0 / c)) if np.all(c > 0) else math.inf
    return {"compute": 1.0 / rate if rate > 0 else math.inf, "link": max(push_bytes, pull_bytes) / timing.bandwidth,
            "fastest": float(c.min()), "slowest": float(c.max())}


def warn_if_link_bound(timing: Timing, workers: int, batch: int, push_bytes: int, pull_bytes: int) -> bool:
    """Warn (:class:`LinkBoundWarning`) when workers differ in speed but the link sets the pace.

    "Differ in speed": their nominal job times c_i (:func:`link_pace`) are not all equal — set by
    ``factors`` or by a :class:`TraceSlowdown` with different per-worker means. "The link sets the
    pace": link ≥ compute in :func:`link_pace`. Returns whether it warned. The simulated async
    schedule calls it once per run (a run served from the cache does not).
    """
    pace = link_pace(timing, workers, batch, push_bytes, pull_bytes)
    if not pace["slowest"] > pace["fastest"] * (1 + 1e-9) or pace["link"] < pace["compute"]:
        return False
    warnings.warn(
        f"workers were given different speeds (nominal {pace['fastest']:.3g}..{pace['slowest']:.3g} s per job) "
        f"but the link sets the pace: it passes one update every {pace['link']:.3g} s (max(push, pull) bytes / "
        f"bandwidth) while the {workers} workers compute one every {pace['compute']:.3g} s, so every worker "
        f"queues at the link and pushes about equally often. Raise timing.bandwidth (float('inf') is free "
        f"communication) or use a larger per_sample (Timing.for_model) for the speeds to show.",
        LinkBoundWarning, stacklevel=3)
    return True
