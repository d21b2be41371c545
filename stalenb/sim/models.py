"""The networks of the poster's experiments.

- :func:`lenet`: the LeNet of ``hwang595/ps_pytorch`` (the poster's code): conv(1→20, 5×5) →
  maxpool 2 → ReLU → conv(20→50, 5×5) → maxpool 2 → ReLU → fc(800→500) → fc(500→10), no ReLU
  between the two fc layers; 431,080 parameters.
- :func:`lenet5`: the classic LeNet-5 (6, 16 channels; 120, 84 units), offered as an extra.
- :func:`mlp`: the poster's fully connected network 784→800→500→10 with ReLU; 1,033,510 parameters.
"""

from __future__ import annotations

import torch
from torch import nn

MODELS = ("lenet", "lenet5", "mlp")


def lenet() -> nn.Module:
    """LeNet as in ps_pytorch (conv 20, conv 50, fc 800→500→10)."""
    return nn.Sequential(
        nn.Conv2d(1, 20, 5), nn.MaxPool2d(2), nn.ReLU(),
        nn.Conv2d(20, 50, 5), nn.MaxPool2d(2), nn.ReLU(),
        nn.Flatten(),
        nn.Linear(800, 500),
        nn.Linear(500, 10),
    )


def lenet5() -> nn.Module:
    """Classic LeNet-5 (LeCun et al. 1998) with ReLU and max pooling."""
    return nn.Sequential(
        nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(400, 120), nn.ReLU(),
        nn.Linear(120, 84), nn.ReLU(),
        nn.Linear(84, 10),
    )


def mlp() -> nn.Module:
    """The poster's fully connected network: 784→800→500→10, ReLU."""
    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(784, 800), nn.ReLU(),
        nn.Linear(800, 500), nn.ReLU(),
        nn.Linear(500, 10),
    )


def build(name: str, seed: int = 0) -> nn.Module:
    """The model called ``name`` with its weights initialised from ``seed`` (global RNG untouched)."""
    factories = {"lenet": lenet, "lenet5": lenet5, "mlp": mlp}
    if name not in factories:
        raise ValueError(f"model must be one of {MODELS}, got {name!r}")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return factories[name]()
