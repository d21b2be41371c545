"""The parameter server: one model, one update rule, whatever drives it.

"One server, two drivers" (docs/design.md §S7): :mod:`stalenb.engine` feeds it from a simulated clock,
:mod:`stalenb.distributed` from real processes. An update combines the gradients received for it:

    x_{t+1} = x_t − lr · v_{t+1},   v_{t+1} = μ v_t + (1 / K) Σ_i w(lag_i) · d_i

with d_i the rule's direction for gradient i (:mod:`stalenb.rules`), K the number of gradients the
protocol averages over (n for sync, k for k-of-n, 1 for async) and w the lag weight of a re-used
gradient (1 for fresh ones). With μ = 0, K = 1, w = 1 and the ``sgd`` rule this is exactly
``torch.optim.SGD``; with μ > 0 it is torch's heavy-ball momentum (dampening 0).
"""

from __future__ import annotations

import math

import torch

from . import rules


def diverging(losses, limit: float) -> bool:
    """A run stops when a mini-batch loss is not finite or exceeds ``limit`` (``Config.diverge_loss``)."""
    return any(not math.isfinite(loss) or loss > limit for loss in losses)


class Server:
    """Holds the flat model ``x`` and applies updates.

    Args:
        x0: initial flat parameter vector (copied).
        rule: a name in :data:`stalenb.rules.RULES`.
        lr: learning rate; momentum: μ.
        config: the run's :class:`stalenb.Config`, whose fields are the rule's parameters (DC-ASGD's
            λ, the workers of ``delay-adaptive``, the exponent of ``poly-staleness``); ``None``: the
            defaults of ``Config()``.
    """

    def __init__(self, x0: torch.Tensor, rule="sgd", lr=0.05, momentum=0.0, config=None):
        if config is None:
            from .config import Config

            config = Config()
        self.x = x0.detach().clone()
        self.rule, self.lr, self.momentum, self.config = rule, float(lr), float(momentum), config
        self.buf = None
        self.version = 0

    def combine(self, grads, lags, weights=None, reads=None, k_eff=1) -> torch.Tensor:
        """(1/K) Σ w_i · d_i for the received gradients (``reads``: model copies, for DC-ASGD)."""
        total = torch.zeros_like(self.x)
        for i, (g, lag) in enumerate(zip(grads, lags)):
            w = 1.0 if weights is None else float(weights[i])
            if w == 0.0:
                continue
            x_read = None if reads is None else reads[i]
            d = rules.direction(self.rule, g, lag, self.x, x_read, self.config)
            total.add_(d, alpha=w)
        return total.div_(k_eff) if k_eff != 1 else total

    def finite(self) -> bool:
        """All entries of x finite (one reduction; the full check only if the sum overflows)."""
        return bool(torch.isfinite(self.x.sum())) or bool(torch.isfinite(self.x).all())

    def step(self, direction: torch.Tensor, out: torch.Tensor | None = None) -> None:
        """x ← x − lr · (μ v + direction); advances the version.

        With ``out`` (a buffer shaped like x) the new model is written there and becomes ``self.x``,
        leaving the old tensor untouched: a caller that must keep x_t keeps it without a copy.
        Same arithmetic as the in-place update, bit for bit."""
        if self.momentum:
            self.buf = direction.clone() if self.buf is None else self.buf.mul_(self.momentum).add_(direction)
            direction = self.buf
        if out is None:
            self.x.add_(direction, alpha=-self.lr)
        else:
            self.x = torch.add(self.x, direction, alpha=-self.lr, out=out)
        self.version += 1

    def apply(self, grads, lags, weights=None, reads=None, k_eff=1) -> None:
        """One server update from the gradients received for it."""
        self.step(self.combine(grads, lags, weights, reads, k_eff))
