"""Worker-timing and communication model: simulated seconds, emergent staleness, speedup.

A worker's compute time for one gradient is ``per_sample × batch × s`` where the slowdown ``s`` is
drawn per job from one of:

- :class:`NoSlowdown`: s = 1 (identical, deterministic workers);
- :class:`ShiftedExponential`: s = 1 + Exp(mean) (the straggler model of Dutta et al. 2018);
- :class:`LogNormal`: s = exp(σ Z), Z ~ N(0, 1);
- :class:`Straggler`: s = factor with probability p, else 1.

Communication goes through the server's link, shared by all workers and FIFO in each direction
(:class:`Link`): a message of b bytes occupies the link for b / bandwidth seconds and arrives
``latency`` seconds after it leaves. Workers push gradients up (dense: 4·d bytes, sparse: 8 bytes
per kept entry) and pull the model down (4·d bytes). With many workers the link saturates, which
is what bends speedup curves (notebook 07).

:func:`calibrate` measures ``per_sample`` for a model on this machine.
"""

from __future__ import annotations

import numbers
import time
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


SLOWDOWNS = (NoSlowdown, ShiftedExponential, LogNormal, Straggler)


@dataclass(frozen=True)
class Timing:
    """Compute and communication parameters of the simulated cluster.

    Attributes:
        per_sample: seconds of forward + backward per training sample (see :func:`calibrate`).
        slowdown: random per-job slowdown (one of :data:`SLOWDOWNS`).
        latency: seconds from leaving the link to arriving, per message.
        bandwidth: bytes per second of the server's link (shared, each direction); ``inf`` for free
            communication.
    """

    per_sample: float = 1e-4
    slowdown: NoSlowdown | ShiftedExponential | LogNormal | Straggler = field(default_factory=ShiftedExponential)
    latency: float = 1e-4
    bandwidth: float = 1.25e9  # 10 Gbit/s

    def __post_init__(self):
        checks.assign(self, per_sample=checks.real("timing.per_sample", self.per_sample, ge=0),
                      latency=checks.real("timing.latency", self.latency, ge=0),
                      bandwidth=checks.real("timing.bandwidth", self.bandwidth, gt=0, finite=False,
                                            note="bytes/s; inf allowed"))
        checks.instance("timing.slowdown", self.slowdown, SLOWDOWNS)

    def compute_time(self, batch: int, slowdown: float) -> float:
        return self.per_sample * batch * slowdown

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
    model = checks.choice("model", model, tuple(PER_SAMPLE))
    if per_sample == "source":
        cost = PER_SAMPLE[model]
    elif per_sample == "local":
        from . import models

        cost = calibrate(models.build(model))
    elif isinstance(per_sample, numbers.Real) and not isinstance(per_sample, bool):
        cost = float(per_sample)
    else:
        raise ValueError(f"per_sample must be 'source', 'local' or seconds, got {per_sample!r}")
    return Timing(per_sample=cost, slowdown=slowdown, latency=latency, bandwidth=bandwidth)
