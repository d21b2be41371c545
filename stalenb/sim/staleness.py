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
"""

from __future__ import annotations

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
