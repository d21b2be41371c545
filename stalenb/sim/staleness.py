"""Synthetic staleness for asynchronous SGD (paper 1's setting).

The gradient applied at server step t was computed at x_{t−τ_t}, with τ_t drawn from one of the
models below and clipped to t (steps before 0 use x_0). Which model the paper used is not known
(``docs/research.md`` §1); all three are offered and named in every figure.

- :class:`Constant`: τ_t = tau (the classical fixed-delay analysis).
- :class:`Uniform`: τ_t uniform on {0, …, tau_max} (bounded-delay asynchrony, Lian et al. 2015).
- :class:`Geometric`: P(τ = j) ∝ p(1 − p)^j on {0, …, tau_max} (a queue of workers, truncated).

Each is a frozen dataclass (hashable, part of the cache key) with ``sample(rng)`` drawing from a
``numpy.random.Generator`` and ``tau_max`` bounding the draws. Delays are integers >= 0 (numpy
integers accepted, stored as ``int``; :mod:`stalenb.sim.checks`).

Measured delays are replayed, not drawn: :class:`Trace` gives τ_t = delays[t] (clipped to t like
the laws above), in order; :mod:`stalenb.traces` reads the public trace layouts into one.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from . import checks


@dataclass(frozen=True)
class Constant:
    """τ_t = tau at every step."""

    tau: int = 0

    def __post_init__(self):
        checks.assign(self, tau=checks.integer("tau", self.tau, minimum=0))

    @property
    def tau_max(self) -> int:
        return self.tau

    def sample(self, rng: np.random.Generator) -> int:
        return self.tau

    def pmf(self) -> np.ndarray:
        """P(τ = j) for j = 0..tau_max."""
        p = np.zeros(self.tau_max + 1)
        p[-1] = 1.0
        return p


@dataclass(frozen=True)
class Uniform:
    """τ_t uniform on {0, …, tau_max}."""

    tau_max: int = 0

    def __post_init__(self):
        checks.assign(self, tau_max=checks.integer("tau_max", self.tau_max, minimum=0))

    def sample(self, rng: np.random.Generator) -> int:
        return int(rng.integers(0, self.tau_max + 1))

    def pmf(self) -> np.ndarray:
        return np.full(self.tau_max + 1, 1.0 / (self.tau_max + 1))


@dataclass(frozen=True)
class Geometric:
    """P(τ = j) ∝ p (1 − p)^j for j in {0, …, tau_max} (a geometric law truncated and renormalised)."""

    p: float = 0.5
    tau_max: int = 16

    def __post_init__(self):
        p = checks.real("p", self.p, gt=0, le=1, what="probability")
        checks.assign(self, p=p, tau_max=checks.integer("tau_max", self.tau_max, minimum=0))

    def pmf(self) -> np.ndarray:
        j = np.arange(self.tau_max + 1)
        w = self.p * (1.0 - self.p) ** j
        return w / w.sum()

    def sample(self, rng: np.random.Generator) -> int:
        return int(rng.choice(self.tau_max + 1, p=self.pmf()))


MODELS = (Constant, Uniform, Geometric)


@dataclass(frozen=True, repr=False)
class Trace:
    """Replay measured delays in order: the gradient applied at server step t has τ_t = delays[t].

    For ``protocol="async"``. As with every law here, τ_t is clipped to t (a step before 0 reads
    x_0), so a replayed run records staleness min(delays[t], t): the trace itself whenever the
    measured run started at step 0 too (a delay never exceeds the updates made before it). Worker
    ids go round-robin as for the other laws.

    A run longer than the trace is an error when the :class:`stalenb.Config` is made, unless
    ``cycle=True``: then step t replays ``delays[t mod len(delays)]`` (the trace repeated).

    Attributes:
        delays: integers >= 0, one per server update (a list or numpy array is stored as a tuple of
            ``int``: hashable, serialised into the cache key in full).
        cycle: repeat the trace when the run is longer than it.
    """

    delays: tuple
    cycle: bool = False

    def __post_init__(self):
        d = self.delays
        if isinstance(d, (str, bytes)) or not hasattr(d, "__len__"):
            raise TypeError(f"delays must be a sequence of integers >= 0, got {d!r}")
        a = np.asarray(d)
        if a.ndim != 1 or a.size == 0:
            raise ValueError(f"delays must be a non-empty one-dimensional sequence of integers >= 0, got {d!r}")
        if a.dtype.kind not in "iu":
            raise TypeError(f"delays must be integers >= 0 (one per server update), got dtype {a.dtype} "
                            f"(stalenb.traces reads float-formatted files)")
        bad = np.flatnonzero(a < 0)
        if bad.size:
            raise ValueError(f"delays must be integers >= 0, got {int(a[bad[0]])} at index {int(bad[0])}")
        checks.assign(self, delays=tuple(a.tolist()), cycle=checks.boolean("cycle", self.cycle))

    @functools.cached_property
    def tau_max(self) -> int:  # computed once: the schedule asks at every step
        return max(self.delays)

    def delay(self, t: int) -> int:
        """The delay replayed at step ``t`` (before clipping to t)."""
        if t >= len(self.delays) and not self.cycle:
            raise IndexError(f"step {t} is past the end of the staleness trace ({len(self.delays)} delays); "
                             f"use Trace(delays, cycle=True) to repeat it")
        return self.delays[t % len(self.delays)]

    def pmf(self) -> np.ndarray:
        """The empirical P(τ = j), j = 0..tau_max, over the whole trace (before clipping)."""
        return np.bincount(self.delays, minlength=self.tau_max + 1) / len(self.delays)

    def __repr__(self) -> str:
        return (f"Trace(<{len(self.delays)} delays, mean {float(np.mean(self.delays)):.3g}, max {self.tau_max}>"
                f"{', cycle=True' if self.cycle else ''})")


#: Delay sequences replayed from data (``delay(t)`` instead of ``sample(rng)``).
REPLAYS = (Trace,)
