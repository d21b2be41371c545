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

import time
from dataclasses import dataclass, field

import numpy as np


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
        if not (float(self.mean) >= 0.0):
            raise ValueError(f"mean must be >= 0, got {self.mean!r}")

    def sample(self, rng: np.random.Generator, size) -> np.ndarray:
        return 1.0 + rng.exponential(self.mean, size) if self.mean > 0 else np.ones(size)


@dataclass(frozen=True)
class LogNormal:
    """s = exp(sigma · Z), Z standard normal."""

    sigma: float = 0.5

    def __post_init__(self):
        if not (float(self.sigma) >= 0.0):
            raise ValueError(f"sigma must be >= 0, got {self.sigma!r}")

    def sample(self, rng: np.random.Generator, size) -> np.ndarray:
        return np.exp(self.sigma * rng.standard_normal(size))


@dataclass(frozen=True)
class Straggler:
    """s = factor with probability p (a straggling job), else 1."""

    p: float = 0.1
    factor: float = 5.0

    def __post_init__(self):
        if not (0.0 <= float(self.p) <= 1.0):
            raise ValueError(f"p must be a probability in [0, 1], got {self.p!r}")
        if not (float(self.factor) >= 1.0):
            raise ValueError(f"factor must be >= 1 (a slowdown), got {self.factor!r}")

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
    slowdown: object = field(default_factory=ShiftedExponential)
    latency: float = 1e-4
    bandwidth: float = 1.25e9  # 10 Gbit/s

    def __post_init__(self):
        for name in ("per_sample", "latency"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and np.isfinite(v) and v >= 0):
                raise ValueError(f"timing.{name} must be a finite number >= 0, got {v!r}")
        if not (isinstance(self.bandwidth, (int, float)) and self.bandwidth > 0):
            raise ValueError(f"timing.bandwidth must be > 0 bytes/s (inf allowed), got {self.bandwidth!r}")
        if not isinstance(self.slowdown, SLOWDOWNS):
            names = ", ".join(c.__name__ for c in SLOWDOWNS)
            raise TypeError(f"timing.slowdown must be one of {names}, got {self.slowdown!r}")

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
