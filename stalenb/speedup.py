"""Speedup against the number of workers: the simulated cluster and an analytic model of ps_pytorch (notebook 07).

**Simulated curves.** No gradients are computed: a protocol's simulated time depends only on the
configuration and the seed (:mod:`stalenb.schedule`), so a speedup curve costs milliseconds. The
server has one link, FIFO in each direction (``stalenb.timing.Link``: pushes on the uplink, model
pulls on the downlink, each at ``bandwidth``). For a global batch B split over n workers and no
slowdowns, one synchronous round takes exactly (:func:`model_time`)

    T(n) = per_sample · (B / n) · s                                        (compute)
         + (n − 1) · max(push, pull) / bandwidth                           (the busier direction queues)
         + (push + pull) / bandwidth + 2 · latency                         (one push and one pull in series)

The compute term falls as 1/n; the queueing term grows as n because the n messages of the busier
direction cross the server's link one after another. The round time is smallest, and the speedup
S(n) = T_ref(1) / T(n) largest, at

    n* = sqrt(per_sample · B · s · bandwidth / max(push, pull))            (:func:`bend`)

— one formula used by the docstrings, :func:`bend`, :func:`model_time` and notebook 07. With random
slowdowns the compute term uses the k-th fastest of n jobs (the maximum when waiting for all).
Waiting for the k fastest (backup workers, Chen et al. 2016; the poster's k-of-n) shortens the
compute term and removes n − k pushes; compressing pushes (top-k / random-k) shrinks ``push`` only
(pulls stay dense, so the downlink still queues n model copies). The time of compressing a
gradient is not modelled.

**An analytic model of ps_pytorch's step that can bend** (:class:`StepModel`). The published
points come from ``hwang595/ps_pytorch`` at commit ``9bf38e8`` (``src/`` files named below), whose
step differs from the simulated cluster: float64 payloads (``bytes_per_param`` = 8), the model sent
by ``MPI_Bcast`` (a tree), gradients gathered n-to-1 and handled one message at a time by the
master. The model has four terms,

    T(n) = A · m_n / n                                        compute, the master waits for all n
         + ⌈log₂(n + 1)⌉ · (b · d / β + ℓ)                    tree broadcast of the model
         + n · (c_msg + b · d / β)                            serialized gather at the master
         + κ · n (n − 1) / 2                                  incast (optional; κ = 0 by default)

and an ``overlap`` variant in which the master's serial gather hides behind the workers' compute,
T(n) = max(A · m_n / n, gather + incast) + broadcast. :func:`fit_step_model` fits its free
parameters on published points by least squares on ln S; notebook 07 fits n ≤ 16 and predicts
n = 32 out of sample.

:data:`PUBLISHED` holds the speedups printed by ps_pytorch's analysis notebooks (MPI runs on AWS
m4.2xlarge, first 100 steps; ``docs/research.md`` §2), cited by file and commit in
:data:`PUBLISHED_SOURCES`. Its two series are defined by the source's code, not by two protocols:
"wait for all, measured" sums per step the *slowest* worker's time; "ideal: fastest worker per step"
sums per step the *fastest* worker's time inside the same wait-for-all run — an ideal, never run
as a protocol. A worker's time ("Time Cost") runs from the step's start to its last gradient send:
weight fetch (which waits for the master's broadcast) + forward + backward with its sends; the
master's own update after the last message is not in it. The ResNet-18 1-worker reference is
synthetic: 2.1 × the 2-worker time. :data:`PUBLISHED_SPREAD` adds the two other LeNet series the
same ps_pytorch notebook plots (TensorFlow; the older MPI implementation): the source's spread.
"""

from __future__ import annotations

import dataclasses
import itertools
import math

import numpy as np
import pandas as pd

from .sim import timing as sim_timing
from .sim.compress import Compressor
from .sim.config import Config
from .sim.schedule import Schedule

