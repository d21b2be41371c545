"""Server update rules, applied per received gradient (``docs/research.md`` §3).

Each rule maps a received gradient g (computed at the model copy x_read the worker used, with
staleness τ) to a direction; the server sums the directions of one update and steps with its
learning rate (and momentum, if any):

- ``sgd``: d = g  (vanilla asynchronous SGD; Dean et al. 2012, Lian et al. 2015);
- ``staleness-aware``: d = g / max(1, τ)  (Zhang, Gupta, Lian & Liu, IJCAI 2016);
- ``dc-asgd``: d = g + λ · g ⊙ g ⊙ (x_t − x_read)  (Zheng et al., ICML 2017; MXNet ``DCASGD``).
"""

from __future__ import annotations

import torch

RULES = ("sgd", "staleness-aware", "dc-asgd")


def direction(rule: str, g: torch.Tensor, tau: int, x_now=None, x_read=None, dc_lambda: float = 0.04):
    """The direction one gradient contributes under ``rule``."""
    if rule == "sgd":
        return g
    if rule == "staleness-aware":
        return g / max(1, int(tau)) if tau > 1 else g
    if rule == "dc-asgd":
        if dc_lambda == 0 or x_read is None:
            return g
        return g + dc_lambda * g * g * (x_now - x_read)
    raise ValueError(f"rule must be one of {RULES}, got {rule!r}")