#: Where the published numbers are printed (repository, commit, file, cell) per model.
PUBLISHED_SOURCES = {
    "LeNet/MNIST": ("hwang595/ps_pytorch", "9bf38e8d902253eb51f9be3ab38b60f7d13f1649",
                    "analysis/Speedup_Comparisons_LeNet.ipynb", "cell 5 (parsing MPI output files)"),
    "ResNet-18/CIFAR-10": ("hwang595/ps_pytorch", "23d0a67d4780b52ff975cf6c815c6f95032a6274",
                           "analysis/Speedups_with_GradCompression.ipynb", "cell 2 (ResNet-18, batch 1024)"),
}
#: The two series as the source defines them (see the module docstring).
WAIT_ALL, IDEAL = "wait for all, measured", "ideal: fastest worker per step"

#: Published ps_pytorch speedups (docs/research.md §2), rounded to 2 decimals from the printed values.
PUBLISHED = pd.DataFrame(
    [
        (model, batch, policy, n, s)
        for model, batch, policy, values in [
            ("LeNet/MNIST", 8192, WAIT_ALL, (1.00, 2.08, 3.45, 5.90, 9.80, 5.50)),
            ("LeNet/MNIST", 8192, IDEAL, (1.00, 2.21, 3.86, 7.30, 11.36, 6.99)),
            ("ResNet-18/CIFAR-10", 1024, WAIT_ALL, (1.00, 2.10, 3.82, 6.85, 9.19, 6.81)),
            ("ResNet-18/CIFAR-10", 1024, IDEAL, (1.00, 2.24, 4.27, 8.25, 12.91, 12.45)),
        ]
        for n, s in zip((1, 2, 4, 8, 16, 32), values)
    ],
    columns=["model", "batch", "policy", "workers", "speedup"],
)
PUBLISHED["note"] = np.where(PUBLISHED["model"] == "ResNet-18/CIFAR-10",
                             "1-worker time synthetic (2.1 x the 2-worker time)", "")
PUBLISHED["source"] = [":".join(PUBLISHED_SOURCES[m][::2]) + "@" + PUBLISHED_SOURCES[m][1][:7]
                       for m in PUBLISHED["model"]]

#: The TensorFlow LeNet runs of the same notebook (``Speedup_Comparisons_LeNet.ipynb`` @ 9bf38e8,
#: cells 1 and 3): the typed 1-node time and the printed per-n sums of the slowest worker's
#: "sec/batch" over the first 40 steps (n = 2 … 32, the master counted among the n).
TF_SINGLE_NODE_TIME = 526.16
TF_TIME_COSTS = (263.08, 135.148, 81.005, 44.141, 72.277)
#: "MPI Speedups Old" of the same notebook (cell 6): speedups typed into the notebook, no logs.
MPI_OLD_SPEEDUPS = (1.0, 1.97, 3.625, 5.5909, 6.744, 3.22)
#: The three LeNet/MNIST (batch 8192) wait-for-all series that notebook plots together (its
#: figure "Speed up TF vs MPI"): the series of :data:`PUBLISHED` and two more — the source's spread.
#: Speedups rounded to 2 decimals.
PUBLISHED_SPREAD = pd.DataFrame(
    [(system, n, round(s, 2), cells)
     for system, values, cells in [
         ("PyTorch + MPI (new)", (1.00, 2.08, 3.45, 5.90, 9.80, 5.50), "cell 5"),
         ("TensorFlow", (1.0, *(TF_SINGLE_NODE_TIME / t for t in TF_TIME_COSTS)), "cells 1, 3"),
         ("PyTorch + MPI (old)", MPI_OLD_SPEEDUPS, "cell 6"),
     ]
     for n, s in zip((1, 2, 4, 8, 16, 32), values)],
    columns=["system", "workers", "speedup", "cell"],
)
PUBLISHED_SPREAD["source"] = "hwang595/ps_pytorch:analysis/Speedup_Comparisons_LeNet.ipynb@9bf38e8"

#: Named waiting policies: k as a function of n.
POLICIES = {
    "wait for all": lambda n: n,
    "wait for half": lambda n: max(1, n // 2),
    "fastest only": lambda n: 1,
}


def push_bytes(dim: int, compressor: str = "none", density: float = 1.0) -> int:
    """Bytes of one push: 4·d dense, 8 per kept entry with top-k / random-k (:mod:`stalenb.compress`)."""
    return Compressor(compressor, density, dim).push_bytes


def update_times(config: Config, dim: int) -> np.ndarray:
    """Simulated times of the ``config.steps`` updates of ``config`` (model of ``dim`` parameters).

    Uses the protocol's schedule with ``config.seed``; pushes are compressed as the config says,
    pulls are dense (4·d bytes).
    """
    sched = Schedule(config, push_bytes(dim, config.compressor, config.density), 4 * int(dim),
                     np.random.default_rng(config.seed))
    return np.array([u.time for u in sched])


def round_durations(config: Config, dim: int) -> np.ndarray:
    """Duration of each update (round) of ``config``: differences of :func:`update_times` from 0."""
    return np.diff(update_times(config, dim), prepend=0.0)


def wait_config(base: Config, workers: int, k: int) -> Config:
    """``base`` with n = ``workers`` waiting for the first ``k``: ``sync`` if k = n, else k-of-n drop.

    The global batch stays ``base.batch_size`` rounded to a multiple of n (each worker computes
    round(B / n) samples), so that every n in 1…32 can be simulated.
    """
    per_worker = max(1, round(base.batch_size / workers))
    if k == workers:
        return base.replace(protocol="sync", workers=workers, k=None, batch_size=per_worker * workers)
    return base.replace(protocol="k-of-n", workers=workers, k=k, late="drop",
                        batch_size=per_worker * workers)


def link_shares(steps: int, pushes: int, push: int, pulls: int, pull: int, bandwidth: float,
                time: float) -> tuple[float, float]:
    """Busy shares (uplink, downlink) of the server's link over ``time`` seconds of ``steps`` rounds.

    Each direction has its own ``bandwidth`` (``stalenb.timing.Link``, one FIFO per direction):
    uplink = steps · pushes · push / bandwidth / time (the gradients coming in), downlink =
    steps · pulls · pull / bandwidth / time (the model going out), each capped at 1.

    Example:
        >>> link_shares(2, 4, 64, 4, 32, 1024.0, 2.0)   # 512 B and 256 B over 1024 B/s for 2 s
        (0.25, 0.125)
    """
    if time <= 0:
        raise ValueError(f"time must be > 0, got {time}")
    up = steps * pushes * push / bandwidth / time
    down = steps * pulls * pull / bandwidth / time
    return min(1.0, up), min(1.0, down)


def curve(base: Config, dim: int, workers=range(1, 33), policies=("wait for all", "fastest only"),
          compressors=(("none", 1.0),), seeds=(0,)) -> pd.DataFrame:
    """Speedup vs number of workers for waiting policies × compressors × seeds.

    Every row is one (policy, compressor, density, workers, seed) with ``time`` (simulated seconds
    of ``base.steps`` updates), ``speedup`` = T(dense, wait for all, n = 1) / T — one common
    reference per seed, the published convention of timing the same number of steps — and
    ``speedup_self`` relative to the same policy and compressor at n = 1; ``uplink_share`` and
    ``downlink_share`` (:func:`link_shares`: k pushes and n pulls per round, each direction over its
    own bandwidth) and ``link_share``, the busier direction's (a proxy for "communication dominates").

    Args:
        base: protocol-free settings (``batch_size`` = global B, ``steps``, ``timing``).
        dim: model dimension d.
        workers: the n values.
        policies: names in :data:`POLICIES` (or callables n → k).
        compressors: (kind, density) pairs.
        seeds: slowdown draws; the same seed gives every policy the same draws.
    """
    rows = []
    for seed in seeds:
        ref = update_times(wait_config(base, 1, 1).replace(seed=seed), dim)[-1]
        for kind, density in compressors:
            for pol in policies:
                k_of = POLICIES[pol] if isinstance(pol, str) else pol
                name = pol if isinstance(pol, str) else getattr(pol, "__name__", "custom")
                own1 = None
                for n in workers:
                    cfg = wait_config(base, n, k_of(n)).replace(compressor=kind, density=density, seed=seed)
                    t = update_times(cfg, dim)[-1]
                    own1 = t if own1 is None else own1
                    # dropped jobs never push; every worker pulls the new model each round
                    up, down = link_shares(base.steps, cfg.k_eff, push_bytes(dim, kind, density), n, 4 * dim,
                                           base.timing.bandwidth, t)
                    rows.append({"policy": name, "compressor": kind, "density": density, "workers": n,
                                 "k": cfg.k_eff, "seed": seed, "time": t, "speedup": ref / t,
                                 "speedup_self": own1 / t, "uplink_share": up, "downlink_share": down,
                                 "link_share": max(up, down)})
    return pd.DataFrame(rows)


def bend(per_sample: float, batch: int, bandwidth: float, push: int, pull: int,
         slowdown: float = 1.0) -> float:
    """n* = sqrt(per_sample · B · s · bandwidth / max(push, pull)): the n that minimises :func:`model_time`.

    Setting d/dn [per_sample·B·s/n + n·max(push, pull)/bandwidth] = 0: where the compute time of
    one worker's share meets the time the busier direction of the server link needs for all n
    messages. Beyond n* adding workers makes a round longer.
    """
    if min(per_sample, batch, bandwidth, max(push, pull), slowdown) <= 0:
        raise ValueError("per_sample, batch, bandwidth, slowdown and max(push, pull) must be > 0")
    if math.isinf(bandwidth):
        return math.inf
    return math.sqrt(per_sample * batch * slowdown * bandwidth / max(push, pull))


def model_time(n, per_sample: float, batch: int, bandwidth: float, push: int, pull: int,
               latency: float = 0.0, slowdown: float = 1.0):
    """Round time of the deterministic sync model (exact for ``NoSlowdown`` and B divisible by n).

    T(n) = per_sample·(B/n)·s + (n − 1)·max(push, pull)/bandwidth + (push + pull)/bandwidth
    + 2·latency: the n model pulls leave the server one after another, each worker computes as
    soon as its copy arrives, and its push follows on the uplink (pushes queue behind each other
    when they are larger than pulls). Its minimum over n is at :func:`bend`.
    """
    n = np.asarray(n, dtype=float)
    return (per_sample * batch / n * slowdown + (n - 1) * max(push, pull) / bandwidth
            + (push + pull) / bandwidth + 2 * latency)


# --- The analytic model of ps_pytorch's step ---------------------------------------------------

#: Bytes per parameter of ps_pytorch's messages: float64 (``src/distributed_worker_normal.py``:
#: ``param.grad.data.numpy().astype(np.float64)``; ``src/sync_replicas_master_nn_normal.py``:
#: ``layer.data.numpy().astype(np.float64)`` broadcast as ``MPI.DOUBLE``) at commit 9bf38e8.
PS_BYTES_PER_PARAM = 8


def _workers(n) -> np.ndarray:
    arr = np.atleast_1d(np.asarray(n))
    if arr.size == 0 or not np.all(np.isfinite(arr.astype(float))) or np.any(arr < 1) \
            or np.any(arr.astype(float) != np.round(arr.astype(float))):
        raise ValueError(f"workers must be integers >= 1, got {n!r}")
    return arr.astype(np.int64)


def expected_max_slowdown(n, slowdown) -> np.ndarray:
    """m_n = E[max(s_1, …, s_n)] for n i.i.d. per-job slowdowns of ``slowdown`` (the wait-for-all round).

    Closed forms: ``NoSlowdown`` 1; ``ShiftedExponential(μ)`` 1 + μ·H_n (H_n the n-th harmonic number:
    the maximum of n i.i.d. Exp(μ) has mean μ·H_n, Rényi's representation of exponential order
    statistics); ``Straggler(p, f)`` 1 + (f − 1)(1 − (1 − p)^n); ``LogNormal(σ)`` by quadrature of
    E[max] = n ∫ e^{σz} φ(z) Φ(z)^{n−1} dz.

    Example:
        >>> expected_max_slowdown([1, 2, 3], sim_timing.ShiftedExponential(0.6)).round(6).tolist()
        [1.6, 1.9, 2.1]
    """
    ns = _workers(n)
    if isinstance(slowdown, sim_timing.NoSlowdown):
        return np.ones(ns.shape)
    if isinstance(slowdown, sim_timing.ShiftedExponential):
        harmonic = np.cumsum(1.0 / np.arange(1, ns.max() + 1))
        return 1.0 + slowdown.mean * harmonic[ns - 1]
    if isinstance(slowdown, sim_timing.Straggler):
        return 1.0 + (slowdown.factor - 1.0) * (1.0 - (1.0 - slowdown.p) ** ns)
    if isinstance(slowdown, sim_timing.LogNormal):
        from scipy import integrate, stats

        sig = slowdown.sigma

        def one(k):
            f = lambda z: k * np.exp(sig * z) * stats.norm.pdf(z) * stats.norm.cdf(z) ** (k - 1)  # noqa: E731
            return integrate.quad(f, -12.0, 12.0 + sig, limit=200)[0]

        return np.array([one(int(k)) for k in ns.ravel()]).reshape(ns.shape)
    raise TypeError(f"slowdown must be NoSlowdown, ShiftedExponential, Straggler or LogNormal, "
                    f"got {type(slowdown).__name__}")


@dataclasses.dataclass(frozen=True)
class StepModel:
    """Wall-clock time of one ps_pytorch step with n workers (module docstring, "An analytic model").

    T(n) = compute_n + broadcast_n + gather_n + incast_n (``overlap=False``), or
    max(compute_n, gather_n + incast_n) + broadcast_n (``overlap=True``), with

    - compute_n = A · m_n / n: the n workers split the batch (A = per-sample cost × global batch,
      one worker at slowdown 1) and the master waits for all n gradients
      (``src/sync_replicas_master_nn_normal.py``: the ``Waitany`` loop runs until every layer's
      counter reaches ``num_grad_to_collect``), so the slowest job sets the pace: m_n =
      :func:`expected_max_slowdown`;
    - broadcast_n = ⌈log₂(n + 1)⌉ · (b·d/β + ℓ): the master sends the model by ``comm.Bcast``
      (``async_bcast_layer_weights_bcast`` in the same file; the worker side is
      ``async_fetch_weights_bcast`` in ``src/distributed_worker_normal.py``) over the n + 1 ranks of
      ``MPI.COMM_WORLD`` (master + n workers): a binomial tree needs ⌈log₂(n + 1)⌉ rounds, each
      carrying the b·d-byte model (b = ``bytes_per_param``, d = ``dim``, β = ``bandwidth``, ℓ =
      ``latency``);
    - gather_n = n · (c_msg + b·d/β): each worker sends its gradient layer by layer
      (``isend`` of a blosc-compressed float64 array, ``src/compress_gradient.py``), all n cross the
      master's one link, and the master takes the messages one at a time (``MPI.Request.waitany``,
      then ``decompress`` and ``aggregate_gradient``): a per-worker handling cost c_msg =
      ``msg_cost`` plus the transfer, serialized;
    - incast_n = κ · n (n − 1) / 2 (``incast`` = κ, 0 by default): n synchronized senders into one
      switch port lose packets and wait for retransmission timeouts (TCP incast, Phanishayee et al.,
      FAST 2008); the quadratic form — one expected loss event per pair of concurrent senders — is a
      phenomenological assumption, not a law.

    ``overlap=True`` assumes the master's serial gather runs while the workers compute (perfect
    pipelining), so only the longer of the two counts. ps_pytorch's worker waits for each layer's
    send before the next layer's backward (``req_send_check[-1].wait()``), which argues for the
    additive form; the overlap form is the knee-shaped alternative of issue 23.

    Example:
        >>> m = StepModel(compute=1.0, dim=1000, bandwidth=8000.0, latency=0.5, msg_cost=0.25, incast=0.1)
        >>> m.time([1, 3]).round(4).tolist()   # 1 + 1.5 + 1.25;  1/3 + 2·1.5 + 3·1.25 + 0.1·3
        [3.75, 7.3833]
    """

    compute: float
    dim: int
    slowdown: object = dataclasses.field(default_factory=sim_timing.NoSlowdown)
    bytes_per_param: float = PS_BYTES_PER_PARAM
    bandwidth: float = sim_timing.CLUSTER_BANDWIDTH
    latency: float = sim_timing.CLUSTER_LATENCY
    msg_cost: float = 0.0
    incast: float = 0.0
    overlap: bool = False

    def __post_init__(self):
        for name in ("compute", "bytes_per_param", "bandwidth"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and v > 0 and (math.isfinite(v) or name == "bandwidth")):
                raise ValueError(f"{name} must be a number > 0, got {v!r}")
        for name in ("latency", "msg_cost", "incast"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v >= 0):
                raise ValueError(f"{name} must be a finite number >= 0, got {v!r}")
        if not (isinstance(self.dim, (int, np.integer)) and self.dim >= 1):
            raise ValueError(f"dim must be an integer >= 1, got {self.dim!r}")
        expected_max_slowdown(1, self.slowdown)  # raises TypeError for an unknown law

    @property
    def message_time(self) -> float:
        """b·d/β: seconds one model-sized message occupies a link (0 on an infinite link)."""
        return self.bytes_per_param * self.dim / self.bandwidth

    def terms(self, n) -> pd.DataFrame:
        """The four terms and the total per n: columns workers, compute, broadcast, gather, incast, time."""
        ns = _workers(n)
        compute = self.compute * expected_max_slowdown(ns, self.slowdown) / ns
        hops = np.array([int(k).bit_length() for k in ns])  # ⌈log₂(k + 1)⌉ for integers k >= 1
        broadcast = hops * (self.message_time + self.latency)
        gather = ns * (self.msg_cost + self.message_time)
        incast = self.incast * ns * (ns - 1) / 2.0
        if self.overlap:
            total = np.maximum(compute, gather + incast) + broadcast
        else:
            total = compute + broadcast + gather + incast
        return pd.DataFrame({"workers": ns, "compute": compute, "broadcast": broadcast, "gather": gather,
                             "incast": incast, "time": total})

    def time(self, n) -> np.ndarray:
        """T(n) in seconds (see the class docstring)."""
        return self.terms(n)["time"].to_numpy()

    def speedup(self, n) -> np.ndarray:
        """S(n) = T(1) / T(n): the published convention (same number of steps, one reference run)."""
        return self.time(1)[0] / self.time(n)

    def peak(self, workers=range(1, 129)) -> tuple[int, float]:
        """(n, S(n)) at the largest speedup over ``workers``."""
        ns = _workers(list(workers))
        s = self.speedup(ns)
        i = int(np.argmax(s))
        return int(ns[i]), float(s[i])


#: Parameters :func:`fit_step_model` can fit (all others stay as given).
FIT_PARAMS = ("bandwidth", "msg_cost", "incast", "latency")


@dataclasses.dataclass(frozen=True)
class StepFit:
    """A :func:`fit_step_model` result: the fitted model and how it was fitted.

    ``residuals`` are ln S_model(n) − ln S_data(n) at the fitted ``workers`` (n > 1), ``rms`` their
    root mean square; ``points`` the number of those n, ``free`` the fitted parameters' names.
    """

    model: StepModel
    free: tuple
    workers: tuple
    residuals: tuple
    rms: float
    points: int
    starts: int


def _scales(model: StepModel, free) -> np.ndarray:
    # internal units: every parameter as seconds of its term relative to A (1/β enters as b·d/β)
    return np.array([model.compute / (model.bytes_per_param * model.dim) if f == "bandwidth" else model.compute
                     for f in free])


def _apply(model: StepModel, free, x, scales) -> StepModel:
    kw = {}
    for name, v in zip(free, np.asarray(x, dtype=float) * scales):
        kw[name] = (math.inf if v <= 0 else float(1.0 / v)) if name == "bandwidth" else max(0.0, float(v))
    return dataclasses.replace(model, **kw)


def fit_step_model(model: StepModel, workers, speedups, free=("bandwidth", "msg_cost", "incast"),
                   grid=(1e-3, 1e-2, 1e-1)) -> StepFit:
    """Fit ``free`` parameters of ``model`` to measured speedups: least squares on ln S.

    Minimises Σ_n [ln S_model(n) − ln S_data(n)]² over the points with n > 1 (S(1) = 1 on both sides
    carries no information) with ``scipy.optimize.least_squares`` (trust-region reflective, every
    parameter ≥ 0). The parameters enter T(n) linearly when ``bandwidth`` is written as seconds per
    byte 1/β (0 = an infinite link), each scaled by the compute time A; the fit starts from every
    point of ``grid``^k (k free parameters, in those units) and keeps the lowest cost. Parameters not
    in ``free`` keep their values from ``model``; at most (points − 1) parameters may be free.

    Raises:
        ValueError: unknown or repeated names in ``free``, too many free parameters for the points,
            mismatched or non-positive speedups.
    """
    from scipy.optimize import least_squares

    free = tuple(free)
    if not free or len(set(free)) != len(free) or not set(free) <= set(FIT_PARAMS):
        raise ValueError(f"free must be distinct names from {FIT_PARAMS}, got {free!r}")
    ns = _workers(workers)
    y = np.asarray(speedups, dtype=float)
    if y.shape != ns.shape or not np.all(np.isfinite(y)) or np.any(y <= 0):
        raise ValueError("speedups must be positive, finite and one per entry of workers")
    keep = ns > 1
    ns, y = ns[keep], np.log(y[keep])
    if len(free) > ns.size - 1:
        raise ValueError(f"{len(free)} free parameters need at least {len(free) + 1} points with n > 1, "
                         f"got {ns.size}")
    scales = _scales(model, free)

    def resid(x):
        return np.log(_apply(model, free, x, scales).speedup(ns)) - y

    best = None
    starts = list(itertools.product(grid, repeat=len(free)))
    for x0 in starts:
        r = least_squares(resid, np.array(x0, dtype=float), bounds=(0.0, np.inf), method="trf")
        if best is None or r.cost < best.cost - 1e-15:
            best = r
    x = np.where(best.x < 1e-9, 0.0, best.x)  # at the bound: exactly 0 (below 1e-9 of A per term)
    fitted = _apply(model, free, x, scales)
    res = np.log(fitted.speedup(ns)) - y
    return StepFit(model=fitted, free=free, workers=tuple(int(k) for k in ns), residuals=tuple(float(v) for v in res),
                   rms=float(np.sqrt(np.mean(res ** 2))), points=int(ns.size), starts=len(starts))


# --- Figure and shape metrics ------------------------------------------------------------------

def _model_panel(ax, fits: dict, spread: pd.DataFrame | None, fit_max: int, top: int):
    """Published LeNet series (the source's spread) and models fitted on n ≤ fit_max, predictions at ``top``."""
    if spread is not None:
        for (system, grp), (marker, colour) in zip(spread.groupby("system", sort=False),
                                                   (("o", "k"), ("^", "0.45"), ("s", "0.65"))):
            ax.plot(grp["workers"], grp["speedup"], marker=marker, color=colour, lw=0.8, ms=5, zorder=4,
                    label=f"published: {system}")
    ns = np.arange(1, top + 1)
    for i, ((name, model), colour) in enumerate(zip(fits.items(), ("C0", "C3", "C2", "C4"))):
        s = model.speedup(ns)
        inside = ns <= fit_max
        ax.plot(ns[inside], s[inside], color=colour, lw=1.6, label=f"{name} (fit n ≤ {fit_max})")
        ax.plot(ns[~inside | (ns == fit_max)], s[~inside | (ns == fit_max)], color=colour, lw=1.6, ls="--")
        ax.scatter([top], [s[-1]], marker="*", s=140, color=colour, edgecolors="k", zorder=6)
        ax.annotate(f"predicted S({top}) = {s[-1]:.2f}", (top, s[-1]), xytext=(-12, 10 if i % 2 == 0 else -16),
                    textcoords="offset points", ha="right", fontsize="x-small", color=colour)
    ax.axvspan(fit_max, top, color="0.92", zorder=0)
    ax.set(xlabel="workers n", ylabel="speedup T(1) / T(n)", title="ps_pytorch: model fitted on n ≤ 16")


def figure(df: pd.DataFrame, published: pd.DataFrame | None = PUBLISHED, n_star: float | None = None,
           title: str = "", fits: dict | None = None, spread: pd.DataFrame | None = None, fit_max: int = 16):
    """Speedup figure of notebook 07; returns it.

    Panels: (with ``fits``) the published LeNet series (``spread``, e.g. :data:`PUBLISHED_SPREAD`)
    and the :class:`StepModel` s of ``fits`` (name → model) fitted on n ≤ ``fit_max``, dashed beyond
    with their prediction at the largest n starred; the simulated speedup vs n (policies × dense /
    compressed, mean over seeds, published points of :data:`PUBLISHED` overlaid, n* dashed); the
    busier direction's busy share of the server link vs n (why the simulated curve bends).
    """
    import matplotlib.pyplot as plt
    import seaborn as sns

    from .plotting import legend_below

    top = int(df["workers"].max())
    if fits:
        fig, (ax0, ax, ax2) = plt.subplots(1, 3, figsize=(16, 4.2), gridspec_kw={"width_ratios": [3, 3, 2]})
        _model_panel(ax0, fits, spread, fit_max, top)
    else:
        fig, (ax, ax2) = plt.subplots(1, 2, figsize=(11, 4), gridspec_kw={"width_ratios": [3, 2]})
    d = df.assign(push=np.where(df["compressor"] == "none", "dense",
                                df["compressor"] + " " + (100 * df["density"]).map("{:g}%".format)))
    sns.lineplot(d, x="workers", y="speedup", hue="policy", style="push", errorbar=None, ax=ax)
    ax.plot([1, top], [1, top], color="0.6", lw=0.8, ls=":", label="linear")
    if published is not None:
        pub = published[published["model"].str.startswith("LeNet")]
        for (pol, grp), marker in zip(pub.groupby("policy", sort=False), ("o", "s")):
            ax.scatter(grp["workers"], grp["speedup"], marker=marker, s=36, facecolors="none",
                       edgecolors="k", zorder=5, label=f"ps_pytorch LeNet, {pol}")
    if n_star is not None and math.isfinite(n_star):
        ax.axvline(n_star, color="0.3", lw=0.8, ls="--")
        ax.annotate(f"n* ≈ {n_star:.0f} ", (n_star, ax.get_ylim()[1] * 0.02), ha="right", fontsize="small")
    ax.set(xlabel="workers n", ylabel="speedup T(1) / T(n)", title=title or "speedup (simulated)")
    sns.lineplot(d, x="workers", y="link_share", hue="policy", style="push", errorbar=None, ax=ax2,
                 legend=False)
    ax2.axhline(0.5, color="0.6", lw=0.8, ls=":")
    ax2.set(xlabel="workers n", ylabel="busy share, busier link direction", ylim=(0, 1.05),
            title="communication share of a round (simulated)")
    legend_below(fig, fig.axes, fontsize="x-small")  # outside the data: the panels' curves stay visible
    return fig


def shape(wait_all, fastest) -> dict:
    """Shape metrics of two speedup curves (pandas Series indexed by n), as compared in notebook 07.

    ``n_peak`` (n of the largest wait-for-all speedup), ``ratio_32_16`` (S(32) / S(16) of wait for
    all), ``gap_2``, ``gap_32`` (S_fastest / S_wait − 1 at n = 2 and 32) and ``gap_growth``
    (gap_32 − gap_2; > 0: the gap widens with n).

    Example:
        >>> import pandas as pd
        >>> m = shape(pd.Series({2: 2.0, 16: 8.0, 32: 4.0}), pd.Series({2: 2.2, 16: 9.0, 32: 6.0}))
        >>> m["n_peak"], m["ratio_32_16"], round(m["gap_growth"], 3)
        (16, 0.5, 0.4)
    """
    w, f = wait_all.astype(float), fastest.astype(float)
    gap = f / w - 1.0
    return {"n_peak": int(w.idxmax()), "ratio_32_16": float(w[32] / w[16]), "gap_2": float(gap[2]),
            "gap_32": float(gap[32]), "gap_growth": float(gap[32] - gap[2])}
